// Prints prefill throughput of perplexity at ctx 256 on small-llama and medium-llama, the machine's
// SGEMM rate measured in the same run, and resident memory while browsing medium-llama's layers.
// Usage: bench_inference [threads=2] [windows=8]

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include <Eigen/Core>

#include "mdbf/base/text_file.h"
#include "mdbf/eval/perplexity.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/tokenizer/tokenizer.h"
#include "test_fixtures.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

/// Reads a "Name:   1234 kB" line of /proc/self/status, in MiB.
double statusMiB(const std::string& key)
{
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
    }
    return -1.0;
}

double sgemmGflops(int threads)
{
    Eigen::setNbThreads(threads);
    const int n = 2048;
    const Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n);
    Eigen::MatrixXf c(n, n);
    c.noalias() = a * b;  // warm-up
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = Clock::now();
        c.noalias() = a * b;
        best = std::min(best, seconds(t0));
    }
    return 2.0 * n * n * static_cast<double>(n) / best / 1e9;
}

void benchPrefill(const std::string& name, int threads, int windows)
{
    const auto fx = mdbf::test::modelFixture(name);
    if (!fx.available) {
        std::printf("%-14s skipped: fixture not found at %s\n", name.c_str(), fx.modelDir.string().c_str());
        return;
    }
    const mdbf::Tokenizer tokenizer = mdbf::Tokenizer::fromFile(fx.modelDir / "tokenizer.json");
    std::vector<std::int32_t> ids = tokenizer.encode(mdbf::readUtf8File(fx.evalSmall));
    const int ctx = 256;
    ids.resize(std::min<std::size_t>(ids.size(), static_cast<std::size_t>(windows * ctx)));
    const mdbf::model::Transformer model = mdbf::model::Transformer::load(fx.modelDir);
    mdbf::RunContext run;
    run.threads = threads;
    (void)model.forward(std::span(ids).first(ctx), threads);  // warm-up
    const mdbf::eval::PerplexityResult r = mdbf::eval::perplexity(model, ids, ctx, run);
    const double tokens = static_cast<double>(r.windows * ctx);
    std::printf("%-14s ctx %d, %lld windows: %.1f tok/s prefill (%.2f s), ppl %.3f\n", name.c_str(), ctx,
                static_cast<long long>(r.windows), tokens / r.seconds, r.seconds, r.ppl);
}

void benchBrowsing()
{
    const auto fx = mdbf::test::modelFixture("medium-llama");
    if (!fx.available) {
        std::printf("browsing       skipped: medium-llama not found\n");
        return;
    }
    const double before = statusMiB("VmRSS");
    const auto t0 = Clock::now();
    const mdbf::io::Checkpoint ckpt = mdbf::io::Checkpoint::open(fx.modelDir);
    const double openSeconds = seconds(t0);
    const double afterOpen = statusMiB("VmRSS");
    // Browse: compute every 2-D tensor's Frobenius norm one at a time, as the layer browser does.
    std::int64_t elements = 0;
    double peakAnon = statusMiB("RssAnon");
    for (const auto& t : ckpt.tensors()) {
        elements += t.elementCount();
        if (t.shape.size() != 2) continue;
        const mdbf::RowMatrixF w = ckpt.matrix(t.name);
        volatile float norm = w.norm();
        (void)norm;
        peakAnon = std::max(peakAnon, statusMiB("RssAnon"));
    }
    const double float32MiB = static_cast<double>(elements) * 4.0 / (1024.0 * 1024.0);
    std::printf("browsing medium-llama: open %.1f ms; RSS %.1f MiB before, %.1f MiB after open; "
                "peak anonymous RSS while computing per-layer norms %.1f MiB; VmHWM %.1f MiB; "
                "float32 size of the checkpoint %.1f MiB\n",
                openSeconds * 1e3, before, afterOpen, peakAnon, statusMiB("VmHWM"), float32MiB);
}

}  // namespace

int main(int argc, char** argv)
{
    const int threads = argc > 1 ? std::stoi(argv[1]) : 2;
    const int windows = argc > 2 ? std::stoi(argv[2]) : 8;
    benchBrowsing();
    std::printf("SGEMM 2048² (Eigen, float32): %.1f GFLOP/s on 1 thread, %.1f GFLOP/s on %d threads\n", sgemmGflops(1),
                sgemmGflops(threads), threads);
    benchPrefill("small-llama", threads, windows);
    benchPrefill("medium-llama", threads, windows);
    return 0;
}
