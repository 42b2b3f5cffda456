// bench_kernels: speed of the factorized apply (docs/ALGORITHM.md §2.4) on LLaMA-sized layers at 1 bpw,
// against Eigen's float32 GEMV/GEMM on the dense matrix and against the memory-bandwidth bound of
// the packed weights (sign bits + FP16 envelopes ÷ bandwidth measured in this run); and the 16-bit
// dense GEMV against its bandwidth bound. Every kernel runs on every code path the CPU has, so one
// run of a portable build (-DMDBF_NATIVE=OFF) and one of a native build compare directly: the
// kernels' rows should match, only Eigen's (compiled for the build's baseline ISA) differ. The
// batch-1 rows of the factorized layers run the 18-bit table kernels (binaryGemvTables), which
// decoding uses on every path; the binary-product section times them beside the
// float kernels at T = 1.
//
// Usage: bench_kernels [--quick] [--half-only]
//   --quick: without 4096×11008 at l = 4, shorter timings; --half-only: the 16-bit GEMV section only

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "mdbf/base/matrix.h"
#include "mdbf/base/parallel.h"
#include "mdbf/kernels/binary_product.h"
#include "mdbf/kernels/factor_apply.h"
#include "mdbf/kernels/half_product.h"
#include "memory_bandwidth.h"
#include "table_mix_ceiling.h"

namespace {

using namespace mdbf;
using namespace mdbf::kernels;
using Clock = std::chrono::steady_clock;

double g_budgetSeconds = 0.5;

constexpr KernelPath kPaths[] = {KernelPath::Scalar, KernelPath::Avx2, KernelPath::Avx512};

bool pathAvailable(KernelPath kp)
{
    if (kp == KernelPath::Avx2) return avx2Available();
    if (kp == KernelPath::Avx512) return avx512Available();
    return true;
}

struct Timing {
    double median = 0;  ///< ms
    double best = 0;    ///< ms; on a shared machine the least disturbed run
};

// Wall time of fn in milliseconds after one warm-up call; stops after the time budget (at least
// 3 timed calls unless one call alone exceeds the budget).
template <typename Fn>
Timing timeMs(Fn&& fn)
{
    const auto w0 = Clock::now();
    fn();
    const double warm = std::chrono::duration<double>(Clock::now() - w0).count();
    std::vector<double> ms;
    const auto start = Clock::now();
    do {
        const auto t0 = Clock::now();
        fn();
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    } while (warm < g_budgetSeconds &&
             (ms.size() < 3 || (std::chrono::duration<double>(Clock::now() - start).count() < g_budgetSeconds &&
                                ms.size() < 500)));
    std::sort(ms.begin(), ms.end());
    return {ms[ms.size() / 2], ms.front()};
}

PackedSigns randomPacked(std::int64_t rows, std::int64_t cols, std::mt19937_64& rng)
{
    PackedSigns p(rows, cols);
    const std::int64_t used = cols % PackedSigns::kWordBits;
    const std::uint64_t lastMask = used == 0 ? ~std::uint64_t{0} : (std::uint64_t{1} << used) - 1;
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t w = 0; w < p.wordsPerRow(); ++w)
            p.words()[static_cast<std::size_t>(i * p.wordsPerRow() + w)] =
                rng() & (w + 1 == p.wordsPerRow() ? lastMask : ~std::uint64_t{0});
    return p;
}

MatrixF randomEnvelope(std::int64_t rows, std::int64_t l, std::mt19937_64& rng)
{
    std::uniform_real_distribution<float> u(0.5f, 1.0f);
    MatrixF m(rows, l);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = u(rng);
    return m;
}

FactorPath randomPath(std::int64_t n, std::int64_t m, std::int64_t k, std::int64_t l, std::uint64_t seed)
{
    std::mt19937_64 rng(seed);
    FactorPath p;
    p.sa = randomPacked(n, k, rng);
    p.sb = randomPacked(k, m, rng);
    p.A = randomEnvelope(n, l, rng);
    p.Qa = randomEnvelope(k, l, rng);
    p.Qb = randomEnvelope(k, l, rng);
    p.B = randomEnvelope(m, l, rng);
    return p;
}

// §3.2 at 1 bpw, P = 1, s = 16: k = floor((n·m − 16·l·(n+m)) / ((n+m) + 32·l)).
std::int64_t middleDimension(std::int64_t n, std::int64_t m, std::int64_t l)
{
    return (n * m - 16 * l * (n + m)) / ((n + m) + 32 * l);
}

// Bytes a deployed path occupies: packed sign words of S_a and S_b plus FP16 envelopes.
double deployedBytes(const FactorPath& p)
{
    const double signs = 8.0 * static_cast<double>(p.sa.words().size() + p.sb.words().size());
    const double envelopes = 2.0 * static_cast<double>(p.l() * (p.n() + p.m() + 2 * p.k()));
    return signs + envelopes;
}

