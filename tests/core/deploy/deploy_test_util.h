#pragma once
// Builders and comparisons shared by the deployment tests: random factor paths with FP16 envelopes,
// small synthetic packages, and an exact comparison of two packages.

#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "mdbf/base/half.h"
#include "mdbf/factor/factor_result.h"
#include "mdbf/io/package.h"
#include "mdbf/kernels/factor_path.h"

namespace mdbf::test {

/// A random path: uniform signs, envelopes N(0, scale²) rounded to FP16 as deployed.
inline kernels::FactorPath randomPath(std::int64_t n, std::int64_t m, std::int64_t k, std::int64_t l,
                                      std::mt19937_64& rng, float scale = 0.5f)
{
    std::normal_distribution<float> normal(0.0f, scale);
    std::bernoulli_distribution coin(0.5);
    auto signs = [&](std::int64_t rows, std::int64_t cols) {
        kernels::PackedSigns s(rows, cols);
        for (std::int64_t i = 0; i < rows; ++i)
            for (std::int64_t j = 0; j < cols; ++j)
                if (coin(rng)) s.setNegative(i, j);
        return s;
    };
    auto envelope = [&](std::int64_t rows) {
        MatrixF M(rows, l);
        for (Eigen::Index i = 0; i < M.size(); ++i) M.data()[i] = roundToHalf(normal(rng));
        return M;
    };
    kernels::FactorPath p;
    p.sa = signs(n, k);
    p.sb = signs(k, m);
    p.A = envelope(n);
    p.Qa = envelope(k);
    p.Qb = envelope(k);
    p.B = envelope(m);
    return p;
}

/// A tensor of the given dtype with random values (stored bit patterns).
inline io::PackageTensor randomTensor(const std::string& name, io::DType dtype, std::vector<std::int64_t> shape,
                                      std::mt19937_64& rng)
{
    io::PackageTensor t;
    t.name = name;
    t.dtype = dtype;
    t.shape = std::move(shape);
    const std::int64_t count = t.elementCount();
    t.data.resize(static_cast<std::size_t>(count) * io::dtypeSize(dtype));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::int64_t i = 0; i < count; ++i) {
        const float v = normal(rng);
        if (dtype == io::DType::F32) {
            std::memcpy(t.data.data() + 4 * i, &v, 4);
        } else {
            const std::uint16_t h = dtype == io::DType::F16 ? floatToHalf(v) : floatToBf16(v);
            std::memcpy(t.data.data() + 2 * i, &h, 2);
        }
    }
    return t;
}

/// A small package exercising every feature of the schema: all three dense dtypes (matrix, vector,
/// scalar), layers with odd shapes, l > 1, P = 2, and a dbf layer.
inline io::Package syntheticPackage(std::uint64_t seed = 7)
{
    std::mt19937_64 rng(seed);
    io::Package pkg;
    pkg.configJson = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 8})";
    pkg.tokenizerJson = std::string(70000, 'x') + "\"ünïcödé\"";  // larger than HDF5's attribute limit
    pkg.quantConfigJson = R"({"defaults": {"bpw": 1.5}})";
    pkg.modelBpw = 2.125;
    pkg.factorizedBpw = 1.4375;
    pkg.dense.push_back(randomTensor("model.embed_tokens.weight", io::DType::BF16, {37, 13}, rng));
    pkg.dense.push_back(randomTensor("model.norm.weight", io::DType::F16, {13}, rng));
    pkg.dense.push_back(randomTensor("lm_head.weight", io::DType::F32, {37, 13}, rng));
    pkg.dense.push_back(randomTensor("scale", io::DType::F32, {}, rng));

    io::PackageLayer a;
    a.name = "model.layers.0.self_attn.q_proj";
    a.bpw = 1.25;
    a.relError = 0.375;
    a.paths.push_back(randomPath(70, 65, 19, 3, rng));
    pkg.layers.push_back(std::move(a));

    io::PackageLayer b;
    b.name = "model.layers.10.mlp.down_proj";
    b.bpw = 2.5;
    b.relError = 0.25;
    b.objective = factor::Objective::DiagonalWeighted;
    b.paths.push_back(randomPath(13, 130, 9, 2, rng));
    b.paths.push_back(randomPath(13, 130, 9, 2, rng));
    pkg.layers.push_back(std::move(b));

    io::PackageLayer c;
    c.name = "model.layers.2.mlp.up_proj";
    c.method = factor::Method::Dbf;
    c.bpw = 1.0;
    c.relError = 0.5;
    c.paths.push_back(randomPath(64, 64, 64, 1, rng));
    pkg.layers.push_back(std::move(c));
    return pkg;
}

/// Exact equality of two matrices (bit patterns of FP16-representable floats compare exactly).
inline bool sameMatrix(const MatrixF& a, const MatrixF& b)
{
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

/// Asserts that two packages hold exactly the same content, in the same order.
inline void expectSamePackage(const io::Package& actual, const io::Package& expected)
{
    EXPECT_EQ(actual.configJson, expected.configJson);
    EXPECT_EQ(actual.tokenizerJson, expected.tokenizerJson);
    EXPECT_EQ(actual.quantConfigJson, expected.quantConfigJson);
    EXPECT_EQ(actual.modelBpw, expected.modelBpw);
    EXPECT_EQ(actual.factorizedBpw, expected.factorizedBpw);
    ASSERT_EQ(actual.dense.size(), expected.dense.size());
    for (std::size_t i = 0; i < actual.dense.size(); ++i) {
        SCOPED_TRACE(expected.dense[i].name);
        EXPECT_EQ(actual.dense[i].name, expected.dense[i].name);
        EXPECT_EQ(actual.dense[i].dtype, expected.dense[i].dtype);
        EXPECT_EQ(actual.dense[i].shape, expected.dense[i].shape);
        EXPECT_TRUE(actual.dense[i].data == expected.dense[i].data);
    }
    ASSERT_EQ(actual.layers.size(), expected.layers.size());
    for (std::size_t i = 0; i < actual.layers.size(); ++i) {
        const io::PackageLayer& a = actual.layers[i];
        const io::PackageLayer& e = expected.layers[i];
        SCOPED_TRACE(e.name);
        // name, method, objective, bpw, rel_error
        EXPECT_EQ(std::tie(a.name, a.method, a.objective, a.bpw, a.relError),
                  std::tie(e.name, e.method, e.objective, e.bpw, e.relError));
        ASSERT_EQ(a.paths.size(), e.paths.size());
        for (std::size_t p = 0; p < a.paths.size(); ++p) {
            EXPECT_TRUE(a.paths[p].sa == e.paths[p].sa);
            EXPECT_TRUE(a.paths[p].sb == e.paths[p].sb);
            EXPECT_TRUE(sameMatrix(a.paths[p].A, e.paths[p].A));
            EXPECT_TRUE(sameMatrix(a.paths[p].Qa, e.paths[p].Qa));
            EXPECT_TRUE(sameMatrix(a.paths[p].Qb, e.paths[p].Qb));
            EXPECT_TRUE(sameMatrix(a.paths[p].B, e.paths[p].B));
        }
    }
}

}  // namespace mdbf::test
