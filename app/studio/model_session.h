#pragma once
// A model opened in the studio: the memory-mapped checkpoint, its config, and (when present) the
// tokenizer. The float32 Transformer for perplexity is loaded lazily, once, on first use.

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <QString>

#include "mdbf/base/run_context.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/model/transformer.h"
#include "mdbf/tokenizer/tokenizer.h"

namespace mdbf::studio {

/// Immutable after loadModelSession() except for the lazily loaded transformer; shared between
/// the GUI and jobs through shared_ptr<const ModelSession>. Thread-safe.
class ModelSession {
public:
    /// Opens a Hugging Face model directory: parses config.json, maps the safetensors and reads
    /// tokenizer.json (or else tokenizer.model). Reports progress in steps ("opening model"); polls ctx.stop between steps.
    /// Throws IoError / FormatError naming the file for a missing or malformed config or checkpoint,
    /// and InvalidArgument if `dir` is not a directory. A missing or unreadable tokenizer is not
    /// fatal: tokenizerError() then says why and perplexity is unavailable.
    static std::shared_ptr<ModelSession> load(const std::filesystem::path& dir, const RunContext& ctx = {});

    const std::filesystem::path& directory() const { return m_dir; }
    /// The folder name, e.g. "tiny-llama".
    QString name() const;
    const io::ModelConfig& config() const { return m_config; }
    const io::Checkpoint& checkpoint() const { return *m_checkpoint; }
    const Tokenizer* tokenizer() const { return m_tokenizer ? &*m_tokenizer : nullptr; }
    const QString& tokenizerError() const { return m_tokenizerError; }

    /// Parameters stored in the checkpoint (a tied head counted once).
    std::int64_t parameterCount() const { return m_params; }
    /// Bits per weight of the checkpoint as stored (16 for FP16/BF16, 32 for F32, mixed averaged).
    double storedBpw() const { return m_storedBpw; }
    /// The dtype most of the weights use ("BF16").
    QString dominantDtype() const { return m_dtype; }

    /// The float32 Transformer, loaded on first call (blocking, with ctx's progress and stop).
    /// Throws what Transformer::load throws.
    std::shared_ptr<const model::Transformer> transformer(const RunContext& ctx = {}) const;

private:
    ModelSession() = default;

    std::filesystem::path m_dir;
    io::ModelConfig m_config;
    std::shared_ptr<const io::Checkpoint> m_checkpoint;
    std::optional<Tokenizer> m_tokenizer;
    QString m_tokenizerError;
    std::int64_t m_params = 0;
    double m_storedBpw = 16.0;
    QString m_dtype;

    mutable std::mutex m_transformerMutex;
    mutable std::shared_ptr<const model::Transformer> m_transformer;
};

}  // namespace mdbf::studio