RowMatrixF randomActivations(std::int64_t T, std::int64_t m, std::uint64_t seed)
{
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    RowMatrixF X(T, m);
    for (Eigen::Index i = 0; i < X.size(); ++i) X.data()[i] = u(rng);
    return X;
}

void denseGemv(const RowMatrixF& W, const Eigen::VectorXf& x, Eigen::VectorXf& y, int threads)
{
    parallelChunks(W.rows(), threads, [&](std::int64_t b, std::int64_t e) {
        y.segment(b, e - b).noalias() = W.middleRows(b, e - b) * x;
    });
}

struct Bandwidth {
    double gbs[3] = {0, 0, 0};  // indexed by thread count
};

// One line: median and best time; speed-up against the dense time of the same kind (median vs
// median, best vs best) and the ratio to the bandwidth bound.
void printRow(const char* layer, const char* what, int threads, const char* path, Timing t, Timing dense,
              double boundMs)
{
    std::printf("%-22s %-26s %2d  %-6s %9.3f ms (best %8.3f)", layer, what, threads, path, t.median, t.best);
    if (dense.median > 0)
        std::printf("  %6.2fx vs dense (best %6.2fx)", dense.median / t.median, dense.best / t.best);
    if (boundMs > 0) std::printf("  %5.2fx bound (best %5.2fx)", t.median / boundMs, t.best / boundMs);
    std::printf("\n");
    std::fflush(stdout);
}

struct LayerSpec {
    std::int64_t n, m, l;
};

void benchLayer(const LayerSpec& spec, const Bandwidth& bw, bool quick, bool scalarPrefill)
{
    const std::int64_t k = middleDimension(spec.n, spec.m, spec.l);
    char name[64];
    std::snprintf(name, sizeof name, "%lldx%lld l=%lld k=%lld", static_cast<long long>(spec.n),
                  static_cast<long long>(spec.m), static_cast<long long>(spec.l), static_cast<long long>(k));
    const FactorPath path = randomPath(spec.n, spec.m, k, spec.l, 1234 + static_cast<std::uint64_t>(spec.l));
    const double bytes = deployedBytes(path);
    const double bpw = bytes * 8.0 / static_cast<double>(spec.n * spec.m);
    std::printf("\n== %s: %.2f MiB deployed (%.4f bpw incl. envelopes), dense float32 %.1f MiB\n", name,
                bytes / (1 << 20), bpw, 4.0 * static_cast<double>(spec.n * spec.m) / (1 << 20));

    // Rotating over many copies evicts the weights from cache between calls, as decoding a
    // model layer by layer does; the warm figure repeats one copy that stays in L2/L3.
    const std::int64_t copies = std::max<std::int64_t>(8, static_cast<std::int64_t>(256.0 * (1 << 20) / bytes));
    std::vector<FactorPath> coldCopies;
    for (std::int64_t c = 0; c < copies; ++c) coldCopies.push_back(randomPath(spec.n, spec.m, k, spec.l, 99 + c));

    // Dense copies likewise: a single 64 MiB matrix still partly fits in a large L3.
    const double denseBytes = 4.0 * static_cast<double>(spec.n * spec.m);
    const std::int64_t denseCopies = std::max<std::int64_t>(2, static_cast<std::int64_t>(256.0 * (1 << 20) / denseBytes));
    std::vector<RowMatrixF> denseW;
    for (std::int64_t c = 0; c < denseCopies; ++c) denseW.push_back(randomActivations(spec.n, spec.m, 7 + c));
    const RowMatrixF& W = denseW.front();
    const RowMatrixF x = randomActivations(1, spec.m, 8);
    const Eigen::VectorXf xv = x.row(0).transpose();
    Eigen::VectorXf yv(spec.n);
    RowMatrixF y(1, spec.n);

    for (int threads : {1, 2}) {
        const Timing denseWarm = timeMs([&] { denseGemv(W, xv, yv, threads); });
        std::size_t nextDense = 0;
        const Timing dense = timeMs([&] {
            denseGemv(denseW[nextDense], xv, yv, threads);
            nextDense = (nextDense + 1) % denseW.size();
        });
        const double boundMs = bytes / (bw.gbs[threads] * 1e9) * 1e3;
        printRow(name, "batch1 dense GEMV one copy", threads, "eigen", denseWarm, {}, 0);
        printRow(name, "batch1 dense GEMV DRAM", threads, "eigen", dense, {}, 0);
        printRow(name, "batch1 bandwidth bound", threads, "-", {boundMs, boundMs}, dense, 0);
        for (KernelPath kp : kPaths) {
            if (!pathAvailable(kp)) continue;
            if (kp == KernelPath::Scalar && threads == 2) continue;  // the reference; one figure is enough
            const auto x1 = std::span<const float>(x.data(), x.size());
            const auto y1 = std::span<float>(y.data(), y.size());
            const Timing warm = timeMs([&] { applyFactorPaths({&path, 1}, x1, y1, threads, kp); });
            printRow(name, "batch1 mdbf (warm cache)", threads, kernelPathName(kp), warm, denseWarm, boundMs);
            if (kp == KernelPath::Scalar) continue;
            // The SIMD table kernels' copy of each matrix's bits, built when a model's layers are
            // created, is not decoding.
            prepareFactorPaths(coldCopies, kp);
            std::size_t next = 0;
            const Timing cold = timeMs([&] {
                applyFactorPaths({&coldCopies[next], 1}, x1, y1, threads, kp);
                next = (next + 1) % coldCopies.size();
            });
            printRow(name, "batch1 mdbf (from DRAM)", threads, kernelPathName(kp), cold, dense, boundMs);
        }
    }
    coldCopies.clear();

    const std::int64_t window = 256;
    const RowMatrixF X = randomActivations(window, spec.m, 9);
    RowMatrixF Y;
    for (int threads : {1, 2}) {
        Eigen::setNbThreads(threads);
        const Timing dense = timeMs([&] { Y.noalias() = X * W.transpose(); });
        printRow(name, "prefill256 dense f32 GEMM", threads, "eigen", dense, {}, 0);
        for (KernelPath kp : kPaths) {
            if (!pathAvailable(kp)) continue;
            // The scalar reference takes seconds here: one figure, on the first layer, is enough.
            if (kp == KernelPath::Scalar && (quick || threads == 2 || !scalarPrefill)) continue;
            const Timing t = timeMs([&] { applyFactorPaths({&path, 1}, X, Y, threads, kp); });
            printRow(name, "prefill256 mdbf", threads, kernelPathName(kp), t, dense, 0);
        }
    }
}

