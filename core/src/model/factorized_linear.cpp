#include "mdbf/model/factorized_linear.h"

#include <span>

#include "mdbf/base/error.h"
#include "mdbf/kernels/factor_apply.h"

namespace mdbf::model {

FactorizedLinear::FactorizedLinear(std::vector<kernels::FactorPath> paths, VectorF bias, std::string kind)
    : m_paths(std::move(paths)), m_bias(std::move(bias)), m_kind(std::move(kind))
{
    if (m_paths.empty()) throw InvalidArgument("factorized layer without paths");
    for (const kernels::FactorPath& p : m_paths) {
        kernels::validateFactorPath(p);
        if (p.n() != m_paths.front().n() || p.m() != m_paths.front().m()) {
            throw InvalidArgument("factorized layer: paths of shapes " + std::to_string(m_paths.front().n()) + "x" +
                                  std::to_string(m_paths.front().m()) + " and " + std::to_string(p.n()) + "x" +
                                  std::to_string(p.m()) + " mixed");
        }
    }
    if (m_bias.size() != 0 && m_bias.size() != m_paths.front().n()) {
        throw InvalidArgument("factorized layer: bias has " + std::to_string(m_bias.size()) + " entries, expected " +
                              std::to_string(m_paths.front().n()));
    }
    if (m_kind.empty()) {
        m_kind = "factorized k=" + std::to_string(k()) + " l=" + std::to_string(l());
        if (m_paths.size() > 1) m_kind += " P=" + std::to_string(m_paths.size());
    }
}

void FactorizedLinear::prepareForDecoding() const { kernels::prepareFactorPaths(m_paths); }

void FactorizedLinear::forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const
{
    if (X.rows() == 1) {
        // Decode: the single-token kernel avoids the window kernel's per-token batching.
        Y.resize(1, outFeatures());
        kernels::applyFactorPaths(m_paths, std::span<const float>(X.data(), static_cast<std::size_t>(X.cols())),
                                  std::span<float>(Y.data(), static_cast<std::size_t>(Y.cols())), threads);
    } else {
        kernels::applyFactorPaths(m_paths, X, Y, threads);
    }
    if (m_bias.size() != 0) Y.rowwise() += m_bias.transpose();
}

RowMatrixF FactorizedLinear::reconstruct() const
{
    RowMatrixF W = kernels::reconstructDense(m_paths.front());
    for (std::size_t p = 1; p < m_paths.size(); ++p) W += kernels::reconstructDense(m_paths[p]);
    return W;
}

}  // namespace mdbf::model
