#pragma once
// The BPE model: a vocabulary and ranked merges, applied to one pre-tokenized word at a time.
// Byte-level vocabularies spell bytes in the GPT-2 alphabet; SentencePiece-style ones spell text
// as it is and fall back to `<0xNN>` byte tokens for characters they lack.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mdbf::tokenizer {

/// Options of the `model` section of tokenizer.json that change how words are encoded.
struct BpeOptions {
    std::optional<std::int32_t> unkId;  ///< id for bytes missing from the vocabulary; none drops them
    bool fuseUnk = false;               ///< consecutive unknown bytes give a single unk id
    bool ignoreMerges = false;          ///< a word found whole in the vocabulary is not merged
    bool byteLevel = true;              ///< words start as GPT-2 alphabet bytes, not as characters
    bool byteFallback = false;          ///< characters mode: a missing character becomes <0xNN> tokens
};

/// Immutable after construction; encodeWord is thread-safe given a per-thread Scratch.
class BpeModel {
public:
    /// Reusable buffers for encodeWord, so that encoding many words does not allocate per word.
    struct Scratch {
        struct Symbol {
            std::int32_t id;
            std::int32_t prev;
            std::int32_t next;
            bool alive;
        };
        /// A queued merge of symbol `pos` with its right neighbour. Kept small because long words
        /// (runs of spaces) queue one per symbol.
        struct Candidate {
            std::int32_t rank;
            std::int32_t pos;
        };
        std::vector<Symbol> symbols;
        std::vector<Candidate> heap;
        std::string mapped;
    };

    /// `vocab` maps token strings to ids; `merges` are (left, right) token strings in rank order
    /// (first = merged first). Throws FormatError if a merge names a token missing from the
    /// vocabulary or its concatenation is not in the vocabulary.
    BpeModel(std::unordered_map<std::string, std::int32_t> vocab,
             const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options);

    /// Appends the ids of one word, given as valid UTF-8 (a byte-level model applies its alphabet
    /// here).
    void encodeWord(std::string_view bytes, Scratch& scratch, std::vector<std::int32_t>& out) const;

    /// Token string → id.
    const std::unordered_map<std::string, std::int32_t>& vocab() const { return m_vocab; }

private:
    struct Merge {
        std::int32_t rank;
        std::int32_t merged;
    };
    struct PairHash {
        std::size_t operator()(std::uint64_t key) const noexcept
        {
            // Ids are small and dense; mixing keeps pairs from clustering in the buckets.
            key ^= key >> 33;
            key *= 0xff51afd7ed558ccdULL;
            key ^= key >> 33;
            return static_cast<std::size_t>(key);
        }
    };
    static std::uint64_t pairKey(std::int32_t left, std::int32_t right)
    {
        return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
    }
    const Merge* findMerge(std::int32_t left, std::int32_t right) const;
    void pushCandidate(Scratch& scratch, std::int32_t pos) const;
    void initialSymbols(std::string_view word, Scratch& scratch) const;
    std::int32_t characterId(std::string_view character) const;

    std::unordered_map<std::string, std::int32_t> m_vocab;
    std::unordered_map<std::uint64_t, Merge, PairHash> m_merges;
    std::int32_t m_byteIds[256];          ///< byte-level: id of each byte's alphabet character
    std::int32_t m_fallbackIds[256];      ///< characters mode: id of <0xNN>, or -1
    std::int32_t m_asciiIds[128];         ///< characters mode: id of each ASCII character, or -1
    BpeOptions m_options;
};

}  // namespace mdbf::tokenizer
