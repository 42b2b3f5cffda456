#include "mdbf/pipeline/synthetic_model.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <random>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "factor/factor_detail.h"
#include "mdbf/base/error.h"
#include "mdbf/base/half.h"
#include "mdbf/base/output_path.h"
#include "mdbf/base/parallel.h"
#include "mdbf/io/model_config.h"
#include "mdbf/model/architecture.h"

namespace mdbf::pipeline {

namespace fs = std::filesystem;

namespace {

constexpr int kMaxHidden = 65536;
constexpr int kMaxIntermediate = 262144;
constexpr int kMaxLayers = 1024;
constexpr int kMaxVocab = 262144;
constexpr int kMinVocab = 258;  // 256 byte tokens, one merge, the end-of-text token
constexpr std::int64_t kTileRows = 64;  // rows generated from one seed: output independent of threads
constexpr const char* kEndOfText = "<|endoftext|>";

void requireRange(const char* option, std::int64_t value, std::int64_t lo, std::int64_t hi)
{
    if (value < lo || value > hi)
        throw InvalidArgument(std::string(option) + " " + std::to_string(value) + " is not in range " + std::to_string(lo) +
                              " to " + std::to_string(hi));
}

struct TensorSpec {
    std::string name;
    std::int64_t rows = 0;
    std::int64_t cols = 0;  ///< 0 for a 1-D norm weight of `rows` entries
    std::int64_t bytes() const { return 2 * rows * std::max<std::int64_t>(cols, 1); }
};

nlohmann::json configJson(const SyntheticModelOptions& o)
{
    return {{"architectures", {"LlamaForCausalLM"}},
            {"model_type", "llama"},
            {"hidden_size", o.hidden},
            {"intermediate_size", o.intermediate},
            {"num_hidden_layers", o.layers},
            {"num_attention_heads", o.heads},
            {"num_key_value_heads", o.effectiveKvHeads()},
            {"head_dim", o.hidden / o.heads},
            {"vocab_size", o.vocab},
            {"hidden_act", "silu"},
            {"max_position_embeddings", 4096},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 10000.0},
            {"attention_bias", false},
            {"mlp_bias", false},
            {"tie_word_embeddings", false},
            {"initializer_range", 0.02},
            {"bos_token_id", o.vocab - 1},
            {"eos_token_id", o.vocab - 1},
            {"torch_dtype", "bfloat16"}};
}

std::string utf8(std::uint32_t cp)
{
    std::string s;
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else if (cp < 0x800) {
        s += static_cast<char>(0xc0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
        s += static_cast<char>(0xe0 | (cp >> 12));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        s += static_cast<char>(0x80 | (cp & 0x3f));
    }
    return s;
}

/// Byte-level BPE: the 256 byte symbols (GPT-2's printable stand-ins for bytes), merges that build
/// lower-case words and space-prefixed words letter by letter (every merged piece is a vocabulary
/// entry, every merge joins two entries), and the end-of-text token as the last id.
nlohmann::json tokenizerJson(int vocabSize)
{
    std::vector<std::string> byteSymbol(256);
    std::uint32_t extra = 256;
    for (std::uint32_t b = 0; b < 256; ++b) {
        const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        byteSymbol[b] = utf8(printable ? b : extra++);
    }
    nlohmann::json vocab = nlohmann::json::object();
    std::unordered_set<std::string> known;
    int next = 0;
    for (const std::string& s : byteSymbol) {
        vocab[s] = next++;
        known.insert(s);
    }
    nlohmann::json merges = nlohmann::json::array();
    const int wanted = vocabSize - 1;
    std::vector<std::string> level = {byteSymbol[' ']};
    for (char c = 'a'; c <= 'z'; ++c) level.push_back(byteSymbol[static_cast<unsigned char>(c)]);
    while (next < wanted) {
        std::vector<std::string> longer;
        for (const std::string& left : level) {
            for (char c = 'a'; c <= 'z' && next < wanted; ++c) {
                const std::string& right = byteSymbol[static_cast<unsigned char>(c)];
                std::string piece = left + right;
                if (!known.insert(piece).second) continue;
                merges.push_back({left, right});
                vocab[piece] = next++;
                longer.push_back(std::move(piece));
            }
            if (next >= wanted) break;
        }
        level = std::move(longer);
    }
    vocab[kEndOfText] = next;
    const nlohmann::json byteLevel = {
        {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
    return {{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens",
             {{{"id", next},
               {"content", kEndOfText},
               {"single_word", false},
               {"lstrip", false},
               {"rstrip", false},
               {"normalized", false},
               {"special", true}}}},
            {"normalizer", nullptr},
            {"pre_tokenizer", byteLevel},
            {"post_processor", nullptr},
            {"decoder", byteLevel},
            {"model",
             {{"type", "BPE"},
              {"dropout", nullptr},
              {"unk_token", nullptr},
              {"continuing_subword_prefix", nullptr},
              {"end_of_word_suffix", nullptr},
              {"fuse_unk", false},
              {"byte_fallback", false},
              {"vocab", vocab},
              {"merges", merges}}}};
}

std::vector<TensorSpec> tensorPlan(const SyntheticModelOptions& o)
{
    const io::ModelConfig config = io::ModelConfig::fromJson(configJson(o), "config.json");
    std::vector<TensorSpec> plan;
    plan.push_back({model::weightName(model::embeddingName()), o.vocab, o.hidden});
    for (int i = 0; i < o.layers; ++i) {
        plan.push_back({model::weightName(model::blockLayerName(i, model::TensorRole::AttentionNorm)), o.hidden, 0});
        for (const model::ProjectionSpec& p : model::blockProjections()) {
            const auto [n, m] = model::projectionShape(config, p.role);
            plan.push_back({model::weightName(model::blockLayerName(i, p.role)), n, m});
        }
        plan.push_back({model::weightName(model::blockLayerName(i, model::TensorRole::MlpNorm)), o.hidden, 0});
    }
    plan.push_back({model::weightName(model::finalNormName()), o.hidden, 0});
    plan.push_back({model::weightName(model::headName()), o.vocab, o.hidden});
    return plan;
}

/// Per-tensor structure: a plausible imitation of trained weights (see the header).
struct Structure {
    VectorF rowScale;   ///< rows
    VectorF colScale;   ///< cols
    MatrixF headScale;  ///< heads × cols: a column profile per block of rows/heads rows (empty: none)
    MatrixF vScaled;    ///< cols × R: right factors of the low-rank part, singular values folded in
    float scale = 0.02f;
};

Structure makeStructure(const TensorSpec& t, bool structured, std::uint64_t seed, std::int64_t outliers = -1,
                        std::int64_t heads = 0)
{
    Structure s;
    if (!structured || t.cols == 0) return s;
    std::mt19937_64 rng(factor::detail::mixSeed(seed, 0x5eed));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    constexpr float kLogSpread = 0.5f;  // log-normal sigma, mean-one scales
    s.rowScale.resize(t.rows);
    s.colScale.resize(t.cols);
    for (auto& v : s.rowScale) v = std::exp(kLogSpread * normal(rng) - 0.5f * kLogSpread * kLogSpread);
    for (auto& v : s.colScale) v = std::exp(kLogSpread * normal(rng) - 0.5f * kLogSpread * kLogSpread);
    if (outliers < 0) outliers = std::max<std::int64_t>(1, t.cols / 512);
    std::uniform_int_distribution<std::int64_t> pick(0, t.cols - 1);
    for (std::int64_t i = 0; i < outliers; ++i) s.colScale[pick(rng)] *= 10.0f;
    // Low-rank part Σ_q s_q u_q v_qᵀ with Gaussian u, v: its singular values s_q·sqrt(rows·cols)
    // start ~12× above the noise edge (sqrt(rows) + sqrt(cols)) and decay as q^-0.6 into the bulk.
    const std::int64_t R = std::min<std::int64_t>({128, t.rows, t.cols});
    s.vScaled.resize(t.cols, R);
    factor::detail::fillGaussian(s.vScaled, factor::detail::mixSeed(seed, 0x7a11));
    const double edge = 1.0 / std::sqrt(double(t.rows)) + 1.0 / std::sqrt(double(t.cols));
    double energy = 1.0;
    for (std::int64_t q = 0; q < R; ++q) {
        const double sq = 12.0 * edge * std::pow(double(q + 1), -0.6);
        energy += sq * sq;
        s.vScaled.col(q) *= static_cast<float>(sq);
    }
    s.scale = static_cast<float>(0.02 / std::sqrt(energy));
    if (heads > 0) {
        s.headScale.resize(heads, t.cols);
        factor::detail::fillGaussian(s.headScale, factor::detail::mixSeed(seed, 0x4ead));
        s.headScale = (kLogSpread * s.headScale.array() - 0.5f * kLogSpread * kLogSpread).exp().matrix();
    }
    return s;
}

/// Rows [r0, r0 + count) of the tensor as BF16, row-major, into `out`.
void generateRows(const TensorSpec& t, const Structure& s, std::uint64_t seed, std::int64_t r0, std::int64_t count,
                  std::uint16_t* out, int threads)
{
    const std::int64_t cols = t.cols;
    const std::int64_t tiles = (count + kTileRows - 1) / kTileRows;
    parallelChunks(tiles, threads, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t tile = begin; tile < end; ++tile) {
            const std::int64_t row0 = r0 + tile * kTileRows;
            const std::int64_t rows = std::min(kTileRows, r0 + count - row0);
            MatrixF g(rows, cols);
            factor::detail::fillGaussian(g, factor::detail::mixSeed(seed, static_cast<std::uint64_t>(row0 / kTileRows), 0));
            if (s.vScaled.size() > 0) {
                MatrixF u(rows, s.vScaled.cols());
                factor::detail::fillGaussian(u, factor::detail::mixSeed(seed, static_cast<std::uint64_t>(row0 / kTileRows), 1));
                g.noalias() += u * s.vScaled.transpose();
            }
            for (std::int64_t i = 0; i < rows; ++i) {
                const float rs = s.scale * (s.rowScale.size() ? s.rowScale[row0 + i] : 1.0f);
                std::uint16_t* dst = out + (row0 - r0 + i) * cols;
                const std::int64_t head = s.headScale.size() ? (row0 + i) / (t.rows / s.headScale.rows()) : -1;
                for (std::int64_t j = 0; j < cols; ++j)
                    dst[j] = floatToBf16(rs * g(i, j) * (s.colScale.size() ? s.colScale[j] : 1.0f) *
                                         (head >= 0 ? s.headScale(head, j) : 1.0f));
            }
        }
    });
}

/// Norm weights: ones, or for a structured model a mild log-normal spread around one.
void generateNorm(const TensorSpec& t, bool structured, std::uint64_t seed, std::uint16_t* out)
{
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 0.2f);
    for (std::int64_t i = 0; i < t.rows; ++i) out[i] = floatToBf16(structured ? std::exp(normal(rng)) : 1.0f);
}

class OutputFile {
public:
    explicit OutputFile(fs::path path) : m_path(std::move(path)), m_file(std::fopen(m_path.c_str(), "wb"))
    {
        if (!m_file) throw IoError(quotedText(m_path.string()) + ": cannot create the file");
    }
    ~OutputFile()
    {
        if (m_file) std::fclose(m_file);
    }
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    void write(const void* data, std::size_t bytes)
    {
        if (bytes && std::fwrite(data, 1, bytes, m_file) != bytes)
            throw IoError(quotedText(m_path.string()) + ": write failed (disk full?)");
    }
    void close()
    {
        const int rc = std::fclose(m_file);
        m_file = nullptr;
        if (rc != 0) throw IoError(quotedText(m_path.string()) + ": write failed on close (disk full?)");
    }

private:
    fs::path m_path;
    std::FILE* m_file;
};

void writeText(const fs::path& path, const std::string& text)
{
    OutputFile f(path);
    f.write(text.data(), text.size());
    f.close();
}

std::string shardName(std::size_t index, std::size_t count)
{
    if (count == 1) return "model.safetensors";
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", index + 1, count);
    return name;
}

}  // namespace

