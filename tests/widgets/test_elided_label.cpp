// The elided label: a text wider than the label is cut at the right with "…" and whole in the
// tooltip; one that fits is shown as is, with the label's description as its tooltip.

#include <gtest/gtest.h>

#include <QFontMetrics>
#include <QString>

#include "mdbf/widgets/elided_label.h"
#include "widget_test_support.h"

namespace mdbf::widgets {
namespace {

const QString kResultLine = QStringLiteral(
    "mdbf l = 2 · k = 707 · 1.5003 bpw · error 0.31337 (gram) · plain 0.40412 · 30 iterations, iteration limit");

/// Shows `label` with the result line and a description; returns the line's width in pixels.
int showResultLine(ElidedLabel& label)
{
    label.show();  // a hidden widget gets its resize events only when shown
    label.setDescription(QStringLiteral("The result on screen"));
    label.setFullText(kResultLine);
    return label.fontMetrics().horizontalAdvance(kResultLine);
}

TEST(ElidedLabel, LongTextIsElidedAtTheRightAndWholeInTheTooltip)
{
    ElidedLabel label;
    const int whole = showResultLine(label);
    label.resize(whole / 3, label.sizeHint().height());

    EXPECT_TRUE(label.isElided());
    EXPECT_EQ(label.fullText(), kResultLine);
    EXPECT_TRUE(label.text().endsWith(QChar(0x2026))) << label.text().toStdString();
    EXPECT_TRUE(kResultLine.startsWith(label.text().chopped(1)));
    EXPECT_LE(label.fontMetrics().horizontalAdvance(label.text()), whole / 3);
    EXPECT_TRUE(label.toolTip().startsWith(kResultLine));
    EXPECT_TRUE(label.toolTip().endsWith(QStringLiteral("The result on screen")));
}

TEST(ElidedLabel, TextThatFitsIsShownWholeAndFollowsResizes)
{
    ElidedLabel label;
    const int whole = showResultLine(label);
    label.resize(whole + 40, label.sizeHint().height());
    EXPECT_FALSE(label.isElided());
    EXPECT_EQ(label.text(), kResultLine);
    EXPECT_EQ(label.toolTip(), QStringLiteral("The result on screen"));

    label.resize(whole / 2, label.height());  // narrower: elided again
    EXPECT_TRUE(label.isElided());
    label.setFullText(QStringLiteral("closed form"));  // a short text fits the narrow label
    EXPECT_FALSE(label.isElided());
    EXPECT_EQ(label.text(), QStringLiteral("closed form"));
}

}  // namespace
}  // namespace mdbf::widgets
