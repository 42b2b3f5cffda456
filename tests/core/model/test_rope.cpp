#include <cmath>
#include <numbers>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mdbf/model/rope.h"

namespace mdbf::model {
namespace {

io::ModelConfig ropeConfig(int headDim, double theta)
{
    io::ModelConfig c;
    c.headDim = headDim;
    c.ropeTheta = theta;
    return c;
}

/// Expects each listed inverse frequency, by index, within 1e-12.
void expectFrequencies(const std::vector<double>& inv, std::initializer_list<std::pair<std::size_t, double>> expected)
{
    for (const auto& [i, value] : expected) {
        ASSERT_LT(i, inv.size());
        EXPECT_NEAR(inv[i], value, 1e-12) << "frequency " << i;
    }
}

TEST(Rope, InverseFrequenciesFollowThetaPower)
{
    const auto inv = ropeInverseFrequencies(ropeConfig(8, 10000.0));
    ASSERT_EQ(inv.size(), 4u);
    // θ^(−2i/d) for d = 8: 1, 10000^-0.25 = 0.1, 10000^-0.5 = 0.01, 10000^-0.75 = 0.001.
    expectFrequencies(inv, {{0, 1.0}, {1, 0.1}, {2, 0.01}, {3, 0.001}});
}

TEST(Rope, LinearScalingDividesEveryFrequency)
{
    io::ModelConfig c = ropeConfig(8, 10000.0);
    c.ropeScaling.type = io::RopeScaling::Type::Linear;
    c.ropeScaling.factor = 4.0;
    expectFrequencies(ropeInverseFrequencies(c), {{1, 0.025}, {3, 0.00025}});
}

TEST(Rope, Llama3ScalingKeepsHighBlendsMiddleScalesLow)
{
    // original 8192 positions, low 1, high 4: wavelengths < 2048 kept, > 8192 divided by factor 8.
    io::ModelConfig c = ropeConfig(8, 10000.0);
    c.ropeScaling.type = io::RopeScaling::Type::Llama3;
    c.ropeScaling.factor = 8.0;
    c.ropeScaling.lowFreqFactor = 1.0;
    c.ropeScaling.highFreqFactor = 4.0;
    c.ropeScaling.originalMaxPositions = 8192;
    const auto inv = ropeInverseFrequencies(c);
    // Wavelengths 2π/f: 6.28, 62.8, 628 (all < 2048: unchanged) and 6283 (between: blended).
    expectFrequencies(inv, {{0, 1.0}, {2, 0.01}});
    const double wavelen = 2.0 * std::numbers::pi / 0.001;
    const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
    EXPECT_NEAR(inv[3], (1.0 - smooth) * 0.001 / 8.0 + smooth * 0.001, 1e-15);
    EXPECT_LT(inv[3], 0.001);
    EXPECT_GT(inv[3], 0.001 / 8.0);
}

TEST(Rope, RotatesHalvesTogetherNotInterleaved)
{
    // head_dim 4: element 0 pairs with 2, element 1 with 3 (rotate_half).
    const io::ModelConfig c = ropeConfig(4, 100.0);
    const RopeTable table(c, 3);
    RowMatrixF x(1, 8);
    x << 1, 2, 3, 4, 5, 6, 7, 8;  // two heads
    table.apply(x, 2, 2);         // position 2
    const double f0 = 1.0, f1 = 1.0 / 10.0;  // 100^(0/4), 100^(-2/4)
    const double a0 = 2 * f0, a1 = 2 * f1;
    EXPECT_NEAR(x(0, 0), 1 * std::cos(a0) - 3 * std::sin(a0), 1e-6);
    EXPECT_NEAR(x(0, 2), 3 * std::cos(a0) + 1 * std::sin(a0), 1e-6);
    EXPECT_NEAR(x(0, 1), 2 * std::cos(a1) - 4 * std::sin(a1), 1e-6);
    EXPECT_NEAR(x(0, 3), 4 * std::cos(a1) + 2 * std::sin(a1), 1e-6);
    EXPECT_NEAR(x(0, 4), 5 * std::cos(a0) - 7 * std::sin(a0), 1e-6);
    EXPECT_NEAR(x(0, 7), 8 * std::cos(a1) + 6 * std::sin(a1), 1e-6);
}

}  // namespace
}  // namespace mdbf::model
