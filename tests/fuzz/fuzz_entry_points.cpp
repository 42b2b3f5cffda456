#include "fuzz_entry_points.h"

#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <stdexcept>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "deploy_test_util.h"
#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/deploy/package_model.h"
#include "mdbf/io/package.h"
#include "mdbf/model/rope.h"
#include "mdbf/tokenizer/tokenizer.h"
#include "mdbf/model/architecture.h"

namespace mdbf::fuzz {

namespace {

namespace fs = std::filesystem;

/// A folder per process for the files the entry points read, removed at exit.
class Scratch {
public:
    Scratch() : m_dir(fs::temp_directory_path() / ("mdbf-fuzz-" + std::to_string(::getpid())))
    {
        fs::create_directories(m_dir);
    }
    ~Scratch()
    {
        std::error_code ec;
        fs::remove_all(m_dir, ec);
    }
    fs::path write(const std::string& name, std::span<const std::uint8_t> data) const
    {
        const fs::path path = m_dir / name;
        std::ofstream(path, std::ios::binary | std::ios::trunc)
            .write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
        return path;
    }
    const fs::path& dir() const { return m_dir; }

private:
    fs::path m_dir;
};

Scratch& scratch()
{
    static Scratch s;
    return s;
}

void safetensors(std::span<const std::uint8_t> data)
{
    const io::Checkpoint cp = io::Checkpoint::open(scratch().write("model.safetensors", data));
    for (const io::TensorInfo& t : cp.tensors()) (void)cp.toFloat(t.name);
}

void config(std::span<const std::uint8_t> data)
{
    const io::ModelConfig c = io::ModelConfig::fromFile(scratch().write("config.json", data));
    (void)model::ropeInverseFrequencies(c);
    (void)model::projectionNames(c);
}

/// A sample with the cases a byte-level BPE handles specially: spaces, digits, punctuation,
/// contractions, multi-byte characters.
constexpr std::string_view kSampleText = "Hello, world! It's 2026: caf\xc3\xa9 \xe2\x80\x94 na\xc3\xafve  tabs\tand\nlines 12345.";

void tokenizerJson(std::span<const std::uint8_t> data)
{
    const Tokenizer t = Tokenizer::fromFile(scratch().write("tokenizer.json", data));
    const std::vector<std::int32_t> ids = t.encode(kSampleText);
    (void)t.decode(ids);
}

void text(std::span<const std::uint8_t> data)
{
    static const Tokenizer tokenizer = Tokenizer::fromFile(fs::path(MDBF_DEMO_MODEL_DIR) / "tokenizer.json");
    const std::string content = readUtf8File(scratch().write("text.txt", data));
    const std::vector<std::int32_t> ids = tokenizer.encode(content);
    (void)tokenizer.decode(ids);
}

void quantConfig(std::span<const std::uint8_t> data)
{
    const factor::QuantConfig c = factor::QuantConfig::fromFile(scratch().write("quant.json", data));
    (void)c.resolve("model.layers.0.mlp.up_proj");
    (void)c.resolve("lm_head");
    (void)c.toJson();
}

// ---- package: the bytes are a program of edits to a valid package ---------------------------
// Raw byte flips would mostly exercise the HDF5 library's own parser; edits made through the HDF5
// API produce well-formed files whose content attacks the package reader's checks instead.

/// Reads the fuzz input front to back; past the end every read gives zeros.
class ByteReader {
public:
    explicit ByteReader(std::span<const std::uint8_t> data) : m_data(data) {}
    bool done() const { return m_pos >= m_data.size(); }
    std::uint8_t byte() { return m_pos < m_data.size() ? m_data[m_pos++] : 0; }
    std::int64_t int64()
    {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | byte();
        return static_cast<std::int64_t>(v);
    }
    double real()
    {
        const std::int64_t bits = int64();
        double d;
        std::memcpy(&d, &bits, sizeof d);
        return d;
    }
    std::string text(std::size_t maxLength)
    {
        // Two length bytes, read in order (operands of + are not sequenced): 4·b0 + b1 mod 4.
        const std::size_t high = byte();
        const std::size_t low = byte() % 4u;
        const std::size_t n = std::min<std::size_t>(maxLength, high * 4u + low);
        std::string s;
        while (s.size() < n && !done()) s.push_back(static_cast<char>(byte()));
        return s;
    }
    template <typename T, std::size_t N>
    const T& pick(const T (&options)[N])
    {
        return options[byte() % N];
    }

private:
    std::span<const std::uint8_t> m_data;
    std::size_t m_pos = 0;
};

const std::string kLayer = "/layers/model.layers.0.self_attn.q_proj";
const std::string kDbfLayer = "/layers/model.layers.0.mlp.up_proj";

const std::string kObjects[] = {
    "/",
    "/dense",
    "/layers",
    "/dense/model.embed_tokens.weight",
    "/dense/model.norm.weight",
    "/dense/model.layers.0.self_attn.v_proj.weight",
    "/dense/model.layers.0.input_layernorm.weight",
    kLayer,
    kLayer + "/path0",
    kLayer + "/path0/sa",
    kLayer + "/path0/sb",
    kLayer + "/path0/A",
    kLayer + "/path0/Qa",
    kLayer + "/path0/Qb",
    kLayer + "/path0/B",
    kDbfLayer + "/path1",
    kDbfLayer,
    "/config.json",
    "/quant_config.json",
    "/tokenizer.json",
};
const char* const kIntAttributes[] = {"n", "m", "k", "l", "paths", "format_version"};
const char* const kStringAttributes[] = {"format", "encoding", "method", "objective", "bit_order", "producer"};
const char* const kDoubleAttributes[] = {"bpw", "rel_error", "model_bpw", "factorized_bpw"};
const char* const kNames[] = {"path0", "path1", "path7", "sa", "A", "extra", "lm_head.weight", "model.norm.weight"};
const char* const kStringDatasets[] = {"/config.json", "/quant_config.json", "/tokenizer.json"};

hid_t openObject(hid_t file, const std::string& path) { return H5Oopen(file, path.c_str(), H5P_DEFAULT); }

void setAttribute(hid_t object, const char* name, hid_t fileType, hid_t memType, const void* value)
{
    if (H5Aexists(object, name) > 0) H5Adelete(object, name);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(object, name, fileType, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr >= 0) {
        H5Awrite(attr, memType, value);
        H5Aclose(attr);
    }
    H5Sclose(space);
}

void setStringAttribute(hid_t object, const char* name, const std::string& value)
{
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, value.size() + 1);
    setAttribute(object, name, type, type, value.c_str());
    H5Tclose(type);
}

void replaceStringDataset(hid_t file, const char* path, const std::string& value)
{
    H5Ldelete(file, path, H5P_DEFAULT);
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, value.size() + 1);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t d = H5Dcreate2(file, path, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {
        H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, value.c_str());
        H5Dclose(d);
    }
    H5Sclose(space);
    H5Tclose(type);
}