// The binary product alone, in sign-additions per nanosecond, for a few token counts.
void benchBinaryProduct(bool quick)
{
    std::mt19937_64 rng(5);
    const PackedSigns S = randomPacked(2032, 4096, rng);
    std::printf("\n== binary product S (2032x4096) · X, sign-additions per ns\n");
    for (std::int64_t T : {1, 2, 4, 8, 64, 256}) {
        if (quick && T == 64) continue;
        const RowMatrixF X = randomActivations(T, S.cols(), 10);
        RowMatrixF Y;
        for (int threads : {1, 2}) {
            for (KernelPath kp : kPaths) {
                if (!pathAvailable(kp)) continue;
                if (kp == KernelPath::Scalar && (quick || T > 8)) continue;
                const double adds = static_cast<double>(T * S.rows() * S.cols());
                const auto print = [&](const char* kernel, Timing t) {
                    std::printf("T=%-4lld threads %d %-6s %-6s %9.3f ms (best %8.3f)  %7.2f adds/ns (best %7.2f)\n",
                                static_cast<long long>(T), threads, kernelPathName(kp), kernel, t.median, t.best,
                                adds / (t.median * 1e6), adds / (t.best * 1e6));
                    std::fflush(stdout);
                };
                print("float", timeMs([&] { binaryGemm(S, X, Y, threads, kp); }));
                // One token: also the table kernel that decoding uses (binaryGemvTables).
                if (T == 1) {
                    std::vector<float> y(static_cast<std::size_t>(S.rows()));
                    const auto x1 = std::span<const float>(X.data(), static_cast<std::size_t>(X.size()));
                    print("tables", timeMs([&] { binaryGemvTables(S, x1, y, threads, kp); }));
                }
            }
        }
    }
}

// The most the AVX2 table kernel can reach on this CPU, from its instruction mix alone, against the
// rate at which one thread streams sign bits (1 bit per sign-addition): what "within 2× of the
// bandwidth bound" asks of it.
void benchTableCeiling(const Bandwidth& bw)
{
    if (!avx2Available()) return;
    double opsPerNs = 0;
    for (int run = 0; run < 3; ++run) opsPerNs = std::max(opsPerNs, bench::tableMixOpsPerNs());
    const double ceiling = opsPerNs * 512.0 / bench::kTableMixOps;
    const double streamed = bw.gbs[1] * 8.0;
    std::printf("\n== AVX2 table kernel, one thread: ceiling of its instruction mix\n");
    std::printf("%.0f vector ops per 512 sign-additions at %.2f ops/ns (registers only): at most %.1f adds/ns;\n"
                "the sign bits stream at %.1f bits/ns (%.2f GB/s), so within 2x of the bound needs %.1f adds/ns "
                "(ceiling / bound = %.2fx)\n",
                bench::kTableMixOps, opsPerNs, ceiling, streamed, bw.gbs[1], streamed / 2.0, streamed / ceiling);
    std::fflush(stdout);
}

