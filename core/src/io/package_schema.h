#pragma once
// Names and fixed strings of the package schema (docs/package-format.md), shared by the writer and
// the reader so the two cannot drift apart. Private to core/io.

#include <string>
#include <string_view>

#include "mdbf/io/checkpoint.h"

namespace mdbf::io::schema {

inline constexpr const char* kConfigDataset = "config.json";
inline constexpr const char* kTokenizerDataset = "tokenizer.json";
inline constexpr const char* kQuantConfigDataset = "quant_config.json";
inline constexpr const char* kDenseGroup = "dense";
inline constexpr const char* kLayersGroup = "layers";

inline constexpr const char* kAttrFormat = "format";
inline constexpr const char* kAttrVersion = "format_version";
inline constexpr const char* kAttrProducer = "producer";
inline constexpr const char* kAttrModelBpw = "model_bpw";
inline constexpr const char* kAttrFactorizedBpw = "factorized_bpw";
inline constexpr const char* kAttrEncoding = "encoding";
inline constexpr const char* kAttrBitOrder = "bit_order";

/// The value of every packed sign dataset's `bit_order` attribute; it restates the layout pinned
/// in mdbf/kernels/packed_signs.h.
inline constexpr const char* kBitOrder =
    "row-major; each row is ceil(cols/64) little-endian uint64 words; entry (i, j) is bit j mod 64 "
    "(least significant bit first) of word j div 64 of row i; set bit = -1, clear bit = +1; "
    "padding bits past cols are clear";

inline constexpr const char* kEnvelopeNames[4] = {"A", "Qa", "Qb", "B"};

/// "path<p>".
inline std::string pathGroupName(std::size_t p) { return "path" + std::to_string(p); }

/// The `encoding` attribute of a dense tensor: "float32", "float16" or "bfloat16".
inline const char* encodingName(DType dtype)
{
    switch (dtype) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    }
    return "?";
}

}  // namespace mdbf::io::schema
