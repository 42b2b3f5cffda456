#include <cstdio>
#include <iostream>

#include "commands.h"
#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/tokenizer/tokenizer.h"

namespace mdbf::cli {

namespace {

struct TokenizeOptions {
    std::string model;
    std::string textFile;
    bool json = false;
};

int runTokenize(const TokenizeOptions& opt, const CommandEnv&)
{
    const Tokenizer tokenizer = Tokenizer::fromModelDir(opt.model);
    const std::string text = readUtf8File(opt.textFile);
    const std::vector<std::int32_t> ids = tokenizer.encode(text);
    if (!text.empty() && ids.empty()) {
        throw FormatError(quotedText(Tokenizer::fileInModelDir(opt.model).string()) + ": encodes the " + std::to_string(text.size()) +
                          "-byte text " + quotedText(opt.textFile) + " to no tokens (empty vocabulary?)");
    }
    if (opt.json) {
        printJson({{"ids", ids}, {"count", ids.size()}});
        return kExitOk;
    }
    std::printf("%zu tokens\n", ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) std::printf(i + 1 < ids.size() ? "%d " : "%d\n", ids[i]);
    return kExitOk;
}

}  // namespace

Command registerTokenizeCommand(CLI::App& root)
{
    auto opt = std::make_shared<TokenizeOptions>();
    CLI::App* sub = root.add_subcommand("tokenize", "Encode a UTF-8 text file with a model's tokenizer");
    addModelDirOption(*sub, opt->model, "Hugging Face model directory (reads tokenizer.json, or else tokenizer.model)");
    addTextFileOption(*sub, opt->textFile);
    addJsonFlag(*sub, opt->json);
    return {sub, [opt](const CommandEnv& env) { return runTokenize(*opt, env); }};
}

}  // namespace mdbf::cli