void SyntheticModelOptions::validate() const
{
    requireRange("--hidden", hidden, 2, kMaxHidden);
    requireRange("--intermediate", intermediate, 1, kMaxIntermediate);
    requireRange("--layers", layers, 1, kMaxLayers);
    requireRange("--heads", heads, 1, hidden);
    requireRange("--vocab", vocab, kMinVocab, kMaxVocab);
    if (shardBytes < 1) throw InvalidArgument("--shard-mb must be positive");
    if (hidden % heads != 0)
        throw InvalidArgument("--heads " + std::to_string(heads) + " does not divide --hidden " + std::to_string(hidden));
    if ((hidden / heads) % 2 != 0)
        throw InvalidArgument("--hidden / --heads = " + std::to_string(hidden / heads) +
                              " is odd; rotary embeddings need an even head dimension");
    requireRange("--kv-heads", effectiveKvHeads(), 1, heads);
    if (heads % effectiveKvHeads() != 0)
        throw InvalidArgument("--kv-heads " + std::to_string(effectiveKvHeads()) + " does not divide --heads " +
                              std::to_string(heads));
}

std::int64_t SyntheticModelOptions::parameterCount() const
{
    validate();
    std::int64_t total = 0;
    for (const TensorSpec& t : tensorPlan(*this)) total += t.bytes() / 2;
    return total;
}

