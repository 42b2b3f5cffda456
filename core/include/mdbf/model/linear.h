#pragma once
// The one interface every linear layer of the model goes through, so a dense layer can be replaced
// by a factorized one without touching the model code.

#include <memory>
#include <string>

#include "mdbf/base/matrix.h"

namespace mdbf::model {

/// y = W x (+ bias) for a layer with W of shape outFeatures × inFeatures (Hugging Face layout).
/// Implementations are immutable after construction and safe to call from several threads.
class Linear {
public:
    virtual ~Linear() = default;

    virtual std::int64_t outFeatures() const = 0;  ///< n
    virtual std::int64_t inFeatures() const = 0;   ///< m

    /// Applies the layer to a window: X is T×m (one row per token), Y is resized to T×n.
    /// `threads` bounds the parallelism (≥ 1).
    virtual void forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const = 0;

    /// A short description for tables ("dense F32", "mdbf k=117 l=2").
    virtual std::string kind() const = 0;

    /// Builds ahead of the first token what one-token (decode) products need beyond the weights,
    /// e.g. the sign layout of the table kernels; nothing by default. Only generation pays for
    /// it: perplexity, calibration and quantization never decode one token. Thread-safe and
    /// idempotent; throws only on allocation failure.
    virtual void prepareForDecoding() const {}
};

}  // namespace mdbf::model
