#include "plan_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QSpinBox>

namespace mdbf::studio {

PlanDialog::PlanDialog(double budget, QWidget* parent) : QDialog(parent)
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
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    form->addRow(buttons);
}

pipeline::PlanOptions PlanDialog::options() const
{
    pipeline::PlanOptions o;
    o.budget = factor::Bpw::fromDouble(m_budget->value());
    if (!m_mdbf->isChecked()) o.methods = {factor::Method::Dbf};
    o.trialIterations = m_trialIterations->value();
    o.iterations = m_iterations->value();
    o.weighting = static_cast<pipeline::PlanWeighting>(m_weighting->currentData().toInt());
    return o;
}

}  // namespace mdbf::studio
