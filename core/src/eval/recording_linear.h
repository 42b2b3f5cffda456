#pragma once
// A model::Linear that forwards to another layer and accumulates statistics of its inputs
// (private to core/eval; used by collectCalibration).

#include <cstdint>
#include <memory>
#include <mutex>

#include <Eigen/Core>

#include "mdbf/eval/calibration.h"
#include "mdbf/model/linear.h"

namespace mdbf::eval {

/// Y = inner(X), keeping a copy of the last X: the reference side of a paired calibration run,
/// where the same window goes through the original model and then the quantized one.
class InputKeepingLinear final : public model::Linear {
public:
    /// Wraps `inner` (non-null).
    explicit InputKeepingLinear(std::shared_ptr<const model::Linear> inner);

    std::int64_t outFeatures() const override { return m_inner->outFeatures(); }
    std::int64_t inFeatures() const override { return m_inner->inFeatures(); }
    void forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const override;
    std::string kind() const override { return m_inner->kind(); }

    /// The wrapped layer.
    const std::shared_ptr<const model::Linear>& inner() const { return m_inner; }

    /// The input of the last forward() (0×0 before the first).
    RowMatrixF lastInput() const;

private:
    std::shared_ptr<const model::Linear> m_inner;
    mutable std::mutex m_mutex;
    mutable RowMatrixF m_last;
};

/// Y = inner(X), and for every row x of every X: Σ x_j² per channel and, when asked, Σ x xᵀ, in
/// double. With a reference, also Σ x x_refᵀ, pairing the rows of X with those of the reference's
/// last input (the same tokens through the original model). forward() may be called from several
/// threads: the accumulation is serialised.
class RecordingLinear final : public model::Linear {
public:
    /// Wraps `inner` (non-null); `gram` also accumulates the m×m sum of outer products; a non-null
    /// `reference` (same in_features) also the m×m sum of cross products, and forward() then throws
    /// InvalidArgument when its last input does not have X's shape.
    RecordingLinear(std::shared_ptr<const model::Linear> inner, bool gram,
                    std::shared_ptr<const InputKeepingLinear> reference = nullptr);

    std::int64_t outFeatures() const override { return m_inner->outFeatures(); }
    std::int64_t inFeatures() const override { return m_inner->inFeatures(); }
    void forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const override;
    std::string kind() const override { return m_inner->kind(); }

    /// The wrapped layer.
    const std::shared_ptr<const model::Linear>& inner() const { return m_inner; }

    /// Rows (tokens) recorded so far.
    std::int64_t rows() const;

    /// The means over the rows recorded so far (zero when none were).
    LayerCalibration statistics() const;

private:
    void record(const RowMatrixF& X, int threads) const;

    std::shared_ptr<const model::Linear> m_inner;
    bool m_gram;
    std::shared_ptr<const InputKeepingLinear> m_reference;
    mutable std::mutex m_mutex;
    mutable Eigen::VectorXd m_sumSquares;
    mutable Eigen::MatrixXd m_sumOuter;
    mutable Eigen::MatrixXd m_sumCross;
    mutable std::int64_t m_rows = 0;
};

/// An equal, independent copy of a dense (float32 or 16-bit) or factorized layer. Throws
/// InvalidArgument naming the layer's kind for any other implementation.
std::shared_ptr<const model::Linear> copyLinear(const model::Linear& layer);

}  // namespace mdbf::eval
