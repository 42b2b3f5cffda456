#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include "matrix_compare.h"
#include "mdbf/base/error.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/model/dense_linear.h"
#include "mdbf/model/transformer.h"
#include "test_fixtures.h"

namespace mdbf::model {
namespace {

std::vector<float> readFloats(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    in.seekg(0, std::ios::end);
    const auto bytes = static_cast<std::size_t>(in.tellg());
    in.seekg(0);
    std::vector<float> data(bytes / sizeof(float));
    in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(float)));
    return data;
}

/// Logits of the first 32 tokens of eval-small.txt against the transformers reference, every
/// vocabulary entry at every position, within 1e-3 absolute.
void checkReferenceLogits(const std::string& name)
{
    const test::ModelFixture fx = test::modelFixture(name);
    if (!fx.available) GTEST_SKIP() << "fixture model '" << name << "' not found at " << fx.modelDir;
    const nlohmann::json ref = test::readReference(fx);
    const std::vector<std::int32_t> ids = ref["logits_first32"]["input_ids"].get<std::vector<std::int32_t>>();
    ASSERT_EQ(ids.size(), 32u);

    const Transformer model = Transformer::load(fx.modelDir);
    const RowMatrixF logits = model.forward(ids, 2);
    const std::vector<float> expected = readFloats(fx.logits);
    const auto vocab = static_cast<std::size_t>(model.config().vocabSize);
    ASSERT_EQ(expected.size(), 32 * vocab);
    const Eigen::Map<const RowMatrixF> expectedMatrix(expected.data(), 32, static_cast<Eigen::Index>(vocab));
    EXPECT_TRUE(test::allClose(logits, expectedMatrix, 0.0, 1e-3));
}

TEST(Transformer, TinyLlamaLogitsMatchReference) { checkReferenceLogits("tiny-llama"); }
TEST(Transformer, SmallLlamaLogitsMatchReference) { checkReferenceLogits("small-llama"); }
TEST(Transformer, MediumLlamaShardedLogitsMatchReference) { checkReferenceLogits("medium-llama"); }

TEST(Transformer, ListsEveryProjectionAndHead)
{
    const Transformer model = Transformer::load(test::demoModel());
    const auto names = model.linearNames();
    EXPECT_EQ(names.size(), static_cast<std::size_t>(model.config().numLayers * 7 + 1));
    EXPECT_EQ(names.front(), "model.layers.0.self_attn.q_proj");
    EXPECT_EQ(names.back(), "lm_head");
    EXPECT_EQ(model.linear("model.layers.3.mlp.down_proj.weight").outFeatures(), model.config().hiddenSize);
    EXPECT_EQ(model.linear("model.layers.3.mlp.down_proj").inFeatures(), model.config().intermediateSize);
    EXPECT_THROW(model.linear("model.layers.9.mlp.down_proj"), InvalidArgument);
    EXPECT_THROW(model.linear("model.layers.x.mlp.down_proj"), InvalidArgument);
}

TEST(Transformer, ReplacingALayerChangesOnlyThroughTheInterface)
{
    Transformer model = Transformer::load(test::demoModel());
    const std::vector<std::int32_t> ids = {5, 17, 300, 42, 9, 1000, 77};
    const RowMatrixF before = model.forward(ids, 1);

    const std::string name = "model.layers.1.mlp.up_proj";
    const auto& dense = dynamic_cast<const DenseLinear&>(model.linear(name));
    RowMatrixF w = dense.weight();
    model.replaceLinear(name, std::make_shared<DenseLinear>(w));
    EXPECT_TRUE(test::allClose(model.forward(ids, 1), before, 0.0, 1e-6));

    w *= 0.5f;
    model.replaceLinear(name, std::make_shared<DenseLinear>(w));
    const RowMatrixF after = model.forward(ids, 1);
    EXPECT_GT((after - before).cwiseAbs().maxCoeff(), 1e-3f);

    EXPECT_THROW(model.replaceLinear(name, std::make_shared<DenseLinear>(RowMatrixF::Zero(3, 4))), InvalidArgument);
}

TEST(Transformer, ThreadCountDoesNotChangeLogits)
{
    const Transformer model = Transformer::load(test::demoModel());
    const std::vector<std::int32_t> ids = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    // Different GEMM blockings round differently; agreement is to float rounding of the logits.
    EXPECT_TRUE(test::allClose(model.forward(ids, 1), model.forward(ids, 2), 1e-5, 1e-5));
}

TEST(Transformer, PrefixLogitsDoNotDependOnLaterTokens)
{
    // Causality: the logits of a prefix are the first rows of the longer window's logits, to float
    // rounding (windows of different length take different GEMM blockings); a leak from later
    // tokens would change them by orders of magnitude more.
    const Transformer model = Transformer::load(test::demoModel());
    const std::vector<std::int32_t> ids = {11, 22, 33, 44, 55, 66};
    const RowMatrixF full = model.forward(ids, 2);
    const RowMatrixF prefix = model.forward(std::span(ids).first(3), 2);
    EXPECT_TRUE(test::allClose(full.topRows(3), prefix, 1e-5, 1e-5));
}

TEST(Transformer, RejectsBadTokenIdsAndEmptyWindows)
{
    const Transformer model = Transformer::load(test::demoModel());
    const std::vector<std::int32_t> bad = {1, model.config().vocabSize};
    EXPECT_THROW(model.forward(bad, 1), InvalidArgument);
    const std::vector<std::int32_t> negative = {-1};
    EXPECT_THROW(model.forward(negative, 1), InvalidArgument);
    EXPECT_THROW(model.forward(std::span<const std::int32_t>(), 1), InvalidArgument);
}

TEST(Transformer, ShapeMismatchWithConfigNamesTensorAndFile)
{
    test::TempDir dir;
    std::filesystem::copy(test::demoModel() / "model.safetensors", dir / "model.safetensors");
    std::ifstream in(test::demoModel() / "config.json");
    nlohmann::json config = nlohmann::json::parse(in);
    config["intermediate_size"] = 360;  // the stored MLP weights are 352 wide
    std::ofstream(dir / "config.json") << config.dump();
    try {
        (void)Transformer::load(dir.path());
        FAIL() << "expected a FormatError";
    } catch (const FormatError& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("mlp.gate_proj.weight"), std::string::npos) << message;
        EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
        EXPECT_NE(message.find("360"), std::string::npos) << message;
    }
}

TEST(Transformer, LoadingCanBeCancelled)
{
    std::stop_source stop;
    stop.request_stop();
    RunContext ctx;
    ctx.stop = stop.get_token();
    EXPECT_THROW((void)Transformer::load(test::demoModel(), ctx), Cancelled);
}

}  // namespace
}  // namespace mdbf::model
