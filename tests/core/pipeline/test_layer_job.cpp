// One layer through the engine's per-layer chain: the sampled closed-form preview and the view that
// completes it with exact errors and the residual.

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <span>
#include <string>

#include "mdbf/factor/layer_svd.h"
#include "mdbf/factor/path_products.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/pipeline/layer_job.h"
#include "test_fixtures.h"

namespace mdbf::pipeline {
namespace {

LayerJob diagonalJob(Eigen::Index m)
{
    LayerJob job;
    job.settings.method = factor::Method::Mdbf;
    job.settings.l = 2;
    job.settings.bpw = factor::Bpw::parse("1.5");
    job.settings.iterations = 0;
    job.settings.objective = Objective::DiagonalWeighted;
    // Channel weights spread over two orders of magnitude, as activations' second moments are.
    job.statistics.channelWeights = VectorF(m);
    for (Eigen::Index j = 0; j < m; ++j)
        job.statistics.channelWeights[j] = static_cast<float>(0.01 + std::pow(static_cast<double>(j % 17) / 16.0, 3.0));
    return job;
}

TEST(LayerJob, ViewOfASampledPreviewHasTheExactErrorsAndTheResidual)
{
    const io::Checkpoint ckpt = io::Checkpoint::open(test::demoModel());
    const RowMatrixF W = ckpt.matrix("model.layers.1.mlp.gate_proj.weight");
    const LayerJob job = diagonalJob(W.cols());
    const std::shared_ptr<const factor::LayerSvd> svd = decomposeLayer(W, job);

    const factor::FactorResult exact = factorizeLayer(W, *svd, job, 0);
    factor::FactorResult preview = previewLayer(W, *svd, job, 40);
    ASSERT_EQ(exact.errorSampleRows, 0);
    ASSERT_EQ(preview.errorSampleRows, 40);
    EXPECT_NE(preview.finalError, exact.finalError);

    const LayerView view = describeLayer(W, *svd, preview, job);
    EXPECT_EQ(preview.errorSampleRows, 0);
    EXPECT_NEAR(preview.finalError, exact.finalError, 1e-6);
    EXPECT_NEAR(preview.initialError, exact.initialError, 1e-6);
    EXPECT_NEAR(preview.finalPlainError, exact.finalPlainError, 1e-6);
    EXPECT_EQ(preview.message.find("estimated"), std::string::npos);

    // The residual is W − Ŵ to FP16 rounding (relative 2⁻¹¹, plus float rounding of Ŵ).
    ASSERT_TRUE(view.residual);
    const RowMatrixF residual = W - factor::reconstruct(exact.paths);
    ASSERT_EQ(view.residual->rows(), W.rows());
    ASSERT_EQ(view.residual->cols(), W.cols());
    for (Eigen::Index i = 0; i < W.rows(); i += 7)
        for (Eigen::Index j = 0; j < W.cols(); j += 5)
            EXPECT_NEAR(static_cast<float>((*view.residual)(i, j)), residual(i, j),
                        std::abs(residual(i, j)) * 0x1p-11 + 1e-6);

    // An exact result passes through unchanged.
    factor::FactorResult same = exact;
    describeLayer(W, *svd, same, job);
    EXPECT_EQ(same.finalError, exact.finalError);
    EXPECT_EQ(same.message, exact.message);
}

// The Gram weighting prepared once on the job is what its options hand to every factorization,
// and the result is the one each run gets by preparing its own.
TEST(LayerJob, PreparedGramIsSharedByTheJobsFactorizations)
{
    const io::Checkpoint ckpt = io::Checkpoint::open(test::demoModel());
    const RowMatrixF W = ckpt.matrix("model.layers.1.mlp.gate_proj.weight");
    LayerJob job = diagonalJob(W.cols());
    job.settings.objective = Objective::Gram;
    job.settings.iterations = 4;
    // XᵀX / N of activations with two shared directions over independent noise.
    RowMatrixF x = RowMatrixF::Random(4 * W.cols(), W.cols());
    x.col(0) *= 5.0f;
    x.col(1) += 3.0f * x.col(0);
    job.statistics.inputGram = (x.transpose() * x).cast<double>() / static_cast<double>(x.rows());

    const std::shared_ptr<const factor::LayerSvd> svd = decomposeLayer(W, job);
    const factor::FactorResult own = factorizeLayer(W, *svd, job, -1);
    EXPECT_FALSE(job.options().preparedGram);

    job.prepareGram();
    ASSERT_TRUE(job.statistics.preparedGram);
    EXPECT_EQ(job.options().preparedGram, job.statistics.preparedGram);
    const std::shared_ptr<const factor::InputGram> first = job.statistics.preparedGram;
    job.prepareGram();  // already prepared: kept
    EXPECT_EQ(job.statistics.preparedGram, first);
    const factor::FactorResult shared = factorizeLayer(W, *svd, job, -1);
    EXPECT_EQ(shared.finalError, own.finalError);
    EXPECT_EQ(factor::reconstruct(shared.paths), factor::reconstruct(own.paths));

    LayerJob diagonal = diagonalJob(W.cols());
    diagonal.prepareGram();  // another objective: nothing to prepare
    EXPECT_FALSE(diagonal.statistics.preparedGram);
}

// Resident file-backed memory of this process in KiB (/proc/self/status), −1 when unknown.
long residentFileKiB()
{
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("RssFile:", 0) == 0) return std::stol(line.substr(8));
    return -1;
}

TEST(LayerJob, LoadedWeightsLeaveTheirMappedBytesOutOfResidentMemory)
{
    const io::Checkpoint ckpt = io::Checkpoint::open(test::sharedFixtures() / "medium-llama");
    const std::string layer = "model.layers.0.mlp.down_proj";
    const std::span<const std::byte> bytes = ckpt.raw(layer + ".weight");  // 1024×2816 BF16: 5.8 MB
    // Every page touched, as a reader that keeps them would leave them.
    std::uint8_t sum = 0;
    for (std::size_t i = 0; i < bytes.size(); i += 4096) sum = static_cast<std::uint8_t>(sum + std::to_integer<std::uint8_t>(bytes[i]));
    const long touched = residentFileKiB();
    ASSERT_GT(touched, 0) << "no RssFile in /proc/self/status" << static_cast<int>(sum);
    const RowMatrixF W = loadLayerWeights(ckpt, layer);
    EXPECT_EQ(W.rows(), 1024);
    const long tensorKiB = static_cast<long>(bytes.size() / 1024);
    // At least three quarters of the tensor's pages left resident memory (neighbours may be touched).
    EXPECT_LT(residentFileKiB(), touched - tensorKiB * 3 / 4);
}

}  // namespace
}  // namespace mdbf::pipeline
