#include "factorized_linear.h"

#include "mdbf/base/error.h"
#include "mdbf/kernels/factor_apply.h"

namespace mdbf::studio {

FactorizedLinear::FactorizedLinear(std::vector<kernels::FactorPath> paths, VectorF bias, std::string kind)
    : m_paths(std::move(paths)), m_bias(std::move(bias)), m_kind(std::move(kind))
{
    if (m_paths.empty()) throw InvalidArgument("factorized layer without paths");
    for (const auto& p : m_paths) kernels::validateFactorPath(p);
    if (m_bias.size() != 0 && m_bias.size() != m_paths.front().n())
        throw InvalidArgument("factorized layer: bias has " + std::to_string(m_bias.size()) + " entries, expected " +
                              std::to_string(m_paths.front().n()));
}

void FactorizedLinear::forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const
{
    kernels::applyFactorPaths(m_paths, X, Y, threads);
    if (m_bias.size() != 0) Y.rowwise() += m_bias.transpose();
}

}  // namespace mdbf::studio
