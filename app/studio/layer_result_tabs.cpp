#include "layer_result_tabs.h"

#include <QComboBox>
#include <QGraphicsOpacityEffect>
#include <QSplitter>
#include <QVBoxLayout>

#include "comparison_tab.h"
#include "factor_cache.h"
#include "mdbf/widgets/error_curve_plot.h"
#include "mdbf/widgets/heatmap_plot.h"
#include "mdbf/widgets/histogram_plot.h"
#include "mdbf/widgets/sign_image_view.h"
#include "mdbf/widgets/spectrum_plot.h"

namespace mdbf::studio {

namespace {
constexpr int kMinimumWidth = 360;
}

LayerResultTabs::LayerResultTabs(QWidget* parent) : QTabWidget(parent)
{
    setDocumentMode(true);
    // The views take the width they are given: a long map title or legend in any tab would otherwise
    // raise the centre's minimum width and the main window would narrow the docks to make room.
    setMinimumWidth(kMinimumWidth);

    // Sign bases: S_a | S_b over the live refinement curve.
    auto* signTab = new QWidget(this);
    auto* signLayout = new QVBoxLayout(signTab);
    signLayout->setContentsMargins(4, 4, 4, 4);
    m_pathChoice = new QComboBox(signTab);
    m_pathChoice->setToolTip(tr("Which additive path's sign bases to show"));
    m_pathChoice->hide();
    signLayout->addWidget(m_pathChoice, 0, Qt::AlignLeft);
    auto* signSplit = new QSplitter(Qt::Vertical, signTab);
    signSplit->setObjectName(QStringLiteral("signSplit"));
    auto* bases = new QSplitter(Qt::Horizontal, signSplit);
    bases->setObjectName(QStringLiteral("basesSplit"));
    m_signA = new widgets::SignImageView(bases);
    m_signA->setToolTip(tr("S_a (n × k): black −1, white +1. Wheel to zoom, drag to pan, double-click to fit"));
    m_signB = new widgets::SignImageView(bases);
    m_signB->setToolTip(tr("S_b (k × m): black −1, white +1. Wheel to zoom, drag to pan, double-click to fit"));
    m_signCurve = new widgets::ErrorCurvePlot(signSplit);
    signSplit->setStretchFactor(0, 3);
    signSplit->setStretchFactor(1, 2);
    signSplit->setSizes({420, 280});
    signLayout->addWidget(signSplit, 1);
    addTab(signTab, tr("Sign bases"));
    setTabToolTip(0, tr("The two binary sign matrices and the refinement curve"));

    m_spectrum = new widgets::SpectrumPlot(this);
    m_spectrum->setToolTip(tr("Singular values of the magnitudes |F| and |G| of the closed-form start; the first l are "
                              "what a rank-l envelope keeps. Right-click to export"));
    addTab(m_spectrum, tr("Envelope spectra"));
    setTabToolTip(1, tr("How much of the factor magnitudes a rank-l envelope can hold"));

    auto* errorTab = new QSplitter(Qt::Vertical, this);
    errorTab->setObjectName(QStringLiteral("errorSplit"));
    auto* maps = new QSplitter(Qt::Horizontal, errorTab);
    maps->setObjectName(QStringLiteral("errorMapsSplit"));
    m_weightMap = new widgets::HeatmapPlot(maps);
    m_weightMap->setExportName(QStringLiteral("weights"));
    m_weightMap->setToolTip(tr("The layer's weights W, on the same colour scale as the error. Right-click to export"));
    m_residualMap = new widgets::HeatmapPlot(maps);
    m_residualMap->setExportName(QStringLiteral("residual"));
    m_residualMap->setToolTip(tr("Reconstruction error W − Ŵ (Ŵ with FP16 envelopes, as deployed). Right-click to export"));
    auto* lower = new QSplitter(Qt::Horizontal, errorTab);
    lower->setObjectName(QStringLiteral("errorLowerSplit"));
    m_histogram = new widgets::HistogramPlot(lower);
    m_histogram->setExportName(QStringLiteral("residual-histogram"));
    m_histogram->setToolTip(tr("Distribution of the entries of W − Ŵ. Right-click to export"));
    m_curve = new widgets::ErrorCurvePlot(lower);
    errorTab->setSizes({420, 300});
    addTab(errorTab, tr("Error"));
    setTabToolTip(2, tr("Where the approximation errs: heatmaps, histogram, refinement curve"));

    m_comparison = new ComparisonTab(this);
    addTab(m_comparison, tr("DBF vs MDBF"));
    setTabToolTip(3, tr("Error against exact bpw for both methods at matched budgets"));

    connect(m_pathChoice, &QComboBox::currentIndexChanged, this, [this](int i) {
        if (i >= 0) showPath(i);
    });
}

void LayerResultTabs::clearViews(const QString& message)
{
    m_result.reset();
    m_weights.reset();
    m_signA->clear(message);
    m_signB->clear(message);
    m_spectrum->clear();
    m_weightMap->clear(message);
    m_residualMap->clear(message);
    m_histogram->clear();
    clearCurves();
    m_pathChoice->hide();
}

void LayerResultTabs::clearCurves()
{
    m_curve->clear();
    m_signCurve->clear();
}

void LayerResultTabs::appendIteration(int iteration, double error)
{
    m_curve->appendPoint(iteration, error);
    m_signCurve->appendPoint(iteration, error);
}

void LayerResultTabs::setStale(bool stale)
{
    if (!stale) {
        setGraphicsEffect(nullptr);
        return;
    }
    auto* effect = new QGraphicsOpacityEffect(this);
    effect->setOpacity(0.45);
    setGraphicsEffect(effect);
}

void LayerResultTabs::showWeights(std::shared_ptr<const RowMatrixF> weights)
{
    if (!weights || weights == m_weights) return;
    m_weights = std::move(weights);
    m_weightMap->setMatrix(*m_weights, tr("W"), tr("value"));
    if (m_result) widgets::HeatmapPlot::shareRange({m_weightMap, m_residualMap});
}

void LayerResultTabs::showResult(std::shared_ptr<const LayerFactorization> f, std::shared_ptr<const RowMatrixF> weights)
{
    m_result = std::move(f);
    const factor::FactorResult& r = *m_result->result;
    {
        const QSignalBlocker block(m_pathChoice);
        m_pathChoice->clear();
        for (int p = 0; p < static_cast<int>(r.paths.size()); ++p)
            m_pathChoice->addItem(tr("path %1 of %2").arg(p + 1).arg(r.paths.size()));
        m_pathChoice->setVisible(r.paths.size() > 1);
    }
    showPath(0);

    const factor::EnvelopeSpectra& spectra = m_result->spectra;
    if (spectra.sigmaF.size() > 0)
        m_spectrum->setEnvelopeSpectra(spectra.sigmaF, spectra.energyF, spectra.sigmaG, spectra.energyG, r.k, r.l);
    else
        m_spectrum->clear();
    if (m_result->residual) {
        m_residualMap->setMatrix(*m_result->residual, tr("W − Ŵ"), tr("error"));
        m_histogram->setValues(*m_result->residual, tr("W − Ŵ"));
    } else {
        // A run cancelled part way gets no views: only results of whole settings are looked up
        // again, and a look is what computes them.
        m_residualMap->clear(m_result->complete ? tr("W − Ŵ: computing…")
                                                : tr("W − Ŵ: not computed (the run was cancelled)"));
        m_histogram->clear();
    }
    showWeights(std::move(weights));
    widgets::HeatmapPlot::shareRange({m_weightMap, m_residualMap});

    const QString objective = QString::fromStdString(std::string(factor::objectiveName(r.objective)));
    for (widgets::ErrorCurvePlot* curve : {m_curve, m_signCurve}) {
        curve->setObjectiveLabel(objective);
        if (m_result->refined) curve->setHistory(r.errorHistory);
        curve->setReference(r.initialError, tr("closed form"));
    }
}

void LayerResultTabs::showPath(int path)
{
    if (!m_result || path < 0 || path >= static_cast<int>(m_result->result->paths.size())) return;
    auto result = m_result->result;
    const auto& p = result->paths[static_cast<std::size_t>(path)];
    // Aliasing pointers keep the whole result alive while a view shows its signs.
    m_signA->setSigns(std::shared_ptr<const kernels::PackedSigns>(result, &p.sa), tr("S_a"));
    m_signB->setSigns(std::shared_ptr<const kernels::PackedSigns>(result, &p.sb), tr("S_b"));
}

}  // namespace mdbf::studio
