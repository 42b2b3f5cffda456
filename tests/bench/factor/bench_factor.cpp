// Benchmark of the factorization engine (not a ctest test).
//
//   bench_factor [--threads T] [--sizes 1024x2816,2048x2048,4096x4096] [--ls 1,4] [--iters N]
//                [--layer-iters T] [--no-layers] [--no-synthetic] [--svd] [--cancel] [--model DIR]
//                [--scale [--scale-sizes 4096x4096,4096x11008] [--scale-threads 1,2] [--baseline] [--no-refine]]
//                [--warm] [--preview] [--gram [--baseline]]
//                [--envelope-study [--study-sizes 1024x1024] [--study-kinds gauss,scales,heads] [--ls 1,2,4,8]
//                 [--study-bpw 1.0] [--layer-iters T] [--polish-sweeps S] [--rho-start R] [--study-k K]]
//
// --envelope-study: DBF against MDBF at matched bits on generated matrices (docs/ALGORITHM.md §10):
// iid Gaussian ("gauss"), the structured checkpoints' weights ("scales": log-normal row and column
// scales, outlier columns, decaying spectrum) and the same with 32 per-head column profiles and 1%
// outlier columns ("heads"). Per method and l: k, exact bpw, the closed form, the refinement after
// --layer-iters iterations, the polish after each of --polish-sweeps sweeps, and the seconds.
// --study-k gives every method the same k instead (the envelope's worth without its bits).
//
// --warm: on the --scale-sizes shapes (random BF16 weights, l = 1, --threads), the closed-form preview
// at 2 bpw with the decomposition in memory, cold and warm (from a 1.5 bpw result refined --iters
// iterations), and the iterations a warm start needs to reach the cold start's error after --iters.
//
// --preview: on the --scale-sizes shapes (random BF16 weights, DBF, --threads), what the studio's
// inspector waits for after a budget change with the decomposition in memory: the first view (closed
// form, error estimated from 256 rows), the exact error, envelope spectra and FP16 residual after it,
// and the single-stage path it replaces (exact closed form, then the views), at 1, 1.5 and 2 bpw.
//
// --scale: LLaMA-7B projection shapes with random BF16-rounded weights, at 1.0 bpw, l = 1: the layer
// decomposition (complete, and the leading k triplets in float compared with it), the closed form, seconds per outer iteration (timed over --iters iterations; 260
// iterations would take over an hour, so their time is extrapolated and labelled so) and the peak
// RSS of each stage. --baseline also times Eigen's float BDCSVD on the same matrix (the previous
// decomposition) and compares the singular values and rank-k truncation errors with it.
//
// --gram: on the --scale-sizes shapes (random BF16 weights, 1.0 bpw, l = 1, --threads), what the gram
// objective adds: preparing the input Gram weighting (the m×m eigendecomposition and R, R⁻¹) and the
// seconds per outer iteration of the gram refinement, whose G-step decomposes a k×k matrix every
// iteration. The Gram matrix is synthetic (correlated channels of log-normal scales). --baseline
// also times Eigen's SelfAdjointEigenSolver (the previous eigensolver) on the same m×m (up to
// m = 4096) and k×k matrices next to LAPACK's.
//
// Prints the SGEMM rate of this machine (Eigen float GEMM 2048², same thread count), the seconds per
// outer ADMM iteration and the achieved GFLOP/s on synthetic matrices at 1.0 bpw, and full runs on
// small-llama layers next to the reference errors of the authors' implementation.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <omp.h>

#include <Eigen/SVD>

#include "mdbf/base/huge_pages.h"
#include "mdbf/base/run_context.h"
#include "mdbf/factor/admm_refiner.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/factor/closed_form_init.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/layer_svd.h"
#include "mdbf/factor/path_products.h"
#include "mdbf/base/half.h"
#include "mdbf/factor/envelope_polish.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/factor/envelope_spectra.h"
#include "mdbf/pipeline/layer_job.h"
#include "mdbf/pipeline/synthetic_model.h"

