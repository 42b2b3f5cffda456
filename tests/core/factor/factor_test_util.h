#pragma once
// Factorizer option sets the factor tests share.

#include <cstdint>
#include <string>

#include <Eigen/Core>

#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/layer_svd.h"
#include "mdbf/io/checkpoint.h"
#include "test_fixtures.h"

namespace mdbf::factor {

/// Envelope rank `l`, middle dimension `k` and `iterations` outer iterations; the rest default.
inline FactorizerOptions quickOptions(int l, std::int64_t k, int iterations)
{
    FactorizerOptions o;
    o.l = l;
    o.k = k;
    o.outerIterations = iterations;
    return o;
}

/// k from a budget of `bpw` bits per weight, `iterations` outer iterations; the rest default.
inline FactorizerOptions budgetOptions(const char* bpw, int iterations)
{
    FactorizerOptions o;
    o.bpw = Bpw::parse(bpw);
    o.outerIterations = iterations;
    return o;
}

/// quickOptions under the Gram objective with input Gram matrix `h` (m×m).
inline FactorizerOptions gramOptions(int l, std::int64_t k, int iterations, const Eigen::MatrixXd& h)
{
    FactorizerOptions o = quickOptions(l, k, iterations);
    o.objective = Objective::Gram;
    o.inputGram = h;
    return o;
}

/// A projection of the demo model (tiny-llama) with its complete layer decomposition.
struct DemoLayer {
    RowMatrixF W;
    LayerSvd svd;
};

/// Reads `name` (a weight tensor of tiny-llama) and decomposes it.
inline DemoLayer loadDemoLayer(const std::string& name)
{
    const io::Checkpoint ckpt = io::Checkpoint::open(test::demoModel());
    DemoLayer out;
    out.W = ckpt.matrix(name);
    out.svd = LayerSvd::compute(out.W);
    return out;
}

}  // namespace mdbf::factor
