#include <cstdio>

#include "commands.h"
#include "mdbf/base/error.h"
#include "mdbf/base/output_path.h"
#include "mdbf/pipeline/synthetic_model.h"

namespace mdbf::cli {

namespace {

struct SynthOptions {
    std::string out;
    pipeline::SyntheticModelOptions model;
    int shardMb = 2048;
    bool json = false;
};

int runSynth(SynthOptions opt, const CommandEnv& env)
{
    opt.model.shardBytes = static_cast<std::int64_t>(opt.shardMb) << 20;
    try {
        opt.model.validate();
        requireDistinctOutput(opt.out, OutputKind::Directory, {}, "--out");
    } catch (const InvalidArgument& e) {
        return usageError(e.what());
    }
    ProgressBar bar("synth");
    const pipeline::SyntheticModelSummary s = pipeline::writeSyntheticModel(opt.out, opt.model, bar.context(env));
    bar.finish();
    if (opt.json) {
        std::vector<std::string> files;
        for (const auto& f : s.files) files.push_back(f.string());
        printJson({{"out", opt.out},
                   {"files", files},
                   {"tensors", s.tensors},
                   {"parameters", s.parameters},
                   {"bytes", s.tensorBytes},
                   {"seconds", s.seconds}});
    } else {
        std::printf("wrote %s: %lld tensors, %.3f G parameters, %zu files in %.1f s\n", opt.out.c_str(),
                    static_cast<long long>(s.tensors), static_cast<double>(s.parameters) / 1e9, s.files.size(), s.seconds);
    }
    return kExitOk;
}

}  // namespace

Command registerSynthCommand(CLI::App& root)
{
    auto opt = std::make_shared<SynthOptions>();
    pipeline::SyntheticModelOptions& m = opt->model;
    CLI::App* sub = root.add_subcommand(
        "synth", "Write a LLaMA checkpoint of chosen sizes with random BF16 weights (for benchmarks and tests)");
    sub->add_option("--out", opt->out, "Model folder to create (must not exist, or be empty)")
        ->required()
        ->check(nonEmptyPath());
    sub->add_option("--hidden", m.hidden, "hidden_size")->capture_default_str();
    sub->add_option("--intermediate", m.intermediate, "intermediate_size")->capture_default_str();
    sub->add_option("--layers", m.layers, "num_hidden_layers")->capture_default_str();
    sub->add_option("--heads", m.heads, "num_attention_heads")->capture_default_str();
    sub->add_option("--kv-heads", m.kvHeads, "num_key_value_heads (default: --heads)");
    sub->add_option("--vocab", m.vocab, "vocab_size (also the tokenizer's size)")->capture_default_str();
    sub->add_flag("--structured", m.structured,
                  "Imitate trained weights: log-normal row/column scales, outlier input channels, decaying spectrum");
    addSeedOption(*sub, m.seed, "Seed of the weights (same seed and sizes, same files)");
    sub->add_option("--shard-mb", opt->shardMb, "Tensor MiB per safetensors shard")
        ->check(intRange(1, 1 << 20))
        ->capture_default_str();
    addJsonFlag(*sub, opt->json);
    return {sub, [opt](const CommandEnv& env) { return runSynth(*opt, env); }};
}

}  // namespace mdbf::cli