#include "bench_factor_support.h"

namespace {

using mdbf::bench::Clock;
using mdbf::bench::since;
using mdbf::bench::bf16Gaussian;
using mdbf::bench::randomStart;
using namespace mdbf;
using namespace mdbf::factor;

std::vector<std::string> split(const std::string& s, char sep)
{
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, sep))
        if (!item.empty()) out.push_back(item);
    return out;
}

struct Args {
    int threads = 2;
    std::vector<std::pair<int, int>> sizes{{1024, 2816}, {2048, 2048}, {4096, 4096}};
    std::vector<int> ls{1, 4};
    int iters = 4;           // timed outer iterations per synthetic case (the first is discarded)
    int layerIters = 260;
    bool layers = true;
    bool synthetic = true;
    bool cancel = false;
    bool svd = false;
    bool scale = false;
    bool baseline = false;
    bool refine = true;  // --no-refine: decompositions and closed form only
    bool warm = false;
    bool preview = false;
    bool gram = false;
    bool envelopeStudy = false;
    std::vector<std::pair<int, int>> studySizes{{1024, 1024}};
    std::vector<std::string> studyKinds{"gauss", "scales", "heads"};
    std::string studyBpw = "1.0";
    int polishSweeps = 8;
    double rhoStart = 0.03;
    long long studyK = 0;  // explicit k for every method (0: matched bits)
    bool lsGiven = false;
    std::vector<std::pair<int, int>> scaleSizes{{4096, 4096}, {4096, 11008}};
    std::vector<int> scaleThreads{1, 2};
    std::filesystem::path model = std::filesystem::path(MDBF_BENCH_SHARED_FIXTURES) / "small-llama";
};

Args parse(int argc, char** argv)
{
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "missing value after %s\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--threads") a.threads = std::stoi(value());
        else if (arg == "--sizes") {
            a.sizes.clear();
            for (const auto& s : split(value(), ',')) {
                const auto x = s.find('x');
                a.sizes.emplace_back(std::stoi(s.substr(0, x)), std::stoi(s.substr(x + 1)));
            }
        } else if (arg == "--ls") {
            a.lsGiven = true;
            a.ls.clear();
            for (const auto& s : split(value(), ',')) a.ls.push_back(std::stoi(s));
        } else if (arg == "--iters") a.iters = std::max(2, std::stoi(value()));
        else if (arg == "--layer-iters") a.layerIters = std::stoi(value());
        else if (arg == "--no-layers") a.layers = false;
        else if (arg == "--no-synthetic") a.synthetic = false;
        else if (arg == "--cancel") a.cancel = true;
        else if (arg == "--svd") a.svd = true;
        else if (arg == "--scale") a.scale = true;
        else if (arg == "--baseline") a.baseline = true;
        else if (arg == "--no-refine") a.refine = false;
        else if (arg == "--warm") a.warm = true;
        else if (arg == "--preview") a.preview = true;
        else if (arg == "--gram") a.gram = true;
        else if (arg == "--envelope-study") a.envelopeStudy = true;
        else if (arg == "--study-kinds") a.studyKinds = split(value(), ',');
        else if (arg == "--study-bpw") a.studyBpw = value();
        else if (arg == "--polish-sweeps") a.polishSweeps = std::stoi(value());
        else if (arg == "--rho-start") a.rhoStart = std::stod(value());
        else if (arg == "--study-k") a.studyK = std::stoll(value());
        else if (arg == "--study-sizes") {
            a.studySizes.clear();
            for (const auto& s : split(value(), ',')) {
                const auto x = s.find('x');
                a.studySizes.emplace_back(std::stoi(s.substr(0, x)), std::stoi(s.substr(x + 1)));
            }
        }
        else if (arg == "--scale-threads") {
            a.scaleThreads.clear();
            for (const auto& s : split(value(), ',')) a.scaleThreads.push_back(std::stoi(s));
        } else if (arg == "--scale-sizes") {
            a.scaleSizes.clear();
            for (const auto& s : split(value(), ',')) {
                const auto x = s.find('x');
                a.scaleSizes.emplace_back(std::stoi(s.substr(0, x)), std::stoi(s.substr(x + 1)));
            }
        }
        else if (arg == "--model") a.model = value();
        else {
            std::fprintf(stderr, "unknown argument %s\n", arg.c_str());
            std::exit(2);
        }
    }
    return a;
}