SyntheticModelSummary writeSyntheticModel(const fs::path& out, const SyntheticModelOptions& options, const RunContext& ctx)
{
    options.validate();
    const auto start = std::chrono::steady_clock::now();
    std::error_code ec;
    if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec)))
        throw IoError(quotedText(out.string()) + ": already exists and is not an empty directory");

    const std::vector<TensorSpec> plan = tensorPlan(options);
    // Shards in model order, a new one whenever the next tensor would overflow a non-empty shard.
    std::vector<std::vector<std::size_t>> shards;
    std::int64_t shardFill = 0;
    for (std::size_t i = 0; i < plan.size(); ++i) {
        if (shards.empty() || (shardFill > 0 && shardFill + plan[i].bytes() > options.shardBytes)) {
            shards.emplace_back();
            shardFill = 0;
        }
        shards.back().push_back(i);
        shardFill += plan[i].bytes();
    }
    std::uint64_t totalBytes = 0;
    for (const TensorSpec& t : plan) totalBytes += static_cast<std::uint64_t>(t.bytes());

    const fs::path temp = temporarySibling(out, std::to_string(::getpid()));
    fs::remove_all(temp, ec);
    if (!fs::create_directory(temp, ec) || ec)
        throw IoError(quotedText(temp.string()) + ": cannot create the folder (" + ec.message() + ")");
    SyntheticModelSummary summary;
    try {
        writeText(temp / "config.json", configJson(options).dump(2) + "\n");
        writeText(temp / "tokenizer.json", tokenizerJson(options.vocab).dump() + "\n");
        summary.files = {out / "config.json", out / "tokenizer.json"};
        nlohmann::json weightMap = nlohmann::json::object();
        std::uint64_t done = 0;
        const int threads = ctx.threadCount();
        for (std::size_t s = 0; s < shards.size(); ++s) {
            const std::string name = shardName(s, shards.size());
            nlohmann::json header = nlohmann::json::object();
            header["__metadata__"] = {{"format", "pt"}};
            std::uint64_t offset = 0;
            for (std::size_t i : shards[s]) {
                const TensorSpec& t = plan[i];
                nlohmann::json shape = t.cols ? nlohmann::json{t.rows, t.cols} : nlohmann::json{t.rows};
                header[t.name] = {{"dtype", "BF16"}, {"shape", shape}, {"data_offsets", {offset, offset + t.bytes()}}};
                offset += static_cast<std::uint64_t>(t.bytes());
                weightMap[t.name] = name;
            }
            std::string headerText = header.dump();
            headerText.append((8 - headerText.size() % 8) % 8, ' ');
            std::uint8_t length[8];
            for (int b = 0; b < 8; ++b) length[b] = static_cast<std::uint8_t>(std::uint64_t(headerText.size()) >> (8 * b));
            OutputFile file(temp / name);
            file.write(length, sizeof length);
            file.write(headerText.data(), headerText.size());
            for (std::size_t i : shards[s]) {
                const TensorSpec& t = plan[i];
                const std::uint64_t tensorSeed = factor::detail::mixSeed(options.seed, i, options.structured ? 1 : 0);
                try {
                    if (t.cols == 0) {
                        std::vector<std::uint16_t> buffer(static_cast<std::size_t>(t.rows));
                        generateNorm(t, options.structured, tensorSeed, buffer.data());
                        file.write(buffer.data(), buffer.size() * 2);
                        done += buffer.size() * 2;
                        continue;
                    }
                    const Structure structure = makeStructure(t, options.structured, tensorSeed);
                    // ~8 MB of BF16 per block, whole tiles, so that every thread has tiles to do.
                    const std::int64_t blockRows =
                        std::max<std::int64_t>(kTileRows, ((std::int64_t{4} << 20) / t.cols) / kTileRows * kTileRows);
                    std::vector<std::uint16_t> buffer(static_cast<std::size_t>(std::min(blockRows, t.rows) * t.cols));
                    for (std::int64_t r0 = 0; r0 < t.rows; r0 += blockRows) {
                        ctx.throwIfStopped();
                        const std::int64_t count = std::min(blockRows, t.rows - r0);
                        generateRows(t, structure, tensorSeed, r0, count, buffer.data(), threads);
                        file.write(buffer.data(), static_cast<std::size_t>(count * t.cols) * 2);
                        done += static_cast<std::uint64_t>(count * t.cols) * 2;
                        ctx.report("writing", static_cast<std::int64_t>(done), static_cast<std::int64_t>(totalBytes));
                    }
                } catch (Error& e) {
                    e.addContext("writing tensor " + quotedText(t.name));
                    throw;
                }
            }
            file.close();
            summary.files.push_back(out / name);
        }
        summary.tensors = static_cast<std::int64_t>(plan.size());
        summary.parameters = static_cast<std::int64_t>(totalBytes / 2);
        if (shards.size() > 1) {
            const nlohmann::json index = {{"metadata", {{"total_size", totalBytes}}}, {"weight_map", weightMap}};
            writeText(temp / "model.safetensors.index.json", index.dump(2) + "\n");
            summary.files.push_back(out / "model.safetensors.index.json");
        }
        ctx.throwIfStopped();
        if (fs::exists(out, ec)) fs::remove(out, ec);  // checked above: an empty directory
        fs::rename(temp, out, ec);
        if (ec) throw IoError(quotedText(out.string()) + ": cannot move the finished folder into place (" + ec.message() + ")");
    } catch (...) {
        fs::remove_all(temp, ec);
        throw;
    }
    summary.tensorBytes = totalBytes;
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return summary;
}