/// Overwrites a dataset's stored bytes with the input (repeated), keeping type and shape.
void overwriteData(hid_t file, const std::string& path, ByteReader& in)
{
    const hid_t d = H5Dopen2(file, path.c_str(), H5P_DEFAULT);
    if (d < 0) return;
    const hid_t type = H5Dget_type(d);
    const hid_t space = H5Dget_space(d);
    const hssize_t count = H5Sget_simple_extent_npoints(space);
    const std::size_t bytes = static_cast<std::size_t>(std::max<hssize_t>(count, 0)) * H5Tget_size(type);
    if (bytes > 0 && bytes < (std::size_t{1} << 24)) {
        std::vector<std::uint8_t> buffer(bytes);
        const std::uint8_t seed = in.byte();
        const std::size_t stride = 1 + in.byte() % 16;
        for (std::size_t i = 0; i < bytes; ++i) buffer[i] = i % stride == 0 ? in.byte() : seed;
        H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data());
    }
    H5Sclose(space);
    H5Tclose(type);
    H5Dclose(d);
}

/// Replaces a dataset by an empty one of another type and a small shape.
void replaceDataset(hid_t file, const std::string& path, ByteReader& in)
{
    const hid_t types[] = {H5T_STD_U8LE, H5T_STD_U16LE, H5T_STD_U64LE, H5T_IEEE_F32LE, H5T_IEEE_F64LE, H5T_STD_I64BE};
    const hid_t type = types[in.byte() % 6];
    const int rank = in.byte() % 4;
    hsize_t dims[3];
    for (int i = 0; i < rank; ++i) dims[i] = in.byte() % 80;
    H5Ldelete(file, path.c_str(), H5P_DEFAULT);
    const hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, nullptr);
    const hid_t d = H5Dcreate2(file, path.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) H5Dclose(d);
    H5Sclose(space);
}

