#pragma once
// Factorizer option sets the factor tests share.

#include <cstdint>

#include <Eigen/Core>

#include "mdbf/factor/factorizer.h"

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

}  // namespace mdbf::factor
