#pragma once
// A compiled PCRE2 pattern in UTF + UCP mode (so `\s`, `\p{L}` and `(?i:...)` follow Unicode, as
// in the Oniguruma/Rust engines Hugging Face uses), JIT-compiled when the library supports it.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <pcre2.h>

#include "tokenizer/utf8_util.h"

namespace mdbf::tokenizer {

/// Immutable after construction and shareable between threads; each thread matches with its own
/// MatchData.
class PcreRegex {
public:
    /// Per-thread scratch space for matching.
    class MatchData {
    public:
        explicit MatchData(const PcreRegex& regex);

    private:
        friend class PcreRegex;
        std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> m_data;
    };

    /// Compiles `pattern` (UTF-8); `literal` matches it as plain text. Throws FormatError with
    /// PCRE2's message and the offset of the problem if the pattern is rejected.
    PcreRegex(const std::string& pattern, bool literal);

    /// Finds the leftmost match in `subject` starting at or after byte `start` (a code point
    /// boundary of valid UTF-8). On success stores the match in [begin, end) — possibly empty —
    /// and returns true. Throws FormatError if PCRE2 gives up (e.g. its match limit).
    bool find(std::string_view subject, std::size_t start, MatchData& data, std::size_t& begin,
              std::size_t& end) const;

    /// Calls onMatch(begin, end) for every non-empty match in `subject` (valid UTF-8), left to right,
    /// each search resuming where the last match ended. An empty match is stepped over one code
    /// point at a time, so the scan always ends.
    template <typename OnMatch>
    void forEachMatch(std::string_view subject, MatchData& data, OnMatch&& onMatch) const
    {
        std::size_t pos = 0;
        while (pos < subject.size()) {
            std::size_t begin = 0;
            std::size_t end = 0;
            if (!find(subject, pos, data, begin, end)) break;
            if (begin == end) {
                if (begin >= subject.size()) break;
                pos = begin;
                decodeUtf8(subject, pos);
                continue;
            }
            onMatch(begin, end);
            pos = end;
        }
    }

    /// The source pattern, for messages.
    const std::string& pattern() const { return m_pattern; }

private:
    std::string m_pattern;
    std::unique_ptr<pcre2_code, decltype(&pcre2_code_free)> m_code;
};

}  // namespace mdbf::tokenizer
