#include "eval/recording_linear.h"

#include <algorithm>

#include "mdbf/base/error.h"
#include "mdbf/base/parallel.h"
#include "mdbf/model/dense_linear.h"
#include "mdbf/model/factorized_linear.h"
#include "mdbf/model/half_dense_linear.h"

namespace mdbf::eval {

namespace {

// Element-wise passes over fewer entries than this run on one thread (a parallel region costs more).
constexpr double kParallelEntries = 65536.0;

}  // namespace

RecordingLinear::RecordingLinear(std::shared_ptr<const model::Linear> inner, bool gram)
    : m_inner(std::move(inner)), m_gram(gram)
{
    if (!m_inner) throw InvalidArgument("recording layer: no layer to wrap");
    const Eigen::Index m = m_inner->inFeatures();
    m_sumSquares = Eigen::VectorXd::Zero(m);
    if (m_gram) m_sumOuter = Eigen::MatrixXd::Zero(m, m);
}

void RecordingLinear::forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const
{
    m_inner->forward(X, Y, threads);
    record(X, threads);
}

void RecordingLinear::record(const RowMatrixF& X, int threads) const
{
    const Eigen::Index T = X.rows();
    const Eigen::Index m = X.cols();
    if (m != m_sumSquares.size())
        throw InvalidArgument("recording layer: input has " + std::to_string(m) + " columns, expected " +
                              std::to_string(m_sumSquares.size()));
    const std::lock_guard lock(m_mutex);
    const int t = static_cast<double>(T) * static_cast<double>(m) >= kParallelEntries ? std::max(1, threads) : 1;
    // Each thread owns a band of channels; rows are read in order, so the sums do not depend on t.
    parallelChunks(m, t, [&](std::int64_t b, std::int64_t e) {
        double* acc = m_sumSquares.data();
        for (Eigen::Index r = 0; r < T; ++r) {
            const float* x = X.row(r).data();
            for (std::int64_t j = b; j < e; ++j) {
                const double v = x[j];
                acc[j] += v * v;
            }
        }
    });
    if (m_gram) {
        const Eigen::MatrixXd xd = X.cast<double>();
        const int tg = static_cast<double>(T) * static_cast<double>(m) * static_cast<double>(m) >= 64.0 * kParallelEntries
                           ? std::max(1, threads)
                           : 1;
        parallelChunks(m, tg, [&](std::int64_t b, std::int64_t e) {
            m_sumOuter.middleCols(b, e - b).noalias() += xd.transpose() * xd.middleCols(b, e - b);
        });
    }
    m_rows += T;
}

std::int64_t RecordingLinear::rows() const
{
    const std::lock_guard lock(m_mutex);
    return m_rows;
}

LayerCalibration RecordingLinear::statistics() const
{
    const std::lock_guard lock(m_mutex);
    LayerCalibration out;
    const double scale = m_rows > 0 ? 1.0 / static_cast<double>(m_rows) : 0.0;
    out.secondMoments = m_sumSquares * scale;
    if (m_gram) out.gram = m_sumOuter * scale;
    return out;
}

std::shared_ptr<const model::Linear> copyLinear(const model::Linear& layer)
{
    if (const auto* dense = dynamic_cast<const model::DenseLinear*>(&layer))
        return std::make_shared<model::DenseLinear>(dense->weight(), dense->bias());
    if (const auto* half = dynamic_cast<const model::HalfDenseLinear*>(&layer))
        return std::make_shared<model::HalfDenseLinear>(half->dtype(), half->outFeatures(), half->inFeatures(),
                                                        half->bits(), half->bias());
    if (const auto* factorized = dynamic_cast<const model::FactorizedLinear*>(&layer))
        return std::make_shared<model::FactorizedLinear>(factorized->paths(), factorized->bias(), factorized->kind());
    throw InvalidArgument("cannot record the inputs of a layer of kind '" + layer.kind() + "'");
}

}  // namespace mdbf::eval
