// bench_generate: decoding speed of a factorized model at LLaMA-2-7B shapes (docs/GENERATION.md),
// against the memory-bandwidth bound of the bytes one token reads. The model is synthetic — random
// signs and envelopes at the budget's k, BF16 embedding and head — because speed does not depend on
// the values and a factorized 7B checkpoint would take hours to make.
//
// Usage: bench_generate [--layers 32] [--hidden 4096] [--intermediate 11008] [--heads 32]
//                       [--kv-heads 32] [--vocab 32000] [--bpw 1] [--l 1] [--threads 2]
//                       [--prompt 16] [--gen 32] [--reps 2] [--kernel-path auto]
// --kernel-path scalar|avx2|avx512 runs every kernel on that path (e.g. the AVX2 path that CPUs
// without AVX-512 take, on a machine that has it).

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "mdbf/factor/bit_budget.h"
#include "mdbf/base/error.h"
#include "mdbf/generate/throughput.h"
#include "mdbf/kernels/kernel_path.h"
#include "mdbf/model/factorized_linear.h"
#include "mdbf/model/half_dense_linear.h"
#include "mdbf/model/transformer.h"
#include "memory_bandwidth.h"

namespace {

using namespace mdbf;

struct Settings {
    std::map<std::string, std::string> values = {
        {"layers", "32"}, {"hidden", "4096"}, {"intermediate", "11008"}, {"heads", "32"}, {"kv-heads", "32"},
        {"vocab", "32000"}, {"bpw", "1"},  {"l", "1"},                 {"threads", "2"}, {"prompt", "16"},
        {"gen", "32"},    {"reps", "2"},   {"kernel-path", "auto"}};
    int integer(const std::string& key) const { return std::atoi(values.at(key).c_str()); }
};

kernels::PackedSigns randomSigns(std::int64_t rows, std::int64_t cols, std::mt19937_64& rng)
{
    kernels::PackedSigns s(rows, cols);
    const std::int64_t perRow = s.wordsPerRow();
    const int tail = static_cast<int>(cols % 64);
    for (std::int64_t i = 0; i < rows; ++i) {
        for (std::int64_t w = 0; w < perRow; ++w) {
            std::uint64_t word = rng();
            if (w == perRow - 1 && tail != 0) word &= (std::uint64_t{1} << tail) - 1;  // padding stays clear
            s.words()[static_cast<std::size_t>(i * perRow + w)] = word;
        }
    }
    return s;
}

MatrixF randomEnvelope(std::int64_t rows, std::int64_t l, std::mt19937_64& rng, float scale)
{
    std::normal_distribution<float> normal(0.0f, scale);
    MatrixF M(rows, l);
    for (Eigen::Index i = 0; i < M.size(); ++i) M.data()[i] = normal(rng);
    return M;
}

std::vector<std::uint16_t> randomBf16(std::int64_t count, std::mt19937_64& rng)
{
    std::vector<std::uint16_t> bits(static_cast<std::size_t>(count));
    // bf16 values of magnitude ~0.02 with random signs: exponent 121–122, random mantissa.
    for (std::uint16_t& b : bits) {
        const std::uint64_t r = rng();
        b = static_cast<std::uint16_t>(((r & 1) << 15) | ((121 + ((r >> 1) & 1)) << 7) | ((r >> 2) & 0x7F));
    }
    return bits;
}

}  // namespace

constexpr const char* kUsage =
    "usage: bench_generate [--layers 32] [--hidden 4096] [--intermediate 11008] [--heads 32]\n"
    "                      [--kv-heads 32] [--vocab 32000] [--bpw 1] [--l 1] [--threads 2]\n"
    "                      [--prompt 16] [--gen 32] [--reps 2] [--kernel-path auto|scalar|avx2|avx512]\n";