void applyEdit(hid_t file, ByteReader& in)
{
    const std::string& object = in.pick(kObjects);
    switch (in.byte() % 9) {
    case 0: {
        const hid_t o = openObject(file, object);
        const std::int64_t v = in.int64();
        if (o >= 0) setAttribute(o, in.pick(kIntAttributes), H5T_STD_I64LE, H5T_NATIVE_INT64, &v), H5Oclose(o);
        break;
    }
    case 1: {
        const hid_t o = openObject(file, object);
        const char* name = in.pick(kStringAttributes);
        if (o >= 0) setStringAttribute(o, name, in.text(300)), H5Oclose(o);
        break;
    }
    case 2: {
        const hid_t o = openObject(file, object);
        const double v = in.real();
        if (o >= 0) setAttribute(o, in.pick(kDoubleAttributes), H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v), H5Oclose(o);
        break;
    }
    case 3:
        H5Ldelete(file, object.c_str(), H5P_DEFAULT);
        break;
    case 4: {
        // A new link inside a group: hard, soft or external, to some object of the file.
        const std::string at = (object == "/" ? "" : object) + "/" + in.pick(kNames);
        const std::string& target = in.pick(kObjects);
        switch (in.byte() % 3) {
        case 0: H5Lcreate_hard(file, target.c_str(), file, at.c_str(), H5P_DEFAULT, H5P_DEFAULT); break;
        case 1: H5Lcreate_soft(target.c_str(), file, at.c_str(), H5P_DEFAULT, H5P_DEFAULT); break;
        default: H5Lcreate_external("/etc/passwd", "/", file, at.c_str(), H5P_DEFAULT, H5P_DEFAULT); break;
        }
        break;
    }
    case 5: {
        const char* dataset = in.pick(kStringDatasets);
        replaceStringDataset(file, dataset, in.text(4000));
        break;
    }
    case 6:
        overwriteData(file, object, in);
        break;
    case 7:
        replaceDataset(file, object, in);
        break;
    default: {
        // The same dataset, its values kept in another file.
        const hid_t d = H5Dopen2(file, object.c_str(), H5P_DEFAULT);
        if (d < 0) break;
        const hid_t type = H5Dget_type(d), space = H5Dget_space(d), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Dclose(d);
        H5Pset_external(dcpl, "/etc/passwd", 0, H5F_UNLIMITED);
        H5Ldelete(file, object.c_str(), H5P_DEFAULT);
        const hid_t e = H5Dcreate2(file, object.c_str(), type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (e >= 0) H5Dclose(e);
        H5Pclose(dcpl);
        H5Sclose(space);
        H5Tclose(type);
        break;
    }
    }
}

/// A package of a one-block LLaMA-style model that reads back and builds: every kind of object
/// the schema has (the three dense encodings, an mdbf layer with l = 2, a dbf layer with P = 2).
io::Package runnablePackage()
{
    std::mt19937_64 rng(11);
    io::Package pkg;
    pkg.configJson = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 16, "intermediate_size": 24,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 37,
        "tie_word_embeddings": true})";
    pkg.tokenizerJson = R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})";
    pkg.quantConfigJson = R"({"format": "mdbf-quant-config", "version": 1})";
    pkg.modelBpw = 4.0;
    pkg.factorizedBpw = 1.5;
    const std::string p = "model.layers.0.";
    pkg.dense.push_back(test::randomTensor("model.embed_tokens.weight", io::DType::BF16, {37, 16}, rng));
    pkg.dense.push_back(test::randomTensor("model.norm.weight", io::DType::F16, {16}, rng));
    pkg.dense.push_back(test::randomTensor(p + "input_layernorm.weight", io::DType::F32, {16}, rng));
    pkg.dense.push_back(test::randomTensor(p + "post_attention_layernorm.weight", io::DType::F16, {16}, rng));
    pkg.dense.push_back(test::randomTensor(p + "self_attn.k_proj.weight", io::DType::F16, {8, 16}, rng));
    pkg.dense.push_back(test::randomTensor(p + "self_attn.v_proj.weight", io::DType::F32, {8, 16}, rng));
    pkg.dense.push_back(test::randomTensor(p + "self_attn.o_proj.weight", io::DType::BF16, {16, 16}, rng));
    pkg.dense.push_back(test::randomTensor(p + "mlp.gate_proj.weight", io::DType::F16, {24, 16}, rng));
    pkg.dense.push_back(test::randomTensor(p + "mlp.down_proj.weight", io::DType::F16, {16, 24}, rng));
    io::PackageLayer q;
    q.name = p + "self_attn.q_proj";
    q.bpw = 1.5;
    q.relError = 0.5;
    q.paths.push_back(test::randomPath(16, 16, 5, 2, rng));
    pkg.layers.push_back(std::move(q));
    io::PackageLayer up;
    up.name = p + "mlp.up_proj";
    up.method = factor::Method::Dbf;
    up.bpw = 2.0;
    up.relError = 0.25;
    up.paths.push_back(test::randomPath(24, 16, 6, 1, rng));
    up.paths.push_back(test::randomPath(24, 16, 6, 1, rng));
    pkg.layers.push_back(std::move(up));
    return pkg;
}

