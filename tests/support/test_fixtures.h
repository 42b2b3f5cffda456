#pragma once
// Fixture locations come from compile definitions, never from the working directory.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace mdbf::test {

/// ../shared/fixtures beside the checkout (may not exist).
inline std::filesystem::path sharedFixtures() { return MDBF_SHARED_FIXTURES_DIR; }

/// True when the shared fixtures are present.
inline bool haveSharedFixtures() { return std::filesystem::exists(sharedFixtures() / "tiny-llama.reference.json"); }

/// The embedded demo model (resources/models/tiny-llama), always present.
inline std::filesystem::path demoModel() { return MDBF_DEMO_MODEL_DIR; }

/// The `mdbf` executable built with the tests.
inline std::filesystem::path cliPath() { return MDBF_CLI_PATH; }

/// Test data committed with the repository (tests/data).
inline std::filesystem::path testData() { return MDBF_TEST_DATA_DIR; }

/// Where a fixture model's files are. tiny-llama ships with the repository (demo model and
/// tests/data); small-llama and medium-llama are read from the shared fixtures.
struct ModelFixture {
    std::filesystem::path modelDir;
    std::filesystem::path reference;  ///< <model>.reference.json
    std::filesystem::path logits;     ///< <model>.logits32.f32
    std::filesystem::path evalSmall;  ///< eval-small.txt
    bool available = false;
};

inline ModelFixture modelFixture(const std::string& model)
{
    ModelFixture f;
    if (model == "tiny-llama") {
        f.modelDir = demoModel();
        f.reference = testData() / "tiny-llama" / "tiny-llama.reference.json";
        f.logits = testData() / "tiny-llama" / "tiny-llama.logits32.f32";
        f.evalSmall = testData() / "eval-small.txt";
    } else {
        f.modelDir = sharedFixtures() / model;
        f.reference = sharedFixtures() / (model + ".reference.json");
        f.logits = sharedFixtures() / (model + ".logits32.f32");
        f.evalSmall = sharedFixtures() / "eval-small.txt";
    }
    f.available = std::filesystem::exists(f.reference) && std::filesystem::exists(f.modelDir);
    return f;
}

/// The fixture's reference outputs (ModelFixture::reference) parsed.
inline nlohmann::json readReference(const ModelFixture& fixture)
{
    std::ifstream in(fixture.reference);
    return nlohmann::json::parse(in);
}

/// An eval-small.txt perplexity to check against the reference: fixture model and context length.
struct PerplexityCase {
    std::string model;
    int ctx;
};

/// The parameterized-test name of a case ("tinyllama_ctx128"). Cases on the shared fixture models
/// end in "_Slow": they take minutes under the sanitizers, and tiny-llama covers the same code there.
inline std::string perplexityCaseName(const PerplexityCase& c)
{
    std::string name = c.model + "_ctx" + std::to_string(c.ctx);
    std::erase(name, '-');
    if (c.model != "tiny-llama") name += "_Slow";
    return name;
}

/// Reads `<model>.reference.json` from the shared fixtures.
inline nlohmann::json referenceJson(const std::string& model)
{
    std::ifstream in(sharedFixtures() / (model + ".reference.json"));
    return nlohmann::json::parse(in);
}

/// The names of the entries of `dir`, sorted.
inline std::vector<std::string> directoryEntries(const std::filesystem::path& dir)
{
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

/// `s` single-quoted for /bin/sh.
inline std::string shellQuote(const std::string& s)
{
    std::string q = "'";
    for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

/// The whole content of a file (empty if it cannot be read).
inline std::string slurp(const std::filesystem::path& p)
{
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// Writes `text` to `path` byte for byte, replacing the file.
inline void writeTextFile(const std::filesystem::path& path, const std::string& text)
{
    std::ofstream(path, std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
}

/// A fresh, empty directory under the system temp dir, removed by the destructor.
class TempDir {
public:
    TempDir()
    {
        std::string pattern = (std::filesystem::temp_directory_path() / "mdbf-test-XXXXXX").string();
        m_path = mkdtemp(pattern.data());
    }
    ~TempDir()
    {
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return m_path; }
    std::filesystem::path operator/(const std::string& name) const { return m_path / name; }

private:
    std::filesystem::path m_path;
};

}  // namespace mdbf::test

/// Skips the current test when the fixture model is not available.
#define MDBF_REQUIRE_MODEL_FIXTURE(fixture, name)                                                      \
    do {                                                                                               \
        if (!(fixture).available)                                                                      \
            GTEST_SKIP() << "fixture model '" << (name) << "' not found at " << (fixture).modelDir      \
                         << " (clone the project with ../shared beside it to run this test)";          \
    } while (0)

/// Skips the current test with a reason when ../shared/fixtures is not beside the checkout.
#define MDBF_REQUIRE_SHARED_FIXTURES()                                                                \
    do {                                                                                               \
        if (!::mdbf::test::haveSharedFixtures())                                                       \
            GTEST_SKIP() << "shared fixtures not found at " << ::mdbf::test::sharedFixtures()          \
                         << " (clone the project with ../shared beside it to run this test)";          \
    } while (0)
