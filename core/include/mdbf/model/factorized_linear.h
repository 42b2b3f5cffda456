#pragma once
// A linear layer whose weight is a sum of MDBF/DBF paths (docs/ALGORITHM.md §2.4), applied through the
// bit-packed kernels without ever forming Ŵ:  y = Σ_p F_p (G_p x) (+ bias).

#include <string>
#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/kernels/factor_path.h"
#include "mdbf/model/linear.h"

namespace mdbf::model {

/// y = Ŵ x (+ b) with Ŵ = Σ_p F_p G_p of shape n×m. Immutable after construction and safe to call
/// from several threads (the kernels keep their scratch per calling thread).
class FactorizedLinear final : public Linear {
public:
    /// Takes P ≥ 1 paths sharing n and m, an optional bias (empty, or n entries) and the text for
    /// kind() (empty: "factorized k=<k> l=<l>" plus " P=<P>" when P > 1). The sign layout of the
    /// one-token kernels is built by prepareForDecoding() (or else by the first one-token product).
    /// Throws InvalidArgument for no paths, inconsistent path shapes or a bias of the wrong length.
    explicit FactorizedLinear(std::vector<kernels::FactorPath> paths, VectorF bias = {}, std::string kind = {});

    std::int64_t outFeatures() const override { return m_paths.front().n(); }
    std::int64_t inFeatures() const override { return m_paths.front().m(); }

    /// X is T×m; Y is resized to T×n. T = 1 takes the single-token (decode) kernel, T > 1 the
    /// window (prefill) kernel that streams each packed sign matrix once.
    void forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const override;

    std::string kind() const override { return m_kind; }

    /// Builds the sign layout of the one-token kernels of the current kernel path
    /// (kernels::prepareFactorPaths): as many bytes again as the packed signs on the SIMD paths.
    void prepareForDecoding() const override;

    /// The paths, as given.
    const std::vector<kernels::FactorPath>& paths() const { return m_paths; }

    /// The bias (empty when the layer has none).
    const VectorF& bias() const { return m_bias; }

    /// Middle dimension and envelope rank of the first path (all paths share them when built by
    /// the factorizer).
    std::int64_t k() const { return m_paths.front().k(); }
    std::int64_t l() const { return m_paths.front().l(); }

    /// Ŵ = Σ_p F_p G_p as a dense n×m matrix (unpacks the signs; for references and exports only).
    RowMatrixF reconstruct() const;

private:
    std::vector<kernels::FactorPath> m_paths;
    VectorF m_bias;
    std::string m_kind;
};

}  // namespace mdbf::model