double sgemmRate(int threads)
{
    const int n = 2048;
    omp_set_num_threads(threads);
    MatrixF a = MatrixF::Random(n, n), b = MatrixF::Random(n, n), c(n, n);
    c.noalias() = a * b;  // warm-up
    double best = 1e30;
    for (int r = 0; r < 3; ++r) {
        const auto t = Clock::now();
        c.noalias() = a * b;
        best = std::min(best, since(t));
    }
    return 2.0 * n * n * n / best / 1e9;
}

// Useful floating-point work of one outer iteration (docs/ALGORITHM.md §8): the two CᵀY products, the two
// symmetric Gram matrices, the 2·inner triangular solve pairs, the four Cholesky factorizations and
// the block-power projections.
double flopsPerIteration(double n, double m, double k, int l, int inner, int power, int oversample)
{
    const double b = std::min(k, static_cast<double>(l + oversample));
    const double products = 2.0 * 2.0 * n * m * k;
    const double grams = (n + m) * k * k;
    const double solves = inner * 2.0 * k * k * (n + m);
    const double cholesky = 4.0 * k * k * k / 3.0;
    const double projections = inner * (2.0 * power + 1.0) * 2.0 * k * b * (n + m);
    return products + grams + solves + cholesky + projections;
}

void benchSynthetic(const Args& a, double sgemm)
{
    std::printf("\n== ADMM refinement, synthetic Gaussian matrices, 1.0 bpw, %d threads ==\n", a.threads);
    std::printf("%-11s %3s %6s %12s %10s %9s %8s\n", "size", "l", "k", "s/iteration", "GFLOP/it", "GFLOP/s",
                "of SGEMM");
    for (const auto& [n, m] : a.sizes) {
        RowMatrixF W = RowMatrixF::Random(n, m) * 0.02f;
        for (int l : a.ls) {
            const BitBudget b = computeBitBudget(n, m, Bpw::parse("1.0"), Method::Mdbf, l, 1);
            MatrixF F0, G0;
            randomStart(n, m, b.k, l, F0, G0);
            AdmmOptions opts;
            opts.l = l;
            opts.outerIterations = a.iters;
            std::vector<double> stamps;
            const auto start = Clock::now();
            RunContext ctx;
            ctx.threads = a.threads;
            AdmmRefiner(opts).refine(W, F0, G0, std::sqrt(W.cast<double>().squaredNorm()), ctx,
                                     [&](int, double) { stamps.push_back(since(start)); });
            const double perIt = (stamps.back() - stamps.front()) / static_cast<double>(stamps.size() - 1);
            const double gf = flopsPerIteration(n, m, static_cast<double>(b.k), l, opts.innerIterations,
                                                opts.powerIterations, opts.oversample) / 1e9;
            std::printf("%5dx%-5d %3d %6lld %12.3f %10.1f %9.1f %7.0f%%\n", n, m, l, static_cast<long long>(b.k), perIt,
                        gf, gf / perIt, 100.0 * gf / perIt / sgemm);
            std::fflush(stdout);
        }
    }
}

