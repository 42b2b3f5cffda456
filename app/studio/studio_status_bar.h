#pragma once
// The main window's status bar: the running jobs (JobStatusWidget), the model's bits per weight under
// the configuration with the count of factorized layers, and the open model's name, parameters and
// stored type. It follows the document; messages are shown with showMessage() as on any status bar.

#include <QStatusBar>

class QLabel;

namespace mdbf::studio {

class JobRunner;
class StudioDocument;

class StudioStatusBar : public QStatusBar {
    Q_OBJECT
public:
    /// Follows `document` and the jobs of `runner`; both must outlive the bar.
    StudioStatusBar(StudioDocument* document, JobRunner* runner, QWidget* parent = nullptr);

    /// "<model> · <params> · <dtype> · model 1.234 bpw (factorized layers 1.000) · 4/28 layers
    /// factorized" (rich text as shown), or "no model".
    QString summaryText() const;

private:
    void updateSummary();

    StudioDocument* m_document;
    QLabel* m_modelLabel;
    QLabel* m_bpwLabel;
};

}  // namespace mdbf::studio
