#include <cstdio>

#include "commands.h"
#include "mdbf/base/error.h"
#include "mdbf/generate/throughput.h"
#include "model_source.h"

namespace mdbf::cli {

namespace {

struct BenchOptions {
    ModelSource source;
    generate::ThroughputOptions throughput;
    bool json = false;
};

int runBench(const BenchOptions& opt, const CommandEnv& env)
{
    if (const int status = validateOptions(opt.throughput); status != kExitOk) return status;
    ProgressBar bar("bench");
    const RunContext ctx = bar.context(env);
    const LoadedModel loaded = loadModel(opt.source, ctx);
    const generate::ThroughputResult r = generate::measureThroughput(loaded.transformer, opt.throughput, ctx);
    bar.finish();
    if (r.cancelled) return kExitCancelled;

    using R = generate::ThroughputResult;
    const double pp = R::mean(r.prefillTokensPerSecond);
    const double ppSd = R::standardDeviation(r.prefillTokensPerSecond);
    const double tg = R::mean(r.decodeTokensPerSecond);
    const double tgSd = R::standardDeviation(r.decodeTokensPerSecond);
    if (opt.json) {
        printJson({{"prefill_tok_s", pp},
                   {"prefill_sd", ppSd},
                   {"decode_tok_s", tg},
                   {"decode_sd", tgSd},
                   {"threads", r.threads},
                   {"prompt_tokens", opt.throughput.promptTokens},
                   {"gen_tokens", opt.throughput.genTokens},
                   {"repetitions", opt.throughput.repetitions}});
        return kExitOk;
    }
    const std::string& name = opt.source.package.empty() ? opt.source.model : opt.source.package;
    std::printf("| model | threads | test | t/s |\n|---|---|---|---|\n");
    std::printf("| %s | %d | pp%d | %.1f ± %.1f |\n", name.c_str(), r.threads, opt.throughput.promptTokens, pp, ppSd);
    std::printf("| %s | %d | tg%d | %.1f ± %.1f |\n", name.c_str(), r.threads, opt.throughput.genTokens, tg, tgSd);
    return kExitOk;
}

}  // namespace

Command registerBenchCommand(CLI::App& root)
{
    auto opt = std::make_shared<BenchOptions>();
    CLI::App* sub = root.add_subcommand("bench", "Prefill and decode speed in tokens per second");
    opt->source.addOptions(*sub);
    generate::ThroughputOptions& t = opt->throughput;
    sub->add_option("--prompt-tokens", t.promptTokens, "Prefill window (random ids)")->check(intRange(1, kMaxContext));
    sub->add_option("--gen-tokens", t.genTokens, "One-token decoding steps after the prefill")->check(intRange(1, kMaxContext));
    sub->add_option("--repetitions", t.repetitions, "Timed runs after one warm-up")->check(intRange(1, 1000));
    addJsonFlag(*sub, opt->json);
    return {sub, [opt](const CommandEnv& env) { return runBench(*opt, env); }};
}

}  // namespace mdbf::cli
