#include "comparison_tab.h"

#include <algorithm>

#include <QCheckBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QVBoxLayout>

#include "mdbf/base/error.h"
#include "mdbf/widgets/method_comparison_plot.h"

namespace mdbf::studio {

ComparisonTab::ComparisonTab(QWidget* parent) : QWidget(parent)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    auto* row = new QHBoxLayout();
    row->addWidget(new QLabel(tr("Budgets (bpw)"), this));
    m_budgets = new QLineEdit(QStringLiteral("0.75, 1, 1.25, 1.5, 2"), this);
    m_budgets->setToolTip(tr("Comma-separated bit budgets; each point is placed at the exact bpw its k achieves"));
    row->addWidget(m_budgets, 2);
    row->addWidget(new QLabel(tr("MDBF l"), this));
    m_ranks = new QLineEdit(QStringLiteral("1, 2, 4"), this);
    m_ranks->setToolTip(tr("Comma-separated envelope ranks for MDBF; DBF (l = 1, merged storage) is always included"));
    row->addWidget(m_ranks, 1);
    m_refine = new QCheckBox(tr("refine"), this);
    m_refine->setToolTip(tr("Run the ADMM refinement with the iteration count above (slow); otherwise compare closed forms"));
    row->addWidget(m_refine);
    m_run = new QPushButton(tr("Run comparison"), this);
    m_run->setToolTip(tr("Factorize the selected layer at every budget with every method in the background"));
    row->addWidget(m_run);
    layout->addLayout(row);
    m_status = new QLabel(this);
    m_status->setToolTip(tr("What the comparison did, and budgets that were too small for a method"));
    m_status->setWordWrap(true);
    layout->addWidget(m_status);
    m_plot = new widgets::MethodComparisonPlot(this);
    layout->addWidget(m_plot, 1);
    connect(m_run, &QPushButton::clicked, this, &ComparisonTab::runRequested);
}

bool ComparisonTab::request(ComparisonRequest& out, QString& error) const
{
    out = ComparisonRequest{};
    for (const QString& part : m_budgets->text().split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        try {
            out.budgets.push_back(factor::Bpw::parse(part.trimmed().toStdString()));
        } catch (const Error& e) {
            error = QString::fromUtf8(e.what());
            return false;
        }
    }
    for (const QString& part : m_ranks->text().split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        bool ok = false;
        const int l = part.trimmed().toInt(&ok);
        if (!ok || l < 1 || l > 64) {
            error = tr("'%1' is not an envelope rank between 1 and 64").arg(part.trimmed());
            return false;
        }
        if (std::find(out.ranks.begin(), out.ranks.end(), l) == out.ranks.end()) out.ranks.push_back(l);
    }
    if (out.budgets.empty()) {
        error = tr("no budget given");
        return false;
    }
    out.refine = m_refine->isChecked();
    return true;
}

void ComparisonTab::setRequestText(const QString& budgets, const QString& ranks, bool refine)
{
    m_budgets->setText(budgets);
    m_ranks->setText(ranks);
    m_refine->setChecked(refine);
}

void ComparisonTab::setStatus(const QString& text) { m_status->setText(text); }

void ComparisonTab::setRunEnabled(bool enabled) { m_run->setEnabled(enabled); }

}  // namespace mdbf::studio
