#include "tokenizer/bpe_model.h"

#include <algorithm>

#include "mdbf/base/error.h"
#include "tokenizer/byte_level.h"

namespace mdbf::tokenizer {

namespace {

// Min-heap order: lowest rank first, then leftmost position, so equal-rank pairs merge left to
// right as in the reference implementation.
bool laterCandidate(const BpeModel::Scratch::Candidate& a, const BpeModel::Scratch::Candidate& b)
{
    if (a.rank != b.rank) return a.rank > b.rank;
    return a.pos > b.pos;
}

}  // namespace

BpeModel::BpeModel(std::unordered_map<std::string, std::int32_t> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options)
    : m_vocab(std::move(vocab)), m_options(options)
{
    m_merges.reserve(merges.size());
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
        const auto& [left, right] = merges[rank];
        const auto where = "merge #" + std::to_string(rank) + " ('" + left + "' '" + right + "')";
        const auto l = m_vocab.find(left);
        if (l == m_vocab.end()) throw FormatError(where + " names unknown token '" + left + "'");
        const auto r = m_vocab.find(right);
        if (r == m_vocab.end()) throw FormatError(where + " names unknown token '" + right + "'");
        const auto merged = m_vocab.find(left + right);
        if (merged == m_vocab.end()) throw FormatError(where + " yields '" + left + right + "', which is not in the vocabulary");
        // A repeated pair keeps its last rank, as Hugging Face's loader does.
        m_merges.insert_or_assign(pairKey(l->second, r->second), Merge{static_cast<std::int32_t>(rank), merged->second});
    }
    const auto idOf = [this](const std::string& token) {
        const auto it = m_vocab.find(token);
        return it == m_vocab.end() ? -1 : it->second;
    };
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
        m_byteIds[b] = idOf(byteToUtf8(static_cast<std::uint8_t>(b)));
        m_fallbackIds[b] = idOf(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
        if (b < 128) m_asciiIds[b] = idOf(std::string(1, static_cast<char>(b)));
    }
}

std::int32_t BpeModel::characterId(std::string_view character) const
{
    if (character.size() == 1) return m_asciiIds[static_cast<unsigned char>(character[0]) & 127];
    const auto it = m_vocab.find(std::string(character));
    return it == m_vocab.end() ? -1 : it->second;
}

void BpeModel::initialSymbols(std::string_view word, Scratch& scratch) const
{
    auto& symbols = scratch.symbols;
    symbols.clear();
    symbols.reserve(word.size());
    const auto push = [&symbols](std::int32_t id) {
        const auto index = static_cast<std::int32_t>(symbols.size());
        symbols.push_back({id, index - 1, -1, true});
        if (index > 0) symbols[index - 1].next = index;
    };
    bool previousUnknown = false;
    const auto unknown = [&] {
        if (!m_options.unkId) return;
        if (!(m_options.fuseUnk && previousUnknown)) push(*m_options.unkId);
        previousUnknown = true;
    };
    if (m_options.byteLevel) {
        for (const char c : word) {
            const std::int32_t id = m_byteIds[static_cast<std::uint8_t>(c)];
            if (id < 0) {
                unknown();
                continue;
            }
            push(id);
            previousUnknown = false;
        }
        return;
    }
    std::size_t pos = 0;
    while (pos < word.size()) {
        const std::size_t begin = pos;
        const auto lead = static_cast<unsigned char>(word[pos]);
        pos += lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
        const std::string_view character = word.substr(begin, pos - begin);
        if (const std::int32_t id = characterId(character); id >= 0) {
            push(id);
            previousUnknown = false;
            continue;
        }
        // Byte fallback applies only when every byte of the character has its token.
        bool allBytes = m_options.byteFallback;
        for (std::size_t i = 0; allBytes && i < character.size(); ++i) {
            allBytes = m_fallbackIds[static_cast<unsigned char>(character[i])] >= 0;
        }
        if (allBytes) {
            for (const char c : character) push(m_fallbackIds[static_cast<unsigned char>(c)]);
            previousUnknown = false;
            continue;
        }
        unknown();
    }
}

const BpeModel::Merge* BpeModel::findMerge(std::int32_t left, std::int32_t right) const
{
    const auto it = m_merges.find(pairKey(left, right));
    return it == m_merges.end() ? nullptr : &it->second;
}

void BpeModel::pushCandidate(Scratch& scratch, std::int32_t pos) const
{
    const auto& left = scratch.symbols[pos];
    if (left.next < 0) return;
    const auto& right = scratch.symbols[left.next];
    const Merge* merge = findMerge(left.id, right.id);
    if (!merge) return;
    scratch.heap.push_back({merge->rank, pos});
    std::push_heap(scratch.heap.begin(), scratch.heap.end(), laterCandidate);
}

void BpeModel::encodeWord(std::string_view bytes, Scratch& scratch, std::vector<std::int32_t>& out) const
{
    if (bytes.empty()) return;
    if (m_options.ignoreMerges) {
        scratch.mapped.clear();
        if (m_options.byteLevel) {
            for (const char c : bytes) scratch.mapped += byteToUtf8(static_cast<std::uint8_t>(c));
        } else {
            scratch.mapped.assign(bytes);
        }
        const auto it = m_vocab.find(scratch.mapped);
        if (it != m_vocab.end()) {
            out.push_back(it->second);
            return;
        }
    }

    initialSymbols(bytes, scratch);
    auto& symbols = scratch.symbols;
    if (symbols.size() == 1) {
        out.push_back(symbols[0].id);
        return;
    }

    scratch.heap.clear();
    for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(symbols.size()); ++i) {
        if (const Merge* merge = findMerge(symbols[i].id, symbols[i + 1].id)) {
            scratch.heap.push_back({merge->rank, i});
        }
    }
    std::make_heap(scratch.heap.begin(), scratch.heap.end(), laterCandidate);
    while (!scratch.heap.empty()) {
        std::pop_heap(scratch.heap.begin(), scratch.heap.end(), laterCandidate);
        const auto top = scratch.heap.back();
        scratch.heap.pop_back();
        auto& left = symbols[top.pos];
        // Entries go stale when a neighbour merged after they were queued. Each rank belongs to one
        // pair, so an unchanged rank means an unchanged pair.
        if (!left.alive || left.next < 0) continue;
        auto& right = symbols[left.next];
        const Merge* merge = findMerge(left.id, right.id);
        if (!merge || merge->rank != top.rank) continue;
        left.id = merge->merged;
        right.alive = false;
        left.next = right.next;
        if (left.next >= 0) symbols[left.next].prev = top.pos;
        if (left.prev >= 0) pushCandidate(scratch, left.prev);
        pushCandidate(scratch, top.pos);
    }
    for (std::int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace mdbf::tokenizer