void benchSvd(const Args& a)
{
    std::printf("\n== LayerSvd (thin BDCSVD, float) ==\n");
    for (const auto& [n, m] : a.sizes) {
        const RowMatrixF W = RowMatrixF::Random(n, m) * 0.02f;
        for (int t : {1, a.threads}) {
            RunContext ctx;
            ctx.threads = t;
            const LayerSvd svd = LayerSvd::compute(W, ctx);
            std::printf("%5dx%-5d %d thread(s): %.2f s\n", n, m, t, svd.seconds());
            std::fflush(stdout);
            if (a.threads == 1) break;
        }
    }
}

void benchCancel(const Args& a)
{
    const auto [n, m] = a.sizes.back();
    std::printf("\n== Cancellation latency, %dx%d, l=1, %d threads ==\n", n, m, a.threads);
    RowMatrixF W = RowMatrixF::Random(n, m) * 0.02f;
    RunContext svdCtx;
    svdCtx.threads = a.threads;
    const auto t0 = Clock::now();
    const LayerSvd svd = LayerSvd::compute(W, svdCtx);
    std::printf("SVD %.1f s\n", since(t0));
    FactorizerOptions o;
    o.outerIterations = 1000;
    std::stop_source source;
    Clock::time_point requested;
    std::thread stopper;
    o.onIteration = [&](const IterationReport& r) {
        if (r.iteration == 2) {
            // Ask from another thread part-way into the next iteration.
            stopper = std::thread([&source, &requested] {
                std::this_thread::sleep_for(std::chrono::milliseconds(700));
                requested = Clock::now();
                source.request_stop();
            });
        }
    };
    RunContext ctx;
    ctx.threads = a.threads;
    ctx.stop = source.get_token();
    const FactorResult r = Factorizer(o).run(W, svd, ctx);
    const double latency = since(requested);
    if (stopper.joinable()) stopper.join();
    std::printf("returned %.3f s after the stop request: %s, %d iterations, %s %.4f\n", latency,
                std::string(terminationName(r.termination)).c_str(), r.iterations, r.errorLabel().c_str(),
                r.finalError);
}

/// Peak resident set size of the process so far, in MiB (VmHWM), and a reset of that peak
/// (Linux: writing 5 to clear_refs), so each stage can report its own.
double peakRssMiB()
{
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return 0.0;
    char line[256];
    double kib = 0.0;
    while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "VmHWM: %lf kB", &kib) == 1) break;
    std::fclose(f);
    return kib / 1024.0;
}

void resetPeakRss()
{
    if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
        std::fputs("5", f);
        std::fclose(f);
    }
}

