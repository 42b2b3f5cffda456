#pragma once
// Rotary position embeddings as Hugging Face applies them (docs/CLI.md §2.3): rotate_half pairing
// (element i with i + head_dim/2), inverse frequencies θ^(−2i/head_dim), optional linear or
// llama3 frequency scaling.

#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/io/model_config.h"

namespace mdbf::model {

/// Inverse frequencies (head_dim/2 entries) after the config's rope scaling.
std::vector<double> ropeInverseFrequencies(const io::ModelConfig& config);

/// Precomputed cos/sin for positions [0, positions) and the config's head_dim.
class RopeTable {
public:
    RopeTable(const io::ModelConfig& config, int positions);

    int positions() const { return static_cast<int>(m_cos.rows()); }

    /// Rotates every head of X in place: X is T×(heads·head_dim), row t at position `first + t`.
    /// Requires first + T <= positions().
    void apply(RowMatrixF& X, int heads, int first = 0) const;

private:
    int m_headDim = 0;
    RowMatrixF m_cos;  ///< positions × head_dim/2
    RowMatrixF m_sin;
};

}  // namespace mdbf::model