RowMatrixF structuredWeights(const StructuredWeightOptions& o, int threads)
{
    requireRange("rows", o.rows, 1, kMaxIntermediate);
    requireRange("cols", o.cols, 1, kMaxIntermediate);
    requireRange("heads", o.heads, 0, o.rows);
    if (o.heads > 0 && o.rows % o.heads != 0)
        throw InvalidArgument("heads " + std::to_string(o.heads) + " does not divide rows " + std::to_string(o.rows));
    if (!(o.outlierFraction < 1.0))
        throw InvalidArgument("outlier fraction " + std::to_string(o.outlierFraction) + " is not below 1");
    const TensorSpec t{"", o.rows, o.cols};
    const std::int64_t outliers =
        o.outlierFraction < 0.0 ? -1 : static_cast<std::int64_t>(std::llround(o.outlierFraction * double(o.cols)));
    const Structure structure = makeStructure(t, true, o.seed, outliers, o.heads);
    std::vector<std::uint16_t> buffer(static_cast<std::size_t>(o.rows * o.cols));
    generateRows(t, structure, o.seed, 0, o.rows, buffer.data(), threads);
    RowMatrixF W(o.rows, o.cols);
    for (Eigen::Index i = 0; i < W.size(); ++i) W.data()[i] = bf16ToFloat(buffer[static_cast<std::size_t>(i)]);
    return W;
}

}  // namespace mdbf::pipeline