void benchScale(const Args& a)
{
    std::printf("\n== 7B shapes, random BF16 weights, 1.0 bpw, l = 1 ==\n");
    std::printf("%-11s %3s %-26s %10s %10s\n", "size", "thr", "stage", "seconds", "peak MiB");
    for (const auto& [n, m] : a.scaleSizes) {
        const RowMatrixF W = bf16Gaussian(n, m, 7u);
        const BitBudget b = computeBitBudget(n, m, Bpw::parse("1.0"), Method::Mdbf, 1, 1);
        for (int t : a.scaleThreads) {
            RunContext ctx;
            ctx.threads = t;
            auto row = [&](const char* stage, double seconds) {
                std::printf("%5dx%-5d %3d %-26s %10.2f %10.0f\n", n, m, t, stage, seconds, peakRssMiB());
                std::fflush(stdout);
            };
            std::optional<Eigen::BDCSVD<MatrixF>> reference;
            if (a.baseline) {
                resetPeakRss();
                omp_set_num_threads(t);
                const auto t0 = Clock::now();
                const MatrixF wc = W;
                reference.emplace(wc, Eigen::ComputeThinU | Eigen::ComputeThinV);
                row("Eigen BDCSVD (previous)", since(t0));
            }
            // CPU seconds of the whole process: on one thread, about what the wall time would be on
            // an idle machine.
            auto cpuSeconds = [] { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; };
            resetPeakRss();
            double cpu0 = cpuSeconds();
            const LayerSvd svd = LayerSvd::compute(W, ctx);
            row("decomposition (LAPACK)", svd.seconds());
            std::printf("      CPU %.1f s\n", cpuSeconds() - cpu0);
            resetPeakRss();
            cpu0 = cpuSeconds();
            const LayerSvd lead = LayerSvd::computeLeading(W, b.k, ctx);
            row("leading k triplets (float)", lead.seconds());
            std::printf("      CPU %.1f s\n", cpuSeconds() - cpu0);
            {
                double worst = 0.0;
                for (Eigen::Index i = 0; i < b.k; ++i)
                    worst = std::max(worst, std::abs(double(lead.singularValues()[i]) - svd.singularValues()[i]) /
                                                double(svd.singularValues()[i]));
                const double wNorm = std::sqrt(W.cast<double>().squaredNorm());
                const double truncFull = std::sqrt((W - svd.truncated(b.k)).cast<double>().squaredNorm()) / wNorm;
                const double truncLead = std::sqrt((W - lead.truncated(b.k)).cast<double>().squaredNorm()) / wNorm;
                auto orthonormality = [](const MatrixF& q) {
                    return double((q.transpose() * q - MatrixF::Identity(q.cols(), q.cols())).cwiseAbs().maxCoeff());
                };
                std::printf("      leading vs complete: max relative σ difference %.2e; rank-%lld truncation error "
                            "%.7f vs %.7f (relative change %.1e); orthonormality U %.1e, V %.1e\n",
                            worst, static_cast<long long>(b.k), truncLead, truncFull,
                            (truncLead - truncFull) / truncFull, orthonormality(lead.u()), orthonormality(lead.v()));
            }
            resetPeakRss();
            auto t0 = Clock::now();
            const std::vector<kernels::FactorPath> start = closedFormInit(W, svd, b.k, 1, 1, ctx);
            row(("closed form, k = " + std::to_string(b.k)).c_str(), since(t0));
            if (reference) {
                const VectorF& s0 = reference->singularValues();
                double worst = 0.0;
                for (Eigen::Index i = 0; i < s0.size(); ++i)
                    worst = std::max(worst, std::abs(double(svd.singularValues()[i]) - s0[i]) / s0[i]);
                const double wNorm = std::sqrt(W.cast<double>().squaredNorm());
                const double tail = std::sqrt(svd.singularValues().tail(svd.rank() - b.k).cast<double>().squaredNorm());
                const MatrixF ref = reference->matrixU().leftCols(b.k) * s0.head(b.k).asDiagonal() *
                                    reference->matrixV().leftCols(b.k).transpose();
                const double truncNew = std::sqrt((W - svd.truncated(b.k)).cast<double>().squaredNorm()) / wNorm;
                const double truncRef = std::sqrt((W - ref).cast<double>().squaredNorm()) / wNorm;
                std::printf("      max relative singular-value difference to BDCSVD: %.2e; rank-%lld truncation error "
                            "%.6f (LAPACK) vs %.6f (BDCSVD), tail of σ %.6f\n",
                            worst, static_cast<long long>(b.k), truncNew, truncRef, tail / wNorm);
            }
            if (!a.refine) continue;
            resetPeakRss();
            FactorizerOptions o;
            o.bpw = Bpw::parse("1.0");
            o.outerIterations = a.iters;
            std::vector<double> stamps;
            t0 = Clock::now();
            o.onIteration = [&](const IterationReport&) { stamps.push_back(since(t0)); };
            const FactorResult r = Factorizer(o).run(W, svd, ctx);
            const double perIt = (stamps.back() - stamps.front()) / static_cast<double>(stamps.size() - 1);
            row("refinement, s/iteration", perIt);
            std::printf("      error: closed form %.5f, after %d iterations %.5f; 260 iterations ~ %.0f s "
                        "(extrapolated: %d timed)\n",
                        r.initialError, r.iterations, r.finalError, 260.0 * perIt, a.iters);
            o.onIteration = nullptr;
            const FactorResult rl = Factorizer(o).run(W, lead, ctx);
            std::printf("      from the leading triplets: closed form %.5f (%+.1e relative), after %d iterations %.5f "
                        "(%+.1e)\n",
                        rl.initialError, (rl.initialError - r.initialError) / r.initialError, rl.iterations,
                        rl.finalError, (rl.finalError - r.finalError) / r.finalError);
        }
    }
}

