#include "comparison_tab.h"

#include <algorithm>

#include <QCheckBox>
#include <QComboBox>
#include <QSplitter>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QVBoxLayout>

#include "mdbf/base/error.h"
#include "factor_cache.h"
#include "mdbf/widgets/heatmap_plot.h"
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
    auto* splitter = new QSplitter(Qt::Vertical, this);
    splitter->setObjectName(QStringLiteral("comparisonSplitter"));
    m_plot = new widgets::MethodComparisonPlot(splitter);
    auto* maps = new QWidget(splitter);
    auto* mapsLayout = new QVBoxLayout(maps);
    mapsLayout->setContentsMargins(0, 0, 0, 0);
    auto* mapRow = new QHBoxLayout();
    mapRow->addWidget(new QLabel(tr("Error maps at"), maps));
    m_mapBudget = new QComboBox(maps);
    m_mapBudget->setToolTip(tr("The budget whose DBF and best-MDBF residuals W − Ŵ are shown below, on one colour scale"));
    mapRow->addWidget(m_mapBudget);
    mapRow->addStretch(1);
    mapsLayout->addLayout(mapRow);
    auto* side = new QHBoxLayout();
    m_dbfMap = new widgets::HeatmapPlot(maps);
    m_mdbfMap = new widgets::HeatmapPlot(maps);
    m_dbfMap->setToolTip(tr("W − Ŵ of DBF at the chosen budget"));
    m_mdbfMap->setToolTip(tr("W − Ŵ of the MDBF rank with the lowest error at the chosen budget (same colour scale)"));
    side->addWidget(m_dbfMap);
    side->addWidget(m_mdbfMap);
    mapsLayout->addLayout(side, 1);
    splitter->addWidget(m_plot);
    splitter->addWidget(maps);
    splitter->setStretchFactor(0, 1);
    splitter->setStretchFactor(1, 1);
    layout->addWidget(splitter, 1);
    connect(m_run, &QPushButton::clicked, this, &ComparisonTab::runRequested);
    connect(m_mapBudget, &QComboBox::currentIndexChanged, this, [this](int i) {
        if (i >= 0) showMaps(factor::Bpw::parse(m_mapBudget->itemData(i).toString().toStdString()));
    });
    clearResults();
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

void ComparisonTab::clearResults()
{
    m_plot->clear();
    m_objective.clear();
    m_pairs.clear();
    const QSignalBlocker block(m_mapBudget);
    m_mapBudget->clear();
    m_mapBudget->setEnabled(false);
    m_dbfMap->clear(tr("Run a comparison: DBF's error map appears here"));
    m_mdbfMap->clear(tr("… and the best MDBF's beside it"));
}

void ComparisonTab::addResult(const factor::Bpw& budget, std::shared_ptr<const LayerFactorization> f)
{
    if (!f || !f->result || !f->residual) return;
    const factor::FactorResult& r = *f->result;
    if (f->complete) {
        const QString objective = QString::fromStdString(std::string(factor::objectiveName(r.objective)));
        if (objective != m_objective) {
            m_plot->clear();
            m_plot->setObjectiveLabel(objective);
            m_objective = objective;
        }
        QString method = r.method == factor::Method::Dbf ? QStringLiteral("DBF") : QStringLiteral("MDBF");
        if (!f->refined) method += tr(" closed form");
        m_plot->setPoint(method, r.l, widgets::ComparisonPoint{r.bpw, r.finalError, r.k, f->refined});
        m_plot->setCurrentBpw(r.bpw);
    }
    Pair& pair = m_pairs[budget.value()];
    const bool dbf = f->result->method == factor::Method::Dbf;
    auto& slot = dbf ? pair.dbf : pair.mdbf;
    if (slot && slot->result->finalError <= f->result->finalError) return;
    slot = std::move(f);
    const QString text = QString::fromStdString(budget.text());
    if (m_mapBudget->findData(text) < 0) {
        // Budgets stay in increasing order.
        int at = 0;
        while (at < m_mapBudget->count() &&
               factor::Bpw::parse(m_mapBudget->itemData(at).toString().toStdString()).value() < budget.value())
            ++at;
        const QSignalBlocker block(m_mapBudget);
        m_mapBudget->insertItem(at, tr("%1 bpw").arg(text), text);
        m_mapBudget->setEnabled(true);
    }
    if (m_mapBudget->currentData().toString() == text) showMaps(budget);
    else if (m_mapBudget->currentIndex() < 0 || m_mapBudget->count() == 1) m_mapBudget->setCurrentIndex(m_mapBudget->findData(text));
}

std::vector<factor::Bpw> ComparisonTab::mapBudgets() const
{
    std::vector<factor::Bpw> out;
    for (int i = 0; i < m_mapBudget->count(); ++i) out.push_back(factor::Bpw::parse(m_mapBudget->itemData(i).toString().toStdString()));
    return out;
}

void ComparisonTab::showMaps(const factor::Bpw& budget)
{
    const auto it = m_pairs.find(budget.value());
    if (it == m_pairs.end()) return;
    const int index = m_mapBudget->findData(QString::fromStdString(budget.text()));
    if (index >= 0 && index != m_mapBudget->currentIndex()) {
        const QSignalBlocker block(m_mapBudget);
        m_mapBudget->setCurrentIndex(index);
    }
    auto title = [](const LayerFactorization& f) {
        const factor::FactorResult& r = *f.result;
        return r.method == factor::Method::Dbf
                   ? tr("DBF · k %1 · %2 bpw · error %3").arg(r.k).arg(r.bpw, 0, 'f', 3).arg(r.finalError, 0, 'f', 4)
                   : tr("MDBF l=%1 · k %2 · %3 bpw · error %4").arg(r.l).arg(r.k).arg(r.bpw, 0, 'f', 3).arg(r.finalError, 0, 'f', 4);
    };
    const Pair& pair = it->second;
    if (pair.dbf) m_dbfMap->setMatrix(*pair.dbf->residual, title(*pair.dbf), tr("error"));
    else m_dbfMap->clear(tr("DBF: too few bits at this budget"));
    if (pair.mdbf) m_mdbfMap->setMatrix(*pair.mdbf->residual, title(*pair.mdbf), tr("error"));
    else m_mdbfMap->clear(tr("MDBF: too few bits at this budget"));
    if (pair.dbf && pair.mdbf) widgets::HeatmapPlot::shareRange({m_dbfMap, m_mdbfMap});
}

}  // namespace mdbf::studio
