// Truncated and corrupt checkpoints: every failure is one mdbf::Error naming the file and the
// problem; nothing crashes, hangs or reads outside the mapping (run under ASan to see the last).

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/io/checkpoint.h"
#include "safetensors_test_util.h"
#include "test_fixtures.h"

namespace mdbf::test {
namespace {

namespace fs = std::filesystem;
using io::Checkpoint;

void expectOpenFails(const fs::path& path, std::vector<std::string> needles)
{
    needles.insert(needles.begin(), path.filename().string());
    expectErrorContaining([&] { (void)Checkpoint::open(path); }, needles);
}

/// A header describing a single tensor `t` with the given entry, plus `dataBytes` zero bytes.
void writeOneTensor(const fs::path& path, const std::string& entry, std::size_t dataBytes)
{
    writeRawSafetensors(path, "{\"t\":" + entry + "}", std::string(dataBytes, '\0'));
}

/// A bad entry for tensor `t` and what the error must say besides the file and the tensor's name.
struct BadEntry {
    const char* entry;
    std::vector<std::string> needles;
};

/// Writes each entry in turn (over 8 zero data bytes) to `path` and expects opening to fail.
void expectEntriesFail(const fs::path& path, const std::vector<BadEntry>& cases)
{
    for (const BadEntry& c : cases) {
        SCOPED_TRACE(c.entry);
        writeOneTensor(path, c.entry, 8);
        std::vector<std::string> needles = c.needles;
        needles.insert(needles.begin(), "tensor 't'");
        expectOpenFails(path, needles);
    }
}

class CorruptCheckpoint : public ::testing::Test {
protected:
    mdbf::test::TempDir m_tmp;
    fs::path file(const std::string& name) const { return m_tmp / name; }
};

TEST_F(CorruptCheckpoint, EmptyAndShortFiles)
{
    writeTextFile(file("empty.safetensors"), "");
    expectOpenFails(file("empty.safetensors"), {"empty file"});
    writeTextFile(file("short.safetensors"), std::string("\x05\0\0\0\0", 5));
    expectOpenFails(file("short.safetensors"), {"5 bytes", "shorter than the 8-byte header length"});
}

TEST_F(CorruptCheckpoint, HeaderLengthPastEndOrAbsurd)
{
    writeRawSafetensors(file("past.safetensors"), "{}", "", 1000);
    expectOpenFails(file("past.safetensors"), {"header length 1000", "past the end of the file", "10 bytes"});
    writeRawSafetensors(file("huge.safetensors"), "{}", "", ~std::uint64_t{0});
    expectOpenFails(file("huge.safetensors"), {"header length 18446744073709551615", "exceeds"});
}

TEST_F(CorruptCheckpoint, HeaderNotJsonOrNotObject)
{
    writeRawSafetensors(file("garbage.safetensors"), "{\"t\": {\"dtype\": ", "abcd");
    expectOpenFails(file("garbage.safetensors"), {"header is not valid JSON"});
    writeRawSafetensors(file("binary.safetensors"), std::string("\x89PNG\r\n\x1a\n", 8), "");
    expectOpenFails(file("binary.safetensors"), {"header is not valid JSON"});
    writeRawSafetensors(file("zero.safetensors"), "", "data");
    expectOpenFails(file("zero.safetensors"), {"header is not valid JSON"});
    writeRawSafetensors(file("array.safetensors"), "[1, 2]", "");
    expectOpenFails(file("array.safetensors"), {"header is a JSON array, expected an object"});
    writeRawSafetensors(file("deep.safetensors"), std::string(100000, '[') + std::string(100000, ']'), "");
    expectOpenFails(file("deep.safetensors"), {"nested more than"});
}

TEST_F(CorruptCheckpoint, EntryFieldsMissingOrMistyped)
{
    const fs::path p = file("entry.safetensors");
    writeOneTensor(p, "5", 0);
    expectOpenFails(p, {"tensor 't'", "expected an object"});
    expectEntriesFail(p, {{R"({"shape": [2], "data_offsets": [0, 8]})", {"missing 'dtype'"}},
                          {R"({"dtype": "F32", "data_offsets": [0, 8]})", {"missing 'shape'"}},
                          {R"({"dtype": "F32", "shape": [2]})", {"missing 'data_offsets'"}},
                          {R"({"dtype": 32, "shape": [2], "data_offsets": [0, 8]})", {"'dtype' is a JSON number"}},
                          {R"({"dtype": "F32", "shape": "2", "data_offsets": [0, 8]})", {"'shape' is a JSON string"}},
                          {R"({"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]})", {"non-integer dimension 2.5"}},
                          {R"({"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]})", {"negative dimension -2"}},
                          {R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 4, 8]})",
                           {"'data_offsets' must be an array of two integers"}},
                          {R"({"dtype": "F32", "shape": [2], "data_offsets": [-4, 4]})", {"non-negative integers"}},
                          {R"({"dtype": "F32", "shape": [2], "data_offsets": "0-8"})", {"data_offsets"}}});
}