void benchPreview(const Args& a)
{
    constexpr std::int64_t kSampleRows = pipeline::kPreviewSampleRows;  // as the studio previews
    std::printf("\n== closed-form preview after a budget change, decomposition in memory, random BF16 weights, DBF, "
                "%d threads ==\n", a.threads);
    for (const auto& [n, m] : a.scaleSizes) {
        const RowMatrixF W = bf16Gaussian(n, m, 7u);
        RunContext ctx;
        ctx.threads = a.threads;
        pipeline::LayerJob job;
        job.settings.method = Method::Dbf;
        job.settings.iterations = 0;
        job.settings.bpw = Bpw::parse("2");
        auto t = Clock::now();
        const LayerSvd svd = LayerSvd::computeLeading(W, Factorizer(job.options(0)).budget(n, m).k, ctx);
        std::printf("%dx%d: leading %lld triplets %.2f s\n", n, m, static_cast<long long>(svd.rank()), since(t));
        for (const char* bpw : {"1", "1.5", "2"}) {
            job.settings.bpw = Bpw::parse(bpw);
            t = Clock::now();
            FactorResult quick = pipeline::previewLayer(W, svd, job, kSampleRows, ctx);
            const double first = since(t);
            const double estimate = quick.finalError;
            t = Clock::now();
            pipeline::describeLayer(W, svd, quick, job, ctx);
            const double complete = since(t);
            t = Clock::now();
            FactorResult exact = pipeline::factorizeLayer(W, svd, job, 0, ctx);
            pipeline::describeLayer(W, svd, exact, job, ctx);
            const double before = since(t);
            std::printf("  %-4s bpw k = %5lld: first view %.2f s (error ~ %.5f from %lld rows); exact %.5f, spectra and "
                        "residual %.2f s later; single stage %.2f s (error %.5f)\n",
                        bpw, static_cast<long long>(quick.k), first, estimate, static_cast<long long>(kSampleRows),
                        quick.finalError, complete, before, exact.finalError);
            std::fflush(stdout);
        }
    }
}

struct Reference {
    const char* layer;
    const char* bpw;
    double errors[3];   // l = 1, 2, 4
    long long ks[3];
};

void benchWarm(const Args& a)
{
    std::printf("\n== warm starts, random BF16 weights, l = 1, %d threads, 1.5 -> 2 bpw, %d iterations ==\n", a.threads,
                a.iters);
    for (const auto& [n, m] : a.scaleSizes) {
        const RowMatrixF W = bf16Gaussian(n, m, 7u);
        RunContext ctx;
        ctx.threads = a.threads;
        auto options = [&](const char* bpw, int iterations) {
            FactorizerOptions o;
            o.bpw = Bpw::parse(bpw);
            o.outerIterations = iterations;
            return o;
        };
        const std::int64_t k2 = Factorizer(options("2", 0)).budget(n, m).k;
        auto t = Clock::now();
        const LayerSvd svd = LayerSvd::computeLeading(W, k2, ctx);
        std::printf("%dx%d: leading %lld triplets %.2f s\n", n, m, static_cast<long long>(k2), since(t));
        const FactorResult previous = Factorizer(options("1.5", a.iters)).run(W, svd, ctx);
        t = Clock::now();
        const FactorResult coldPreview = Factorizer(options("2", 0)).run(W, svd, ctx);
        const double coldPreviewSeconds = since(t);
        t = Clock::now();
        const FactorResult warmPreview = Factorizer(options("2", 0)).refineFrom(W, svd, previous, ctx);
        const double warmPreviewSeconds = since(t);
        std::printf("  preview at 2 bpw: closed form %.2f s (error %.4f), warm from 1.5 bpw %.2f s (error %.4f)\n",
                    coldPreviewSeconds, coldPreview.finalError, warmPreviewSeconds, warmPreview.finalError);
        t = Clock::now();
        const FactorResult cold = Factorizer(options("2", a.iters)).run(W, svd, ctx);
        const double coldSeconds = since(t);
        t = Clock::now();
        const FactorResult warm = Factorizer(options("2", a.iters)).refineFrom(W, svd, previous, ctx);
        const double warmSeconds = since(t);
        int reach = -1;
        for (std::size_t i = 0; i < warm.errorHistory.size(); ++i)
            if (warm.errorHistory[i] <= cold.errorHistory.back()) {
                reach = static_cast<int>(i) + 1;
                break;
            }
        std::printf("  %d iterations: cold %.4f (%.1f s), warm %.4f (%.1f s); warm reaches the cold error after %d\n",
                    a.iters, cold.finalError, coldSeconds, warm.finalError, warmSeconds, reach);
        std::fflush(stdout);
    }
}

