// Replays the fuzz corpora through the fuzz entry points in every test pass (the sanitizer pass
// included, which needs no clang): each seed must be accepted, so the targets keep reaching past
// the first check, and each regression input (a past finding or a reported hostile file) must be
// refused with an mdbf::Error and nothing worse.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include <gtest/gtest.h>

#include "fuzz_entry_points.h"

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> filesIn(const fs::path& dir)
{
    std::vector<fs::path> files;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file() && it->path().filename().string().front() != '.') files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::vector<std::uint8_t> bytesOf(const fs::path& file)
{
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class FuzzCorpus : public ::testing::TestWithParam<std::string> {
protected:
    fs::path corpus(const char* kind) const { return fs::path(MDBF_FUZZ_CORPUS_DIR) / kind / GetParam(); }
};

TEST_P(FuzzCorpus, SeedsAreAccepted)
{
    const std::vector<fs::path> seeds = filesIn(corpus("corpus"));
    ASSERT_FALSE(seeds.empty()) << "no seeds in " << corpus("corpus");
    for (const fs::path& file : seeds) {
        bool accepted = false;
        EXPECT_NO_THROW(accepted = mdbf::fuzz::runFuzzInput(GetParam(), bytesOf(file))) << file;
        EXPECT_TRUE(accepted) << "seed refused: " << file;
    }
}

TEST_P(FuzzCorpus, FindingsAreRefusedCleanly)
{
    for (const fs::path& file : filesIn(corpus("regression"))) {
        bool accepted = true;
        EXPECT_NO_THROW(accepted = mdbf::fuzz::runFuzzInput(GetParam(), bytesOf(file))) << file;
        EXPECT_FALSE(accepted) << "hostile input accepted: " << file;
    }
}

std::vector<std::string> targetNames()
{
    std::vector<std::string> names;
    for (const auto& t : mdbf::fuzz::fuzzTargets()) names.emplace_back(t.name);
    return names;
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzCorpus, ::testing::ValuesIn(targetNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(FuzzTargets, UnknownTargetIsAProgrammingError)
{
    EXPECT_THROW((void)mdbf::fuzz::runFuzzInput("no-such-target", {}), std::invalid_argument);
}

}  // namespace
