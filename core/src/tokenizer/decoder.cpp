#include "tokenizer/decoder.h"

#include "mdbf/base/text_file.h"
#include "tokenizer/normalizer.h"

namespace mdbf::tokenizer {

namespace {

/// The byte of a `<0xNN>` token (upper- or lower-case hex), or -1.
int fallbackByte(const std::string& token)
{
    if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') return -1;
    int value = 0;
    for (int i = 3; i < 5; ++i) {
        const char c = token[static_cast<std::size_t>(i)];
        int digit = -1;
        if (c >= '0' && c <= '9') digit = c - '0';
        if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
        if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
        if (digit < 0) return -1;
        value = value * 16 + digit;
    }
    return value;
}

void byteFallback(std::vector<std::string>& tokens)
{
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string bytes;
    std::size_t byteTokens = 0;
    const auto flush = [&] {
        if (byteTokens == 0) return;
        if (findInvalidUtf8(bytes) == std::string::npos) {
            out.push_back(bytes);
        } else {
            for (std::size_t i = 0; i < byteTokens; ++i) out.emplace_back("\xEF\xBF\xBD");
        }
        bytes.clear();
        byteTokens = 0;
    };
    for (std::string& token : tokens) {
        if (const int b = fallbackByte(token); b >= 0) {
            bytes.push_back(static_cast<char>(b));
            ++byteTokens;
            continue;
        }
        flush();
        out.push_back(std::move(token));
    }
    flush();
    tokens.swap(out);
}

void strip(std::string& token, const DecoderStep& step)
{
    const std::string& c = step.pattern;
    std::size_t begin = 0;
    for (int i = 0; i < step.start && token.compare(begin, c.size(), c) == 0; ++i) begin += c.size();
    std::size_t end = token.size();
    for (int i = 0; i < step.stop && end >= begin + c.size() && token.compare(end - c.size(), c.size(), c) == 0; ++i) {
        end -= c.size();
    }
    token = token.substr(begin, end - begin);
}

}  // namespace

std::string TokenDecoder::decode(std::vector<std::string> tokens) const
{
    if (m_steps.empty()) {
        std::string joined;
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            if (i > 0) joined += ' ';
            joined += tokens[i];
        }
        return joined;
    }
    for (const DecoderStep& step : m_steps) {
        switch (step.kind) {
        case DecoderStep::Kind::Replace:
            for (std::string& token : tokens) {
                if (token.find(step.pattern) != std::string::npos) token = replaceAll(token, step.pattern, step.content);
            }
            break;
        case DecoderStep::Kind::ByteFallback:
            byteFallback(tokens);
            break;
        case DecoderStep::Kind::Fuse: {
            std::string fused;
            for (const std::string& token : tokens) fused += token;
            tokens.assign(1, std::move(fused));
            break;
        }
        case DecoderStep::Kind::Strip:
            for (std::string& token : tokens) strip(token, step);
            break;
        case DecoderStep::Kind::Metaspace:
            for (std::size_t i = 0; i < tokens.size(); ++i) {
                std::string& token = tokens[i];
                if (token.find(step.pattern) != std::string::npos) token = replaceAll(token, step.pattern, " ");
                if (i == 0 && step.stripFirstSpace && token.starts_with(' ')) token.erase(0, 1);
            }
            break;
        }
    }
    std::string text;
    for (const std::string& token : tokens) text += token;
    return text;
}

}  // namespace mdbf::tokenizer
