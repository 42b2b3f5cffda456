// The gram objective's part of bench_factor (--gram): preparing H, the G-step's eigendecomposition
// and the refinement's seconds per iteration at LLaMA-7B shapes.

#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <omp.h>

#include <Eigen/Eigenvalues>

#include "mdbf/base/run_context.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/input_gram.h"
#include "mdbf/factor/symmetric_eigen.h"

#include "bench_factor_support.h"

namespace mdbf::bench {

using namespace mdbf::factor;

namespace {

// H = D (B Bᵀ / r + 0.1 I) D for B m×r Gaussian (r = 256 shared directions) and D log-normal
// channel scales (σ = 1): correlated channels of very different sizes, as real inputs have.
Eigen::MatrixXd syntheticInputGram(Eigen::Index m, unsigned seed)
{
    const Eigen::Index r = 256;
    std::mt19937 gen(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    Eigen::MatrixXd b(m, r);
    for (Eigen::Index i = 0; i < b.size(); ++i) b.data()[i] = normal(gen);
    Eigen::VectorXd d(m);
    for (Eigen::Index i = 0; i < m; ++i) d[i] = std::exp(normal(gen));
    Eigen::MatrixXd h = b * b.transpose() / static_cast<double>(r);
    h.diagonal().array() += 0.1;
    return d.asDiagonal() * h * d.asDiagonal();
}

}  // namespace

void benchGram(const std::vector<std::pair<int, int>>& sizes, int threads, int iters, bool baseline)
{
    std::printf("\n== gram objective at 7B shapes, random BF16 weights, 1.0 bpw, l = 1, %d threads ==\n", threads);
    std::printf("%-11s %-44s %10s\n", "size", "stage", "seconds");
    for (const auto& [n, m] : sizes) {
        const RowMatrixF W = bf16Gaussian(n, m, 7u);
        const Eigen::MatrixXd h = syntheticInputGram(m, 11u);
        auto row = [&](const std::string& stage, double seconds) {
            std::printf("%5dx%-5d %-44s %10.2f\n", n, m, stage.c_str(), seconds);
            std::fflush(stdout);
        };
        omp_set_num_threads(threads);
        auto t0 = Clock::now();
        const auto prepared = std::make_shared<const InputGram>(InputGram::prepare(h, 1e-2));
        row("input Gram prepared (" + std::to_string(m) + "², LAPACK)", since(t0));
        if (baseline && m <= 4096) {
            t0 = Clock::now();
            const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(prepared->matrix().cast<double>());
            row("  its eigendecomposition, Eigen (previous)", since(t0));
        }
        const BitBudget b = computeBitBudget(n, m, Bpw::parse("1.0"), Method::Mdbf, 1, 1);
        if (baseline) {
            // FᵀF of a random start stands in for the G-step's k×k matrix.
            MatrixF F0, G0;
            randomStart(n, m, b.k, 1, F0, G0);
            const Eigen::MatrixXd ftf = (F0.transpose() * F0).cast<double>();
            t0 = Clock::now();
            const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(ftf);
            row("G-step eigendecomposition " + std::to_string(b.k) + "², Eigen (previous)", since(t0));
            Eigen::MatrixXd vectors = ftf;
            t0 = Clock::now();
            symmetricEigen(vectors);
            row("G-step eigendecomposition " + std::to_string(b.k) + "², DSYEVD", since(t0));
        }
        FactorizerOptions o;
        o.bpw = Bpw::parse("1.0");
        o.objective = Objective::Gram;
        o.inputGram = h;
        o.damping = 1e-2;
        o.preparedGram = prepared;  // as a plan or the studio hands it over
        o.outerIterations = iters;
        std::vector<double> stamps;
        RunContext ctx;
        ctx.threads = threads;
        t0 = Clock::now();
        o.onIteration = [&](const IterationReport&) { stamps.push_back(since(t0)); };
        const FactorResult r = Factorizer(o).run(W, ctx);
        row("decomposition of W·R (k = " + std::to_string(b.k) + ")", r.svdSeconds);
        row("refinement, s/iteration", (stamps.back() - stamps.front()) / static_cast<double>(stamps.size() - 1));
        std::printf("      error (gram): closed form %.5f, after %d iterations %.5f\n", r.initialError, r.iterations,
                    r.finalError);
    }
}

}  // namespace mdbf::bench
