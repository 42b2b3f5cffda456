// DecompositionCache: round trip, misses on any key change, corrupt or truncated entries ignored
// and replaced.

#include <gtest/gtest.h>

#include <fstream>

#include "random_matrix.h"
#include "test_fixtures.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/decomposition_cache.h"

namespace mdbf::factor {
namespace {

class DecompositionCacheTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_weights = m_dir / "model.safetensors";
        std::ofstream(m_weights) << "stand-in for a checkpoint file";
        m_key = DecompositionKey::forFile(m_weights, "model.layers.0.mlp.up_proj.weight", "plain");
        m_svd = LayerSvd::compute(test::gaussianMatrix(37, 53, 7u));
    }

    static void expectSame(const LayerSvd& a, const LayerSvd& b)
    {
        ASSERT_EQ(a.rows(), b.rows());
        ASSERT_EQ(a.cols(), b.cols());
        ASSERT_EQ(a.rank(), b.rank());
        EXPECT_EQ(a.singularValues(), b.singularValues());  // stored bit for bit
        EXPECT_EQ(a.u(), b.u());
        EXPECT_EQ(a.v(), b.v());
    }

    test::TempDir m_dir;
    std::filesystem::path m_weights;
    DecompositionKey m_key;
    LayerSvd m_svd;
};

TEST_F(DecompositionCacheTest, RoundTrip)
{
    const DecompositionCache cache(m_dir / "cache" / "nested");
    EXPECT_FALSE(cache.get(m_key).has_value());
    cache.put(m_key, m_svd);
    const std::optional<LayerSvd> back = cache.get(m_key);
    ASSERT_TRUE(back.has_value());
    expectSame(*back, m_svd);
    // Nothing but the entry is left in the folder (the temporary file was renamed).
    int files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(cache.folder())) {
        ++files;
        EXPECT_EQ(entry.path(), cache.entryPath(m_key));
    }
    EXPECT_EQ(files, 1);
}

TEST_F(DecompositionCacheTest, AnyKeyChangeMisses)
{
    const DecompositionCache cache(m_dir / "cache");
    cache.put(m_key, m_svd);
    std::vector<DecompositionKey> others(6, m_key);
    others[0].tensor = "model.layers.0.mlp.gate_proj.weight";
    others[1].objective = "diag";
    others[2].calibration = "calib-1";
    others[3].fileSize += 1;
    others[4].fileMtimeNs += 1;
    others[5].file += "x";
    for (const DecompositionKey& other : others) {
        EXPECT_NE(other.text(), m_key.text());
        EXPECT_FALSE(cache.get(other).has_value()) << other.text();
    }
    // Rewriting the checkpoint file changes its identity (size here), so the entry no longer applies.
    std::ofstream(m_weights, std::ios::app) << " and more";
    const DecompositionKey rewritten = DecompositionKey::forFile(m_weights, m_key.tensor, m_key.objective);
    EXPECT_FALSE(cache.get(rewritten).has_value());
    EXPECT_TRUE(cache.get(m_key).has_value());
}

TEST_F(DecompositionCacheTest, CorruptEntriesAreIgnoredAndReplaced)
{
    const DecompositionCache cache(m_dir / "cache");
    cache.put(m_key, m_svd);
    const std::filesystem::path entry = cache.entryPath(m_key);
    const std::string good = test::slurp(entry);

    // A flipped byte in the payload: checksum mismatch.
    std::string flipped = good;
    flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x10);
    std::ofstream(entry, std::ios::binary | std::ios::trunc) << flipped;
    EXPECT_FALSE(cache.get(m_key).has_value());

    // Truncated, empty, and a header claiming huge dimensions.
    std::ofstream(entry, std::ios::binary | std::ios::trunc) << good.substr(0, good.size() - 9);
    EXPECT_FALSE(cache.get(m_key).has_value());
    std::ofstream(entry, std::ios::binary | std::ios::trunc) << "";
    EXPECT_FALSE(cache.get(m_key).has_value());
    std::string huge = good;
    const std::size_t dimsAt = 16 + m_key.text().size();
    huge[dimsAt + 7] = 0x7f;
    std::ofstream(entry, std::ios::binary | std::ios::trunc) << huge;
    EXPECT_FALSE(cache.get(m_key).has_value());

    // The next put recomputes and replaces it.
    cache.put(m_key, m_svd);
    const std::optional<LayerSvd> back = cache.get(m_key);
    ASSERT_TRUE(back.has_value());
    expectSame(*back, m_svd);
}

TEST_F(DecompositionCacheTest, UnwritableFolderIsAnIoError)
{
    const std::filesystem::path blocker = m_dir / "file";
    std::ofstream(blocker) << "x";
    const DecompositionCache cache(blocker / "cache");
    EXPECT_THROW(cache.put(m_key, m_svd), IoError);
    EXPECT_FALSE(cache.get(m_key).has_value());
}

TEST(DecompositionKeyTest, MissingFileIsAnIoError)
{
    EXPECT_THROW(DecompositionKey::forFile("/nonexistent/model.safetensors", "t", "plain"), IoError);
}

}  // namespace
}  // namespace mdbf::factor
