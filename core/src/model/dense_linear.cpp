#include "mdbf/model/dense_linear.h"

#include "mdbf/base/error.h"
#include "mdbf/base/parallel.h"

namespace mdbf::model {

DenseLinear::DenseLinear(RowMatrixF weight, VectorF bias) : m_weight(std::move(weight)), m_bias(std::move(bias))
{
    if (m_bias.size() != 0 && m_bias.size() != m_weight.rows()) {
        throw InvalidArgument("bias has " + std::to_string(m_bias.size()) + " entries, expected " +
                              std::to_string(m_weight.rows()));
    }
}

void DenseLinear::forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const
{
    const Eigen::Index T = X.rows();
    Y.resize(T, m_weight.rows());
    if (T == 1) {
        // Decode path: split the output rows so both cores stream W.
        parallelChunks(m_weight.rows(), threads, [&](std::int64_t begin, std::int64_t end) {
            Y.row(0).segment(begin, end - begin).noalias() =
                X.row(0) * m_weight.middleRows(begin, end - begin).transpose();
        });
    } else {
        // Split the output columns (= weight rows) between threads; each runs a single-threaded GEMM.
        parallelChunks(m_weight.rows(), threads, [&](std::int64_t begin, std::int64_t end) {
            Y.middleCols(begin, end - begin).noalias() = X * m_weight.middleRows(begin, end - begin).transpose();
        });
    }
    if (m_bias.size() != 0) Y.rowwise() += m_bias.transpose();
}

}  // namespace mdbf::model
