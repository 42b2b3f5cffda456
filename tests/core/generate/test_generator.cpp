#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/pipeline/quantize.h"
#include "mdbf/generate/generator.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/deploy/package_model.h"
#include "mdbf/io/package.h"
#include "mdbf/model/dense_linear.h"
#include "test_fixtures.h"

namespace mdbf::generate {
namespace {

struct Demo {
    model::Transformer model;
    Tokenizer tokenizer;
};

/// The demo model with config.json's fields changed by `edit` (e.g. another eos or context).
Demo demoWith(const std::function<void(io::ModelConfig&)>& edit = {})
{
    io::ModelConfig config = io::ModelConfig::fromFile(test::demoModel() / "config.json");
    if (edit) edit(config);
    const io::Checkpoint ckpt = io::Checkpoint::open(test::demoModel());
    return {model::Transformer::fromCheckpoint(config, ckpt),
            Tokenizer::fromFile(test::demoModel() / "tokenizer.json")};
}

GenerationOptions greedy(int maxTokens, bool ignoreEos = true)
{
    GenerationOptions o;
    o.maxTokens = maxTokens;
    o.ignoreEos = ignoreEos;
    return o;
}

TEST(Generator, GreedyTokensAreTheArgmaxOfTheFullForwardOverTheirPrefix)
{
    const Demo demo = demoWith();
    const std::vector<std::int32_t> prompt = demo.tokenizer.encode("Once upon a time, the");
    std::string streamed;
    const GenerationResult r = generate(demo.model, demo.tokenizer, prompt, greedy(24), RunContext{{}, {}, 2},
                                        [&](std::string_view piece) { streamed += piece; });
    ASSERT_EQ(r.ids.size(), 24u);
    EXPECT_EQ(r.stop, StopReason::MaxTokens);
    EXPECT_EQ(r.promptIds, prompt);
    EXPECT_EQ(r.decodeSteps, 23);
    std::vector<std::int32_t> sequence = prompt;
    for (const std::int32_t id : r.ids) {
        const RowMatrixF logits = demo.model.forward(sequence, 1);
        Eigen::Index best = 0;
        logits.row(logits.rows() - 1).maxCoeff(&best);
        EXPECT_EQ(id, static_cast<std::int32_t>(best)) << "at generated position " << sequence.size() - prompt.size();
        sequence.push_back(id);
    }
    EXPECT_EQ(r.text, demo.tokenizer.decode(r.ids));
    EXPECT_EQ(streamed, r.text);
    EXPECT_GT(r.prefillTokensPerSecond(), 0.0);
    EXPECT_GT(r.decodeTokensPerSecond(), 0.0);
}

TEST(Generator, StopsAtTheEndOfSequenceTokenUnlessTold)
{
    const Demo plain = demoWith();
    const std::vector<std::int32_t> prompt = plain.tokenizer.encode("The river");
    const GenerationResult free = generate(plain.model, plain.tokenizer, prompt, greedy(12));
    ASSERT_EQ(free.ids.size(), 12u);
    // Declare the fourth generated token the end of sequence: generation must stop right there.
    const std::int32_t eos = free.ids[3];
    const Demo withEos = demoWith([&](io::ModelConfig& c) { c.eosTokenIds = {eos}; });
    const GenerationResult stopped = generate(withEos.model, withEos.tokenizer, prompt, greedy(12, false));
    EXPECT_EQ(stopped.stop, StopReason::EndOfSequence);
    const auto firstEos = std::find(free.ids.begin(), free.ids.end(), eos) - free.ids.begin();
    ASSERT_EQ(stopped.ids.size(), static_cast<std::size_t>(firstEos + 1));
    EXPECT_TRUE(std::equal(stopped.ids.begin(), stopped.ids.end(), free.ids.begin()));
    const GenerationResult ignored = generate(withEos.model, withEos.tokenizer, prompt, greedy(12, true));
    EXPECT_EQ(ignored.ids, free.ids);
}

TEST(Generator, TheContextLimitEndsGeneration)
{
    const Demo demo = demoWith([](io::ModelConfig& c) { c.maxPositionEmbeddings = 10; });
    const std::vector<std::int32_t> prompt = {5, 17, 300, 42, 9, 1000};
    const GenerationResult r = generate(demo.model, demo.tokenizer, prompt, greedy(50));
    EXPECT_EQ(r.stop, StopReason::ContextFull);
    EXPECT_EQ(r.ids.size(), 4u);  // prompt and generated tokens together fill the 10 positions
    const std::vector<std::int32_t> full(10, 7);
    try {
        generate(demo.model, demo.tokenizer, full, greedy(5));
        FAIL() << "a prompt filling the context was accepted";
    } catch (const InvalidArgument& e) {
        EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
    }
}

TEST(Generator, SamplingIsReproducibleWithASeedAndRefusesBadParameters)
{
    const Demo demo = demoWith();
    const std::vector<std::int32_t> prompt = demo.tokenizer.encode("In the morning");
    GenerationOptions o = greedy(16);
    o.sampling.temperature = 0.9;
    o.sampling.topK = 40;
    o.sampling.topP = 0.95;
    o.sampling.seed = 123;
    const GenerationResult a = generate(demo.model, demo.tokenizer, prompt, o);
    const GenerationResult b = generate(demo.model, demo.tokenizer, prompt, o);
    EXPECT_EQ(a.ids, b.ids);
    o.sampling.seed = 124;
    EXPECT_NE(generate(demo.model, demo.tokenizer, prompt, o).ids, a.ids);

    for (const auto& [temperature, topK, topP] :
         std::vector<std::tuple<double, int, double>>{{-1.0, 0, 1.0}, {1.0, -3, 1.0}, {1.0, 0, 0.0}, {1.0, 0, 1.2}}) {
        GenerationOptions bad = greedy(4);
        bad.sampling.temperature = temperature;
        bad.sampling.topK = topK;
        bad.sampling.topP = topP;
        EXPECT_THROW(generate(demo.model, demo.tokenizer, prompt, bad), InvalidArgument);
    }
    EXPECT_THROW(generate(demo.model, demo.tokenizer, prompt, greedy(0)), InvalidArgument);
    EXPECT_THROW(generate(demo.model, demo.tokenizer, std::vector<std::int32_t>{}, greedy(4)), InvalidArgument);
}

TEST(Generator, AStopRequestEndsGenerationWithWhatWasGenerated)
{
    const Demo demo = demoWith();
    std::stop_source stop;
    RunContext ctx;
    ctx.stop = stop.get_token();
    int pieces = 0;
    const GenerationResult r = generate(demo.model, demo.tokenizer, std::vector<std::int32_t>{5, 6, 7}, greedy(100), ctx,
                                        [&](std::string_view) {
                                            if (++pieces == 3) stop.request_stop();
                                        });
    EXPECT_EQ(r.stop, StopReason::Cancelled);
    EXPECT_GE(r.ids.size(), 3u);
    EXPECT_LT(r.ids.size(), 100u);
}

// The acceptance case: small-llama at 1.5 bpw (mdbf, l = 2, a few iterations); greedy generation of
// 48 tokens from the package equals that of its dense reconstruction loaded as a checkpoint.
TEST(GeneratorSlow, SmallLlamaPackageGeneratesWhatItsDenseReconstructionGenerates)
{
    const test::ModelFixture fx = test::modelFixture("small-llama");
    if (!fx.available) GTEST_SKIP() << "fixture model 'small-llama' not found at " << fx.modelDir;
    const io::ModelConfig config = io::ModelConfig::fromFile(fx.modelDir / "config.json");
    const io::Checkpoint ckpt = io::Checkpoint::open(fx.modelDir);
    pipeline::QuantizeOptions options;
    factor::LayerQuantSettings s;
    s.method = factor::Method::Mdbf;
    s.bpw = factor::Bpw::parse("1.5");
    s.l = 2;
    s.iterations = 8;
    options.config = factor::QuantConfig::uniform(s);
    const RunContext ctx{{}, {}, 2};
    const pipeline::QuantizeResult result = pipeline::quantizeCheckpoint(config, ckpt, options, ctx);
    const io::Package package = pipeline::makePackage(fx.modelDir, ckpt, result, options.config);
    const model::Transformer fromPackage = deploy::transformerFromPackage(package, "small.h5");

    model::Transformer reconstruction = model::Transformer::load(fx.modelDir);
    int replaced = 0;
    for (const pipeline::LayerQuantResult& r : result.layers) {
        if (!r.layer) continue;
        reconstruction.replaceLinear(r.name, std::make_shared<model::DenseLinear>(r.layer->reconstruct()));
        ++replaced;
    }
    ASSERT_EQ(replaced, 42);
    const Tokenizer tokenizer = Tokenizer::fromFile(fx.modelDir / "tokenizer.json");
    const std::vector<std::int32_t> prompt = tokenizer.encode(readUtf8File(fx.evalSmall).substr(0, 200));
    const GenerationResult a = generate(fromPackage, tokenizer, prompt, greedy(48), ctx);
    const GenerationResult b = generate(reconstruction, tokenizer, prompt, greedy(48), ctx);
    ASSERT_EQ(a.ids.size(), 48u);
    EXPECT_EQ(a.ids, b.ids);
    std::printf("small-llama 1.5 bpw package: %s\n", a.text.c_str());
}

}  // namespace
}  // namespace mdbf::generate
