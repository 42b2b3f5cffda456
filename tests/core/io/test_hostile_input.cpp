// Hostile inputs to the readers of core/io and core/base: files built to shift every tensor, to
// exhaust the stack, to hide a failed read or to flood a message. Each must end in one bounded
// one-line mdbf::Error naming the file and the problem.

#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mdbf/base/error.h"
#include "mdbf/base/json_text.h"
#include "mdbf/base/text_file.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "safetensors_test_util.h"
#include "test_fixtures.h"

namespace {

namespace fs = std::filesystem;
using mdbf::io::Checkpoint;
using mdbf::io::ModelConfig;
using mdbf::test::expectErrorContaining;
using mdbf::test::writeRawSafetensors;
using mdbf::test::writeTextFile;

/// Two F32 tensors of 4 and 2 elements laid out back to back: 24 data bytes.
const std::string kTwoTensors =
    R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})";

std::string nested(int depth, const std::string& inner = "0")
{
    return std::string(static_cast<std::size_t>(depth), '[') + inner + std::string(static_cast<std::size_t>(depth), ']');
}

std::string configWithExtraField(const std::string& extraField)
{
    return R"({"architectures":["LlamaForCausalLM"],"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,)"
           R"("num_attention_heads":2,"vocab_size":10,)" +
           extraField + "}";
}

class HostileInput : public ::testing::Test {
protected:
    mdbf::test::TempDir m_tmp;
    fs::path file(const std::string& name) const { return m_tmp / name; }
};

TEST_F(HostileInput, SafetensorsDataRegionMustBeCoveredExactly)
{
    // The reference layout opens and reads back.
    writeRawSafetensors(file("ok.safetensors"), kTwoTensors, std::string(24, '\0'));
    EXPECT_EQ(Checkpoint::open(file("ok.safetensors")).tensors().size(), 2u);

    // A header length one byte short leaves the header's last byte as the first data byte: the
    // parse still succeeds on some headers, so coverage is what catches it. Here the closing brace
    // is cut, so the header itself is refused.
    writeRawSafetensors(file("short.safetensors"), kTwoTensors, std::string(24, '\0'), kTwoTensors.size() - 1);
    expectErrorContaining([&] { (void)Checkpoint::open(file("short.safetensors")); }, {"short.safetensors"});

    // Padding spaces make a header whose length one byte short still parses: the data then starts
    // one byte early and every tensor would be shifted.
    writeRawSafetensors(file("shifted.safetensors"), kTwoTensors + " ", std::string(24, '\0'), kTwoTensors.size());
    expectErrorContaining([&] { (void)Checkpoint::open(file("shifted.safetensors")); },
                          {"shifted.safetensors", "cover 24 bytes", "holds 25"});

    // Four bytes inserted before the data.
    writeRawSafetensors(file("inserted.safetensors"), kTwoTensors, std::string(28, '\0'));
    expectErrorContaining([&] { (void)Checkpoint::open(file("inserted.safetensors")); },
                          {"inserted.safetensors", "cover 24 bytes", "holds 28"});

    // A gap between the tensors.
    const std::string gap =
        R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[20,28]}})";
    writeRawSafetensors(file("gap.safetensors"), gap, std::string(28, '\0'));
    expectErrorContaining([&] { (void)Checkpoint::open(file("gap.safetensors")); },
                          {"gap.safetensors", "tensor 'b'", "unused"});

    // Data not starting at offset 0.
    const std::string late = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})";
    writeRawSafetensors(file("late.safetensors"), late, std::string(24, '\0'));
    expectErrorContaining([&] { (void)Checkpoint::open(file("late.safetensors")); },
                          {"late.safetensors", "tensor 'a'", "bytes 0..8 unused"});
}

TEST_F(HostileInput, NonFiniteWeightsAreRefusedNamingTheTensor)
{
    const float values[] = {1.0f, 2.0f, std::numeric_limits<float>::quiet_NaN(), 4.0f};
    writeRawSafetensors(file("nan.safetensors"), R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})",
                        mdbf::test::f32Bytes({values, values + 4}));
    const Checkpoint cp = Checkpoint::open(file("nan.safetensors"));
    expectErrorContaining([&] { (void)cp.matrix("w"); }, {"nan.safetensors", "tensor 'w'", "non-finite", "element 2"});
    expectErrorContaining([&] { (void)cp.toFloat("w"); }, {"tensor 'w'", "element 2"});
}

