#pragma once
// Singular values of the envelope magnitudes |F| and |G| on a log scale (docs/ALGORITHM.md §4.5): how much
// of each magnitude matrix a rank-l envelope can hold. The first l values are marked and the
// share of energy (Σσ² over the first l / Σσ²) is written on the plot.

#include <cstdint>
#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/widgets/plot_widget.h"

namespace mdbf::widgets {

/// One spectrum: a name ("|F|") and singular values, largest first. When only the leading values
/// are given, `totalEnergy` (= ‖M‖_F², Σ of all σ²) makes the energy share exact; 0 means "the
/// values are complete" and their Σσ² is used.
struct SpectrumSeries {
    QString name;
    std::vector<double> values;
    double totalEnergy = 0.0;
    std::int64_t fullCount = 0;  ///< number of singular values in all (0: values.size())
};

/// Log-scale plot of one or more spectra with the first l values highlighted.
class SpectrumPlot : public PlotWidget {
    Q_OBJECT
public:
    explicit SpectrumPlot(QWidget* parent = nullptr);

    /// Shows the spectra (index 1, 2, ... on x) and marks the first `l` values of each (l ≥ 0).
    /// Non-positive values are omitted from the log plot but still count in the energy share.
    void setSpectra(const std::vector<SpectrumSeries>& spectra, int l);

    /// Convenience for the usual pair: leading singular values of |F| and |G| with their total
    /// energies ‖|F|‖² and ‖|G|‖², and the number k of singular values each has in all.
    void setEnvelopeSpectra(const VectorF& sigmaF, double energyF, const VectorF& sigmaG, double energyG,
                            std::int64_t k, int l);

    /// Removes all data.
    void clear();

    /// Σ_{i<l} σ_i² / Σ σ_i² of series `i` (0 when empty).
    double energyShare(int series) const;

    /// The series last given.
    const std::vector<SpectrumSeries>& spectra() const { return m_spectra; }
    int markedCount() const { return m_l; }

    /// The energy-share caption on the plot.
    QString caption() const;

    /// series,index,sigma,marked
    QString csv() const override;

private:
    std::vector<SpectrumSeries> m_spectra;
    int m_l = 0;
    QCPItemText* m_caption = nullptr;
    QCPItemStraightLine* m_cut = nullptr;
};

}  // namespace mdbf::widgets
