#include <cstdio>
#include <iostream>

#include "commands.h"
#include "mdbf/base/error.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/factor/factor_result.h"
#include "mdbf/io/package.h"

namespace mdbf::cli {

namespace {

struct InspectOptions {
    std::string model;
    std::string package;
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

/// `inspect --package`: the package's model, bit accounting, dense tensors and factorized layers.
int runInspectPackage(const InspectOptions& opt, const CommandEnv& env)
{
    ProgressBar bar("inspect");
    const io::Package pkg = io::readPackage(opt.package, bar.context(env));
    bar.finish();
    const io::ModelConfig config = io::packageModelConfig(pkg, opt.package);
    std::error_code ec;
    const std::uintmax_t bytes = std::filesystem::file_size(opt.package, ec);

    nlohmann::json tensors = nlohmann::json::array();
    std::int64_t denseParams = 0;
    for (const io::PackageTensor& t : pkg.dense) {
        denseParams += t.elementCount();
        tensors.push_back({{"name", t.name},
                           {"dtype", std::string(io::dtypeName(t.dtype))},
                           {"shape", t.shape},
                           {"params", t.elementCount()}});
    }
    nlohmann::json layers = nlohmann::json::array();
    for (const io::PackageLayer& layer : pkg.layers) {
        layers.push_back({{"name", layer.name},
                          {"n", layer.n()},
                          {"m", layer.m()},
                          {"k", layer.k()},
                          {"l", layer.l()},
                          {"paths", layer.paths.size()},
                          {"method", std::string(factor::methodName(layer.method))},
                          {"objective", std::string(factor::objectiveName(layer.objective))},
                          {"bpw", layer.bpw},
                          {"rel_error", layer.relError}});
    }
    if (opt.json) {
        printJson({{"package", opt.package},
                   {"format", std::string(io::kPackageFormat)},
                   {"format_version", io::kPackageVersion},
                   {"config", configJson(config)},
                   {"model_bpw", pkg.modelBpw},
                   {"factorized_bpw", pkg.factorizedBpw},
                   {"bytes", ec ? 0 : bytes},
                   {"tensors", tensors},
                   {"layers", layers}});
        return kExitOk;
    }
    std::printf("package      %s (%s v%lld, %.2f MiB)\n", opt.package.c_str(), std::string(io::kPackageFormat).c_str(),
                static_cast<long long>(io::kPackageVersion), static_cast<double>(ec ? 0 : bytes) / (1024.0 * 1024.0));
    std::printf("architecture %s, %d layers, hidden %d, intermediate %d, heads %d (kv %d, head dim %d), vocab %d\n",
                config.architectureName.c_str(), config.numLayers, config.hiddenSize, config.intermediateSize,
                config.numHeads, config.numKvHeads, config.headDim, config.vocabSize);
    std::printf("bits         %.4f bpw over all weights, %.4f bpw over the %zu factorized layers\n", pkg.modelBpw,
                pkg.factorizedBpw, pkg.layers.size());
    std::printf("\n%-44s %-10s %6s %3s %2s %-5s %-9s %7s %10s\n", "factorized layer", "shape", "k", "l", "P", "method",
                "objective", "bpw", "rel_error");
    for (const io::PackageLayer& layer : pkg.layers) {
        std::printf("%-44s %-10s %6lld %3lld %2zu %-5s %-9s %7.4f %10.5f\n", layer.name.c_str(),
                    (std::to_string(layer.n()) + "x" + std::to_string(layer.m())).c_str(),
                    static_cast<long long>(layer.k()), static_cast<long long>(layer.l()), layer.paths.size(),
                    std::string(factor::methodName(layer.method)).c_str(),
                    std::string(factor::objectiveName(layer.objective)).c_str(), layer.bpw, layer.relError);
    }
    std::printf("\n%-44s %-5s %-12s %10s   (%.2f M parameters)\n", "dense tensor", "dtype", "shape", "params",
                static_cast<double>(denseParams) / 1e6);
    for (const io::PackageTensor& t : pkg.dense) {
        std::printf("%-44s %-5s %-12s %10lld\n", t.name.c_str(), std::string(io::dtypeName(t.dtype)).c_str(),
                    shapeText(t.shape).c_str(), static_cast<long long>(t.elementCount()));
    }
    return kExitOk;
}

int runInspect(const InspectOptions& opt, const CommandEnv& env)
{
    if (!opt.package.empty()) return runInspectPackage(opt, env);
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
    CLI::Option_group* source = sub->add_option_group("source", "What to inspect: exactly one of");
    source->add_option("--model", opt->model, "Hugging Face model directory")->check(CLI::ExistingDirectory);
    source->add_option("--package", opt->package, "HDF5 deployment package written by `mdbf quantize`")
        ->check(CLI::ExistingFile);
    source->require_option(1);
    addJsonFlag(*sub, opt->json);
    return {sub, [opt](const CommandEnv& env) { return runInspect(*opt, env); }};
}

}  // namespace mdbf::cli