TEST_F(CorruptCheckpoint, UnsupportedDType)
{
    expectEntriesFail(file("int.safetensors"), {{R"({"dtype": "I64", "shape": [1], "data_offsets": [0, 8]})",
                                                 {"unsupported dtype 'I64'", "F32, F16, BF16"}}});
}

TEST_F(CorruptCheckpoint, OffsetsOutOfOrderOrOutsideData)
{
    expectEntriesFail(
        file("offsets.safetensors"),
        {{R"({"dtype": "F32", "shape": [1], "data_offsets": [8, 4]})", {"data_offsets [8, 4] out of order"}},
         {R"({"dtype": "F32", "shape": [4], "data_offsets": [0, 16]})",
          {"data_offsets [0, 16] outside the data region of 8 bytes"}},
         {R"({"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551612, 18446744073709551615]})",
          {"outside the data region"}}});
}

TEST_F(CorruptCheckpoint, ByteSizeDoesNotMatchShape)
{
    // The last: a shape whose element count overflows 64 bits must not wrap around to a small size.
    expectEntriesFail(
        file("size.safetensors"),
        {{R"({"dtype": "F32", "shape": [3], "data_offsets": [0, 8]})", {"byte size 8", "shape [3] of F32 (12 bytes)"}},
         {R"({"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 4]})", {"shape [2, 2] of BF16 (8 bytes)"}},
         {R"({"dtype": "F16", "shape": [4294967296, 4294967296, 2], "data_offsets": [0, 0]})", {"overflow"}}});
}

TEST_F(CorruptCheckpoint, OverlappingTensors)
{
    const fs::path p = file("overlap.safetensors");
    writeRawSafetensors(p,
                        R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                        std::string(12, '\0'));
    expectOpenFails(p, {"tensor 'b'", "overlap tensor 'a'"});
}

TEST_F(CorruptCheckpoint, TruncatedRealCheckpoint)
{
    const std::string whole = mdbf::test::readWholeFile(mdbf::test::demoModel() / "model.safetensors");
    ASSERT_GT(whole.size(), 1000u);
    const fs::path half = file("model.safetensors");
    writeTextFile(half, whole.substr(0, whole.size() / 2));
    expectOpenFails(half, {"tensor '", "outside the data region", "truncated"});
    // Also when opened through the directory.
    expectErrorContaining([&] { (void)Checkpoint::open(m_tmp.path()); }, {"model.safetensors", "outside the data region"});
    writeTextFile(half, whole.substr(0, 2000));
    expectOpenFails(half, {"past the end of the file"});
}

TEST_F(CorruptCheckpoint, MissingPathsAndEmptyDirectories)
{
    expectErrorContaining([&] { (void)Checkpoint::open(m_tmp / "nothing-here"); }, {"nothing-here", "no such file"});
    EXPECT_THROW((void)Checkpoint::open(m_tmp / "nothing-here"), mdbf::IoError);

    writeTextFile(file("config.json"), "{}");
    expectErrorContaining([&] { (void)Checkpoint::open(m_tmp.path()); },
                          {m_tmp.path().string(), "no model.safetensors, model.safetensors.index.json"});

    mdbf::test::writeSafetensors(file("a.safetensors"), {{"x", "F32", {1}, mdbf::test::f32Bytes({1.0f})}});
    const Checkpoint lone = Checkpoint::open(m_tmp.path());
    EXPECT_TRUE(lone.contains("x"));

    mdbf::test::writeSafetensors(file("b.safetensors"), {{"y", "F32", {1}, mdbf::test::f32Bytes({1.0f})}});
    expectErrorContaining([&] { (void)Checkpoint::open(m_tmp.path()); }, {"2 .safetensors files", "index"});
}

class CorruptIndex : public CorruptCheckpoint {
protected:
    void SetUp() override
    {
        mdbf::test::writeSafetensors(file("s1.safetensors"), {{"a", "F32", {2}, mdbf::test::f32Bytes({1.0f, 2.0f})},
                                                              {"b", "BF16", {1}, mdbf::test::u16Bytes({0x3f80})}});
        mdbf::test::writeSafetensors(file("s2.safetensors"), {{"c", "F16", {1}, mdbf::test::u16Bytes({0x4000})}});
    }
    fs::path index() const { return file("model.safetensors.index.json"); }
    void writeIndex(const std::string& text) const { writeTextFile(index(), text); }
    void expectIndexFails(const std::vector<std::string>& needles) const
    {
        std::vector<std::string> all = needles;
        all.insert(all.begin(), "model.safetensors.index.json");
        expectErrorContaining([&] { (void)Checkpoint::open(m_tmp.path()); }, all);
    }
};

