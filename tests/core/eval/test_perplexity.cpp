#include <cmath>

#include <gtest/gtest.h>

#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/eval/perplexity.h"
#include "mdbf/tokenizer/tokenizer.h"
#include "test_fixtures.h"

namespace mdbf::eval {
namespace {

using test::PerplexityCase;

class ReferencePerplexity : public ::testing::TestWithParam<PerplexityCase> {};

/// eval-small.txt perplexity against the transformers reference within 0.1% relative.
TEST_P(ReferencePerplexity, MatchesTransformers)
{
    const PerplexityCase c = GetParam();
    const test::ModelFixture fx = test::modelFixture(c.model);
    if (!fx.available) GTEST_SKIP() << "fixture model '" << c.model << "' not found at " << fx.modelDir;
    const nlohmann::json ref = test::readReference(fx);
    const std::string key = "ppl_eval_small_ctx" + std::to_string(c.ctx);

    const Tokenizer tokenizer = Tokenizer::fromFile(fx.modelDir / "tokenizer.json");
    const std::vector<std::int32_t> ids = tokenizer.encode(readUtf8File(fx.evalSmall));
    ASSERT_EQ(ids.size(), ref["eval_small_tokens"].get<std::size_t>());
    const model::Transformer model = model::Transformer::load(fx.modelDir);
    RunContext run;
    run.threads = 2;
    const PerplexityResult r = perplexity(model, ids, c.ctx, run);
    EXPECT_FALSE(r.cancelled);
    EXPECT_EQ(r.predicted, ref[key + "_predicted"].get<std::int64_t>());
    const double expected = ref[key].get<double>();
    EXPECT_NEAR(r.ppl, expected, 1e-3 * expected) << c.model << " ctx " << c.ctx;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferencePerplexity,
                         ::testing::Values(PerplexityCase{"tiny-llama", 128}, PerplexityCase{"tiny-llama", 256},
                                           PerplexityCase{"small-llama", 128}, PerplexityCase{"small-llama", 256},
                                           PerplexityCase{"medium-llama", 128}, PerplexityCase{"medium-llama", 256}),
                         [](const auto& info) { return test::perplexityCaseName(info.param); });

TEST(WindowNll, EqualsDirectLogSoftmax)
{
    RowMatrixF logits(3, 4);
    logits << 1.0f, 2.0f, 3.0f, 4.0f,  //
        0.5f, -1.0f, 0.0f, 2.0f,       //
        9.0f, 9.0f, 9.0f, 9.0f;
    const std::vector<std::int32_t> ids = {0, 2, 3};
    double expected = 0.0;
    // Row 0 predicts ids[1] = 2, row 1 predicts ids[2] = 3; the last row predicts nothing.
    expected -= 3.0 - std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(4.0));
    expected -= 2.0 - std::log(std::exp(0.5) + std::exp(-1.0) + std::exp(0.0) + std::exp(2.0));
    EXPECT_NEAR(windowNll(logits, ids), expected, 1e-6);
}

class PerplexityOnDemo : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_model = std::make_unique<model::Transformer>(model::Transformer::load(test::demoModel()));
        const Tokenizer tokenizer = Tokenizer::fromFile(test::demoModel() / "tokenizer.json");
        m_ids = tokenizer.encode(readUtf8File(test::testData() / "eval-small.txt"));
    }
    std::unique_ptr<model::Transformer> m_model;
    std::vector<std::int32_t> m_ids;
};

TEST_F(PerplexityOnDemo, DropsTheFinalPartialWindow)
{
    const int ctx = 100;
    const std::vector<std::int32_t> ids(m_ids.begin(), m_ids.begin() + 250);
    const PerplexityResult r = perplexity(*m_model, ids, ctx);
    EXPECT_EQ(r.windows, 2);
    EXPECT_EQ(r.predicted, 2 * (ctx - 1));
    EXPECT_EQ(r.tokens, 250);
    EXPECT_TRUE(std::isfinite(r.ppl));
    EXPECT_GT(r.ppl, 1.0);
}

TEST_F(PerplexityOnDemo, TextShorterThanCtxIsAnError)
{
    const std::vector<std::int32_t> ids(m_ids.begin(), m_ids.begin() + 50);
    EXPECT_THROW(perplexity(*m_model, ids, 64), InvalidArgument);
    EXPECT_THROW(perplexity(*m_model, std::span<const std::int32_t>(), 64), InvalidArgument);
    EXPECT_THROW(perplexity(*m_model, ids, 1), InvalidArgument);
}

TEST_F(PerplexityOnDemo, ReportsProgressAndStopsWhenCancelled)
{
    std::stop_source stop;
    RunContext run;
    run.stop = stop.get_token();
    std::vector<std::int64_t> seen;
    run.progress = [&](const Progress& p) {
        seen.push_back(p.done);
        if (p.done == 2) stop.request_stop();
    };
    const PerplexityResult r = perplexity(*m_model, m_ids, 128, run);
    EXPECT_TRUE(r.cancelled);
    EXPECT_EQ(r.windows, 2);
    EXPECT_EQ(r.predicted, 2 * 127);
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.front(), 0);
    EXPECT_EQ(seen.back(), 2);
    EXPECT_TRUE(std::isfinite(r.ppl));
}

}  // namespace
}  // namespace mdbf::eval
