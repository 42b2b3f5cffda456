#include "factor_control_bar.h"

#include <cmath>

#include <QAction>
#include <QButtonGroup>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QVBoxLayout>
#include <QSignalBlocker>
#include <QSlider>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QToolButton>

#include "mdbf/factor/bit_budget.h"

namespace mdbf::studio {

namespace {

QLabel* caption(const QString& text, QWidget* parent)
{
    auto* label = new QLabel(text, parent);
    label->setStyleSheet(QStringLiteral("color: #444;"));
    return label;
}

}  // namespace

FactorControlBar::FactorControlBar(QWidget* parent) : QWidget(parent)
{
    // Two rows, as in the layout sketch: what is stored (method, l, budget), then how it is fitted.
    auto* rows = new QVBoxLayout(this);
    rows->setContentsMargins(6, 4, 6, 2);
    rows->setSpacing(2);
    auto* layout = new QHBoxLayout();
    layout->setSpacing(6);
    auto* second = new QHBoxLayout();
    second->setSpacing(6);
    rows->addLayout(layout);
    rows->addLayout(second);

    layout->addWidget(caption(tr("Method"), this));
    auto* group = new QButtonGroup(this);
    auto makeMethod = [&](const QString& text, const QString& tip) {
        auto* b = new QToolButton(this);
        b->setText(text);
        b->setCheckable(true);
        b->setToolTip(tip);
        b->setAutoRaise(false);
        b->setMinimumWidth(52);
        group->addButton(b);
        layout->addWidget(b);
        return b;
    };
    m_dbf = makeMethod(tr("DBF"), tr("Double Binary Factorization: rank-1 envelopes stored as vectors a, c, b"));
    m_mdbf = makeMethod(tr("MDBF"), tr("Multi-envelope DBF: rank-l envelopes A·Qaᵀ and Qb·Bᵀ (FP16)"));
    layout->addSpacing(10);

    layout->addWidget(caption(tr("l"), this));
    m_lSlider = new QSlider(Qt::Horizontal, this);
    m_lSlider->setRange(1, 16);
    m_lSlider->setFixedWidth(90);
    m_lSlider->setToolTip(tr("Envelope rank l (1–16): more magnitude freedom, fewer sign columns k at the same bits"));
    m_lSpin = new QSpinBox(this);
    m_lSpin->setRange(1, 16);
    m_lSpin->setToolTip(m_lSlider->toolTip());
    layout->addWidget(m_lSlider);
    layout->addWidget(m_lSpin);
    layout->addSpacing(10);

    layout->addWidget(caption(tr("bpw"), this));
    m_bpwSlider = new QSlider(Qt::Horizontal, this);
    m_bpwSlider->setRange(25, 400);  // hundredths of a bit
    m_bpwSlider->setMinimumWidth(100);
    m_bpwSlider->setToolTip(tr("Bit budget per weight, signs and envelopes included"));
    m_bpwSpin = new QDoubleSpinBox(this);
    m_bpwSpin->setRange(0.25, 4.0);
    m_bpwSpin->setDecimals(2);
    m_bpwSpin->setSingleStep(0.05);
    m_bpwSpin->setToolTip(tr("Bit budget per weight as a decimal; k is chosen with exact arithmetic"));
    layout->addWidget(m_bpwSlider, 1);
    layout->addWidget(m_bpwSpin);
    m_budget = new QLabel(this);
    m_budget->setToolTip(tr("The middle dimension k this budget buys for the selected layer, and the exact bpw of that k"));
    // Wide enough for the longest readout, so the controls beside it never move when it changes.
    m_budget->setFixedWidth(m_budget->fontMetrics().horizontalAdvance(tr("→ k 00000 · 0.000 bpw (k clamped)")) + 8);
    layout->addWidget(m_budget);

    second->addWidget(caption(tr("paths"), this));
    m_paths = new QSpinBox(this);
    m_paths->setRange(1, 4);
    m_paths->setToolTip(tr("Additive paths P, each fitted to the residual of the others (the budget is shared)"));
    second->addWidget(m_paths);
    second->addSpacing(10);
    second->addWidget(caption(tr("iters"), this));
    m_iters = new QSpinBox(this);
    m_iters->setRange(0, 5000);
    m_iters->setSingleStep(20);
    m_iters->setToolTip(tr("Outer ADMM iterations per path (0 = closed form only)"));
    second->addWidget(m_iters);
    second->addSpacing(10);
    second->addWidget(caption(tr("objective"), this));
    m_objective = new QComboBox(this);
    m_objective->addItem(tr("plain"), static_cast<int>(factor::Objective::Plain));
    m_objective->addItem(tr("activation-aware (diag)"), static_cast<int>(factor::Objective::DiagonalWeighted));
    m_objective->addItem(tr("activation-aware (gram)"), static_cast<int>(factor::Objective::Gram));
    second->addWidget(m_objective);
    m_calibrationLabel = new QLabel(this);
    m_calibrationLabel->setStyleSheet(QStringLiteral("color: #666;"));
    m_calibrationLabel->setToolTip(tr("The calibration statistics diag and gram use (Perplexity panel ▸ Calibrate)"));
    second->addWidget(m_calibrationLabel);
    updateObjectiveItems();
    second->addStretch(1);

    setSettings(FactorSettings{});

    connect(group, &QButtonGroup::buttonClicked, this, [this] { changed(); });
    connect(m_lSlider, &QSlider::valueChanged, this, [this](int v) {
        if (m_updating) return;
        m_lSpin->setValue(v);
    });
    connect(m_lSpin, &QSpinBox::valueChanged, this, [this](int v) {
        const QSignalBlocker block(m_lSlider);
        m_lSlider->setValue(v);
        changed();
    });
    connect(m_bpwSlider, &QSlider::valueChanged, this, [this](int v) {
        if (m_updating) return;
        m_bpwSpin->setValue(v / 100.0);
    });
    connect(m_bpwSpin, &QDoubleSpinBox::valueChanged, this, [this](double v) {
        const QSignalBlocker block(m_bpwSlider);
        m_bpwSlider->setValue(static_cast<int>(std::lround(v * 100.0)));
        changed();
    });
    connect(m_paths, &QSpinBox::valueChanged, this, [this] { changed(); });
    connect(m_iters, &QSpinBox::valueChanged, this, [this] { changed(); });
    connect(m_objective, &QComboBox::currentIndexChanged, this, [this] { changed(); });
    createActions();
}

void FactorControlBar::createActions()
{
    auto add = [this](const QString& text, const QKeySequence& key, const QString& tip, auto&& slot) {
        auto* a = new QAction(text, this);
        a->setShortcut(key);
        a->setToolTip(tip);
        a->setStatusTip(tip);
        connect(a, &QAction::triggered, this, std::forward<decltype(slot)>(slot));
        m_actions << a;
    };
    add(tr("Method &DBF"), QKeySequence(tr("Ctrl+D")), tr("Factorize with DBF (rank-1 envelopes)"),
        [this] { setMethod(factor::Method::Dbf); });
    add(tr("Method &MDBF"), QKeySequence(tr("Ctrl+M")), tr("Factorize with MDBF (rank-l envelopes)"),
        [this] { setMethod(factor::Method::Mdbf); });
    add(tr("More Bits"), QKeySequence(tr("Ctrl+]")), tr("Raise the budget by 0.05 bpw"), [this] { m_bpwSpin->stepUp(); });
    add(tr("Fewer Bits"), QKeySequence(tr("Ctrl+[")), tr("Lower the budget by 0.05 bpw"), [this] { m_bpwSpin->stepDown(); });
    add(tr("Larger l"), QKeySequence(tr("Ctrl+.")), tr("Raise the envelope rank l"), [this] { m_lSpin->stepUp(); });
    add(tr("Smaller l"), QKeySequence(tr("Ctrl+,")), tr("Lower the envelope rank l"), [this] { m_lSpin->stepDown(); });
}

void FactorControlBar::updateObjectiveItems()
{
    auto* items = qobject_cast<QStandardItemModel*>(m_objective->model());
    const bool diag = m_calibration != nullptr;
    const bool gram = diag && m_calibration->hasGram();
    const QString calibrateFirst =
        tr("Calibrate first (Perplexity panel ▸ Calibrate): this objective weights the error by the layer's input "
           "activations, which come from running calibration text through the model");
    items->item(0)->setToolTip(tr("plain: ‖W − Ŵ‖F, no calibration needed"));
    items->item(1)->setEnabled(diag);
    items->item(1)->setToolTip(diag ? tr("diag: ‖(W − Ŵ) D^½‖F with the per-input-channel second moments d_j = mean(x_j²)")
                                    : calibrateFirst);
    items->item(2)->setEnabled(gram);
    items->item(2)->setToolTip(gram ? tr("gram: tr((W − Ŵ) H (W − Ŵ)ᵀ) with the input Gram matrix H = XᵀX / N")
                               : diag ? tr("This calibration has no Gram matrices (too large for this model): diag only")
                                      : calibrateFirst);
    m_objective->setToolTip(
        diag ? tr("What the factorization minimises and every error measures: plain, diag or gram (%1)")
                   .arg(m_calibration->description())
             : tr("What the factorization minimises and every error measures. Calibrate first (Perplexity panel ▸ "
                  "Calibrate) to enable the activation-aware objectives diag and gram"));
    m_calibrationLabel->setText(calibrationText());
}

void FactorControlBar::setCalibration(std::shared_ptr<const StudioCalibration> calibration)
{
    const FactorSettings before = settings();
    m_calibration = std::move(calibration);
    {
        const QSignalBlocker block(m_objective);
        updateObjectiveItems();
        const int index = m_objective->currentIndex();
        if (!m_objective->model()->index(index, 0).flags().testFlag(Qt::ItemIsEnabled)) m_objective->setCurrentIndex(0);
    }
    if (!(settings() == before)) changed();
}

QString FactorControlBar::calibrationText() const
{
    return m_calibration ? m_calibration->description() : tr("not calibrated");
}

FactorSettings FactorControlBar::settings() const
{
    FactorSettings s;
    s.method = m_dbf->isChecked() ? factor::Method::Dbf : factor::Method::Mdbf;
    s.l = s.method == factor::Method::Dbf ? 1 : m_lSpin->value();
    s.bpw = budgetOfSpinValue(m_bpwSpin->value(), m_bpwSpin->decimals());
    s.paths = m_paths->value();
    s.iterations = m_iters->value();
    s.objective = static_cast<factor::Objective>(m_objective->currentData().toInt());
    if (s.objective != factor::Objective::Plain && m_calibration) s.calibration = m_calibration->tag;
    return s;
}

void FactorControlBar::setSettings(const FactorSettings& s)
{
    m_updating = true;
    const QSignalBlocker b1(m_lSpin), b2(m_bpwSpin), b3(m_paths), b4(m_iters), b5(m_lSlider), b6(m_bpwSlider),
        b7(m_objective);
    (s.method == factor::Method::Dbf ? m_dbf : m_mdbf)->setChecked(true);
    if (s.method == factor::Method::Mdbf) m_mdbfL = s.l;
    m_lSpin->setEnabled(s.method == factor::Method::Mdbf);
    m_lSpin->setValue(s.l);
    m_lSlider->setValue(s.l);
    m_bpwSpin->setValue(s.bpw.value());
    m_bpwSlider->setValue(static_cast<int>(std::lround(s.bpw.value() * 100.0)));
    m_paths->setValue(s.paths);
    m_iters->setValue(s.iterations);
    const int objective = m_objective->findData(static_cast<int>(s.objective));
    const bool available =
        objective >= 0 && m_objective->model()->index(objective, 0).flags().testFlag(Qt::ItemIsEnabled);
    m_objective->setCurrentIndex(available ? objective : 0);
    m_updating = false;
    updateBudget();
}

void FactorControlBar::setMethod(factor::Method method)
{
    (method == factor::Method::Dbf ? m_dbf : m_mdbf)->setChecked(true);
    changed();
}

void FactorControlBar::setLayerShape(std::int64_t n, std::int64_t m)
{
    m_n = n;
    m_m = m;
    updateBudget();
}

QString FactorControlBar::budgetText() const { return m_budget->text(); }

void FactorControlBar::changed()
{
    if (m_updating) return;
    updateBudget();
    emit settingsChanged();
}

void FactorControlBar::updateBudget()
{
    const bool dbf = m_dbf->isChecked();
    {
        // DBF is l = 1: the greyed control says so, and MDBF's l comes back on switching over.
        const QSignalBlocker b1(m_lSpin), b2(m_lSlider);
        if (dbf && m_lSpin->isEnabled()) m_mdbfL = m_lSpin->value();
        const int shown = dbf ? 1 : (m_lSpin->isEnabled() ? m_lSpin->value() : m_mdbfL);
        m_lSpin->setValue(shown);
        m_lSlider->setValue(shown);
    }
    m_lSpin->setEnabled(!dbf);
    m_lSlider->setEnabled(!dbf);
    const FactorSettings s = settings();
    if (m_n <= 0 || m_m <= 0) {
        m_budget->setText(tr("→ select a layer"));
        m_budget->setStyleSheet(QStringLiteral("color: #666;"));
        m_feasible = false;
        return;
    }
    const factor::BudgetCheck check = factor::checkBitBudget(m_n, m_m, s.bpw, s.method, s.effectiveL(), s.paths);
    m_feasible = check.budget.has_value();
    if (!m_feasible) {
        m_budget->setText(tr("→ too few bits"));
        m_budget->setToolTip(QString::fromStdString(check.message));
        m_budget->setStyleSheet(QStringLiteral("color: #b2182b; font-weight: 600;"));
        return;
    }
    const factor::BitBudget& b = *check.budget;
    QString text = tr("→ k %1 · %2 bpw").arg(b.k).arg(b.bpw, 0, 'f', 3);
    if (b.clamped) text += tr(" (k clamped)");
    m_budget->setText(text);
    m_budget->setToolTip(
        tr("k = %1 of at most %2 · exact %3 bpw (%4 bits for %5 weights)%6")
            .arg(b.k)
            .arg(std::min(m_n, m_m))
            .arg(b.bpw, 0, 'f', 6)
            .arg(b.bits)
            .arg(m_n * m_m)
            .arg(b.clamped ? tr(" · the budget asked for k = %1, clamped to min(n, m)").arg(b.unclampedK) : QString()));
    m_budget->setStyleSheet(QStringLiteral("color: #1a1a1a; font-weight: 600;"));
}

}  // namespace mdbf::studio
