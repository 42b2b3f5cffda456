#pragma once
// Reading tokenizer.json into the parts of the encoding and decoding pipelines. The text itself is
// parsed by the project's one depth-limited JSON parser (base/json_text.h) before it gets here.

#include <optional>

#include <nlohmann/json.hpp>
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

/// Reads the parsed JSON of a tokenizer.json. Throws FormatError (without the file name; the caller
/// adds it) for a wrong structure or any component or option that is not supported, naming it.
TokenizerParts parseTokenizerJson(const nlohmann::json& root);

}  // namespace mdbf::tokenizer
