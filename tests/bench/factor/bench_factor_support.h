#pragma once
// Pieces bench_factor's sources share: timing, and the synthetic weights and starts at 7B shapes.

#include <chrono>
#include <random>
#include <utility>
#include <vector>

#include "mdbf/base/half.h"
#include "mdbf/base/matrix.h"
#include "mdbf/factor/low_rank.h"

namespace mdbf::bench {

using Clock = std::chrono::steady_clock;

inline double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// W at a LLaMA-7B projection shape: N(0, 0.02²) rounded to BF16, as a checkpoint stores it.
inline RowMatrixF bf16Gaussian(int n, int m, unsigned seed)
{
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    RowMatrixF W(n, m);
    for (Eigen::Index i = 0; i < W.size(); ++i) W.data()[i] = bf16ToFloat(floatToBf16(dist(gen)));
    return W;
}

/// A start of the right structure without an SVD: random signs times positive rank-l envelopes
/// (F n×k, G k×m).
inline void randomStart(Eigen::Index n, Eigen::Index m, Eigen::Index k, int l, MatrixF& F, MatrixF& G)
{
    F = MatrixF::Random(n, k) * 0.05f;
    G = MatrixF::Random(k, m) * 0.05f;
    F = factor::signRankProject(F, l);
    G = factor::signRankProject(G, l);
}

/// --gram: on each n×m of `sizes`, preparing a synthetic input Gram matrix, the G-step's
/// eigendecomposition (with `baseline`, also Eigen's solver) and the gram refinement's seconds per
/// iteration over `iters` iterations at 1 bpw, l = 1, on `threads` threads. Prints a table.
void benchGram(const std::vector<std::pair<int, int>>& sizes, int threads, int iters, bool baseline);

}  // namespace mdbf::bench