// The 16-bit dense GEMV (decode through a layer kept at BF16/F16) per path, from DRAM (rotating
// over copies worth 512 MiB), against the bound 2·n·m bytes ÷ bandwidth, and Eigen's float32 GEMV
// of the same layer from DRAM for reference.
void benchHalfGemv(const Bandwidth& bw)
{
    std::printf("\n== 16-bit dense GEMV, batch 1, weights from DRAM\n");
    const struct {
        std::int64_t n, m;
    } shapes[] = {{4096, 4096}, {11008, 4096}, {1024, 1024}};
    for (const auto& shape : shapes) {
        const double bytes = 2.0 * static_cast<double>(shape.n * shape.m);
        const std::int64_t copies = std::max<std::int64_t>(2, static_cast<std::int64_t>(512.0 * (1 << 20) / bytes));
        std::vector<std::vector<std::uint16_t>> weights(static_cast<std::size_t>(copies));
        std::mt19937_64 rng(3);
        for (auto& w : weights) {
            w.resize(static_cast<std::size_t>(shape.n * shape.m));
            // Patterns of small normal numbers in both formats (exponent field well inside range).
            for (auto& b : w) b = static_cast<std::uint16_t>(0x3000 | (rng() & 0x0FFF) | ((rng() & 1) << 15));
        }
        const RowMatrixF x = randomActivations(1, shape.m, 4);
        std::vector<float> y(static_cast<std::size_t>(shape.n));
        char name[64];
        std::snprintf(name, sizeof name, "%lldx%lld", static_cast<long long>(shape.n), static_cast<long long>(shape.m));
        for (int threads : {1, 2}) {
            const double boundMs = bytes / (bw.gbs[threads] * 1e9) * 1e3;
            printRow(name, "batch1 bandwidth bound", threads, "-", {boundMs, boundMs}, {}, 0);
            for (HalfFormat format : {HalfFormat::BF16, HalfFormat::F16}) {
                for (KernelPath kp : kPaths) {
                    if (!pathAvailable(kp)) continue;
                    if (kp == KernelPath::Scalar && threads == 2) continue;
                    std::size_t next = 0;
                    const Timing t = timeMs([&] {
                        halfGemv(format, weights[next], shape.n, shape.m, {x.data(), static_cast<std::size_t>(x.size())},
                                 y, threads, kp);
                        next = (next + 1) % weights.size();
                    });
                    printRow(name, format == HalfFormat::BF16 ? "batch1 bf16 GEMV DRAM" : "batch1 f16 GEMV DRAM",
                             threads, kernelPathName(kp), t, {}, boundMs);
                }
            }
        }
        weights.clear();
        std::vector<RowMatrixF> denseW;
        for (int c = 0; c < 3; ++c) denseW.push_back(randomActivations(shape.n, shape.m, 20 + c));
        const Eigen::VectorXf xv = x.row(0).transpose();
        Eigen::VectorXf yv(shape.n);
        for (int threads : {1, 2}) {
            std::size_t next = 0;
            const Timing dense = timeMs([&] {
                denseGemv(denseW[next], xv, yv, threads);
                next = (next + 1) % denseW.size();
            });
            printRow(name, "batch1 f32 GEMV DRAM", threads, "eigen", dense, {}, 2 * bytes / (bw.gbs[threads] * 1e9) * 1e3);
        }
    }
}

}  // namespace

int main(int argc, char** argv)
{
    bool quick = false, halfOnly = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (std::strcmp(argv[i], "--half-only") == 0) {
            halfOnly = true;
        } else {
            std::fprintf(stderr, "bench_kernels: unknown argument '%s' (usage: bench_kernels [--quick] [--half-only])\n",
                         argv[i]);
            return 2;
        }
    }
    if (quick) g_budgetSeconds = 0.25;
    std::printf("bench_kernels: %s build, avx2 %s, avx512 %s\n", MDBF_BENCH_NATIVE ? "native (-march=native)" : "portable",
                avx2Available() ? "available" : "not available", avx512Available() ? "available" : "not available");

    Bandwidth bw;
    for (int threads : {1, 2}) {
        bw.gbs[threads] = bench::measureBandwidth(threads);
        std::printf("memory read bandwidth, %d thread(s): %.2f GB/s\n", threads, bw.gbs[threads]);
    }

    benchHalfGemv(bw);
    if (halfOnly) return 0;
    benchBinaryProduct(quick);
    benchTableCeiling(bw);

    std::vector<LayerSpec> layers = {{4096, 4096, 1}, {4096, 4096, 4}, {4096, 11008, 1}, {1024, 1024, 1}};
    if (!quick) layers.push_back({4096, 11008, 4});
    for (std::size_t i = 0; i < layers.size(); ++i) benchLayer(layers[i], bw, quick, i == 0);
    return 0;
}
