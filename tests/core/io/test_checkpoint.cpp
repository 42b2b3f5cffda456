#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/io/checkpoint.h"
#include "safetensors_test_util.h"
#include "test_fixtures.h"

namespace {

namespace fs = std::filesystem;
using mdbf::io::Checkpoint;
using mdbf::io::DType;
using nlohmann::json;
using Shapes = std::map<std::string, std::vector<std::int64_t>>;

json readJson(const fs::path& path)
{
    std::ifstream in(path);
    return json::parse(in);
}

/// The tensor names and shapes a LLaMA checkpoint must hold, derived from its config.json alone.
Shapes expectedLlamaShapes(const json& config)
{
    const auto h = config.at("hidden_size").get<std::int64_t>();
    const auto inter = config.at("intermediate_size").get<std::int64_t>();
    const auto heads = config.at("num_attention_heads").get<std::int64_t>();
    const auto kv = config.at("num_key_value_heads").get<std::int64_t>();
    const auto hd = config.at("head_dim").get<std::int64_t>();
    const auto vocab = config.at("vocab_size").get<std::int64_t>();
    Shapes s;
    s["model.embed_tokens.weight"] = {vocab, h};
    s["model.norm.weight"] = {h};
    if (!config.at("tie_word_embeddings").get<bool>()) s["lm_head.weight"] = {vocab, h};
    for (int l = 0; l < config.at("num_hidden_layers").get<int>(); ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        s[p + "input_layernorm.weight"] = {h};
        s[p + "post_attention_layernorm.weight"] = {h};
        s[p + "self_attn.q_proj.weight"] = {heads * hd, h};
        s[p + "self_attn.k_proj.weight"] = {kv * hd, h};
        s[p + "self_attn.v_proj.weight"] = {kv * hd, h};
        s[p + "self_attn.o_proj.weight"] = {h, heads * hd};
        s[p + "mlp.gate_proj.weight"] = {inter, h};
        s[p + "mlp.up_proj.weight"] = {inter, h};
        s[p + "mlp.down_proj.weight"] = {h, inter};
    }
    return s;
}

Shapes actualShapes(const Checkpoint& cp)
{
    Shapes s;
    for (const auto& t : cp.tensors()) s[t.name] = t.shape;
    return s;
}

/// Counts entries whose bits differ (exact comparison: both sides decode the same stored bits).
std::size_t countMismatches(const std::vector<float>& actual, const std::vector<float>& expected)
{
    if (actual.size() != expected.size()) return std::max(actual.size(), expected.size());
    std::size_t bad = 0;
    for (std::size_t i = 0; i < actual.size(); ++i) {
        if (std::memcmp(&actual[i], &expected[i], sizeof(float)) != 0) ++bad;
    }
    return bad;
}

/// A tensor's values converted without the finiteness check of Checkpoint::toFloat.
std::vector<float> rawToFloat(const Checkpoint& cp, const std::string& name)
{
    const std::span<const std::byte> bytes = cp.raw(name);
    std::vector<float> out(static_cast<std::size_t>(cp.info(name).elementCount()));
    mdbf::io::convertToFloat(cp.info(name).dtype, bytes.data(), out.size(), out.data());
    return out;
}

std::int64_t parameterCount(const Checkpoint& cp)
{
    std::int64_t n = 0;
    for (const auto& t : cp.tensors()) n += t.elementCount();
    return n;
}

TEST(Checkpoint, DemoModelMatchesIndependentDecoding)
{
    const fs::path dir = mdbf::test::demoModel();
    const Checkpoint cp = Checkpoint::open(dir);
    const json config = readJson(dir / "config.json");

    EXPECT_EQ(cp.tensors().size(), 38u);  // 4 layers × 9 + embeddings + final norm; lm_head tied
    EXPECT_EQ(actualShapes(cp), expectedLlamaShapes(config));
    EXPECT_TRUE(std::is_sorted(cp.tensors().begin(), cp.tensors().end(),
                               [](const auto& a, const auto& b) { return a.name < b.name; }));
    // docs/TESTING.md §2: 1.0 M parameters, FP16.
    EXPECT_NEAR(static_cast<double>(parameterCount(cp)), 1.0e6, 0.05e6);

    const auto ref = mdbf::test::readSafetensorsReference(dir / "model.safetensors");
    EXPECT_EQ(cp.totalBytes(), ref.data.size());
    for (const auto& t : cp.tensors()) {
        SCOPED_TRACE(t.name);
        EXPECT_EQ(t.dtype, DType::F16);
        EXPECT_EQ(t.file, dir / "model.safetensors");
        EXPECT_EQ(t.byteSize, static_cast<std::uint64_t>(t.elementCount()) * 2);
        EXPECT_EQ(countMismatches(cp.toFloat(t.name), ref.values(t.name)), 0u);
        const auto raw = cp.raw(t.name);
        const std::string expectedBytes = ref.bytes(t.name);
        ASSERT_EQ(raw.size(), expectedBytes.size());
        EXPECT_EQ(std::memcmp(raw.data(), expectedBytes.data(), raw.size()), 0);
    }
}

TEST(Checkpoint, SmallLlamaMatchesIndependentDecoding)
{
    MDBF_REQUIRE_SHARED_FIXTURES();
    const fs::path dir = mdbf::test::sharedFixtures() / "small-llama";
    const Checkpoint cp = Checkpoint::open(dir);

    EXPECT_EQ(cp.tensors().size(), 57u);  // 6 layers × 9 + embeddings + norm + untied lm_head
    EXPECT_EQ(actualShapes(cp), expectedLlamaShapes(readJson(dir / "config.json")));
    EXPECT_NEAR(static_cast<double>(parameterCount(cp)), 15.7e6, 0.05e6);
    for (const auto& t : cp.tensors()) EXPECT_EQ(t.dtype, DType::BF16) << t.name;

    const auto ref = mdbf::test::readSafetensorsReference(dir / "model.safetensors");
    EXPECT_EQ(cp.totalBytes(), ref.data.size());
    for (const std::string name : {"lm_head.weight", "model.layers.3.mlp.down_proj.weight",
                                   "model.layers.5.self_attn.k_proj.weight", "model.norm.weight"}) {
        SCOPED_TRACE(name);
        EXPECT_EQ(countMismatches(cp.toFloat(name), ref.values(name)), 0u);
    }
}

TEST(Checkpoint, MediumLlamaShardsMatchIndependentDecoding)
{
    MDBF_REQUIRE_SHARED_FIXTURES();
    const fs::path dir = mdbf::test::sharedFixtures() / "medium-llama";
    const Checkpoint cp = Checkpoint::open(dir);
    const json index = readJson(dir / "model.safetensors.index.json");

    EXPECT_EQ(cp.tensors().size(), index.at("weight_map").size());
    EXPECT_EQ(cp.tensors().size(), 38u);
    EXPECT_EQ(actualShapes(cp), expectedLlamaShapes(readJson(dir / "config.json")));
    EXPECT_EQ(cp.totalBytes(), index.at("metadata").at("total_size").get<std::uint64_t>());
    EXPECT_NEAR(static_cast<double>(parameterCount(cp)), 53.5e6, 0.05e6);
    for (const auto& t : cp.tensors()) {
        EXPECT_EQ(t.dtype, DType::BF16) << t.name;
        EXPECT_EQ(t.file, dir / index.at("weight_map").at(t.name).get<std::string>()) << t.name;
    }

    // One tensor from each shard, the first large enough for the parallel conversion path.
    std::map<std::string, mdbf::test::SafetensorsReference> shards;
    for (const std::string name : {"model.embed_tokens.weight", "model.layers.0.mlp.down_proj.weight",
                                   "model.layers.3.self_attn.o_proj.weight", "model.layers.1.post_attention_layernorm.weight"}) {
        SCOPED_TRACE(name);
        const auto shard = index.at("weight_map").at(name).get<std::string>();
        if (!shards.contains(shard)) shards[shard] = mdbf::test::readSafetensorsReference(dir / shard);
        EXPECT_EQ(countMismatches(cp.toFloat(name), shards[shard].values(name)), 0u);
    }
    EXPECT_EQ(shards.size(), 2u);
}

TEST(Checkpoint, DirectoryFileAndIndexPathsAgree)
{
    const fs::path demo = mdbf::test::demoModel();
    const Checkpoint byDir = Checkpoint::open(demo);
    const Checkpoint byFile = Checkpoint::open(demo / "model.safetensors");
    EXPECT_EQ(byFile.path(), demo / "model.safetensors");
    EXPECT_EQ(actualShapes(byDir), actualShapes(byFile));
    EXPECT_EQ(byDir.toFloat("model.norm.weight"), byFile.toFloat("model.norm.weight"));

    if (!mdbf::test::haveSharedFixtures()) return;
    const fs::path medium = mdbf::test::sharedFixtures() / "medium-llama";
    const Checkpoint byIndex = Checkpoint::open(medium / "model.safetensors.index.json");
    const Checkpoint mediumDir = Checkpoint::open(medium);
    EXPECT_EQ(actualShapes(byIndex), actualShapes(mediumDir));
    EXPECT_EQ(byIndex.totalBytes(), mediumDir.totalBytes());
}

TEST(Checkpoint, MatrixAgreesWithToFloat)
{
    const Checkpoint cp = Checkpoint::open(mdbf::test::demoModel());
    const std::string name2d = "model.layers.1.mlp.down_proj.weight";  // 128 × 352
    const auto flat = cp.toFloat(name2d);
    const mdbf::RowMatrixF m = cp.matrix(name2d);
    ASSERT_EQ(m.rows(), 128);
    ASSERT_EQ(m.cols(), 352);
    for (Eigen::Index i = 0; i < m.rows(); ++i) {
        for (Eigen::Index j = 0; j < m.cols(); ++j) ASSERT_EQ(m(i, j), flat[static_cast<std::size_t>(i * 352 + j)]);
    }

    const std::string name1d = "model.layers.2.input_layernorm.weight";
    const auto vec = cp.toFloat(name1d);
    const mdbf::RowMatrixF row = cp.matrix(name1d);
    ASSERT_EQ(row.rows(), 1);
    ASSERT_EQ(row.cols(), 128);
    for (Eigen::Index j = 0; j < row.cols(); ++j) EXPECT_EQ(row(0, j), vec[static_cast<std::size_t>(j)]);
}

TEST(Checkpoint, LookupsAndMissingTensor)
{
    const Checkpoint cp = Checkpoint::open(mdbf::test::demoModel());
    EXPECT_TRUE(cp.contains("model.norm.weight"));
    EXPECT_FALSE(cp.contains("model.norm"));
    EXPECT_FALSE(cp.contains("lm_head.weight"));
    EXPECT_EQ(cp.info("model.embed_tokens.weight").shape, (std::vector<std::int64_t>{2048, 128}));
    EXPECT_EQ(cp.info("model.embed_tokens.weight").elementCount(), 2048 * 128);
    mdbf::test::expectErrorContaining([&] { (void)cp.info("lm_head.weight"); },
                                      {"no tensor named 'lm_head.weight'", "tiny-llama"});
    EXPECT_THROW((void)cp.toFloat("nope"), mdbf::FormatError);
    EXPECT_THROW((void)cp.raw("nope"), mdbf::FormatError);
    EXPECT_THROW((void)cp.matrix("nope"), mdbf::FormatError);
}

TEST(Checkpoint, MovedCheckpointKeepsMappingValid)
{
    Checkpoint original = Checkpoint::open(mdbf::test::demoModel());
    const auto before = original.toFloat("model.layers.0.self_attn.q_proj.weight");
    const auto rawBefore = original.raw("model.layers.0.self_attn.q_proj.weight");
    Checkpoint moved = std::move(original);
    const auto rawAfter = moved.raw("model.layers.0.self_attn.q_proj.weight");
    EXPECT_EQ(rawBefore.data(), rawAfter.data());
    EXPECT_EQ(moved.toFloat("model.layers.0.self_attn.q_proj.weight"), before);

    Checkpoint other = Checkpoint::open(mdbf::test::demoModel());
    other = std::move(moved);
    EXPECT_EQ(other.toFloat("model.layers.0.self_attn.q_proj.weight"), before);
}

TEST(Checkpoint, KnownBitPatternsOfEachDType)
{
    mdbf::test::TempDir tmp;
    // Values fixed by the IEEE 754 and bfloat16 definitions.
    const std::vector<std::uint16_t> f16Bits = {0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x8000, 0x3555, 0x7c00, 0xfc00};
    const std::vector<float> f16Values = {1.0f, -2.0f, 5.9604644775390625e-8f, 6.0975551605224609e-5f, 6.103515625e-5f,
                                          65504.0f, -0.0f, 0.333251953125f, INFINITY, -INFINITY};
    const std::vector<std::uint16_t> bf16Bits = {0x3f80, 0xc0a0, 0x4049, 0x0001, 0x7f80, 0x8000};
    const std::vector<float> bf16Values = {1.0f, -5.0f, 3.140625f, 9.18354961579912115600575419705e-41f, INFINITY, -0.0f};
    const std::vector<float> f32Values = {1.5f, -1e-30f, 3.4028235e38f, 1.17549435e-38f, 1e-45f, -0.0f, 7.25f};
    // Three bytes of header padding put every tensor at an odd address inside the mapping.
    mdbf::test::writeSafetensors(tmp / "values.safetensors",
                                 {{"f16", "F16", {2, 5}, mdbf::test::u16Bytes(f16Bits)},
                                  {"bf16", "BF16", {6}, mdbf::test::u16Bytes(bf16Bits)},
                                  {"f32", "F32", {7, 1}, mdbf::test::f32Bytes(f32Values)}},
                                 3);
    const Checkpoint cp = Checkpoint::open(tmp / "values.safetensors");
    EXPECT_EQ(countMismatches(rawToFloat(cp, "f16"), f16Values), 0u);
    EXPECT_EQ(countMismatches(rawToFloat(cp, "bf16"), bf16Values), 0u);
    EXPECT_EQ(countMismatches(cp.toFloat("f32"), f32Values), 0u);
    // The weight readers refuse the infinities the conversion itself reproduces, naming the first.
    mdbf::test::expectErrorContaining([&] { (void)cp.toFloat("f16"); },
                                      {"values.safetensors", "tensor 'f16'", "non-finite", "element 8"});
    mdbf::test::expectErrorContaining([&] { (void)cp.matrix("bf16"); }, {"tensor 'bf16'", "element 4"});
    EXPECT_EQ(cp.info("f32").dtype, DType::F32);
    EXPECT_EQ(cp.info("bf16").dtype, DType::BF16);
    EXPECT_EQ(cp.info("f16").dtype, DType::F16);
    EXPECT_EQ(cp.totalBytes(), 20u + 12u + 28u);
    EXPECT_EQ(mdbf::io::dtypeName(DType::BF16), "BF16");
    EXPECT_EQ(mdbf::io::dtypeSize(DType::F32), 4u);
    EXPECT_EQ(mdbf::io::dtypeSize(DType::F16), 2u);

    const mdbf::RowMatrixF m = cp.matrix("f32");
    ASSERT_EQ(m.rows(), 7);
    ASSERT_EQ(m.cols(), 1);
    EXPECT_EQ(m(2, 0), 3.4028235e38f);
    EXPECT_TRUE(std::signbit(m(5, 0)));
    EXPECT_EQ(m(6, 0), 7.25f);
}

TEST(Checkpoint, LargeTensorsConvertLikeTheReference)
{
    // 613 × 701 = 429,713 elements: above the threshold where conversion is split over threads.
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int> bits(0, 0xffff);
    std::vector<std::uint16_t> f16(613 * 701), bf16(613 * 701);
    for (auto& b : f16) {
        do b = static_cast<std::uint16_t>(bits(rng));
        while (((b >> 10) & 0x1f) == 0x1f);  // the arithmetic reference covers finite values only
    }
    for (auto& b : bf16) b = static_cast<std::uint16_t>(bits(rng));
    mdbf::test::TempDir tmp;
    mdbf::test::writeSafetensors(tmp / "big.safetensors", {{"a", "F16", {613, 701}, mdbf::test::u16Bytes(f16)},
                                                           {"b", "BF16", {613, 701}, mdbf::test::u16Bytes(bf16)}});
    const Checkpoint cp = Checkpoint::open(tmp / "big.safetensors");
    const auto a = cp.toFloat("a");
    const auto b = rawToFloat(cp, "b");  // random bits include NaN and infinity, which toFloat refuses
    ASSERT_EQ(a.size(), f16.size());
    ASSERT_EQ(b.size(), bf16.size());
    std::size_t badA = 0, badB = 0;
    for (std::size_t i = 0; i < f16.size(); ++i) {
        const float ea = mdbf::test::decodeF16Reference(f16[i]);
        if (std::memcmp(&a[i], &ea, 4) != 0) ++badA;
        const float eb = mdbf::test::decodeBf16Reference(bf16[i]);
        if (std::memcmp(&b[i], &eb, 4) != 0) ++badB;
    }
    EXPECT_EQ(badA, 0u);
    EXPECT_EQ(badB, 0u);
    const mdbf::RowMatrixF m = cp.matrix("a");
    EXPECT_EQ(std::memcmp(m.data(), a.data(), a.size() * sizeof(float)), 0);
}

TEST(Checkpoint, ScalarsAndEmptyTensors)
{
    mdbf::test::TempDir tmp;
    mdbf::test::writeSafetensors(tmp / "odd.safetensors", {{"empty", "F32", {0, 4}, ""},
                                                           {"scalar", "F32", {}, mdbf::test::f32Bytes({2.5f})},
                                                           {"cube", "BF16", {2, 1, 2}, mdbf::test::u16Bytes({1, 2, 3, 4})}});
    const Checkpoint cp = Checkpoint::open(tmp / "odd.safetensors");
    EXPECT_EQ(cp.info("empty").elementCount(), 0);
    EXPECT_TRUE(cp.toFloat("empty").empty());
    const mdbf::RowMatrixF e = cp.matrix("empty");
    EXPECT_EQ(e.rows(), 0);
    EXPECT_EQ(e.cols(), 4);
    EXPECT_EQ(cp.info("scalar").elementCount(), 1);
    EXPECT_EQ(cp.toFloat("scalar"), std::vector<float>{2.5f});
    mdbf::test::expectErrorContaining([&] { (void)cp.matrix("scalar"); }, {"odd.safetensors", "'scalar'", "rank 1 or 2"});
    mdbf::test::expectErrorContaining([&] { (void)cp.matrix("cube"); }, {"odd.safetensors", "'cube'", "[2, 1, 2]"});
    EXPECT_EQ(cp.toFloat("cube").size(), 4u);
}

/// A field of /proc/self/status in KiB ("RssAnon", "RssFile"), or -1 when unavailable.
long statusKiB(const std::string& field)
{
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
    }
    return -1;
}

