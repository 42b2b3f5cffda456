#pragma once
// Reading tokenizer.json into the parts of the encoding and decoding pipelines. Every JSON parse
// of a tokenizer goes through parseTokenizerJson.

#include <optional>
#include <string_view>
#include <vector>

#include "tokenizer/added_token_splitter.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace mdbf::tokenizer {

/// The pipeline a tokenizer.json describes.
struct TokenizerParts {
    BpeModel model;
    std::vector<AddedToken> addedTokens;
    Normalizer normalizer;
    PreTokenizer preTokenizer;
    /// The decoder chain of a SentencePiece-style file; empty for a byte-level one, which always
    /// decodes through the GPT-2 alphabet.
    std::optional<TokenDecoder> decoder;
};

/// Parses the text of a tokenizer.json. Throws FormatError (without the file name; the caller
/// adds it) for malformed JSON or any component or option that is not supported, naming it.
TokenizerParts parseTokenizerJson(std::string_view jsonText);

}  // namespace mdbf::tokenizer
