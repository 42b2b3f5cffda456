// The point of the activation-aware objectives (docs/ALGORITHM.md §6): at the same bit budget, statistics
// gathered on one part of a text make the factorized layers reproduce their outputs on another part
// better. The held-out output error ‖(W − Ŵ) Xᵀ‖_F is computed from activations captured by the
// test's own wrapper, as sqrt(tr(E S Eᵀ)) with S = Σ x xᵀ over the held-out tokens.

#include <cstdio>

#include <Eigen/QR>
#include <gtest/gtest.h>

#include "calibration_test_util.h"
#include "matrix_compare.h"
#include "mdbf/base/error.h"
#include "mdbf/eval/calibration.h"
#include "mdbf/pipeline/quantize.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/path_products.h"
#include "random_matrix.h"

namespace mdbf::eval {
namespace {

constexpr int kWindow = 128;

double heldOutError(const RowMatrixF& W, const RowMatrixF& approx, const Eigen::MatrixXd& outerSum)
{
    const Eigen::MatrixXd e = (W - approx).cast<double>();
    return std::sqrt(std::max(0.0, ((e * outerSum).array() * e.array()).sum()));
}

TEST(CalibrationObjectivesSlow, DiagBeatsPlainAndGramBeatsDiagOnHeldOutOutputs)
{
    const std::vector<std::int32_t> ids = test::demoTokens();
    ASSERT_GT(ids.size(), 9000u);
    // Calibration on the first 40 windows, evaluation on the last 27, with a gap between them.
    const std::span<const std::int32_t> calibration(ids.data(), 40 * kWindow);
    const std::span<const std::int32_t> heldOut(ids.data() + 44 * kWindow, ids.size() - 44 * kWindow);

    model::Transformer model = model::Transformer::load(test::demoModel());
    CalibrationOptions options;
    options.ctx = kWindow;
    options.gram = true;
    RunContext run;
    run.threads = 2;
    const CalibrationStats stats = collectCalibration(model, calibration, options, run);
    std::printf("calibration: %lld tokens, %.2f s\n", static_cast<long long>(stats.tokens), stats.seconds);

    model::Transformer evaluation = model::Transformer::load(test::demoModel());
    std::vector<std::pair<std::string, std::shared_ptr<test::CapturingLinear>>> captures;
    for (const std::string& name : evaluation.linearNames()) captures.emplace_back(name, test::capture(evaluation, name));
    test::runWindows(evaluation, heldOut, kWindow);

    double sum[3] = {0.0, 0.0, 0.0};
    double sumBlocks[3] = {0.0, 0.0, 0.0};  // without the output head, whose error dominates the sum
    int diagWins = 0;
    int gramWins = 0;
    for (const auto& [name, capturing] : captures) {
        const RowMatrixF& W = capturing->inner().weight();
        const LayerCalibration& layer = stats.layer(name);
        double error[3];
        for (int o = 0; o < 3; ++o) {
            factor::FactorizerOptions fo;
            fo.method = factor::Method::Mdbf;
            fo.bpw = factor::Bpw::parse("1.5");
            fo.l = 1;
            fo.outerIterations = 60;
            fo.objective = o == 0 ? factor::Objective::Plain
                                  : (o == 1 ? factor::Objective::DiagonalWeighted : factor::Objective::Gram);
            if (o == 1) fo.channelWeights = layer.channelWeights();
            if (o == 2) fo.inputGram = layer.gram;
            const factor::FactorResult r = factor::Factorizer(fo).run(W, run);
            ASSERT_NE(r.termination, factor::Termination::Failed) << name << ": " << r.message;
            error[o] = heldOutError(W, factor::reconstruct(r.paths, 2), capturing->outerSum());
            sum[o] += error[o];
            if (name != "lm_head") sumBlocks[o] += error[o];
        }
        diagWins += error[1] < error[0] ? 1 : 0;
        gramWins += error[2] < error[1] ? 1 : 0;
        std::printf("%-34s plain %9.4f  diag %9.4f  gram %9.4f\n", name.c_str(), error[0], error[1], error[2]);
    }
    const int layers = static_cast<int>(captures.size());
    std::printf("sum over %d layers: plain %.4f  diag %.4f  gram %.4f; diag beats plain on %d, gram beats diag on %d\n",
                layers, sum[0], sum[1], sum[2], diagWins, gramWins);
    std::printf("without lm_head: plain %.4f  diag %.4f  gram %.4f\n", sumBlocks[0], sumBlocks[1], sumBlocks[2]);
    EXPECT_LT(sum[1], sum[0]);
    EXPECT_LT(sum[2], sum[1]);
    EXPECT_LT(sumBlocks[1], sumBlocks[0]);
    EXPECT_LT(sumBlocks[2], sumBlocks[1]);
    EXPECT_GT(diagWins, layers / 2) << "diag should beat plain on most layers";
}

}  // namespace
}  // namespace mdbf::eval

namespace mdbf::eval {
namespace {

// pipeline::outputMatchingTarget against an independent least-squares solve: with λ = 0 the unconstrained
// minimiser of ‖X̃Ŵᵀ − X Wᵀ‖_F over Ŵ is W*, whatever the two input sets are.
TEST(OutputMatchingTarget, IsTheLeastSquaresFitOfTheOriginalOutputs)
{
    const Eigen::Index N = 400, m = 24, n = 10;
    const Eigen::MatrixXd X = test::gaussianMatrix<Eigen::MatrixXf>(N, m, 11).cast<double>();
    const Eigen::MatrixXd Xq = X + 0.3 * test::gaussianMatrix<Eigen::MatrixXf>(N, m, 12).cast<double>();
    const RowMatrixF W = test::gaussianMatrix(n, m, 13);
    const Eigen::MatrixXd H = Xq.transpose() * Xq / static_cast<double>(N);
    const Eigen::MatrixXd C = Xq.transpose() * X / static_cast<double>(N);

    const Eigen::MatrixXd Y = X * W.cast<double>().transpose();  // N×n original outputs
    const Eigen::MatrixXd fitT = Xq.colPivHouseholderQr().solve(Y);  // m×n
    const RowMatrixF fit = fitT.transpose().cast<float>();
    const RowMatrixF target = pipeline::outputMatchingTarget(W, H, C, 0.0);
    EXPECT_TRUE(test::allClose(target, fit, 1e-4, 1e-5));
    EXPECT_GT((target - W).norm(), 0.05 * W.norm());  // the inputs differ, so the target moves

    // Damping only shrinks the correction towards W.
    const RowMatrixF damped = pipeline::outputMatchingTarget(W, H, C, 0.1);
    EXPECT_LT((damped - W).norm(), (target - W).norm());

    // Equal inputs: the target is W itself, to the bit.
    EXPECT_TRUE(pipeline::outputMatchingTarget(W, H, H, 0.01) == W);

    EXPECT_THROW(pipeline::outputMatchingTarget(W, H.topLeftCorner(m - 1, m - 1), C, 0.01), InvalidArgument);
    EXPECT_THROW(pipeline::outputMatchingTarget(W, H, C, -1.0), InvalidArgument);
    EXPECT_THROW(pipeline::outputMatchingTarget(W, Eigen::MatrixXd::Zero(m, m), C, 0.01), InvalidArgument);
}

}  // namespace
}  // namespace mdbf::eval
