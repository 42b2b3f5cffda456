#pragma once
// Fixture locations come from compile definitions, never from the working directory.

#include <filesystem>
#include <fstream>
#include <string>

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

/// Reads `<model>.reference.json` from the shared fixtures.
inline nlohmann::json referenceJson(const std::string& model)
{
    std::ifstream in(sharedFixtures() / (model + ".reference.json"));
    return nlohmann::json::parse(in);
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

/// Skips the current test with a reason when ../shared/fixtures is not beside the checkout.
#define MDBF_REQUIRE_SHARED_FIXTURES()                                                                \
    do {                                                                                               \
        if (!::mdbf::test::haveSharedFixtures())                                                       \
            GTEST_SKIP() << "shared fixtures not found at " << ::mdbf::test::sharedFixtures()          \
                         << " (clone the project with ../shared beside it to run this test)";          \
    } while (0)