TEST_F(CorruptIndex, ValidIndexOpens)
{
    writeIndex(R"({"metadata": {"total_size": 12},
                   "weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"}})");
    const Checkpoint cp = Checkpoint::open(m_tmp.path());
    ASSERT_EQ(cp.tensors().size(), 3u);
    EXPECT_EQ(cp.totalBytes(), 12u);
    EXPECT_EQ(cp.toFloat("a"), (std::vector<float>{1.0f, 2.0f}));
    EXPECT_EQ(cp.toFloat("b"), std::vector<float>{1.0f});
    EXPECT_EQ(cp.toFloat("c"), std::vector<float>{2.0f});
    EXPECT_EQ(cp.info("c").file, file("s2.safetensors"));
}

TEST_F(CorruptIndex, NotJsonOrNoWeightMap)
{
    writeIndex("{\"weight_map\": {\"a\": ");
    expectIndexFails({"index is not valid JSON"});
    writeIndex(R"({"metadata": {}})");
    expectIndexFails({"no 'weight_map'"});
    writeIndex(R"({"weight_map": ["s1.safetensors"]})");
    expectIndexFails({"'weight_map' is a JSON array"});
    writeIndex(R"({"weight_map": {}})");
    expectIndexFails({"lists no tensors"});
    writeIndex(R"({"weight_map": {"a": 1}})");
    expectIndexFails({"tensor 'a'", "expected a shard file name"});
    writeIndex(R"({"weight_map": {"a": "../s1.safetensors"}})");
    expectIndexFails({"not a plain file name"});
}

TEST_F(CorruptIndex, MissingShard)
{
    writeIndex(R"({"weight_map": {"a": "s1.safetensors", "c": "s3.safetensors"}})");
    expectIndexFails({"shard 's3.safetensors' named by the index is missing"});
    EXPECT_THROW((void)Checkpoint::open(index()), mdbf::FormatError);
}

TEST_F(CorruptIndex, TensorListedButAbsentFromShard)
{
    writeIndex(R"({"weight_map": {"a": "s1.safetensors", "c": "s1.safetensors"}})");
    expectIndexFails({"tensor 'c'", "listed in shard 's1.safetensors'", "not present"});
}

TEST_F(CorruptIndex, TensorInTwoShards)
{
    mdbf::test::writeSafetensors(file("s2.safetensors"), {{"a", "F16", {1}, mdbf::test::u16Bytes({0x4000})}});
    writeIndex(R"({"weight_map": {"a": "s2.safetensors", "b": "s1.safetensors"}})");
    expectErrorContaining([&] { (void)Checkpoint::open(m_tmp.path()); }, {"tensor 'a'", "also appears in", "s1.safetensors", "s2.safetensors"});
}

TEST_F(CorruptIndex, CorruptShardIsNamed)
{
    writeTextFile(file("s2.safetensors"), std::string("\x40\0\0\0\0\0\0\0{", 9));
    writeIndex(R"({"weight_map": {"a": "s1.safetensors", "c": "s2.safetensors"}})");
    expectErrorContaining([&] { (void)Checkpoint::open(m_tmp.path()); }, {"s2.safetensors", "past the end of the file"});
}

TEST(CheckpointFuzz, MutatedHeadersNeverCrash)
{
    // Random byte changes in a small valid file: each variant either opens (and then every tensor
    // converts) or fails with an mdbf::Error. Under ASan this also proves no read leaves the mapping.
    mdbf::test::TempDir tmp;
    const fs::path path = tmp / "fuzz.safetensors";
    mdbf::test::writeSafetensors(path, {{"a", "F32", {2, 3}, mdbf::test::f32Bytes({1, 2, 3, 4, 5, 6})},
                                        {"b", "F16", {4}, mdbf::test::u16Bytes({1, 2, 3, 4})},
                                        {"c", "BF16", {1, 1}, mdbf::test::u16Bytes({5})}});
    const std::string original = mdbf::test::readWholeFile(path);
    std::mt19937 rng(42);
    const std::string alphabet = "0123456789[]{}\",:-. eE\x01\xff";
    int opened = 0, failed = 0;
    for (int iter = 0; iter < 400; ++iter) {
        std::string bytes = original;
        const int edits = 1 + static_cast<int>(rng() % 3);
        for (int e = 0; e < edits; ++e) {
            const std::size_t pos = rng() % bytes.size();
            bytes[pos] = rng() % 2 ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng() & 0xff);
        }
        if (rng() % 8 == 0) bytes.resize(rng() % bytes.size());
        writeTextFile(path, bytes);
        try {
            const Checkpoint cp = Checkpoint::open(path);
            for (const auto& t : cp.tensors()) {
                const auto values = cp.toFloat(t.name);
                ASSERT_EQ(values.size(), static_cast<std::size_t>(t.elementCount()));
                ASSERT_LE(t.offset + t.byteSize, bytes.size());
            }
            ++opened;
        } catch (const mdbf::Error&) {
            ++failed;
        }
    }
    EXPECT_GT(failed, 0);
    EXPECT_GT(opened, 0);
}

}  // namespace
}  // namespace mdbf::test
