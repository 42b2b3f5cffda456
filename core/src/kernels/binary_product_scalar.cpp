// Portable reference kernels: every entry of S decides, by its bit, whether an activation is added
// or subtracted. No intrinsics, so this path runs on any CPU.

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "kernels/binary_product_impl.h"
#include "mdbf/base/parallel.h"

namespace mdbf::kernels::detail {

namespace {

float signedRowSum(const std::uint64_t* row, std::int64_t cols, const float* x)
{
    float acc = 0.0f;
    for (std::int64_t j0 = 0; j0 < cols; j0 += SignRows::kWordBits) {
        const std::uint64_t word = row[j0 / SignRows::kWordBits];
        const int bits = static_cast<int>(std::min<std::int64_t>(SignRows::kWordBits, cols - j0));
        for (int b = 0; b < bits; ++b) {
            // Flip the IEEE sign bit instead of branching: random signs defeat branch prediction.
            const std::uint32_t flip = static_cast<std::uint32_t>((word >> b) & 1u) << 31;
            acc += std::bit_cast<float>(std::bit_cast<std::uint32_t>(x[j0 + b]) ^ flip);
        }
    }
    return acc;
}

}  // namespace

void gemmScalar(const SignRows& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
                int threads)
{
    const std::int64_t rows = S.rows;
    const std::int64_t cols = S.cols;
    // Few tokens: one pass over the row per token. Both branches add the terms in column order from
    // zero, so a token's result does not depend on how many tokens share the call.
    constexpr std::int64_t kVectorizeTokens = 8;
    if (T < kVectorizeTokens) {
        parallelChunks(rows, threads, [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t i = begin; i < end; ++i)
                for (std::int64_t t = 0; t < T; ++t) Y[t * ldy + i] = signedRowSum(S.row(i), cols, X + t * ldx);
        });
        return;
    }

    // Token-minor copy of X so that one sign bit applies to T contiguous activations (the inner
    // loop over tokens vectorizes).
    std::vector<float> xt(static_cast<std::size_t>(cols * T));
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t j = 0; j < cols; ++j) xt[static_cast<std::size_t>(j * T + t)] = X[t * ldx + j];

    parallelChunks(rows, threads, [&](std::int64_t begin, std::int64_t end) {
        // Tokens in blocks of kTokenBlock so that the accumulators live on the stack.
        constexpr std::int64_t kTokenBlock = 64;
        float acc[kTokenBlock];
        for (std::int64_t i = begin; i < end; ++i) {
            const std::uint64_t* row = S.row(i);
            for (std::int64_t t0 = 0; t0 < T; t0 += kTokenBlock) {
                const std::int64_t nt = std::min(kTokenBlock, T - t0);
                std::fill_n(acc, nt, 0.0f);
                for (std::int64_t j = 0; j < cols; ++j) {
                    const float* src = xt.data() + j * T + t0;
                    // Multiplying by ±1 is exact, so this equals adding or subtracting, without a branch.
                    const float sign =
                        ((row[j / SignRows::kWordBits] >> (j % SignRows::kWordBits)) & 1u) ? -1.0f : 1.0f;
                    for (std::int64_t t = 0; t < nt; ++t) acc[t] += sign * src[t];
                }
                for (std::int64_t t = 0; t < nt; ++t) Y[(t0 + t) * ldy + i] = acc[t];
            }
        }
    });
}

void gemvTablesScalar(const SignRows& S, const float* x, float* y, int threads)
{
    constexpr int kEntries = 16;
    const std::int64_t cols = S.cols;
    const std::int64_t units = (cols + kTableSetTiles * kTableTileCols - 1) / (kTableSetTiles * kTableTileCols);
    const std::int64_t sets = 2 * units;
    // The first column of group g (0 … 63) of set s (binary_product_impl.h).
    const auto groupColumn = [](std::int64_t s, std::int64_t g) {
        const std::int64_t half = 4 * (s / 2) + s % 2 + 2 * (g / kTableHalfGroups);
        return half * kTableHalfCols + 4 * (g % kTableHalfGroups);
    };
    constexpr std::int64_t kSetGroups = 2 * kTableHalfGroups;
    // q[(set · 64 + group) · 16 + e], the quantized signed sums.
    std::vector<std::int32_t> q(static_cast<std::size_t>(sets * kSetGroups * kEntries));
    std::vector<float> scale(static_cast<std::size_t>(sets));
    std::vector<float> sums(static_cast<std::size_t>(kSetGroups * kEntries));
    for (std::int64_t s = 0; s < sets; ++s) {
        float maxAbs = 0.0f;
        bool nonFinite = false;
        for (std::int64_t g = 0; g < kSetGroups; ++g) {
            float c[4];
            for (int b = 0; b < 4; ++b) {
                const std::int64_t j = groupColumn(s, g) + b;
                c[b] = j < cols ? x[j] : 0.0f;
            }
            for (int e = 0; e < kEntries; ++e) {
                const float lo = ((e & 1) ? -c[0] : c[0]) + ((e & 2) ? -c[1] : c[1]);
                const float hi = ((e & 4) ? -c[2] : c[2]) + ((e & 8) ? -c[3] : c[3]);
                const float sum = lo + hi;
                sums[static_cast<std::size_t>(g * kEntries + e)] = sum;
                maxAbs = std::max(maxAbs, std::abs(sum));
                nonFinite = nonFinite || !std::isfinite(sum);
            }
        }
        const TileScale ts = tableTileScale(maxAbs, nonFinite);
        scale[static_cast<std::size_t>(s)] = ts.scale;
        for (std::size_t i = 0; i < sums.size(); ++i)
            q[static_cast<std::size_t>(s * kSetGroups * kEntries) + i] =
                ts.inverse == 0.0f ? 0 : static_cast<std::int32_t>(std::nearbyint(sums[i] * ts.inverse));
    }

    parallelChunks(S.rows, threads, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) {
            const std::uint64_t* row = S.row(i);
            float acc[2] = {0.0f, 0.0f};
            for (std::int64_t s = 0; s < sets; ++s) {
                std::int32_t sum = 0;
                for (std::int64_t g = 0; g < kSetGroups; ++g) {
                    const std::int64_t j = groupColumn(s, g);
                    if (j >= cols) continue;  // zero columns: every entry is 0
                    const auto e = static_cast<std::int64_t>((row[j / SignRows::kWordBits] >> (j % SignRows::kWordBits)) & 15u);
                    sum += q[static_cast<std::size_t>((s * kSetGroups + g) * kEntries + e)];
                }
                acc[s % 2] = std::fma(static_cast<float>(sum), scale[static_cast<std::size_t>(s)], acc[s % 2]);
            }
            y[i] = acc[0] + acc[1];
        }
    });
}

}  // namespace mdbf::kernels::detail
