#include <cstdio>
#include <iostream>

#include "commands.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"

namespace mdbf::cli {

namespace {

struct InspectOptions {
    std::string model;
    bool json = false;
};

std::string shapeText(const std::vector<std::int64_t>& shape)
{
    std::string text;
    for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? "×" : "") + std::to_string(shape[i]);
    return text.empty() ? "scalar" : text;
}

nlohmann::json configJson(const io::ModelConfig& c)
{
    return {{"architecture", c.architectureName},
            {"hidden_size", c.hiddenSize},
            {"intermediate_size", c.intermediateSize},
            {"num_hidden_layers", c.numLayers},
            {"num_attention_heads", c.numHeads},
            {"num_key_value_heads", c.numKvHeads},
            {"head_dim", c.headDim},
            {"vocab_size", c.vocabSize},
            {"rms_norm_eps", c.rmsNormEps},
            {"rope_theta", c.ropeTheta},
            {"tie_word_embeddings", c.tieWordEmbeddings},
            {"dtype", c.torchDtype}};
}

int runInspect(const InspectOptions& opt, const CommandEnv&)
{
    const std::filesystem::path dir = opt.model;
    const io::ModelConfig config = io::ModelConfig::fromFile(dir / "config.json");
    const io::Checkpoint ckpt = io::Checkpoint::open(dir);

    std::int64_t parameters = 0;
    nlohmann::json tensors = nlohmann::json::array();
    for (const io::TensorInfo& t : ckpt.tensors()) {
        parameters += t.elementCount();
        tensors.push_back({{"name", t.name},
                           {"dtype", std::string(io::dtypeName(t.dtype))},
                           {"shape", t.shape},
                           {"params", t.elementCount()},
                           {"file", t.file.filename().string()}});
    }
    if (opt.json) {
        printJson({{"model", dir.string()},
                   {"config", configJson(config)},
                   {"parameters", parameters},
                   {"bytes", ckpt.totalBytes()},
                   {"tensors", tensors}});
        return kExitOk;
    }
    std::printf("model        %s\n", dir.string().c_str());
    std::printf("architecture %s, %d layers, hidden %d, intermediate %d, heads %d (kv %d, head dim %d), vocab %d\n",
                config.architectureName.c_str(), config.numLayers, config.hiddenSize, config.intermediateSize,
                config.numHeads, config.numKvHeads, config.headDim, config.vocabSize);
    std::printf("parameters   %.2f M in %zu tensors, %.1f MiB stored%s\n", static_cast<double>(parameters) / 1e6,
                ckpt.tensors().size(), static_cast<double>(ckpt.totalBytes()) / (1024.0 * 1024.0),
                config.tieWordEmbeddings ? ", tied embeddings" : "");
    std::printf("\n%-52s %-5s %-12s %10s\n", "tensor", "dtype", "shape", "params");
    for (const io::TensorInfo& t : ckpt.tensors()) {
        std::printf("%-52s %-5s %-12s %10lld\n", t.name.c_str(), std::string(io::dtypeName(t.dtype)).c_str(),
                    shapeText(t.shape).c_str(), static_cast<long long>(t.elementCount()));
    }
    return kExitOk;
}

}  // namespace

Command registerInspectCommand(CLI::App& root)
{
    auto opt = std::make_shared<InspectOptions>();
    CLI::App* sub = root.add_subcommand("inspect", "Show a model's configuration and tensors");
    sub->add_option("--model", opt->model, "Hugging Face model directory")->required()->check(CLI::ExistingDirectory);
    addJsonFlag(*sub, opt->json);
    return {sub, [opt](const CommandEnv& env) { return runInspect(*opt, env); }};
}

}  // namespace mdbf::cli
