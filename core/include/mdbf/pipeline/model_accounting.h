#pragma once
// The model-level bit accounting (docs/ALGORITHM.md §3.4): what a model stores under a
// configuration, exactly, in bits. The one rule every front end and the package agree on: each
// checkpoint tensor counts its weights once; a tensor replaced by a factorized layer counts that
// layer's exact storage (signs and FP16 envelopes) instead of its own bits; a factorized layer with
// no tensor of its own (a head tied to the embedding) adds its storage while the embedding it reads
// stays stored, so the shared weights are counted once and the model's bits per weight rise, as the
// package does.

#include <cstdint>
#include <span>
#include <string>

#include "mdbf/factor/bit_budget.h"
#include "mdbf/io/checkpoint.h"

namespace mdbf::pipeline {

/// The shape and format of one factorized layer, all the accounting needs.
struct FactorizedShape {
    std::string name;  ///< layer name without ".weight", e.g. "model.layers.0.mlp.up_proj" or "lm_head"
    std::int64_t n = 0;
    std::int64_t m = 0;
    std::int64_t k = 0;
    int l = 1;
    int paths = 1;
    factor::Method method = factor::Method::Mdbf;
};

/// Exact storage of a model. Bits and weights are integers; the bpw figures are their quotients.
struct ModelBits {
    std::int64_t factorizedWeights = 0;  ///< Σ n·m over the factorized layers
    std::int64_t factorizedBits = 0;     ///< their exact storage
    std::int64_t totalWeights = 0;       ///< every checkpoint tensor's elements, each counted once
    std::int64_t totalBits = 0;          ///< factorized storage + the other tensors at stored precision

    /// totalBits / totalWeights (0 for an empty model).
    double modelBpw() const;
    /// factorizedBits / factorizedWeights (0 when nothing is factorized).
    double factorizedBpw() const;
};

/// Bits a tensor of `dtype` stores per element (16 for BF16/F16, 32 for F32).
std::int64_t storedBitsPerElement(io::DType dtype);

/// The accounting of `checkpoint` with the layers of `factorized` replaced (empty: the model as
/// stored). Never throws.
ModelBits accountModel(const io::Checkpoint& checkpoint, std::span<const FactorizedShape> factorized);

}  // namespace mdbf::pipeline
