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

InputKeepingLinear::InputKeepingLinear(std::shared_ptr<const model::Linear> inner) : m_inner(std::move(inner))
{
    if (!m_inner) throw InvalidArgument("input-keeping layer: no layer to wrap");
}

void InputKeepingLinear::forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const
{
    m_inner->forward(X, Y, threads);
    const std::lock_guard lock(m_mutex);
    m_last = X;
}

RowMatrixF InputKeepingLinear::lastInput() const
{
    const std::lock_guard lock(m_mutex);
    return m_last;
}

RecordingLinear::RecordingLinear(std::shared_ptr<const model::Linear> inner, bool gram,
                                 std::shared_ptr<const InputKeepingLinear> reference)
    : m_inner(std::move(inner)), m_gram(gram), m_reference(std::move(reference))
{
    if (!m_inner) throw InvalidArgument("recording layer: no layer to wrap");
    const Eigen::Index m = m_inner->inFeatures();
    if (m_reference && m_reference->inFeatures() != m)
        throw InvalidArgument("recording layer: the reference layer has " + std::to_string(m_reference->inFeatures()) +
                              " inputs, expected " + std::to_string(m));
    m_sumSquares = Eigen::VectorXd::Zero(m);
    if (m_gram) m_sumOuter = Eigen::MatrixXd::Zero(m, m);
    if (m_reference) m_sumCross = Eigen::MatrixXd::Zero(m, m);
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
    RowMatrixF reference;
    if (m_reference) {
        reference = m_reference->lastInput();
        if (reference.rows() != T || reference.cols() != m)
            throw InvalidArgument("recording layer: the reference input is " + std::to_string(reference.rows()) + "×" +
                                  std::to_string(reference.cols()) + ", expected " + std::to_string(T) + "×" +
                                  std::to_string(m) + " (the same tokens through both models)");
    }
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
    if (m_gram || m_reference) {
        const Eigen::MatrixXd xd = X.cast<double>();
        const int tg = static_cast<double>(T) * static_cast<double>(m) * static_cast<double>(m) >= 64.0 * kParallelEntries
                           ? std::max(1, threads)
                           : 1;
        auto accumulate = [&](Eigen::MatrixXd& sum, const Eigen::MatrixXd& right) {
            parallelChunks(m, tg, [&](std::int64_t b, std::int64_t e) {
                sum.middleCols(b, e - b).noalias() += xd.transpose() * right.middleCols(b, e - b);
            });
        };
        if (m_gram) accumulate(m_sumOuter, xd);
        if (m_reference) accumulate(m_sumCross, reference.cast<double>());
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
    if (m_reference) out.cross = m_sumCross * scale;
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
