#include <cstdio>
#include <iostream>

#include "commands.h"
#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/eval/perplexity.h"
#include "mdbf/generate/generator.h"
#include "model_source.h"

namespace mdbf::cli {

namespace {

struct GenerateOptions {
    ModelSource source;
    std::string prompt;
    std::string promptFile;
    generate::GenerationOptions generation;
    bool json = false;
};

int runGenerate(const GenerateOptions& opt, const CommandEnv& env)
{
    if (const int status = validateOptions(opt.generation); status != kExitOk) return status;
    ProgressBar bar("generate");
    RunContext ctx = bar.context(env);
    const LoadedModel loaded = loadModel(opt.source, ctx);
    bar.finish();
    // The bar would interleave with the streamed text; generation reports by its output instead.
    ctx.progress = nullptr;

    const std::string prompt = opt.promptFile.empty() ? opt.prompt : readUtf8File(opt.promptFile);
    const std::vector<std::int32_t> promptIds = loaded.tokenizer.encode(prompt);
    if (promptIds.empty()) {
        throw InvalidArgument(opt.promptFile.empty() ? std::string("the prompt is empty")
                                                     : quotedText(opt.promptFile) + ": the prompt is empty");
    }
    eval::requireIdsInVocabulary(promptIds, loaded.transformer.config().vocabSize, loaded.tokenizerSource,
                                 loaded.modelSource);

    const auto stream = [&](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
    };
    if (!opt.json) stream(prompt);
    const generate::GenerationResult r =
        generate::generate(loaded.transformer, loaded.tokenizer, promptIds, opt.generation, ctx,
                           opt.json ? std::function<void(std::string_view)>{} : stream);

    if (opt.json) {
        printJson({{"prompt_ids", r.promptIds},
                   {"ids", r.ids},
                   {"text", r.text},
                   {"prompt_tokens", r.promptIds.size()},
                   {"generated_tokens", r.ids.size()},
                   {"stop", generate::stopReasonName(r.stop)},
                   {"prefill_tok_s", r.prefillTokensPerSecond()},
                   {"decode_tok_s", r.decodeTokensPerSecond()}});
    } else {
        std::printf("\n");
        std::fflush(stdout);
        std::fprintf(stderr, "[%zu prompt tokens at %.0f tok/s, %zu generated at %.0f tok/s; stopped: %s]\n",
                     r.promptIds.size(), r.prefillTokensPerSecond(), r.ids.size(), r.decodeTokensPerSecond(),
                     std::string(generate::stopReasonName(r.stop)).c_str());
    }
    return r.stop == generate::StopReason::Cancelled ? kExitCancelled : kExitOk;
}

}  // namespace

Command registerGenerateCommand(CLI::App& root)
{
    auto opt = std::make_shared<GenerateOptions>();
    CLI::App* sub = root.add_subcommand("generate", "Generate text from a model or a deployment package");
    opt->source.addOptions(*sub);
    CLI::Option_group* prompt = sub->add_option_group("prompt", "The prompt: exactly one of");
    prompt->add_option("--prompt", opt->prompt, "Prompt text (no special tokens are added)");
    prompt->add_option("--prompt-file", opt->promptFile, "UTF-8 file holding the prompt")->check(CLI::ExistingFile);
    prompt->require_option(1);
    generate::GenerationOptions& g = opt->generation;
    sub->add_option("--max-tokens", g.maxTokens, "Tokens to generate at most")->check(intRange(1, kMaxContext));
    sub->add_option("--temperature", g.sampling.temperature, "Sampling temperature; 0 = greedy (default)");
    sub->add_option("--top-k", g.sampling.topK, "Keep only the k most likely tokens (0 = all)");
    sub->add_option("--top-p", g.sampling.topP, "Keep the most likely tokens whose probability reaches p, in (0, 1]");
    addSeedOption(*sub, g.sampling.seed, "Seed of the sampler (same seed, same text)");
    sub->add_flag("--ignore-eos", g.ignoreEos, "Keep generating past the end-of-sequence token");
    addJsonFlag(*sub, opt->json);
    return {sub, [opt](const CommandEnv& env) { return runGenerate(*opt, env); }};
}

}  // namespace mdbf::cli
