#pragma once
// Float32 CPU inference of LLaMA / Qwen2 / Qwen3 / Mistral decoders (docs/CLI.md §2.2). A window is
// processed at once (prefill), multi-threaded; a KvCache lets a sequence grow a few tokens at a time
// (docs/GENERATION.md). Every projection goes through model::Linear so a layer can be replaced
// (e.g. by a factorized one) without touching this code.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"
#include "mdbf/io/model_config.h"
#include "mdbf/model/kv_cache.h"
#include "mdbf/model/linear.h"

namespace mdbf::io {
class Checkpoint;
}

namespace mdbf::model {

/// Writes the float32 embedding of token `id` (hiddenSize values) into `out`; lets a model keep its
/// embedding table at stored precision. Must be thread-safe; `id` is already range-checked.
using EmbeddingLookup = std::function<void(std::int32_t id, std::span<float> out)>;

/// The pieces a Transformer is assembled from when they do not come from a checkpoint (e.g. from a
/// deployment package).
struct TransformerParts {
    io::ModelConfig config;
    RowMatrixF embedding;             ///< vocab × hidden; may stay empty when embeddingLookup is set
    EmbeddingLookup embeddingLookup;  ///< used instead of `embedding` when set
    /// Norm weights by checkpoint tensor name ("model.norm.weight",
    /// "model.layers.<i>.input_layernorm.weight", "...post_attention_layernorm.weight", and for
    /// Qwen3 "...self_attn.q_norm.weight" / "...k_norm.weight").
    std::map<std::string, VectorF, std::less<>> norms;
    /// Every projection of linearNames() by name (without ".weight"). "lm_head" may be absent when
    /// the config ties the embeddings and `embedding` is set: it then reuses that matrix.
    std::map<std::string, std::shared_ptr<const Linear>, std::less<>> linears;
};

/// A decoder-only transformer held in memory in float32.
/// forward() is const and may run concurrently with other forward() calls; replaceLinear() must not.
class Transformer {
public:
    /// How a checkpoint's 16-bit matrices are held in memory.
    enum class Weights {
        Float32,  ///< converted once: every projection a DenseLinear (what analysis and calibration need)
        Stored,   ///< F16/BF16 matrices (projections, embedding, head) kept 16-bit as HalfDenseLinear,
                  ///< half the memory and half the bytes per decoded token; F32 ones as DenseLinear
    };

    /// Loads config.json and the safetensors weights of a Hugging Face model directory.
    /// Reports progress in tensors ("loading"); polls ctx.stop between tensors (throws Cancelled).
    /// Throws IoError / FormatError naming the file (and tensor) for missing or malformed input,
    /// including a tensor whose shape disagrees with the config.
    static Transformer load(const std::filesystem::path& modelDir, const RunContext& ctx = {},
                            Weights weights = Weights::Float32);

    /// Same, from an already opened checkpoint and parsed config.
    static Transformer fromCheckpoint(const io::ModelConfig& config, const io::Checkpoint& checkpoint,
                                      const RunContext& ctx = {}, Weights weights = Weights::Float32);

    /// Assembles a model from parts. Throws FormatError naming the missing or mis-shaped norm,
    /// projection or embedding (`source` names where the parts came from, e.g. a package file).
    static Transformer fromParts(TransformerParts parts, const std::string& source);

    Transformer(Transformer&&) noexcept;
    Transformer& operator=(Transformer&&) noexcept;
    ~Transformer();

    const io::ModelConfig& config() const { return m_config; }

    /// Logits (T×vocab) for a window of T token ids at positions 0..T−1 (causal attention).
    /// Throws InvalidArgument for an empty window or an id outside the vocabulary.
    RowMatrixF forward(std::span<const std::int32_t> ids, int threads) const;

    /// Which rows of logits a step computes: every new position, or only the last one (what
    /// generation needs; it skips the output head for the rest of the prompt).
    enum class Logits { All, Last };

    /// An empty cache for incremental decoding of up to `capacity` positions (keys and values of
    /// 2 · layers · capacity · kv_heads · head_dim floats). Throws InvalidArgument when capacity < 1
    /// or exceeds the config's max_position_embeddings (when the config gives one).
    KvCache newCache(int capacity) const;

    /// Runs the T tokens `ids` at positions cache.length() … cache.length()+T−1 against the cached
    /// keys and values (causal), appends theirs, and returns the logits of every new position
    /// (T×vocab) or of the last one (1×vocab). The reference is into the cache and valid until its
    /// next step. The logits equal forward() over the whole sequence up to rounding. Throws
    /// InvalidArgument, leaving the cache unchanged, for an empty step, an id outside the
    /// vocabulary, a cache made for another model, or a step past the cache's capacity.
    const RowMatrixF& extend(KvCache& cache, std::span<const std::int32_t> ids, int threads,
                             Logits which = Logits::Last) const;

    /// Names of every projection ("model.layers.0.self_attn.q_proj", ..., "lm_head"), in model order.
    std::vector<std::string> linearNames() const;

    /// The layer of that name (with or without ".weight"). Throws InvalidArgument if unknown.
    const Linear& linear(std::string_view name) const;

    /// Replaces a projection; `layer` must have the same shape. Throws InvalidArgument otherwise.
    void replaceLinear(std::string_view name, std::shared_ptr<const Linear> layer);

    /// Linear::prepareForDecoding of every projection, so that the first decoded token does not pay
    /// for it (generation and throughput measurement call it). Thread-safe.
    void prepareForDecoding() const;

private:
    struct Block;
    Transformer();
    void checkIds(std::span<const std::int32_t> ids) const;

    io::ModelConfig m_config;
    RowMatrixF m_embedding;  ///< vocab × hidden (empty when m_embeddingLookup is set)
    EmbeddingLookup m_embeddingLookup;
    VectorF m_finalNorm;
    std::vector<Block> m_blocks;
    std::shared_ptr<const Linear> m_lmHead;
};

}  // namespace mdbf::model
