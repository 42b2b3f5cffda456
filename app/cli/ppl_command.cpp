#include <cstdio>
#include <iostream>

#include "commands.h"
#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/eval/perplexity.h"
#include "model_source.h"

namespace mdbf::cli {

namespace {

struct PplOptions {
    ModelSource source;
    std::string textFile;
    int ctx = 256;
    bool json = false;
};

int runPpl(const PplOptions& opt, const CommandEnv& env)
{
    ProgressBar bar("ppl");
    const RunContext ctx = bar.context(env);
    const std::string text = readUtf8File(opt.textFile);
    const LoadedModel loaded = loadModel(opt.source, ctx);
    const std::vector<std::int32_t> ids = loaded.tokenizer.encode(text);
    if (static_cast<std::int64_t>(ids.size()) < opt.ctx) {
        throw InvalidArgument("'" + opt.textFile + "': the text has " + std::to_string(ids.size()) +
                              " tokens, fewer than ctx = " + std::to_string(opt.ctx));
    }
    eval::requireIdsInVocabulary(ids, loaded.transformer.config().vocabSize, loaded.tokenizerSource, loaded.modelSource);
    eval::PerplexityResult r;
    try {
        r = eval::perplexity(loaded.transformer, ids, opt.ctx, ctx);
    } catch (InvalidArgument& e) {
        e.addContext(quotedText(loaded.modelSource) + ": perplexity");
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
    CLI::App* sub = root.add_subcommand("ppl", "Perplexity of a model on a text (docs/ALGORITHM.md §7 convention)");
    opt->source.addOptions(*sub);
    addTextFileOption(*sub, opt->textFile);
    sub->add_option("--ctx", opt->ctx, "Window length in tokens")->check(intRange(2, kMaxContext));
    addJsonFlag(*sub, opt->json);
    return {sub, [opt](const CommandEnv& env) { return runPpl(*opt, env); }};
}

}  // namespace mdbf::cli
