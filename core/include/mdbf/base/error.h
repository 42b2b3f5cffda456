#pragma once
// Error types of the core library (STYLE.md "Errors"): every failure caused by input, I/O or a
// corrupt file is an exception derived from mdbf::Error whose message names the file and the problem.

#include <stdexcept>
#include <string>

namespace mdbf {

/// Base of every exception the core throws for bad input, I/O failures and cancellation.
/// what() returns the full message including any context added while unwinding.
class Error : public std::exception {
public:
    /// Takes the message (one line, naming the file or object and the problem).
    explicit Error(std::string message) : m_message(std::move(message)) {}

    const char* what() const noexcept override { return m_message.c_str(); }

    /// Prepends "context: " to the message; used by callers that know which file or tensor was
    /// being processed. Returns *this so that `throw;` rethrows the enriched object.
    Error& addContext(const std::string& context)
    {
        m_message = context + ": " + m_message;
        return *this;
    }

private:
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
