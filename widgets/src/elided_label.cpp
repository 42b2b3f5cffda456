#include "mdbf/widgets/elided_label.h"

#include <algorithm>

#include <QFontMetrics>
#include <QResizeEvent>

namespace mdbf::widgets {

ElidedLabel::ElidedLabel(QWidget* parent) : QLabel(parent)
{
    setTextFormat(Qt::PlainText);
    setWordWrap(false);
}

void ElidedLabel::setFullText(const QString& text)
{
    m_full = text;
    refresh();
}

void ElidedLabel::setDescription(const QString& description)
{
    m_description = description;
    refresh();
}

void ElidedLabel::resizeEvent(QResizeEvent* event)
{
    QLabel::resizeEvent(event);
    refresh();
}

void ElidedLabel::refresh()
{
    const int width = std::max(0, contentsRect().width() - 2 * margin() - 2 * indent());
    QLabel::setText(fontMetrics().elidedText(m_full, Qt::ElideRight, width));
    if (!isElided()) setToolTip(m_description);
    else if (m_description.isEmpty()) setToolTip(m_full);
    else setToolTip(m_full + QStringLiteral("\n\n") + m_description);
}

}  // namespace mdbf::widgets
