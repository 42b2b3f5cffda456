#include "tokenizer/normalizer.h"

#include "tokenizer/utf8_util.h"

namespace mdbf::tokenizer {

std::string replaceAll(std::string_view text, std::string_view from, std::string_view to)
{
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    std::size_t pos = 0;
    for (std::size_t hit = text.find(from); hit != std::string_view::npos; hit = text.find(from, pos)) {
        out.append(text.substr(pos, hit - pos));
        out.append(to);
        pos = hit + from.size();
    }
    out.append(text.substr(pos));
    return out;
}

std::string replaceAll(std::string_view text, const PcreRegex& regex, std::string_view to)
{
    PcreRegex::MatchData data(regex);
    std::string out;
    std::size_t copy = 0;  // start of the text not yet copied
    // An empty match replaces nothing.
    regex.forEachMatch(text, data, [&](std::size_t begin, std::size_t end) {
        out.append(text.substr(copy, begin - copy));
        out.append(to);
        copy = end;
    });
    out.append(text.substr(copy));
    return out;
}

std::string Normalizer::run(std::string_view text) const
{
    std::string current(text);
    for (const NormalizerStep& step : m_steps) {
        switch (step.kind) {
        case NormalizerStep::Kind::Nfc:
            if (!isAscii(current)) current = toNfc(current);
            break;
        case NormalizerStep::Kind::Nfkc:
            if (!isAscii(current)) current = toNfkc(current);
            break;
        case NormalizerStep::Kind::Prepend:
            if (!current.empty()) current.insert(0, step.content);
            break;
        case NormalizerStep::Kind::Replace:
            current = step.regex ? replaceAll(current, *step.regex, step.content)
                                 : replaceAll(current, step.literal, step.content);
            break;
        }
    }
    return current;
}

}  // namespace mdbf::tokenizer
