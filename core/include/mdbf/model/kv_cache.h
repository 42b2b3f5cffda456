#pragma once
// The state of one sequence being decoded incrementally (docs/GENERATION.md): the keys and values
// every block has produced so far, the RoPE table of the positions the cache can hold, and the
// activation buffers a step reuses, so that decoding a token allocates nothing.

#include <cstdint>
#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/io/model_config.h"
#include "mdbf/model/rope.h"

namespace mdbf::model {

class Transformer;

/// Keys and values of positions [0, length()) for every block, with room for capacity()
/// positions. Created by Transformer::newCache(); filled by Transformer::extend(). One cache serves
/// one sequence; it is not safe to extend it from two threads at once.
class KvCache {
public:
    KvCache(KvCache&&) noexcept;
    KvCache& operator=(KvCache&&) noexcept;
    ~KvCache();

    /// Positions held so far (the next token goes to position length()).
    int length() const { return m_length; }

    /// The largest number of positions this cache can hold.
    int capacity() const { return m_capacity; }

    /// Forgets every position (the buffers stay allocated) so the cache can start a new sequence.
    void reset() { m_length = 0; }

    /// Bytes held by the keys and values (the activation buffers not counted).
    std::int64_t bytes() const;

private:
    friend class Transformer;
    KvCache(const io::ModelConfig& config, int capacity);

    int m_capacity = 0;
    int m_length = 0;
    RopeTable m_rope;
    std::vector<RowMatrixF> m_keys;    ///< per block: capacity × (kv heads · head_dim), after RoPE
    std::vector<RowMatrixF> m_values;  ///< per block: capacity × (kv heads · head_dim)

    // Buffers of one step, reused so that a one-token step does not allocate.
    RowMatrixF m_x, m_normed, m_q, m_k, m_v, m_attn, m_out, m_gate, m_up, m_last, m_logits;
    RowMatrixF m_scores;  ///< heads × capacity: the attention weights of a one-token step
};

}  // namespace mdbf::model