TEST(Checkpoint, OpeningMapsWithoutConverting)
{
    MDBF_REQUIRE_SHARED_FIXTURES();
    if (statusKiB("RssFile") < 0 || statusKiB("RssAnon") < 0) GTEST_SKIP() << "/proc/self/status not available";
    // Opening reads only the headers: neither the 102 MiB of mapped BF16 data (file-backed pages)
    // nor the 204 MiB it would take as float32 (anonymous pages) may become resident.
    const long fileBefore = statusKiB("RssFile");
    const long anonBefore = statusKiB("RssAnon");
    const Checkpoint cp = Checkpoint::open(mdbf::test::sharedFixtures() / "medium-llama");
    const long fileAfterOpen = statusKiB("RssFile");
    const long anonAfterOpen = statusKiB("RssAnon");
    EXPECT_LT(fileAfterOpen - fileBefore, 2 * 1024) << "mapped pages touched by open(), KiB";
    EXPECT_LT(anonAfterOpen - anonBefore, 8 * 1024) << "memory allocated by open(), KiB";

    // The measure notices data being read: converting the 16 MiB embedding touches its pages.
    const auto embed = cp.toFloat("model.embed_tokens.weight");
    EXPECT_GT(statusKiB("RssFile") - fileAfterOpen, 15 * 1024);
    EXPECT_EQ(embed.size(), 8192u * 1024u);
}

}  // namespace