TEST_F(HostileInput, DeeplyNestedJsonIsRefusedByEveryReader)
{
    // 100,000 levels crashed recursive code before the shared depth limit.
    writeTextFile(file("config.json"), configWithExtraField("\"rope_scaling\":" + nested(100000)));
    expectErrorContaining([&] { (void)ModelConfig::fromFile(file("config.json")); },
                          {"config.json", "nested more than 64 levels"});

    fs::create_directories(file("sharded"));
    writeTextFile(file("sharded/model.safetensors.index.json"), "{\"weight_map\":" + nested(100000) + "}");
    expectErrorContaining([&] { (void)Checkpoint::open(file("sharded")); }, {"index.json", "nested more than"});

    const std::string header = "{\"a\":" + nested(5000) + "}";
    writeRawSafetensors(file("deep.safetensors"), header, "");
    expectErrorContaining([&] { (void)Checkpoint::open(file("deep.safetensors")); }, {"header is nested more than"});

    // The limit is the documented one: 64 levels parse, 65 do not.
    EXPECT_NO_THROW((void)mdbf::parseJsonText(nested(64), "inline"));
    expectErrorContaining([&] { (void)mdbf::parseJsonText(nested(65), "inline"); }, {"'inline'", "nested"});
}

TEST_F(HostileInput, NumbersOutOfRangeNameTheFile)
{
    writeTextFile(file("config.json"), configWithExtraField("\"rms_norm_eps\":1e999"));
    expectErrorContaining([&] { (void)ModelConfig::fromFile(file("config.json")); }, {"config.json", "not valid JSON"});

    std::string layers = configWithExtraField("\"x\":0");
    layers.replace(layers.find("\"num_hidden_layers\":1"), 21, "\"num_hidden_layers\":2147483647");
    writeTextFile(file("layers.json"), layers);
    expectErrorContaining([&] { (void)ModelConfig::fromFile(file("layers.json")); },
                          {"layers.json", "num_hidden_layers", "more than the supported 4096"});

    writeTextFile(file("rope.json"),
                  configWithExtraField(R"("rope_scaling":{"rope_type":"linear","factor":1e-308})"));
    expectErrorContaining([&] { (void)ModelConfig::fromFile(file("rope.json")); },
                          {"rope.json", "rope_scaling.factor", "between"});
}

TEST_F(HostileInput, MessagesStayOneBoundedLine)
{
    // A 10 MB value and control characters in names.
    const std::string huge(10'000'000, 'x');
    writeTextFile(file("config.json"), configWithExtraField("\"hidden_act\":\"" + huge + "\""));
    try {
        (void)ModelConfig::fromFile(file("config.json"));
        ADD_FAILURE() << "a 10 MB hidden_act was accepted";
    } catch (const mdbf::Error& e) {
        const std::string message = e.what();
        EXPECT_LE(message.size(), mdbf::kMaxMessageBytes + 8);
        EXPECT_NE(message.find("config.json"), std::string::npos) << message;
        EXPECT_NE(message.find("\xe2\x80\xa6"), std::string::npos) << "no ellipsis: " << message.substr(0, 200);
    }

    const std::string name = "evil\nname\x1b[2J";
    writeRawSafetensors(file("names.safetensors"),
                        "{\"" + std::string("evil\\nname\\u001b[2J") + R"(":{"dtype":"X","shape":[1],"data_offsets":[0,4]}})",
                        std::string(4, '\0'));
    expectErrorContaining([&] { (void)Checkpoint::open(file("names.safetensors")); },
                          {"names.safetensors", "evil\\nname\\x1b[2J", "unsupported dtype"});

    EXPECT_EQ(mdbf::messageText("a\tb\x01"), "a\\tb\\x01");
    EXPECT_EQ(mdbf::messageText(std::string(200, 'y'), 10), std::string(10, 'y') + "\xe2\x80\xa6");
    // Cutting never splits a UTF-8 character: "é" is two bytes.
    EXPECT_EQ(mdbf::messageText("\xc3\xa9\xc3\xa9", 3), "\xc3\xa9\xe2\x80\xa6");
    EXPECT_EQ(mdbf::messageText("\xff"), "\\xff");
}

TEST_F(HostileInput, ReadErrorsAreReported)
{
    // The kernel refuses reads of unmapped addresses in /proc/self/mem (offset 0 is never mapped);
    // a stream would report a clean end of file and an empty text.
    expectErrorContaining([] { (void)mdbf::readBinaryFile("/proc/self/mem"); }, {"/proc/self/mem", "read error"});
    expectErrorContaining([&] { (void)mdbf::readBinaryFile(file("missing.txt")); }, {"missing.txt", "cannot open"});
}

}  // namespace
