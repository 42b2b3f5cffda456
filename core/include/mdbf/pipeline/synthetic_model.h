#pragma once
// Writes a Hugging Face-layout LLaMA checkpoint of any size with random BF16 weights: config.json,
// sharded safetensors with model.safetensors.index.json, and a byte-level BPE tokenizer.json. For
// benchmarks and tests at shapes no fixture has (e.g. 7B-class 4096×11008 projections).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"

namespace mdbf::pipeline {

/// Sizes and content of a synthetic checkpoint. Every count is the config.json field of that name.
struct SyntheticModelOptions {
    int hidden = 4096;        ///< hidden_size
    int intermediate = 11008;  ///< intermediate_size
    int layers = 2;           ///< num_hidden_layers
    int heads = 32;           ///< num_attention_heads
    int kvHeads = 0;          ///< num_key_value_heads; 0 = heads

    /// num_key_value_heads as written: kvHeads, or heads when kvHeads is 0.
    int effectiveKvHeads() const { return kvHeads > 0 ? kvHeads : heads; }
    int vocab = 32000;        ///< vocab_size (embedding rows, output head rows, tokenizer entries)
    /// Adds the structure trained weights have: log-normal row and column scales, a few outlier
    /// input channels, and a decaying singular spectrum (a low-rank part over Gaussian noise).
    bool structured = false;
    std::uint64_t seed = 0;
    std::int64_t shardBytes = std::int64_t{2} << 30;  ///< tensor bytes per shard before starting the next

    /// Throws InvalidArgument naming the option (as the CLI spells it) for a size out of range or
    /// inconsistent sizes (heads not dividing hidden, an odd head dimension, kv heads not dividing heads).
    void validate() const;

    /// Total parameter count of the checkpoint (untied embedding and output head).
    std::int64_t parameterCount() const;
};

/// What writeSyntheticModel produced.
struct SyntheticModelSummary {
    std::vector<std::filesystem::path> files;  ///< every file written, final paths
    std::int64_t tensors = 0;
    std::int64_t parameters = 0;
    std::uint64_t tensorBytes = 0;
    double seconds = 0.0;
};

/// Writes the checkpoint into the directory `out`, which must not exist or be empty. Tensors are
/// generated and written one at a time in row blocks (memory ~ one block, never the model); the
/// whole folder is written under a hidden temporary name beside `out` and renamed at the end, so an
/// error or a stop leaves nothing behind. Deterministic for given options, whatever the thread count.
/// Progress in tensor bytes ("writing"); polls ctx.stop between row blocks. Throws InvalidArgument
/// (see validate), IoError naming the file when writing fails or `out` exists and is not empty,
/// Cancelled when stopped.
SyntheticModelSummary writeSyntheticModel(const std::filesystem::path& out, const SyntheticModelOptions& options,
                                          const RunContext& ctx = {});

/// One matrix of the structure a structured checkpoint's projections have, for studies of the
/// factorization at shapes and structures no fixture has.
struct StructuredWeightOptions {
    std::int64_t rows = 1024;
    std::int64_t cols = 1024;
    /// Row blocks of rows/heads rows, each with its own mean-one log-normal column profile (0 = none).
    std::int64_t heads = 0;
    /// Share of columns scaled by 10; negative for the checkpoints' one in 512 (at least one).
    double outlierFraction = -1.0;
    std::uint64_t seed = 0;
};

/// rows×cols weights as writeSyntheticModel generates them with `structured` (log-normal row and
/// column scales, outlier columns, a decaying spectrum over Gaussian noise, BF16-rounded), with the
/// outlier share and per-head column profiles of `options`. Deterministic whatever the thread count.
/// Throws InvalidArgument for sizes out of range, heads not dividing rows, or a share ≥ 1.
RowMatrixF structuredWeights(const StructuredWeightOptions& options, int threads = 1);

}  // namespace mdbf::pipeline
