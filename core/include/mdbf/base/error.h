#pragma once
// Error types of the core library (docs/CONVENTIONS.md §3): every failure caused by input, I/O or a
// corrupt file is an exception derived from mdbf::Error whose message names the file and the problem.

#include <stdexcept>
#include <string>
#include <string_view>

namespace mdbf {

/// Longest error message, in bytes, after context has been added; a longer one is cut in the
/// middle with "…" so that both the file named first and the problem named last survive.
inline constexpr std::size_t kMaxMessageBytes = 1000;

/// Longest excerpt of a user-supplied value (a name, a JSON value, a pattern) quoted in a message.
inline constexpr std::size_t kMaxQuotedBytes = 120;

/// `value` made fit for a one-line message: control characters and bytes that are not UTF-8 escaped
/// (`\n`, `\t`, `\xNN`) and the text cut after about `maxBytes` bytes, at a character boundary,
/// with "…". Never throws except std::bad_alloc.
std::string messageText(std::string_view value, std::size_t maxBytes = kMaxQuotedBytes);

/// `messageText(value)` between single quotes: the way messages name files, tensors and keys.
std::string quotedText(std::string_view value, std::size_t maxBytes = kMaxQuotedBytes);

/// Base of every exception the core throws for bad input, I/O failures and cancellation.
/// what() returns the full message including any context added while unwinding.
class Error : public std::exception {
public:
    /// Takes the message (one line, naming the file or object and the problem).
    /// Control characters are escaped and an overlong message is cut (kMaxMessageBytes), so every
    /// message prints as one bounded line whatever the input held.
    explicit Error(std::string message) : m_message(bounded(message)) {}

    const char* what() const noexcept override { return m_message.c_str(); }

    /// Prepends "context: " to the message; used by callers that know which file or tensor was
    /// being processed. Returns *this so that `throw;` rethrows the enriched object.
    Error& addContext(const std::string& context)
    {
        m_message = bounded(context + ": " + m_message);
        return *this;
    }

private:
    static std::string bounded(std::string_view message);

    std::string m_message;
};

/// A file exists but its contents are malformed (bad header, wrong shape, truncated data...).
class FormatError : public Error {
public:
    using Error::Error;
};

/// The operating system refused an operation: missing file, unreadable, mmap/rename failure.
class IoError : public Error {
public:
    using Error::Error;
};

/// A caller-supplied value is out of range or inconsistent (e.g. a bpw budget too small).
class InvalidArgument : public Error {
public:
    using Error::Error;
};

/// A long-running job stopped because its stop token was triggered.
class Cancelled : public Error {
public:
    Cancelled() : Error("cancelled") {}
};

}  // namespace mdbf
