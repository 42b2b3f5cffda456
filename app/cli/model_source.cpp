#include "model_source.h"

#include <filesystem>

#include "mdbf/deploy/package_model.h"
#include "mdbf/io/package.h"

namespace mdbf::cli {

void ModelSource::addOptions(CLI::App& sub)
{
    CLI::Option_group* group = sub.add_option_group("source", "The model to run: exactly one of");
    group->add_option("--model", model, "Hugging Face model directory")->check(CLI::ExistingDirectory);
    group->add_option("--package", package, "HDF5 deployment package written by `mdbf quantize`")
        ->check(CLI::ExistingFile);
    group->require_option(1);
}

LoadedModel loadModel(const ModelSource& source, const RunContext& ctx)
{
    if (!source.package.empty()) {
        const io::Package package = io::readPackage(source.package, ctx);
        const std::string tokenizerSource = source.package + ":/tokenizer.json";
        return {deploy::transformerFromPackage(package, source.package),
                Tokenizer::fromJsonText(package.tokenizerJson, tokenizerSource), source.package, tokenizerSource};
    }
    const std::filesystem::path dir = source.model;
    Tokenizer tokenizer = Tokenizer::fromModelDir(dir);
    const std::string tokenizerSource = Tokenizer::fileInModelDir(dir).string();
    // Weights stay at their stored precision: decoding streams half the bytes of float32.
    return {model::Transformer::load(dir, ctx, model::Transformer::Weights::Stored), std::move(tokenizer), source.model,
            tokenizerSource};
}

}  // namespace mdbf::cli
