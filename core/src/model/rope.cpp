#include "mdbf/model/rope.h"

#include <cmath>
#include <numbers>

namespace mdbf::model {

std::vector<double> ropeInverseFrequencies(const io::ModelConfig& config)
{
    const int half = config.headDim / 2;
    std::vector<double> inv(static_cast<std::size_t>(half));
    for (int i = 0; i < half; ++i) {
        inv[static_cast<std::size_t>(i)] = 1.0 / std::pow(config.ropeTheta, (2.0 * i) / config.headDim);
    }
    const auto& s = config.ropeScaling;
    switch (s.type) {
    case io::RopeScaling::Type::Default:
        break;
    case io::RopeScaling::Type::Linear:
        for (double& f : inv) f /= s.factor;
        break;
    case io::RopeScaling::Type::Llama3: {
        // Long wavelengths are slowed by `factor`, short ones kept, and the band between blended.
        const double lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
        const double highWavelen = s.originalMaxPositions / s.highFreqFactor;
        for (double& f : inv) {
            const double wavelen = 2.0 * std::numbers::pi / f;
            if (wavelen < highWavelen) continue;
            if (wavelen > lowWavelen) {
                f /= s.factor;
            } else {
                const double smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) /
                                      (s.highFreqFactor - s.lowFreqFactor);
                f = (1.0 - smooth) * f / s.factor + smooth * f;
            }
        }
        break;
    }
    }
    return inv;
}

RopeTable::RopeTable(const io::ModelConfig& config, int positions) : m_headDim(config.headDim)
{
    const std::vector<double> inv = ropeInverseFrequencies(config);
    const int half = m_headDim / 2;
    m_cos.resize(positions, half);
    m_sin.resize(positions, half);
    for (int p = 0; p < positions; ++p) {
        for (int i = 0; i < half; ++i) {
            const double angle = p * inv[static_cast<std::size_t>(i)];
            m_cos(p, i) = static_cast<float>(std::cos(angle));
            m_sin(p, i) = static_cast<float>(std::sin(angle));
        }
    }
}

void RopeTable::apply(RowMatrixF& X, int heads, int first) const
{
    const int half = m_headDim / 2;
    for (Eigen::Index t = 0; t < X.rows(); ++t) {
        const float* c = m_cos.row(first + t).data();
        const float* s = m_sin.row(first + t).data();
        float* row = X.row(t).data();
        for (int h = 0; h < heads; ++h) {
            float* x = row + static_cast<std::ptrdiff_t>(h) * m_headDim;
            for (int i = 0; i < half; ++i) {
                const float a = x[i];
                const float b = x[i + half];
                x[i] = a * c[i] - b * s[i];
                x[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

}  // namespace mdbf::model
