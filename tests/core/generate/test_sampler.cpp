#include <cmath>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "mdbf/base/error.h"
#include "mdbf/generate/sampler.h"

namespace mdbf::generate {
namespace {

SamplingOptions sampling(double temperature, int topK, double topP, std::uint64_t seed = 1)
{
    SamplingOptions o;
    o.temperature = temperature;
    o.topK = topK;
    o.topP = topP;
    o.seed = seed;
    return o;
}

TEST(Sampler, GreedyTakesTheLargestLogitAndTheLowestIdOnTies)
{
    Sampler greedy(sampling(0.0, 0, 1.0));
    const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
    EXPECT_EQ(greedy.next(logits), 1);
    EXPECT_EQ(argmax(logits), 1);
}

TEST(Sampler, RefusesBadOptionsAndNonFiniteLogits)
{
    EXPECT_THROW(Sampler(sampling(-0.1, 0, 1.0)), InvalidArgument);
    EXPECT_THROW(Sampler(sampling(NAN, 0, 1.0)), InvalidArgument);
    EXPECT_THROW(Sampler(sampling(1.0, -1, 1.0)), InvalidArgument);
    EXPECT_THROW(Sampler(sampling(1.0, 0, 0.0)), InvalidArgument);
    EXPECT_THROW(Sampler(sampling(1.0, 0, 1.5)), InvalidArgument);
    Sampler s(sampling(1.0, 0, 1.0));
    const std::vector<float> bad = {0.0f, NAN, 1.0f};
    try {
        s.next(bad);
        FAIL() << "a NaN logit was accepted";
    } catch (const InvalidArgument& e) {
        EXPECT_NE(std::string(e.what()).find("token id 1"), std::string::npos) << e.what();
    }
    EXPECT_THROW(s.next(std::vector<float>{}), InvalidArgument);
}

TEST(Sampler, TheSameSeedGivesTheSameDraws)
{
    const std::vector<float> logits = {0.1f, 0.4f, 0.3f, -0.2f, 0.0f, 0.25f};
    Sampler a(sampling(1.0, 0, 0.9, 42)), b(sampling(1.0, 0, 0.9, 42)), c(sampling(1.0, 0, 0.9, 43));
    std::vector<std::int32_t> da, db, dc;
    for (int i = 0; i < 200; ++i) {
        da.push_back(a.next(logits));
        db.push_back(b.next(logits));
        dc.push_back(c.next(logits));
    }
    EXPECT_EQ(da, db);
    EXPECT_NE(da, dc);
}

/// Frequencies of 40 000 draws against the probabilities written out here: softmax(logits / T)
/// restricted to the expected support and renormalized; within 5 standard errors.
void expectDistribution(const SamplingOptions& options, const std::vector<float>& logits,
                        const std::vector<int>& support)
{
    std::vector<double> expected(logits.size(), 0.0);
    double total = 0.0;
    for (const int id : support) total += std::exp(logits[static_cast<std::size_t>(id)] / options.temperature);
    for (const int id : support) {
        expected[static_cast<std::size_t>(id)] = std::exp(logits[static_cast<std::size_t>(id)] / options.temperature) / total;
    }
    Sampler sampler(options);
    constexpr int kDraws = 40000;
    std::vector<int> counts(logits.size(), 0);
    for (int i = 0; i < kDraws; ++i) ++counts[static_cast<std::size_t>(sampler.next(logits))];
    for (std::size_t id = 0; id < logits.size(); ++id) {
        const double p = expected[id];
        const double observed = static_cast<double>(counts[id]) / kDraws;
        if (p == 0.0) {
            EXPECT_EQ(counts[id], 0) << "id " << id << " is outside the support";
        } else {
            EXPECT_NEAR(observed, p, 5.0 * std::sqrt(p * (1.0 - p) / kDraws) + 1e-12) << "id " << id;
        }
    }
}

TEST(Sampler, DrawsFollowTheTemperedSoftmax)
{
    const std::vector<float> logits = {1.0f, 0.2f, -0.5f, 0.7f, 0.0f};
    expectDistribution(sampling(1.0, 0, 1.0, 3), logits, {0, 1, 2, 3, 4});
    expectDistribution(sampling(0.5, 0, 1.0, 4), logits, {0, 1, 2, 3, 4});
}

TEST(Sampler, TopKKeepsTheKMostLikely)
{
    const std::vector<float> logits = {1.0f, 0.2f, -0.5f, 0.7f, 0.0f};
    expectDistribution(sampling(1.0, 2, 1.0, 5), logits, {0, 3});
    Sampler one(sampling(3.0, 1, 1.0, 6));
    for (int i = 0; i < 50; ++i) EXPECT_EQ(one.next(logits), 0);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP)
{
    // At T = 1 the probabilities are 0.3596, 0.2664, 0.1616, 0.1323, 0.0802 for ids 0, 3, 1, 4, 2:
    // the first two hold 0.626, so p = 0.6 keeps {0, 3} and p = 0.65 keeps {0, 3, 1}.
    const std::vector<float> logits = {1.0f, 0.2f, -0.5f, 0.7f, 0.0f};
    expectDistribution(sampling(1.0, 0, 0.6, 7), logits, {0, 3});
    expectDistribution(sampling(1.0, 0, 0.65, 8), logits, {0, 3, 1});
    // With top-k applied first the nucleus is taken within the k survivors: renormalized over
    // {0, 3}, id 0 alone holds 0.574 >= 0.5.
    expectDistribution(sampling(1.0, 2, 0.5, 9), logits, {0});
}

}  // namespace
}  // namespace mdbf::generate
