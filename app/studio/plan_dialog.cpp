#include "plan_dialog.h"

#include "factor_settings.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QSpinBox>

namespace mdbf::studio {

PlanDialog::PlanDialog(double budget, const QString& calibration, QWidget* parent) : QDialog(parent)
{
    setObjectName(QStringLiteral("planDialog"));
    setWindowTitle(tr("Plan at budget"));
    auto* form = new QFormLayout(this);
    m_budget = new QDoubleSpinBox(this);
    m_budget->setRange(0.25, 8.0);
    m_budget->setDecimals(2);
    m_budget->setSingleStep(0.05);
    m_budget->setValue(budget);
    m_budget->setSuffix(tr(" bpw"));
    m_budget->setToolTip(tr("Bits per weight of the factorized layers together, not to be exceeded"));
    form->addRow(tr("Budget"), m_budget);
    m_mdbf = new QCheckBox(tr("try MDBF at l = 2, 4, 8 besides DBF"), this);
    m_mdbf->setChecked(true);
    m_mdbf->setToolTip(tr("Without it every layer gets DBF"));
    form->addRow(tr("Formats"), m_mdbf);
    m_trialIterations = new QSpinBox(this);
    m_trialIterations->setRange(0, 100);
    m_trialIterations->setValue(6);
    m_trialIterations->setToolTip(tr("Outer iterations of every trial factorization (0: closed form only, fastest)"));
    form->addRow(tr("Trial iterations"), m_trialIterations);
    m_iterations = new QSpinBox(this);
    m_iterations->setRange(0, 5000);
    m_iterations->setValue(260);
    m_iterations->setToolTip(tr("Outer iterations of the applied factorizations (0: closed form)"));
    form->addRow(tr("Iterations"), m_iterations);
    m_weighting = new QComboBox(this);
    m_weighting->addItem(tr("by size (weights)"), int(pipeline::PlanWeighting::Weights));
    m_weighting->addItem(tr("equally (layers)"), int(pipeline::PlanWeighting::Layers));
    m_weighting->setToolTip(tr("How the layers' squared errors add up into the cost the plan minimizes"));
    form->addRow(tr("Weigh layers"), m_weighting);
    m_objective = new QComboBox(this);
    m_objective->setObjectName(QStringLiteral("planObjective"));
    m_objective->addItem(tr("plain"), int(factor::Objective::Plain));
    if (!calibration.isEmpty()) {
        m_objective->addItem(tr("diag (activation-weighted)"), int(factor::Objective::DiagonalWeighted));
        m_objective->addItem(tr("gram (output-matching)"), int(factor::Objective::Gram));
    }
    m_objective->setToolTip(tr("The objective of the trials and of the applied factorizations; diag and gram need "
                               "a calibration with Gram matrices (Model ▸ Calibrate)"));
    form->addRow(tr("Objective"), m_objective);
    auto* measured = new QLabel(calibration.isEmpty()
                                    ? tr("Layer errors measured on the weights (calibrate with Gram matrices to "
                                         "weigh the layers' outputs instead)")
                                    : tr("Layer errors measured on the outputs, %1").arg(calibration),
                                this);
    measured->setObjectName(QStringLiteral("planErrorNote"));
    measured->setWordWrap(true);
    form->addRow(tr("Error"), measured);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    form->addRow(buttons);
}

pipeline::PlanOptions PlanDialog::options() const
{
    pipeline::PlanOptions o;
    o.budget = budgetOfSpinValue(m_budget->value(), m_budget->decimals());
    if (!m_mdbf->isChecked()) o.methods = {factor::Method::Dbf};
    o.trialIterations = m_trialIterations->value();
    o.iterations = m_iterations->value();
    o.weighting = static_cast<pipeline::PlanWeighting>(m_weighting->currentData().toInt());
    o.objective = static_cast<factor::Objective>(m_objective->currentData().toInt());
    return o;
}

}  // namespace mdbf::studio
