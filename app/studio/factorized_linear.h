#pragma once
// A model::Linear backed by factorized paths, so the perplexity panel can evaluate the model with
// the configured layers swapped in.

#include <vector>

#include "mdbf/kernels/factor_path.h"
#include "mdbf/model/linear.h"

namespace mdbf::studio {

/// y = Ŵ x (+ bias) with Ŵ = Σ_p F_p G_p evaluated through the packed kernels. Immutable.
class FactorizedLinear final : public model::Linear {
public:
    /// Takes the paths of one layer (all n×m) and the dense layer's bias (empty, or n entries).
    /// Throws InvalidArgument for inconsistent paths or a bias of the wrong length.
    FactorizedLinear(std::vector<kernels::FactorPath> paths, VectorF bias, std::string kind);

    std::int64_t outFeatures() const override { return m_paths.front().n(); }
    std::int64_t inFeatures() const override { return m_paths.front().m(); }
    void forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const override;
    std::string kind() const override { return m_kind; }

private:
    std::vector<kernels::FactorPath> m_paths;
    VectorF m_bias;
    std::string m_kind;
};

}  // namespace mdbf::studio
