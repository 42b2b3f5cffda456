#pragma once
// A one-line label that never widens its layout for a long text: what does not fit is elided at the
// right ("…"), and the whole text moves into the tooltip, above the label's own description.

#include <QLabel>
#include <QString>

class QResizeEvent;

namespace mdbf::widgets {

/// One line of text elided at the right to the label's width; selectable like a QLabel (the
/// selection copies what is shown). Set the text with setFullText, not QLabel::setText.
class ElidedLabel : public QLabel {
    Q_OBJECT
public:
    explicit ElidedLabel(QWidget* parent = nullptr);

    /// The whole text, shown elided when it is wider than the label.
    void setFullText(const QString& text);
    QString fullText() const { return m_full; }

    /// The tooltip when the text fits; when it does not, the tooltip is the whole text, then this.
    void setDescription(const QString& description);

    /// True when the text on screen is shorter than the whole text.
    bool isElided() const { return text() != m_full; }

protected:
    void resizeEvent(QResizeEvent* event) override;

private:
    void refresh();

    QString m_full;
    QString m_description;
};

}  // namespace mdbf::widgets
