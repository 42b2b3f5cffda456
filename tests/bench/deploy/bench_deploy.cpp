// Deployment-side timings on medium-llama's layer shapes (hidden 1024, intermediate 2816, vocab
// 8192): factorized layers at 1 bpw (l = 2) against float32 and BF16 dense layers for one token
// (decode) and a 256-token window (prefill); then writing and reading a package of that size.
// Weights are random: speed does not depend on their values. Usage: bench_deploy [threads=2]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "deploy_test_util.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/io/package.h"
#include "mdbf/model/dense_linear.h"
#include "mdbf/model/factorized_linear.h"
#include "mdbf/model/half_dense_linear.h"
#include "test_fixtures.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace mdbf;

double seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

/// Best time of `reps` calls of forward on X, in seconds.
double timeForward(const model::Linear& layer, const RowMatrixF& X, int threads, int reps)
{
    RowMatrixF Y;
    layer.forward(X, Y, threads);  // warm-up (scratch buffers, caches)
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        layer.forward(X, Y, threads);
        best = std::min(best, seconds(t0));
    }
    return best;
}

model::FactorizedLinear factorizedLayer(std::int64_t n, std::int64_t m, std::mt19937_64& rng)
{
    const factor::BitBudget b = factor::computeBitBudget(n, m, factor::Bpw::parse("1"), factor::Method::Mdbf, 2, 1);
    return model::FactorizedLinear({test::randomPath(n, m, b.k, 2, rng)});
}

void benchLayer(const char* label, std::int64_t n, std::int64_t m, int threads, std::mt19937_64& rng)
{
    const model::FactorizedLinear fact = factorizedLayer(n, m, rng);
    const RowMatrixF W = RowMatrixF::Random(n, m);
    const model::DenseLinear dense(W);
    std::vector<std::uint16_t> bits(static_cast<std::size_t>(n * m));
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = floatToBf16(W.data()[i]);
    const model::HalfDenseLinear half(io::DType::BF16, n, m, std::move(bits));
    const RowMatrixF x = RowMatrixF::Random(1, m);
    const RowMatrixF X = RowMatrixF::Random(256, m);
    std::printf("%-10s %5lldx%-5lld k=%-5lld | decode us: f32 %8.1f  bf16 %8.1f  mdbf %8.1f | prefill 256 ms: f32 %7.2f  "
                "bf16 %7.2f  mdbf %7.2f\n",
                label, static_cast<long long>(n), static_cast<long long>(m), static_cast<long long>(fact.k()),
                1e6 * timeForward(dense, x, threads, 50), 1e6 * timeForward(half, x, threads, 50),
                1e6 * timeForward(fact, x, threads, 50), 1e3 * timeForward(dense, X, threads, 5),
                1e3 * timeForward(half, X, threads, 5), 1e3 * timeForward(fact, X, threads, 5));
}

void benchPackage(std::mt19937_64& rng)
{
    // Four blocks of medium-llama at 1 bpw, l = 2, with a BF16 tied embedding.
    io::Package pkg;
    pkg.configJson = "{}";
    pkg.tokenizerJson = "{}";
    pkg.quantConfigJson = "{}";
    pkg.dense.push_back(test::randomTensor("model.embed_tokens.weight", io::DType::BF16, {8192, 1024}, rng));
    const struct {
        const char* name;
        std::int64_t n, m;
    } shapes[] = {{"self_attn.q_proj", 1024, 1024}, {"self_attn.k_proj", 256, 1024}, {"self_attn.v_proj", 256, 1024},
                  {"self_attn.o_proj", 1024, 1024}, {"mlp.gate_proj", 2816, 1024},   {"mlp.up_proj", 2816, 1024},
                  {"mlp.down_proj", 1024, 2816}};
    for (int block = 0; block < 4; ++block) {
        for (const auto& s : shapes) {
            io::PackageLayer layer;
            layer.name = "model.layers." + std::to_string(block) + "." + s.name;
            const model::FactorizedLinear f = factorizedLayer(s.n, s.m, rng);
            layer.paths = f.paths();
            pkg.layers.push_back(std::move(layer));
        }
    }
    test::TempDir dir;
    const auto t0 = Clock::now();
    io::writePackage(pkg, dir / "bench.h5");
    const double write = seconds(t0);
    const auto size = std::filesystem::file_size(dir / "bench.h5");
    const auto t1 = Clock::now();
    const io::Package back = io::readPackage(dir / "bench.h5");
    const double read = seconds(t1);
    std::printf("package (medium-llama shapes, 1 bpw l=2, BF16 embedding): %.1f MiB, write %.3f s, read+validate %.3f s\n",
                static_cast<double>(size) / (1024.0 * 1024.0), write, read);
}

}  // namespace

int main(int argc, char** argv)
{
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    std::mt19937_64 rng(1);
    std::printf("threads %d\n", threads);
    benchLayer("attn q/o", 1024, 1024, threads, rng);
    benchLayer("mlp up", 2816, 1024, threads, rng);
    benchLayer("mlp down", 1024, 2816, threads, rng);
    benchLayer("lm_head", 8192, 1024, threads, rng);
    benchPackage(rng);
    return 0;
}
