#include <gtest/gtest.h>

#include <map>

#include <QFile>
#include <QHelpEvent>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "mdbf/widgets/layer_error_bar_plot.h"
#include "widget_test_support.h"

namespace mdbf::widgets {
namespace {

std::vector<LayerErrorBar> sampleEntries()
{
    std::vector<LayerErrorBar> entries;
    const QStringList kinds = {QStringLiteral("q_proj"), QStringLiteral("k_proj"), QStringLiteral("up_proj")};
    for (int block = 0; block < 3; ++block) {
        for (int p = 0; p < kinds.size(); ++p) {
            LayerErrorBar e;
            e.name = QStringLiteral("model.layers.%1.x.%2").arg(block).arg(kinds[p]);
            e.label = QStringLiteral("%1·%2").arg(block).arg(kinds[p].left(1));
            e.category = kinds[p];
            e.error = 0.1 * (block + 1) + 0.01 * p;
            e.detail = QStringLiteral("detail %1").arg(block * 10 + p);
            entries.push_back(e);
        }
    }
    LayerErrorBar dense;
    dense.name = QStringLiteral("model.layers.1.x.v_proj");
    dense.label = QStringLiteral("1·v");
    dense.category = QStringLiteral("v_proj");
    dense.dense = true;
    dense.detail = QStringLiteral("kept dense: too few bits");
    entries.insert(entries.begin() + 4, dense);
    return entries;
}

/// The fill colour of the bars of `category`, or an invalid colour when it has none.
QColor categoryBrush(LayerErrorBarPlot& plot, const QString& category)
{
    for (int i = 0; i < plot.plottableCount(); ++i)
        if (auto* bars = qobject_cast<QCPBars*>(plot.plottable(i)); bars && bars->name() == category)
            return bars->brush().color();
    return {};
}

TEST(LayerErrorBarPlot, ACategoryKeepsItsColourWhateverElseIsOnTheChart)
{
    // While an apply runs only some kinds are on the chart; at the end all are. A fixed colour index
    // keeps up_proj's colour through both.
    std::vector<LayerErrorBar> all = sampleEntries();
    const std::map<QString, int> index = {{QStringLiteral("q_proj"), 0}, {QStringLiteral("k_proj"), 1},
                                          {QStringLiteral("v_proj"), 2}, {QStringLiteral("up_proj"), 5}};
    for (LayerErrorBar& e : all) e.colorIndex = index.at(e.category);
    std::vector<LayerErrorBar> running;
    for (const LayerErrorBar& e : all)
        if (e.category == QStringLiteral("up_proj")) running.push_back(e);
    LayerErrorBarPlot plot;
    plot.setEntries(running);
    const QColor whileRunning = categoryBrush(plot, QStringLiteral("up_proj"));
    plot.setEntries(all);
    const QColor atTheEnd = categoryBrush(plot, QStringLiteral("up_proj"));
    ASSERT_TRUE(whileRunning.isValid());
    EXPECT_EQ(whileRunning, atTheEnd);
    EXPECT_NE(categoryBrush(plot, QStringLiteral("q_proj")), atTheEnd);
}

TEST(LayerErrorBarPlot, YAxisLabelShortensToFitALowChart)
{
    LayerErrorBarPlot plot;
    plot.setEntries(sampleEntries());
    plot.setObjectiveLabel(QStringLiteral("objective of each layer"));
    const QString full = plot.yAxisLabelText();
    EXPECT_EQ(full, QStringLiteral("rel. error (objective of each layer)"));
    plot.show();  // a shown widget gets its resize events at once
    plot.resize(600, 420);
    plot.replot();
    EXPECT_EQ(plot.yAxis->label(), full);
    plot.resize(600, 150);
    plot.replot();
    const QFontMetrics metrics(plot.yAxis->labelFont());
    EXPECT_NE(plot.yAxis->label(), full);
    EXPECT_LE(metrics.horizontalAdvance(plot.yAxis->label()),
              std::max(plot.axisRect()->height(), metrics.horizontalAdvance(QStringLiteral("error"))));
}

TEST(LayerErrorBarPlot, OneBarPerFactorizedLayerWithItsError)
{
    LayerErrorBarPlot plot;
    plot.resize(700, 300);
    const auto entries = sampleEntries();
    plot.setEntries(entries);
    EXPECT_EQ(plot.barCount(), 9);
    int plotted = 0;
    for (int i = 0; i < plot.plottableCount(); ++i)
        if (auto* bars = qobject_cast<QCPBars*>(plot.plottable(i))) plotted += bars->data()->size();
    EXPECT_EQ(plotted, 9);  // no highlight yet: every plotted point is a layer's bar
    for (const LayerErrorBar& e : entries) {
        const auto value = plot.plottedError(e.name);
        if (e.dense) {
            EXPECT_FALSE(value.has_value()) << e.name.toStdString();
        } else {
            ASSERT_TRUE(value.has_value()) << e.name.toStdString();
            EXPECT_EQ(*value, e.error);
        }
    }
    // One colour (and legend entry) per category; the dense layer adds none.
    EXPECT_EQ(plot.legend->itemCount(), 3);
    // Every bar's error is inside the visible range.
    EXPECT_GE(plot.yAxis->range().upper, 0.32);
    EXPECT_EQ(plot.yAxis->range().lower, 0.0);

    // The CSV lists every entry in x order, dense ones flagged.
    const QStringList lines = plot.csv().trimmed().split(QLatin1Char('\n'));
    ASSERT_EQ(lines.size(), static_cast<int>(entries.size()) + 1);
    EXPECT_TRUE(lines[5].startsWith(QStringLiteral("\"model.layers.1.x.v_proj\"")));
    EXPECT_TRUE(lines[5].endsWith(QStringLiteral(",1")));

    plot.clear();
    EXPECT_EQ(plot.barCount(), 0);
    EXPECT_TRUE(plot.entries().empty());
}

TEST(LayerErrorBarPlot, HoverNamesTheLayerAndClickSelectsIt)
{
    LayerErrorBarPlot plot;
    plot.resize(800, 320);
    plot.show();
    const auto entries = sampleEntries();
    plot.setEntries(entries);
    plot.replot();
    ASSERT_TRUE(QTest::qWaitForWindowExposed(&plot));
    for (int i = 0; i < static_cast<int>(entries.size()); ++i) {
        const QPoint centre(static_cast<int>(plot.xAxis->coordToPixel(i)), plot.axisRect()->bottom() - 5);
        EXPECT_EQ(plot.entryAt(centre), i);
        const QString tip = plot.entryToolTip(i);
        EXPECT_TRUE(tip.contains(entries[static_cast<std::size_t>(i)].name)) << tip.toStdString();
        EXPECT_TRUE(tip.contains(entries[static_cast<std::size_t>(i)].detail));
    }
    // Between two columns, and outside the axis rect, nothing is hit.
    const int between = static_cast<int>(plot.xAxis->coordToPixel(2.5));
    EXPECT_EQ(plot.entryAt(QPoint(between, plot.axisRect()->bottom() - 5)), -1);
    EXPECT_EQ(plot.entryAt(QPoint(2, 2)), -1);

    QSignalSpy clicked(&plot, &LayerErrorBarPlot::barClicked);
    const QPoint third(static_cast<int>(plot.xAxis->coordToPixel(2)), plot.axisRect()->bottom() - 5);
    QTest::mouseClick(&plot, Qt::LeftButton, Qt::NoModifier, third);
    ASSERT_EQ(clicked.count(), 1);
    EXPECT_EQ(clicked.at(0).at(0).toString(), entries[2].name);

    // The highlight outlines exactly the chosen bar, at its height.
    plot.setHighlighted(entries[2].name);
    int outlines = 0;
    for (int i = 0; i < plot.plottableCount(); ++i) {
        auto* bars = qobject_cast<QCPBars*>(plot.plottable(i));
        if (!bars || bars->brush().style() != Qt::NoBrush) continue;
        ++outlines;
        ASSERT_EQ(bars->data()->size(), 1);
        EXPECT_EQ(bars->data()->at(0)->key, 2.0);
        EXPECT_EQ(bars->data()->at(0)->value, entries[2].error);
    }
    EXPECT_EQ(outlines, 1);
    EXPECT_EQ(plot.barCount(), 9);
}

TEST(LayerErrorBarPlot, RendersBarsAndExports)
{
    LayerErrorBarPlot plot;
    plot.resize(640, 280);
    plot.setEntries(sampleEntries());
    plot.replot();
    const QImage image = plot.toPixmap(640, 280).toImage();
    EXPECT_GT(mdbf::test::distinctColors(image), 8);
    QTemporaryDir dir;
    const QString png = dir.filePath(QStringLiteral("bars.png"));
    const QString svg = dir.filePath(QStringLiteral("bars.svg"));
    ASSERT_TRUE(plot.exportPng(png));
    ASSERT_TRUE(plot.exportSvg(svg));
    EXPECT_FALSE(QImage(png).isNull());
    EXPECT_GT(QFile(svg).size(), 1000);
}

}  // namespace
}  // namespace mdbf::widgets
