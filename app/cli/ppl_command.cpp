#include <cstdio>
#include <iostream>
#include <optional>

#include "commands.h"
#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/eval/perplexity.h"
#include "mdbf/io/package.h"
#include "mdbf/model/transformer.h"
#include "mdbf/tokenizer/tokenizer.h"

namespace mdbf::cli {

namespace {

struct PplOptions {
    std::string model;
    std::string package;
    std::string textFile;
    int ctx = 256;
    bool json = false;
};

int runPpl(const PplOptions& opt, const CommandEnv& env)
{
    const std::filesystem::path dir = opt.model;
    ProgressBar bar("ppl");
    const RunContext ctx = bar.context(env);
    // A package carries its own tokenizer and runs without the checkpoint.
    std::optional<io::Package> package;
    if (!opt.package.empty()) package = io::readPackage(opt.package, ctx);
    const Tokenizer tokenizer = package ? Tokenizer::fromJsonText(package->tokenizerJson, opt.package + ":/tokenizer.json")
                                        : Tokenizer::fromFile(dir / "tokenizer.json");
    const std::string text = readUtf8File(opt.textFile);
    const std::vector<std::int32_t> ids = tokenizer.encode(text);
    if (static_cast<std::int64_t>(ids.size()) < opt.ctx) {
        throw InvalidArgument("'" + opt.textFile + "': the text has " + std::to_string(ids.size()) +
                              " tokens, fewer than ctx = " + std::to_string(opt.ctx));
    }

    const model::Transformer model = package ? io::transformerFromPackage(*package, opt.package)
                                             : model::Transformer::load(dir, ctx);
    const std::string modelSource = package ? opt.package : opt.model;
    const std::string tokenizerSource = package ? opt.package + ":/tokenizer.json" : (dir / "tokenizer.json").string();
    package.reset();
    eval::requireIdsInVocabulary(ids, model.config().vocabSize, tokenizerSource, modelSource);
    eval::PerplexityResult r;
    try {
        r = eval::perplexity(model, ids, opt.ctx, ctx);
    } catch (InvalidArgument& e) {
        e.addContext(quotedText(modelSource) + ": perplexity");
        throw;
    }
    bar.finish();
    if (r.cancelled) throw Cancelled();

    if (opt.json) {
        printJson({{"ppl", r.ppl},
                   {"nll", r.nll},
                   {"predicted", r.predicted},
                   {"tokens", r.tokens},
                   {"windows", r.windows},
                   {"ctx", opt.ctx},
                   {"seconds", r.seconds}});
        return kExitOk;
    }
    std::printf("perplexity %.4f on %s (ctx %d: %lld windows, %lld predicted of %lld tokens) in %.2f s, %.0f tok/s\n",
                r.ppl, opt.textFile.c_str(), opt.ctx, static_cast<long long>(r.windows),
                static_cast<long long>(r.predicted), static_cast<long long>(r.tokens), r.seconds,
                static_cast<double>(r.windows * opt.ctx) / r.seconds);
    return kExitOk;
}

}  // namespace

Command registerPplCommand(CLI::App& root)
{
    auto opt = std::make_shared<PplOptions>();
    CLI::App* sub = root.add_subcommand("ppl", "Perplexity of a model on a text (DESIGN.md §5 convention)");
    CLI::Option_group* source = sub->add_option_group("source", "The model to evaluate: exactly one of");
    source->add_option("--model", opt->model, "Hugging Face model directory")->check(CLI::ExistingDirectory);
    source->add_option("--package", opt->package, "HDF5 deployment package written by `mdbf quantize`")
        ->check(CLI::ExistingFile);
    source->require_option(1);
    sub->add_option("--text-file", opt->textFile, "UTF-8 text file, read as raw bytes")->required();
    sub->add_option("--ctx", opt->ctx, "Window length in tokens")->check(intRange(2, kMaxContext));
    addJsonFlag(*sub, opt->json);
    return {sub, [opt](const CommandEnv& env) { return runPpl(*opt, env); }};
}

}  // namespace mdbf::cli
