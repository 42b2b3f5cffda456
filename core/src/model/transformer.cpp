#include "mdbf/model/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "mdbf/base/error.h"
#include "mdbf/base/parallel.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/model/architecture.h"
#include "mdbf/model/dense_linear.h"
#include "mdbf/model/half_dense_linear.h"
#include "mdbf/model/rope.h"

namespace mdbf::model {

namespace {

constexpr int kProjectionCount = static_cast<int>(kBlockProjectionCount);

/// Reads a tensor and checks its shape against the config; names tensor and file on mismatch.
RowMatrixF loadChecked(const io::Checkpoint& ckpt, const std::string& name, std::int64_t rows, std::int64_t cols)
{
    const io::TensorInfo& info = ckpt.info(name);
    const bool vector = cols < 0;
    const bool ok = vector ? (info.shape.size() == 1 && info.shape[0] == rows)
                           : (info.shape.size() == 2 && info.shape[0] == rows && info.shape[1] == cols);
    if (!ok) {
        // Appended piecewise: GCC 12 misreads `literal + std::string&&` here as an oversized copy.
        std::string got = "[";
        for (std::size_t i = 0; i < info.shape.size(); ++i) {
            if (i > 0) got += ", ";
            got += std::to_string(info.shape[i]);
        }
        got += "]";
        std::string want = "[";
        want += std::to_string(rows);
        if (!vector) {
            want += ", ";
            want += std::to_string(cols);
        }
        want += "]";
        throw FormatError("'" + info.file.string() + "': tensor '" + name + "' has shape " + got + ", config.json implies " +
                          want);
    }
    return ckpt.matrix(name);
}

VectorF loadVector(const io::Checkpoint& ckpt, const std::string& name, std::int64_t size)
{
    RowMatrixF m = loadChecked(ckpt, name, size, -1);
    return Eigen::Map<const VectorF>(m.data(), size);
}

/// In-place RMSNorm of each row of X (length `width` segments when grouped per head).
void rmsNormRows(RowMatrixF& X, const VectorF& weight, double eps, int groups)
{
    const Eigen::Index width = weight.size();
    for (Eigen::Index t = 0; t < X.rows(); ++t) {
        for (int g = 0; g < groups; ++g) {
            auto seg = X.row(t).segment(g * width, width);
            const double meanSquare = static_cast<double>(seg.squaredNorm()) / static_cast<double>(width);
            const float scale = static_cast<float>(1.0 / std::sqrt(meanSquare + eps));
            seg = (seg.array() * scale * weight.transpose().array()).matrix();
        }
    }
}

}  // namespace

struct Transformer::Block {
    VectorF inputNorm;
    VectorF postNorm;
    VectorF qNorm;  ///< Qwen3 only (head_dim)
    VectorF kNorm;
    std::shared_ptr<const Linear> proj[kProjectionCount];  ///< q, k, v, o, gate, up, down
};

Transformer::Transformer() = default;
Transformer::Transformer(Transformer&&) noexcept = default;
Transformer& Transformer::operator=(Transformer&&) noexcept = default;
Transformer::~Transformer() = default;

Transformer Transformer::load(const std::filesystem::path& modelDir, const RunContext& ctx, Weights weights)
{
    const io::ModelConfig config = io::ModelConfig::fromFile(modelDir / "config.json");
    const io::Checkpoint checkpoint = io::Checkpoint::open(modelDir);
    return fromCheckpoint(config, checkpoint, ctx, weights);
}

Transformer Transformer::fromCheckpoint(const io::ModelConfig& config, const io::Checkpoint& ckpt, const RunContext& ctx,
                                        Weights weights)
{
    Transformer model;
    model.m_config = config;
    const std::int64_t h = config.hiddenSize;
    const std::int64_t total = 2 + config.numLayers;

    // A 16-bit matrix kept as stored: its bit patterns copied out of the mapped file.
    const auto storedMatrix = [&](const std::string& name, std::int64_t n, std::int64_t m,
                                  VectorF bias) -> std::shared_ptr<const Linear> {
        const io::TensorInfo& info = ckpt.info(name);
        if (weights != Weights::Stored || info.dtype == io::DType::F32) return nullptr;
        if (info.shape.size() != 2 || info.shape[0] != n || info.shape[1] != m) {
            loadChecked(ckpt, name, n, m);  // throws the shape error, naming the tensor and the file
        }
        const std::span<const std::byte> bytes = ckpt.raw(name);
        io::requireFiniteTensor(info.dtype, bytes.data(), static_cast<std::size_t>(n * m), info.file.string(), name);
        std::vector<std::uint16_t> bits(static_cast<std::size_t>(n * m));
        std::memcpy(bits.data(), bytes.data(), bits.size() * sizeof(std::uint16_t));
        return std::make_shared<HalfDenseLinear>(info.dtype, n, m, std::move(bits), std::move(bias));
    };

    std::shared_ptr<const Linear> storedEmbedding =
        storedMatrix(weightName(embeddingName()), config.vocabSize, h, VectorF());
    if (storedEmbedding) {
        const auto table = std::static_pointer_cast<const HalfDenseLinear>(storedEmbedding);
        model.m_embeddingLookup = [table](std::int32_t id, std::span<float> out) { table->row(id, out); };
    } else {
        model.m_embedding = loadChecked(ckpt, weightName(embeddingName()), config.vocabSize, h);
    }
    model.m_finalNorm = loadVector(ckpt, weightName(finalNormName()), h);
    ctx.report("loading", 1, total);

    auto loadLinear = [&](const std::string& prefix, std::int64_t n, std::int64_t m,
                          bool bias) -> std::shared_ptr<const Linear> {
        VectorF b;
        if (bias) b = loadVector(ckpt, biasName(prefix), n);
        if (auto stored = storedMatrix(weightName(prefix), n, m, b)) return stored;
        return std::make_shared<DenseLinear>(loadChecked(ckpt, weightName(prefix), n, m), std::move(b));
    };

    model.m_blocks.resize(static_cast<std::size_t>(config.numLayers));
    for (int i = 0; i < config.numLayers; ++i) {
        ctx.throwIfStopped();
        Block& block = model.m_blocks[static_cast<std::size_t>(i)];
        block.inputNorm = loadVector(ckpt, weightName(blockLayerName(i, TensorRole::AttentionNorm)), h);
        block.postNorm = loadVector(ckpt, weightName(blockLayerName(i, TensorRole::MlpNorm)), h);
        if (config.qkNorm) {
            block.qNorm = loadVector(ckpt, weightName(blockLayerName(i, TensorRole::QueryNorm)), config.headDim);
            block.kNorm = loadVector(ckpt, weightName(blockLayerName(i, TensorRole::KeyNorm)), config.headDim);
        }
        for (int j = 0; j < kProjectionCount; ++j) {
            const TensorRole role = blockProjections()[static_cast<std::size_t>(j)].role;
            const auto [n, m] = projectionShape(config, role);
            block.proj[j] = loadLinear(blockLayerName(i, role), n, m, projectionHasBias(config, role));
        }
        ctx.report("loading", 2 + i, total);
    }

    if (ckpt.contains(weightName(headName()))) {
        model.m_lmHead = loadLinear(headName(), config.vocabSize, h, false);
    } else if (config.tieWordEmbeddings) {
        model.m_lmHead = storedEmbedding ? storedEmbedding : std::make_shared<DenseLinear>(model.m_embedding);
    } else {
        throw FormatError("'" + ckpt.path().string() +
                          "': no tensor '" + weightName(headName()) + "' and config.json does not tie word embeddings");
    }
    ctx.report("loading", total, total);
    return model;
}

Transformer Transformer::fromParts(TransformerParts parts, const std::string& source)
{
    Transformer model;
    model.m_config = parts.config;
    const io::ModelConfig& config = model.m_config;
    const std::int64_t h = config.hiddenSize;

    if (parts.embeddingLookup) {
        model.m_embeddingLookup = std::move(parts.embeddingLookup);
    } else if (parts.embedding.rows() == config.vocabSize && parts.embedding.cols() == h) {
        model.m_embedding = std::move(parts.embedding);
    } else {
        throw FormatError("'" + source + "': the embedding table is missing or is not " +
                          std::to_string(config.vocabSize) + "x" + std::to_string(h));
    }

    auto takeNorm = [&](const std::string& name, std::int64_t size) {
        const auto it = parts.norms.find(name);
        if (it == parts.norms.end()) throw FormatError("'" + source + "': missing tensor '" + name + "'");
        if (it->second.size() != size) {
            throw FormatError("'" + source + "': tensor '" + name + "' has " + std::to_string(it->second.size()) +
                              " entries, config.json implies " + std::to_string(size));
        }
        return std::move(it->second);
    };
    auto takeLinear = [&](const std::string& name, std::int64_t n, std::int64_t m) {
        const auto it = parts.linears.find(name);
        if (it == parts.linears.end() || !it->second) throw FormatError("'" + source + "': missing layer '" + name + "'");
        if (it->second->outFeatures() != n || it->second->inFeatures() != m) {
            throw FormatError("'" + source + "': layer '" + name + "' is " + std::to_string(it->second->outFeatures()) +
                              "x" + std::to_string(it->second->inFeatures()) + ", config.json implies " +
                              std::to_string(n) + "x" + std::to_string(m));
        }
        return it->second;
    };

    model.m_finalNorm = takeNorm(weightName(finalNormName()), h);
    model.m_blocks.resize(static_cast<std::size_t>(config.numLayers));
    for (int i = 0; i < config.numLayers; ++i) {
        Block& block = model.m_blocks[static_cast<std::size_t>(i)];
        block.inputNorm = takeNorm(weightName(blockLayerName(i, TensorRole::AttentionNorm)), h);
        block.postNorm = takeNorm(weightName(blockLayerName(i, TensorRole::MlpNorm)), h);
        if (config.qkNorm) {
            block.qNorm = takeNorm(weightName(blockLayerName(i, TensorRole::QueryNorm)), config.headDim);
            block.kNorm = takeNorm(weightName(blockLayerName(i, TensorRole::KeyNorm)), config.headDim);
        }
        for (int j = 0; j < kProjectionCount; ++j) {
            const TensorRole role = blockProjections()[static_cast<std::size_t>(j)].role;
            const auto [n, m] = projectionShape(config, role);
            block.proj[j] = takeLinear(blockLayerName(i, role), n, m);
        }
    }

    if (parts.linears.count(headName()) != 0) {
        model.m_lmHead = takeLinear(headName(), config.vocabSize, h);
    } else if (config.tieWordEmbeddings && model.m_embedding.size() != 0) {
        model.m_lmHead = std::make_shared<DenseLinear>(model.m_embedding);
    } else {
        throw FormatError("'" + source + "': missing layer '" + headName() + "'");
    }
    return model;
}

std::vector<std::string> Transformer::linearNames() const { return projectionNames(m_config); }

void Transformer::prepareForDecoding() const
{
    for (const Block& block : m_blocks)
        for (const std::shared_ptr<const Linear>& projection : block.proj)
            if (projection) projection->prepareForDecoding();
    if (m_lmHead) m_lmHead->prepareForDecoding();
}

namespace {

/// Finds the slot of a projection by name; nullptr when the name is not a projection of the model.
template <typename Blocks, typename Head>
auto findSlot(Blocks& blocks, Head& head, std::string_view rawName) -> decltype(&head)
{
    const std::optional<LayerIdentity> id = identifyLayer(rawName);
    if (!id || !id->factorizable() || rawName.ends_with(".bias")) return nullptr;
    if (id->role == TensorRole::Head) return &head;
    if (static_cast<std::size_t>(id->block) >= blocks.size()) return nullptr;
    return &blocks[static_cast<std::size_t>(id->block)].proj[id->projection];
}

}  // namespace

const Linear& Transformer::linear(std::string_view name) const
{
    auto* slot = findSlot(m_blocks, m_lmHead, name);
    if (!slot) throw InvalidArgument("model has no linear layer named '" + std::string(name) + "'");
    return **slot;
}

void Transformer::replaceLinear(std::string_view name, std::shared_ptr<const Linear> layer)
{
    auto* slot = findSlot(m_blocks, m_lmHead, name);
    if (!slot) throw InvalidArgument("model has no linear layer named '" + std::string(name) + "'");
    if (!layer || layer->outFeatures() != (*slot)->outFeatures() || layer->inFeatures() != (*slot)->inFeatures()) {
        throw InvalidArgument("replacement for '" + std::string(name) + "' has the wrong shape");
    }
    *slot = std::move(layer);
}

void Transformer::checkIds(std::span<const std::int32_t> ids) const
{
    if (ids.empty()) throw InvalidArgument("forward: empty window");
    for (const std::int32_t id : ids) {
        if (id < 0 || id >= m_config.vocabSize) {
            throw InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                                  std::to_string(m_config.vocabSize) + ")");
        }
    }
}

