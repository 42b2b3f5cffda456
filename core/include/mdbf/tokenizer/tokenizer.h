#pragma once
// BPE tokenizer read from a Hugging Face `tokenizer.json` (byte-level or SentencePiece-style), or a
// SentencePiece `tokenizer.model` (docs/CLI.md §2.4).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mdbf {

/// Immutable after construction; encode/decode are thread-safe.
class Tokenizer {
public:
    /// Reads `tokenizer.json` (or a SentencePiece model when the name ends in `.model`). Throws
    /// IoError if unreadable, FormatError naming the file for malformed JSON, an unsupported
    /// model/normalizer/pre-tokenizer/decoder type or option (the message names it), a regex
    /// PCRE2 rejects, or merges that name unknown tokens.
    static Tokenizer fromFile(const std::filesystem::path& path);

    /// The tokenizer of a model directory: its tokenizer.json, or else its tokenizer.model.
    /// Throws IoError naming the directory when it has neither, otherwise as fromFile.
    static Tokenizer fromModelDir(const std::filesystem::path& dir);

    /// The file fromModelDir reads in `dir`: tokenizer.json when it is a regular file, otherwise
    /// tokenizer.model (which may not exist). Never throws for a missing file; for messages.
    static std::filesystem::path fileInModelDir(const std::filesystem::path& dir);

    /// Reads a SentencePiece model (`tokenizer.model`) with libsentencepiece. Throws IoError if
    /// unreadable, FormatError naming the file if the library rejects it.
    static Tokenizer fromSentencePieceFile(const std::filesystem::path& path);

    /// Like fromFile for a tokenizer.json, from its text; `source` names the file in messages.
    static Tokenizer fromJsonText(std::string_view jsonText, const std::string& source);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    /// Encodes UTF-8 text with no special tokens added (no BOS/EOS); special added tokens that
    /// occur in the text are split out first (tokenizer.json only: a SentencePiece model encodes
    /// all text as text). An empty text gives no ids. Throws FormatError for invalid UTF-8.
    std::vector<std::int32_t> encode(std::string_view text) const;

    /// Decodes ids back to text as Hugging Face does with special tokens kept: byte-level files
    /// map ids to bytes (added tokens give their content); SentencePiece-style files run their
    /// decoder chain (Replace, ByteFallback, Fuse, Strip, Metaspace). decode(encode(t)) is the
    /// normalized t. Bytes that are not valid UTF-8 (ids that cut a character) become U+FFFD, so
    /// the result is always valid UTF-8. Linear in the number of ids. Throws InvalidArgument for
    /// an unknown id.
    std::string decode(std::span<const std::int32_t> ids) const;

    /// Number of ids (vocabulary plus added tokens; the largest id + 1).
    std::size_t vocabSize() const;

    /// The id of a token string as it appears in the vocabulary, if any.
    std::optional<std::int32_t> tokenId(std::string_view token) const;

private:
    struct Impl;
    explicit Tokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

}  // namespace mdbf