void benchLayers(const Args& a)
{
    if (!std::filesystem::exists(a.model / "model.safetensors")) {
        std::printf("\n(small-llama not found at %s; skipping the layer runs)\n", a.model.c_str());
        return;
    }
    const io::Checkpoint ckpt = io::Checkpoint::open(a.model);
    const Reference refs[] = {
        {"model.layers.0.mlp.down_proj.weight", "1.0", {0.5553, 0.5767, 0.6222}, {257, 236, 197}},
        {"model.layers.0.self_attn.q_proj.weight", "1.0", {0.4807, 0.5081, 0.5705}, {168, 147, 109}},
        {"model.layers.5.self_attn.v_proj.weight", "1.5", {0.4299, 0.4780, 0.5831}, {120, 99, 64}},
    };
    std::printf("\n== small-llama layers, mdbf, %d iterations, %d threads ==\n", a.layerIters, a.threads);
    std::printf("%-40s %4s %2s %5s %8s %8s %8s %8s %8s\n", "layer", "bpw", "l", "k", "init", "final", "ref", "diff",
                "seconds");
    const int lValues[3] = {1, 2, 4};
    for (const auto& ref : refs) {
        const RowMatrixF W = ckpt.matrix(ref.layer);
        RunContext ctx;
        ctx.threads = a.threads;
        const LayerSvd svd = LayerSvd::compute(W, ctx);
        for (int i = 0; i < 3; ++i) {
            FactorizerOptions o;
            o.l = lValues[i];
            o.bpw = Bpw::parse(ref.bpw);
            o.outerIterations = a.layerIters;
            const FactorResult r = Factorizer(o).run(W, svd, ctx);
            std::printf("%-40s %4s %2d %5lld %8.4f %8.4f %8.4f %+7.2f%% %8.2f%s\n", ref.layer, ref.bpw, o.l,
                        static_cast<long long>(r.k), r.initialError, r.finalError, ref.errors[i],
                        100.0 * (r.finalError - ref.errors[i]) / ref.errors[i], r.seconds,
                        r.k == ref.ks[i] ? "" : "  (k differs from the reference!)");
            std::fflush(stdout);
        }
    }
}

/// The study's matrices: "gauss", "scales" or "heads" (see the header comment).
RowMatrixF studyMatrix(const std::string& kind, int n, int m, int threads)
{
    if (kind == "gauss") return bf16Gaussian(n, m, 11u);
    pipeline::StructuredWeightOptions o;
    o.rows = n;
    o.cols = m;
    o.seed = 11;
    if (kind == "heads") {
        o.heads = 32;
        o.outlierFraction = 0.01;
    } else if (kind != "scales") {
        throw std::runtime_error("unknown --study-kinds entry '" + kind + "' (gauss, scales, heads)");
    }
    return pipeline::structuredWeights(o, threads);
}

