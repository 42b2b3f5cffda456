#pragma once
// Envelope spectra: the singular values of the sign-free magnitudes |F| and |G| and the share of
// their energy (Σσ²) that a rank-l envelope captures. A sharp drop after σ_1 means DBF's rank-1
// envelope already fits; a slow decay is where MDBF's larger l pays (docs/ALGORITHM.md §2.2, §3.1).

#include <cstdint>
#include <stop_token>

#include "mdbf/base/matrix.h"
#include "mdbf/factor/layer_svd.h"
#include "mdbf/kernels/factor_path.h"

namespace mdbf::factor {

/// How many leading singular values a spectrum shows unless asked otherwise.
inline constexpr int kSpectrumValues = 32;

/// Leading singular values of |F| (n×k) and |G| (k×m) and their rank-l energy shares.
struct EnvelopeSpectra {
    VectorF sigmaF;        ///< leading singular values of |F|, descending (at most `count`)
    VectorF sigmaG;        ///< leading singular values of |G|, descending
    double energyF = 0.0;  ///< ‖|F|‖_F² = Σ of all σ² (exact, not only the leading ones)
    double energyG = 0.0;  ///< ‖|G|‖_F²
    int l = 1;             ///< the envelope rank the shares refer to
    double shareF = 1.0;   ///< Σ_{i<l} σ_i² / energyF (1 when energyF = 0)
    double shareG = 1.0;   ///< Σ_{i<l} σ_i² / energyG

    /// Spectra of dense factors F (n×k) and G (k×m). `count` ≥ l values are computed (fewer when
    /// the matrices are smaller): exactly for small matrices, by block power iteration otherwise
    /// (about a second per side at 7B shapes). Throws InvalidArgument when the inner dimensions
    /// differ or l < 1, Cancelled when `stop` is requested (polled once per power iteration).
    static EnvelopeSpectra ofFactors(const MatrixF& F, const MatrixF& G, int l, int count = kSpectrumValues,
                                     const std::stop_token& stop = {});

    /// Spectra of the closed-form factors U' = U_k Σ_k^{1/2} and V'ᵀ at middle dimension k: what a
    /// rank-l envelope has to approximate at the start. Throws InvalidArgument for k out of range,
    /// Cancelled as ofFactors.
    static EnvelopeSpectra ofSvd(const LayerSvd& svd, std::int64_t k, int l, int count = kSpectrumValues,
                                 const std::stop_token& stop = {});

    /// Spectra of a deployed path's magnitudes |A Qaᵀ| and |Qb Bᵀ| (at most rank l up to the sign
    /// folding, so the share shows how much of the magnitude the stored envelopes carry).
    static EnvelopeSpectra ofPath(const kernels::FactorPath& path, int count = kSpectrumValues);
};

}  // namespace mdbf::factor
