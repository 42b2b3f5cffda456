#pragma once

#include "mdbf/base/matrix.h"
#include "mdbf/model/linear.h"

namespace mdbf::model {

/// A float32 dense layer: Y = X Wᵀ (+ b), W n×m row-major as stored in the checkpoint.
class DenseLinear final : public Linear {
public:
    /// Takes W (n×m) and an optional bias (empty, or n entries). Throws InvalidArgument if the bias
    /// length is neither 0 nor n.
    explicit DenseLinear(RowMatrixF weight, VectorF bias = {});

    std::int64_t outFeatures() const override { return m_weight.rows(); }
    std::int64_t inFeatures() const override { return m_weight.cols(); }
    void forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const override;
    std::string kind() const override { return "dense F32"; }

    /// The weight matrix W (n×m).
    const RowMatrixF& weight() const { return m_weight; }
    /// The bias (empty when the layer has none).
    const VectorF& bias() const { return m_bias; }

private:
    RowMatrixF m_weight;
    VectorF m_bias;
};

}  // namespace mdbf::model
