#include "tokenizer/pcre_regex.h"

#include "mdbf/base/error.h"

namespace mdbf::tokenizer {

namespace {

std::string pcreMessage(int code)
{
    PCRE2_UCHAR buffer[256];
    if (pcre2_get_error_message(code, buffer, sizeof buffer) < 0) return "error " + std::to_string(code);
    return reinterpret_cast<const char*>(buffer);
}

}  // namespace

PcreRegex::MatchData::MatchData(const PcreRegex& regex)
    : m_data(pcre2_match_data_create_from_pattern(regex.m_code.get(), nullptr), &pcre2_match_data_free)
{
    if (!m_data) throw std::bad_alloc();
}

PcreRegex::PcreRegex(const std::string& pattern, bool literal) : m_pattern(pattern), m_code(nullptr, &pcre2_code_free)
{
    int errorCode = 0;
    PCRE2_SIZE errorOffset = 0;
    // PCRE2 refuses UCP together with LITERAL; a literal has no character classes to widen anyway.
    const uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    m_code.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &errorCode,
                               &errorOffset, nullptr));
    if (!m_code) {
        throw FormatError("regex '" + pattern + "' rejected by PCRE2 at offset " + std::to_string(errorOffset) + ": " +
                          pcreMessage(errorCode));
    }
    // Without JIT support (or if it fails) pcre2_match silently uses the interpreter.
    pcre2_jit_compile(m_code.get(), PCRE2_JIT_COMPLETE);
}

bool PcreRegex::find(std::string_view subject, std::size_t start, MatchData& data, std::size_t& begin,
                     std::size_t& end) const
{
    const auto* text = reinterpret_cast<PCRE2_SPTR>(subject.data());
    // The caller validated the UTF-8 once; re-checking on every call would be quadratic.
    int rc = pcre2_match(m_code.get(), text, subject.size(), start, PCRE2_NO_UTF_CHECK, data.m_data.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        // The default JIT stack is small; the interpreter keeps its backtracking state on the heap.
        rc = pcre2_match(m_code.get(), text, subject.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                         data.m_data.get(), nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) {
        throw FormatError("regex '" + m_pattern + "' failed on the text at byte " + std::to_string(start) + ": " +
                          pcreMessage(rc));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.m_data.get());
    begin = ovector[0];
    end = ovector[1];
    // \K inside a lookaround can report a match outside [start, end]; clamp so that pieces never
    // overlap.
    if (begin < start) begin = start;
    if (end < begin) end = begin;
    return true;
}

}  // namespace mdbf::tokenizer
