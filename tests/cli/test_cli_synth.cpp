// `mdbf synth`: the generated checkpoint loads with the project's own readers and runs; the
// structured option changes the weight statistics it promises; bad sizes are usage errors and no
// output is left behind.

#include <cmath>
#include <fstream>
#include <set>

#include <Eigen/SVD>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/model/transformer.h"
#include "mdbf/tokenizer/tokenizer.h"

namespace mdbf::test {
namespace {

// ~4.4 MB of BF16 tensors: five or six 1-MiB shards.
const std::vector<std::string> kSmall = {"--hidden", "256", "--intermediate", "688", "--layers", "2", "--heads", "4",
                                         "--kv-heads", "2", "--vocab", "1000", "--shard-mb", "1"};

CliResult synth(const std::filesystem::path& out, std::vector<std::string> sizes, std::vector<std::string> extra = {})
{
    std::vector<std::string> args = {"synth", "--out", out.string()};
    args.insert(args.end(), sizes.begin(), sizes.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return runCli(args);
}

/// Coefficient of variation (std / mean) of the L2 norms of the rows (or columns) of M.
double normSpread(const Eigen::MatrixXd& M, bool rows)
{
    const Eigen::VectorXd norms = rows ? Eigen::VectorXd(M.rowwise().norm()) : Eigen::VectorXd(M.colwise().norm().transpose());
    const double mean = norms.mean();
    return std::sqrt((norms.array() - mean).square().mean()) / mean;
}

TEST(CliSynth, ShardedCheckpointLoadsAndRuns)
{
    TempDir dir;
    const std::filesystem::path out = dir / "model";
    const nlohmann::json j = onlyJson(synth(out, kSmall, {"--json"}));
    ASSERT_TRUE(j.contains("files"));

    const io::Checkpoint ckpt = io::Checkpoint::open(out);
    // embed, lm_head, final norm, and per layer 2 norms + 7 projections.
    EXPECT_EQ(ckpt.tensors().size(), 3u + 2u * 9u);
    EXPECT_EQ(j["tensors"].get<std::size_t>(), ckpt.tensors().size());
    EXPECT_EQ(j["bytes"].get<std::uint64_t>(), ckpt.totalBytes());
    for (const io::TensorInfo& t : ckpt.tensors()) EXPECT_EQ(t.dtype, io::DType::BF16) << t.name;
    EXPECT_EQ(ckpt.info("model.layers.1.self_attn.k_proj.weight").shape, (std::vector<std::int64_t>{128, 256}));
    EXPECT_EQ(ckpt.info("model.layers.0.mlp.down_proj.weight").shape, (std::vector<std::int64_t>{256, 688}));

    const auto index = nlohmann::json::parse(slurp(out / "model.safetensors.index.json"));
    std::set<std::string> shards;
    for (const auto& [name, file] : index["weight_map"].items()) shards.insert(file.get<std::string>());
    EXPECT_GE(shards.size(), 4u);
    EXPECT_TRUE(shards.count("model-00001-of-0000" + std::to_string(shards.size()) + ".safetensors"));
    EXPECT_EQ(index["metadata"]["total_size"].get<std::uint64_t>(), ckpt.totalBytes());

    const io::ModelConfig config = io::ModelConfig::fromFile(out / "config.json");
    EXPECT_EQ(config.hiddenSize, 256);
    EXPECT_EQ(config.numKvHeads, 2);
    EXPECT_EQ(config.vocabSize, 1000);

    const Tokenizer tokenizer = Tokenizer::fromModelDir(out);
    const std::string text = "the quick brown fox jumps over the lazy dog, 42 times!";
    const std::vector<std::int32_t> ids = tokenizer.encode(text);
    ASSERT_FALSE(ids.empty());
    EXPECT_LT(ids.size(), text.size());  // the merges do join letters
    for (std::int32_t id : ids) EXPECT_LT(id, config.vocabSize);
    EXPECT_EQ(tokenizer.decode(ids), text);

    const model::Transformer model = model::Transformer::load(out);
    const RowMatrixF logits = model.forward(ids, 2);
    ASSERT_EQ(logits.rows(), static_cast<Eigen::Index>(ids.size()));
    ASSERT_EQ(logits.cols(), 1000);
    EXPECT_TRUE(logits.allFinite());
    EXPECT_GT(logits.cwiseAbs().maxCoeff(), 0.0f);
}

TEST(CliSynth, SameSeedSameBytesWhateverTheThreads)
{
    TempDir dir;
    const std::vector<std::string> sizes = {"--hidden", "64", "--intermediate", "200", "--layers", "1", "--heads", "2",
                                            "--vocab", "300", "--structured"};
    ASSERT_EQ(runCli({"--threads", "1", "synth", "--out", (dir / "a").string(), "--hidden", "64", "--intermediate", "200",
                      "--layers", "1", "--heads", "2", "--vocab", "300", "--structured", "--seed", "9"})
                  .exitCode,
              0);
    ASSERT_EQ(runCli({"--threads", "2", "synth", "--out", (dir / "b").string(), "--hidden", "64", "--intermediate", "200",
                      "--layers", "1", "--heads", "2", "--vocab", "300", "--structured", "--seed", "9"})
                  .exitCode,
              0);
    EXPECT_EQ(slurp(dir / "a" / "model.safetensors"), slurp(dir / "b" / "model.safetensors"));
    EXPECT_EQ(synth(dir / "c", sizes, {"--seed", "10"}).exitCode, 0);
    EXPECT_NE(slurp(dir / "a" / "model.safetensors"), slurp(dir / "c" / "model.safetensors"));
}

TEST(CliSynth, StructuredWeightsHaveSpreadScalesOutliersAndADecayingSpectrum)
{
    TempDir dir;
    ASSERT_EQ(synth(dir / "plain", kSmall).exitCode, 0);
    ASSERT_EQ(synth(dir / "structured", kSmall, {"--structured"}).exitCode, 0);
    const io::Checkpoint plain = io::Checkpoint::open(dir / "plain");
    const io::Checkpoint structured = io::Checkpoint::open(dir / "structured");
    for (const char* name : {"model.layers.0.mlp.up_proj.weight", "model.layers.1.self_attn.o_proj.weight"}) {
        SCOPED_TRACE(name);
        const Eigen::MatrixXd p = plain.matrix(name).cast<double>();
        const Eigen::MatrixXd s = structured.matrix(name).cast<double>();
        // Gaussian rows of 256 entries: spread ≈ 1/sqrt(512) ≈ 0.04; log-normal scales σ = 0.5: ≈ 0.5.
        EXPECT_LT(normSpread(p, true), 0.1);
        EXPECT_LT(normSpread(p, false), 0.1);
        EXPECT_GT(normSpread(s, true), 0.3);
        EXPECT_GT(normSpread(s, false), 0.3);
        // Outlier input channels: the largest column norm far above the median one.
        Eigen::VectorXd cols = s.colwise().norm().transpose();
        std::sort(cols.begin(), cols.end());
        EXPECT_GT(cols[cols.size() - 1], 5.0 * cols[cols.size() / 2]);
        // Spectrum: the leading singular values stand far above the bulk (Gaussian: ≈ 1.6×).
        const Eigen::VectorXd sp = Eigen::BDCSVD<Eigen::MatrixXd>(p).singularValues();
        const Eigen::VectorXd ss = Eigen::BDCSVD<Eigen::MatrixXd>(s).singularValues();
        EXPECT_LT(sp[0] / sp[sp.size() / 2], 2.5);
        EXPECT_GT(ss[0] / ss[ss.size() / 2], 5.0);
        EXPECT_GT(ss[4] / ss[ss.size() / 2], 2.5);
        // Comparable overall magnitude (initializer_range 0.02).
        const double rmsP = p.norm() / std::sqrt(double(p.size()));
        const double rmsS = s.norm() / std::sqrt(double(s.size()));
        EXPECT_NEAR(rmsP, 0.02, 0.002);
        EXPECT_GT(rmsS, 0.005);
        EXPECT_LT(rmsS, 0.08);
    }
}

TEST(CliSynth, BadSizesAreUsageErrors)
{
    TempDir dir;
    const std::filesystem::path out = dir / "model";
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--hidden", "64", "--heads", "5"}, "--heads"},
        {{"--hidden", "60", "--heads", "4", "--kv-heads", "4"}, "odd"},  // head dim 15
        {{"--hidden", "64", "--heads", "4", "--kv-heads", "3"}, "--kv-heads"},
        {{"--hidden", "64", "--heads", "4", "--vocab", "100"}, "--vocab"},
        {{"--hidden", "0"}, "--hidden"},
        {{"--hidden", "64", "--heads", "4", "--layers", "0"}, "--layers"},
        {{"--hidden", "64", "--heads", "4", "--intermediate", "-3"}, "--intermediate"},
        {{"--hidden", "abc"}, "--hidden"},
        {{"--hidden", "64", "--heads", "4", "--shard-mb", "0"}, "--shard-mb"},
    };
    for (const auto& [args, mention] : cases) {
        const CliResult r = synth(out, args);
        EXPECT_EQ(r.exitCode, 2) << mention << ": " << r.err;
        EXPECT_FALSE(r.signaled);
        EXPECT_NE(r.err.find(mention), std::string::npos) << r.err;
        EXPECT_FALSE(std::filesystem::exists(out)) << mention;
    }
    EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(CliSynth, RefusesANonEmptyOutputAndLeavesNothingBehind)
{
    TempDir dir;
    const std::filesystem::path out = dir / "model";
    std::filesystem::create_directory(out);
    std::ofstream(out / "keep.txt") << "mine";
    const CliResult r = synth(out, {"--hidden", "64", "--heads", "4", "--intermediate", "100", "--layers", "1", "--vocab", "300"});
    EXPECT_EQ(r.exitCode, 1) << r.err;
    EXPECT_NE(r.err.find("not an empty directory"), std::string::npos) << r.err;
    EXPECT_EQ(slurp(out / "keep.txt"), "mine");
    std::size_t entries = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
    EXPECT_EQ(entries, 1u);  // no temporary folder left
}

}  // namespace
}  // namespace mdbf::test