void benchEnvelopeStudy(const Args& a)
{
    const std::vector<int> ls = a.lsGiven ? a.ls : std::vector<int>{1, 2, 4, 8};
    std::printf("\n== envelope study: DBF vs MDBF at %s bpw, %d iterations, then %d polish sweeps, %d threads ==\n",
                a.studyBpw.c_str(), a.layerIters, a.polishSweeps, a.threads);
    std::printf("%-7s %-10s %-6s %5s %7s %8s %8s %8s %8s %8s\n", "kind", "size", "method", "k", "bpw", "closed",
                "refined", "polished", "ref s", "pol s");
    for (const auto& [n, m] : a.studySizes) {
        for (const auto& kind : a.studyKinds) {
            const RowMatrixF W = studyMatrix(kind, n, m, a.threads);
            RunContext ctx;
            ctx.threads = a.threads;
            const LayerSvd svd = LayerSvd::compute(W, ctx);
            const double normW = std::sqrt(W.cast<double>().squaredNorm());
            for (int l : ls) {
                FactorizerOptions o;
                o.method = l == 1 ? Method::Dbf : Method::Mdbf;
                o.l = l;
                o.bpw = Bpw::parse(a.studyBpw);
                o.outerIterations = a.layerIters;
                o.rhoStart = a.rhoStart;
                o.k = a.studyK;
                const FactorResult r = Factorizer(o).run(W, svd, ctx);
                // The polish starts from the deployed parameters; a DBF path is an l = 1 path with
                // Qb = 1, and merging Qa ⊙ Qb afterwards leaves the product unchanged.
                std::vector<kernels::FactorPath> paths = r.paths;
                const auto t0 = Clock::now();
                PolishOptions po;
                po.sweeps = a.polishSweeps;
                const PolishOutcome pol = polishPath(W, paths[0], po, normW, ctx);
                roundEnvelopesToHalf(paths[0]);
                const double polishSeconds = since(t0);
                const RowMatrixF approx = reconstruct(paths, a.threads);
                const double polished = std::sqrt((W - approx).cast<double>().squaredNorm()) / normW;
                char label[32];
                std::snprintf(label, sizeof label, "%s", l == 1 ? "dbf" : ("mdbf" + std::to_string(l)).c_str());
                std::printf("%-7s %4dx%-5d %-6s %5lld %7.4f %8.4f %8.4f %8.4f %8.1f %8.1f   sweeps:", kind.c_str(), n, m,
                            label, static_cast<long long>(r.k), r.bpw, r.initialError, r.finalError, polished,
                            r.seconds, polishSeconds);
                for (double h : pol.history) std::printf(" %.4f", h);
                std::printf("  flips %d\n", pol.flips);
                std::fflush(stdout);
            }
        }
    }
}

}  // namespace

int main(int argc, char** argv)
{
    mdbf::enableHugePages(argv);  // as the mdbf tool and the studio run
    try {
        const Args a = parse(argc, argv);
        const double sgemm = sgemmRate(a.threads);
        std::printf("Eigen SGEMM 2048^2, %d threads: %.1f GFLOP/s\n", a.threads, sgemm);
        if (a.synthetic) benchSynthetic(a, sgemm);
        if (a.svd) benchSvd(a);
        if (a.cancel) benchCancel(a);
        if (a.scale) benchScale(a);
        if (a.warm) benchWarm(a);
        if (a.preview) benchPreview(a);
        if (a.gram) mdbf::bench::benchGram(a.scaleSizes, a.threads, a.iters, a.baseline);
        if (a.envelopeStudy) benchEnvelopeStudy(a);
        if (a.layers) benchLayers(a);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_factor: %s\n", e.what());
        return 1;
    }
}