RowMatrixF Transformer::forward(std::span<const std::int32_t> ids, int threads) const
{
    checkIds(ids);
    // A window is a sequence decoded in one step from an empty cache of exactly its length; the
    // context limit of newCache() is not imposed here, as perplexity windows may exceed it.
    KvCache cache(m_config, static_cast<int>(ids.size()));
    extend(cache, ids, threads, Logits::All);
    return std::move(cache.m_logits);
}

KvCache Transformer::newCache(int capacity) const
{
    if (capacity < 1) throw InvalidArgument("a decoding cache needs room for at least one position");
    if (m_config.maxPositionEmbeddings > 0 && capacity > m_config.maxPositionEmbeddings) {
        throw InvalidArgument("a context of " + std::to_string(capacity) +
                              " positions exceeds the model's max_position_embeddings (" +
                              std::to_string(m_config.maxPositionEmbeddings) + ")");
    }
    return KvCache(m_config, capacity);
}

namespace {

/// Causal attention of one head for T queries at positions first … first+T−1 over the L = first+T
/// cached keys and values: out = softmax(q kᵀ · scale, masked) v. `scores` is T×L scratch.
template <typename Q, typename K, typename V, typename S, typename O>
void attendHead(const Q& q, const K& k, const V& v, S&& scores, Eigen::Index first, float scale, O&& out)
{
    const Eigen::Index T = q.rows();
    const Eigen::Index L = k.rows();
    scores.noalias() = (q * k.transpose()) * scale;
    for (Eigen::Index t = 0; t < T; ++t) {
        auto row = scores.row(t);
        const Eigen::Index visible = first + t + 1;
        const float maxv = row.head(visible).maxCoeff();
        double sum = 0.0;
        for (Eigen::Index s = 0; s < visible; ++s) {
            row(s) = std::exp(row(s) - maxv);
            sum += row(s);
        }
        row.head(visible) *= static_cast<float>(1.0 / sum);
        row.tail(L - visible).setZero();
    }
    out.noalias() = scores * v;
}

}  // namespace

