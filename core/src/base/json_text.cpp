#include "mdbf/base/json_text.h"

#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"

namespace mdbf {

namespace {

/// Thrown from the parser callback; caught below so that the depth message is not wrapped as a
/// syntax error.
struct TooDeep {};

}  // namespace

nlohmann::json parseJsonText(std::string_view text, const std::string& source, std::string_view what, int maxDepth)
{
    using nlohmann::json;
    // The callback sees each container as it opens, so nesting is refused before it is built.
    const json::parser_callback_t limitDepth = [maxDepth](int depth, json::parse_event_t event, json&) {
        if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
            depth >= maxDepth) {
            throw TooDeep{};
        }
        return true;
    };
    try {
        return json::parse(text.begin(), text.end(), limitDepth);
    } catch (const TooDeep&) {
        throw FormatError(quotedText(source, kMaxMessageBytes / 2) + ": " + (what.empty() ? "JSON" : std::string(what)) +
                          " is nested more than " + std::to_string(maxDepth) + " levels deep");
    } catch (const json::exception& e) {
        const std::string subject = what.empty() ? std::string() : std::string(what) + " is ";
        throw FormatError(quotedText(source, kMaxMessageBytes / 2) + ": " + subject + "not valid JSON (" +
                          messageText(e.what(), 200) + ")");
    }
}

nlohmann::json readJsonFile(const std::filesystem::path& path)
{
    return parseJsonText(readBinaryFile(path), path.string());
}

}  // namespace mdbf