void package(std::span<const std::uint8_t> data)
{
    static const fs::path base = [] {
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
        const fs::path p = scratch().dir() / "base.h5";
        io::writePackage(runnablePackage(), p);
        return p;
    }();
    const fs::path work = scratch().dir() / "package.h5";
    fs::copy_file(base, work, fs::copy_options::overwrite_existing);
    {
        const hid_t file = H5Fopen(work.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        if (file < 0) throw std::runtime_error("cannot reopen the fuzz package");
        ByteReader in(data);
        for (int edits = 0; edits < 8 && !in.done(); ++edits) applyEdit(file, in);
        H5Fclose(file);
    }
    const io::Package pkg = io::readPackage(work);
    (void)deploy::transformerFromPackage(pkg, work.string());
}

}  // namespace

const std::vector<FuzzTarget>& fuzzTargets()
{
    static const std::vector<FuzzTarget> targets = {
        {"safetensors", "a whole .safetensors file (length, JSON header, data), opened and every tensor converted"},
        {"config", "a config.json, parsed and validated, RoPE frequencies computed"},
        {"tokenizer", "a tokenizer.json, loaded and used on a fixed sample text"},
        {"text", "a text file encoded and decoded with the demo model's tokenizer"},
        {"quant_config", "a quantization configuration, parsed and resolved for two layers"},
        {"package", "edits applied through the HDF5 API to a valid package, which is then read and built"},
    };
    return targets;
}

bool runFuzzInput(std::string_view name, std::span<const std::uint8_t> data)
{
    using Entry = void (*)(std::span<const std::uint8_t>);
    static const std::pair<std::string_view, Entry> entries[] = {
        {"safetensors", safetensors}, {"config", config},            {"tokenizer", tokenizerJson},
        {"text", text},               {"quant_config", quantConfig}, {"package", package},
    };
    const auto it = std::find_if(std::begin(entries), std::end(entries), [&](const auto& e) { return e.first == name; });
    if (it == std::end(entries)) throw std::invalid_argument("unknown fuzz target '" + std::string(name) + "'");
    try {
        it->second(data);
        return true;
    } catch (const Error&) {
        return false;
    }
}

}  // namespace mdbf::fuzz