const RowMatrixF& Transformer::extend(KvCache& cache, std::span<const std::int32_t> ids, int threads,
                                      Logits which) const
{
    const auto& cfg = m_config;
    checkIds(ids);
    const Eigen::Index hd = cfg.headDim;
    const Eigen::Index kvDim = static_cast<Eigen::Index>(cfg.numKvHeads) * hd;
    if (cache.m_keys.size() != m_blocks.size() || (!cache.m_keys.empty() && cache.m_keys.front().cols() != kvDim)) {
        throw InvalidArgument("the decoding cache was made for a model of another shape");
    }
    const Eigen::Index T = static_cast<Eigen::Index>(ids.size());
    const Eigen::Index first = cache.m_length;
    if (first + T > cache.m_capacity) {
        throw InvalidArgument("the sequence would reach " + std::to_string(first + T) +
                              " positions, beyond the context of " + std::to_string(cache.m_capacity));
    }
    const Eigen::Index L = first + T;
    threads = std::max(1, threads);

    RowMatrixF& x = cache.m_x;
    x.resize(T, cfg.hiddenSize);
    for (Eigen::Index t = 0; t < T; ++t) {
        const std::int32_t id = ids[static_cast<std::size_t>(t)];
        if (m_embeddingLookup) {
            m_embeddingLookup(id, std::span<float>(x.row(t).data(), static_cast<std::size_t>(cfg.hiddenSize)));
        } else {
            x.row(t) = m_embedding.row(id);
        }
    }

    const int groupSize = cfg.numHeads / cfg.numKvHeads;
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
    RowMatrixF& normed = cache.m_normed;
    RowMatrixF& q = cache.m_q;
    RowMatrixF& k = cache.m_k;
    RowMatrixF& v = cache.m_v;
    RowMatrixF& attn = cache.m_attn;
    RowMatrixF& out = cache.m_out;
    RowMatrixF& gate = cache.m_gate;
    RowMatrixF& up = cache.m_up;
    attn.resize(T, static_cast<Eigen::Index>(cfg.numHeads) * hd);
    if (T == 1) cache.m_scores.resize(cfg.numHeads, cache.m_capacity);

    for (std::size_t b = 0; b < m_blocks.size(); ++b) {
        const Block& block = m_blocks[b];
        normed = x;
        rmsNormRows(normed, block.inputNorm, cfg.rmsNormEps, 1);
        block.proj[0]->forward(normed, q, threads);
        block.proj[1]->forward(normed, k, threads);
        block.proj[2]->forward(normed, v, threads);
        if (cfg.qkNorm) {
            rmsNormRows(q, block.qNorm, cfg.rmsNormEps, cfg.numHeads);
            rmsNormRows(k, block.kNorm, cfg.rmsNormEps, cfg.numKvHeads);
        }
        cache.m_rope.apply(q, cfg.numHeads, static_cast<int>(first));
        cache.m_rope.apply(k, cfg.numKvHeads, static_cast<int>(first));
        RowMatrixF& keys = cache.m_keys[b];
        RowMatrixF& values = cache.m_values[b];
        keys.middleRows(first, T) = k;
        values.middleRows(first, T) = v;

        // Heads are independent and split across threads. A one-token step uses the cache's
        // preallocated score rows; a window allocates its T×L scores once per thread.
        parallelChunks(cfg.numHeads, threads, [&](std::int64_t begin, std::int64_t end) {
            RowMatrixF windowScores;
            for (std::int64_t head = begin; head < end; ++head) {
                const Eigen::Index kvHead = head / groupSize;
                const auto qh = q.middleCols(head * hd, hd);
                const auto kh = keys.topRows(L).middleCols(kvHead * hd, hd);
                const auto vh = values.topRows(L).middleCols(kvHead * hd, hd);
                auto oh = attn.middleCols(head * hd, hd);
                if (T == 1) {
                    attendHead(qh, kh, vh, cache.m_scores.block(head, 0, 1, L), first, scale, oh);
                } else {
                    windowScores.resize(T, L);
                    attendHead(qh, kh, vh, windowScores, first, scale, oh);
                }
            }
        });
        block.proj[3]->forward(attn, out, threads);
        x += out;

        normed = x;
        rmsNormRows(normed, block.postNorm, cfg.rmsNormEps, 1);
        block.proj[4]->forward(normed, gate, threads);
        block.proj[5]->forward(normed, up, threads);
        gate = (gate.array() / (1.0f + (-gate.array()).exp()) * up.array()).matrix();  // SiLU(gate) ⊙ up
        block.proj[6]->forward(gate, out, threads);
        x += out;
    }
    cache.m_length = static_cast<int>(L);

    if (which == Logits::Last && T > 1) {
        cache.m_last = x.bottomRows(1);
        rmsNormRows(cache.m_last, m_finalNorm, cfg.rmsNormEps, 1);
        m_lmHead->forward(cache.m_last, cache.m_logits, threads);
    } else {
        rmsNormRows(x, m_finalNorm, cfg.rmsNormEps, 1);
        m_lmHead->forward(x, cache.m_logits, threads);
    }
    return cache.m_logits;
}

}  // namespace mdbf::model
