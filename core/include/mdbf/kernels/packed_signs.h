#pragma once
// Bit-packed ±1 matrices, the storage of the sign bases S_a (n×k) and S_b (k×m) (docs/ALGORITHM.md §2.2).
//
// Layout (pinned, also used by the HDF5 package): row-major; each row occupies
// wordsPerRow = ceil(cols / 64) little-endian 64-bit words; entry (i, j) is bit (j % 64) of word
// i * wordsPerRow + j / 64; a set bit means −1, a clear bit +1 (so sign(0) = +1 is the zero word).
// Padding bits past `cols` in the last word of a row are always clear.
//
// A kernel may also keep a private re-ordering of the bits (derivedLayout): built from the words on
// its first use, shared by copies, and dropped when the words are modified through this class.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "mdbf/base/matrix.h"

namespace mdbf::kernels {

class PackedSigns {
public:
    static constexpr int kWordBits = 64;
    static_assert(sizeof(std::uint64_t) * 8 == kWordBits);

    PackedSigns() = default;

    /// An all-(+1) matrix of rows × cols.
    PackedSigns(std::int64_t rows, std::int64_t cols)
        : m_rows(rows), m_cols(cols), m_wordsPerRow((cols + kWordBits - 1) / kWordBits),
          m_words(static_cast<std::size_t>(rows * m_wordsPerRow), 0)
    {
    }

    /// Packs sign(M) with sign(0) = +1 (NaN counts as +1). Reads M in its storage order: a word
    /// at a time along rows of a row-major M, down the columns of a column-major one.
    template <typename Derived>
    static PackedSigns fromSigns(const Eigen::MatrixBase<Derived>& m)
    {
        PackedSigns p(m.rows(), m.cols());
        std::uint64_t* words = p.m_words.data();
        const std::int64_t stride = p.m_wordsPerRow;
        if constexpr (static_cast<bool>(Derived::IsRowMajor)) {
            for (Eigen::Index i = 0; i < m.rows(); ++i)
                for (std::int64_t w = 0; w < stride; ++w) {
                    const Eigen::Index j0 = w * kWordBits;
                    const Eigen::Index bits = std::min<Eigen::Index>(kWordBits, m.cols() - j0);
                    std::uint64_t word = 0;
                    for (Eigen::Index b = 0; b < bits; ++b)
                        word |= static_cast<std::uint64_t>(m(i, j0 + b) < 0) << b;
                    words[i * stride + w] = word;
                }
        } else {
            for (Eigen::Index j = 0; j < m.cols(); ++j) {
                std::uint64_t* column = words + j / kWordBits;
                const int shift = static_cast<int>(j % kWordBits);
                for (Eigen::Index i = 0; i < m.rows(); ++i)
                    column[i * stride] |= static_cast<std::uint64_t>(m(i, j) < 0) << shift;
            }
        }
        return p;
    }

    std::int64_t rows() const { return m_rows; }
    std::int64_t cols() const { return m_cols; }
    std::int64_t wordsPerRow() const { return m_wordsPerRow; }

    /// The packed words, rows() * wordsPerRow() of them. The non-const form drops the derived
    /// layout, so modify the words through a reference taken after the last product call.
    const std::vector<std::uint64_t>& words() const { return m_words; }
    std::vector<std::uint64_t>& words()
    {
        dropDerived();
        return m_words;
    }
    const std::uint64_t* row(std::int64_t i) const { return m_words.data() + i * m_wordsPerRow; }

    /// True when entry (i, j) is −1.
    bool isNegative(std::int64_t i, std::int64_t j) const
    {
        return (row(i)[j / kWordBits] >> (j % kWordBits)) & 1u;
    }

    /// +1.0f or −1.0f.
    float sign(std::int64_t i, std::int64_t j) const { return isNegative(i, j) ? -1.0f : 1.0f; }

    void setNegative(std::int64_t i, std::int64_t j)
    {
        dropDerived();
        m_words[static_cast<std::size_t>(i * m_wordsPerRow + j / kWordBits)] |= std::uint64_t{1} << (j % kWordBits);
    }

    /// Unpacks to a dense ±1 float matrix (for references and display, not for inference).
    RowMatrixF toFloat() const
    {
        RowMatrixF m(m_rows, m_cols);
        for (std::int64_t i = 0; i < m_rows; ++i)
            for (std::int64_t j = 0; j < m_cols; ++j) m(i, j) = sign(i, j);
        return m;
    }

    /// Equal shape and bits (the derived layout is not compared).
    bool operator==(const PackedSigns& o) const
    {
        return m_rows == o.m_rows && m_cols == o.m_cols && m_words == o.m_words;
    }

    /// The bytes build(*this) returns, computed on the first call and kept (shared with copies)
    /// until the words are modified: how a kernel stores the bits in the order it streams them,
    /// once per matrix instead of once per call. Every call must pass the same build function.
    /// Thread-safe; throws what build throws.
    using LayoutBuilder = std::vector<std::uint8_t> (*)(const PackedSigns&);
    std::shared_ptr<const std::vector<std::uint8_t>> derivedLayout(LayoutBuilder build) const
    {
        if (!m_derived) return std::make_shared<const std::vector<std::uint8_t>>(build(*this));  // moved-from
        const std::lock_guard<std::mutex> lock(m_derived->mutex);
        if (!m_derived->bytes) m_derived->bytes = std::make_shared<const std::vector<std::uint8_t>>(build(*this));
        return m_derived->bytes;
    }

    /// Whether derivedLayout() has built (and keeps) a layout for the current words.
    bool hasDerivedLayout() const
    {
        if (!m_derived) return false;
        const std::lock_guard<std::mutex> lock(m_derived->mutex);
        return m_derived->bytes != nullptr;
    }

private:
    struct DerivedCache {
        std::mutex mutex;
        std::shared_ptr<const std::vector<std::uint8_t>> bytes;
    };

    // Before a modification: a fresh cache unless this object alone holds an empty one (copies
    // share theirs, and one of them may build it from the old words).
    void dropDerived()
    {
        if (!m_derived || m_derived.use_count() != 1 || m_derived->bytes) m_derived = std::make_shared<DerivedCache>();
    }

    std::int64_t m_rows = 0;
    std::int64_t m_cols = 0;
    std::int64_t m_wordsPerRow = 0;
    std::vector<std::uint64_t> m_words;
    std::shared_ptr<DerivedCache> m_derived = std::make_shared<DerivedCache>();
};

}  // namespace mdbf::kernels