int main(int argc, char** argv)
{
    Settings settings;
    for (int i = 1; i < argc; i += 2) {
        const std::string key = argv[i];
        if (key == "--help" || key == "-h") {
            std::printf("%s", kUsage);
            return 0;
        }
        if (key.rfind("--", 0) != 0 || settings.values.count(key.substr(2)) == 0) {
            std::fprintf(stderr, "unknown option %s\n%s", argv[i], kUsage);
            return 2;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "option %s needs a value\n%s", argv[i], kUsage);
            return 2;
        }
        settings.values[key.substr(2)] = argv[i + 1];
    }
    const int layers = settings.integer("layers");
    const int hidden = settings.integer("hidden");
    const int inter = settings.integer("intermediate");
    const int heads = settings.integer("heads");
    const int kvHeads = settings.integer("kv-heads");
    const int vocab = settings.integer("vocab");
    const int l = settings.integer("l");
    const int threads = settings.integer("threads");
    const factor::Bpw bpw = factor::Bpw::parse(settings.values["bpw"]);
    try {
        kernels::setAutoKernelPath(kernels::parseKernelPath(settings.values["kernel-path"]));
    } catch (const Error& e) {
        std::fprintf(stderr, "bench_generate: %s\n", e.what());
        return 2;
    }
    std::printf("kernel path %s\n", kernels::kernelPathName(kernels::resolveKernelPath(kernels::KernelPath::Auto)));

    const nlohmann::json configJson = {{"architectures", {"LlamaForCausalLM"}},
                                       {"hidden_size", hidden},
                                       {"intermediate_size", inter},
                                       {"num_hidden_layers", layers},
                                       {"num_attention_heads", heads},
                                       {"num_key_value_heads", kvHeads},
                                       {"vocab_size", vocab},
                                       {"max_position_embeddings", 4096},
                                       {"rms_norm_eps", 1e-5}};
    model::TransformerParts parts;
    parts.config = io::ModelConfig::fromJson(configJson, "bench_generate");
    const io::ModelConfig& config = parts.config;
    std::mt19937_64 rng(1);
    const std::int64_t qDim = static_cast<std::int64_t>(heads) * config.headDim;
    const std::int64_t kvDim = static_cast<std::int64_t>(kvHeads) * config.headDim;

    double weightBytes = 0.0;  // bytes one token streams through the projections
    auto factorized = [&](std::int64_t n, std::int64_t m) {
        const factor::BitBudget budget = factor::computeBitBudget(n, m, bpw, factor::Method::Mdbf, l, 1);
        kernels::FactorPath p;
        p.sa = randomSigns(n, budget.k, rng);
        p.sb = randomSigns(budget.k, m, rng);
        p.A = randomEnvelope(n, l, rng, 0.05f);
        p.Qa = randomEnvelope(budget.k, l, rng, 1.0f);
        p.Qb = randomEnvelope(budget.k, l, rng, 1.0f);
        p.B = randomEnvelope(m, l, rng, 1.0f);
        weightBytes += static_cast<double>(p.sa.words().size() + p.sb.words().size()) * 8.0 +
                       static_cast<double>(p.A.size() + p.Qa.size() + p.Qb.size() + p.B.size()) * 4.0;
        return std::make_shared<model::FactorizedLinear>(std::vector<kernels::FactorPath>{std::move(p)});
    };
    std::printf("building a synthetic %d-block model: hidden %d, intermediate %d, %d/%d heads, vocab %d, "
                "mdbf l=%d at %s bpw\n",
                layers, hidden, inter, heads, kvHeads, vocab, l, bpw.text().c_str());
    for (int i = 0; i < layers; ++i) {
        const std::string p = "model.layers." + std::to_string(i) + ".";
        parts.norms[p + "input_layernorm.weight"] = VectorF::Ones(hidden);
        parts.norms[p + "post_attention_layernorm.weight"] = VectorF::Ones(hidden);
        parts.linears[p + "self_attn.q_proj"] = factorized(qDim, hidden);
        parts.linears[p + "self_attn.k_proj"] = factorized(kvDim, hidden);
        parts.linears[p + "self_attn.v_proj"] = factorized(kvDim, hidden);
        parts.linears[p + "self_attn.o_proj"] = factorized(hidden, qDim);
        parts.linears[p + "mlp.gate_proj"] = factorized(inter, hidden);
        parts.linears[p + "mlp.up_proj"] = factorized(inter, hidden);
        parts.linears[p + "mlp.down_proj"] = factorized(hidden, inter);
    }
    parts.norms["model.norm.weight"] = VectorF::Ones(hidden);
    auto embedding = std::make_shared<model::HalfDenseLinear>(io::DType::BF16, vocab, hidden,
                                                              randomBf16(std::int64_t{vocab} * hidden, rng));
    auto head = std::make_shared<model::HalfDenseLinear>(io::DType::BF16, vocab, hidden,
                                                         randomBf16(std::int64_t{vocab} * hidden, rng));
    parts.embeddingLookup = [embedding](std::int32_t id, std::span<float> out) { embedding->row(id, out); };
    parts.linears["lm_head"] = head;
    const model::Transformer model = model::Transformer::fromParts(std::move(parts), "bench_generate");

    generate::ThroughputOptions options;
    options.promptTokens = settings.integer("prompt");
    options.genTokens = settings.integer("gen");
    options.repetitions = settings.integer("reps");
    RunContext ctx;
    ctx.threads = threads;
    const generate::ThroughputResult r = generate::measureThroughput(model, options, ctx);
    using R = generate::ThroughputResult;
    const double tg = R::mean(r.decodeTokensPerSecond);

    // Bytes one decoding step reads: the projections, the BF16 head, one embedding row, and the
    // keys and values of the cached positions (float32) at the mean position of the timed steps.
    const double headBytes = 2.0 * vocab * hidden;
    const double meanPosition = options.promptTokens + options.genTokens / 2.0;
    const double kvBytes = 2.0 * layers * meanPosition * static_cast<double>(kvDim) * 4.0;
    const double perToken = weightBytes + headBytes + 2.0 * hidden + kvBytes;
    const double bandwidth = bench::measureBandwidth(threads);
    const double bound = bandwidth * 1e9 / perToken;
    std::printf("bytes read per token: %.1f MB (projections %.1f MB, head %.1f MB, KV cache %.1f MB)\n",
                perToken / 1e6, weightBytes / 1e6, headBytes / 1e6, kvBytes / 1e6);
    std::printf("threads %d: prefill %d tokens %.1f ± %.1f tok/s; decode %.2f ± %.2f tok/s (%.1f ms/token)\n",
                r.threads, options.promptTokens, R::mean(r.prefillTokensPerSecond),
                R::standardDeviation(r.prefillTokensPerSecond), tg, R::standardDeviation(r.decodeTokensPerSecond),
                1000.0 / tg);
    std::printf("read bandwidth %.1f GB/s -> bound %.2f tok/s; decode runs at %.2f of the bound (%.2fx slower)\n",
                bandwidth, bound, tg / bound, bound / tg);
    return 0;
}
