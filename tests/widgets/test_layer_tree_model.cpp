#include <gtest/gtest.h>

#include "mdbf/io/checkpoint.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "test_fixtures.h"

namespace mdbf::widgets {
namespace {

io::TensorInfo tensor(const std::string& name, std::vector<std::int64_t> shape)
{
    io::TensorInfo t;
    t.name = name;
    t.shape = std::move(shape);
    t.dtype = io::DType::BF16;
    return t;
}

TEST(LayerTreeModel, GroupsTheDemoModel)
{
    const auto checkpoint = io::Checkpoint::open(mdbf::test::demoModel());
    const auto groups = groupLayers(checkpoint.tensors(), true);
    ASSERT_EQ(groups.size(), 6u);  // embeddings, 4 blocks, head
    EXPECT_EQ(groups.front().label, QStringLiteral("embeddings"));
    EXPECT_EQ(groups.back().label, QStringLiteral("head"));
    const QStringList expected = {QStringLiteral("q_proj"),    QStringLiteral("k_proj"), QStringLiteral("v_proj"),
                                  QStringLiteral("o_proj"),    QStringLiteral("gate_proj"), QStringLiteral("up_proj"),
                                  QStringLiteral("down_proj")};
    for (int b = 0; b < 4; ++b) {
        const auto& g = groups[static_cast<std::size_t>(b) + 1];
        EXPECT_EQ(g.label, QStringLiteral("block %1").arg(b));
        ASSERT_EQ(g.layers.size(), 7u);
        for (int i = 0; i < 7; ++i) {
            EXPECT_EQ(g.layers[static_cast<std::size_t>(i)].label, expected[i]);
            EXPECT_TRUE(g.layers[static_cast<std::size_t>(i)].factorizable);
            const auto& info = checkpoint.info(g.layers[static_cast<std::size_t>(i)].tensor.toStdString());
            EXPECT_EQ(g.layers[static_cast<std::size_t>(i)].rows, info.shape[0]);
            EXPECT_EQ(g.layers[static_cast<std::size_t>(i)].cols, info.shape[1]);
        }
    }
    // tie_word_embeddings: the head reads the embedding tensor under its own layer name.
    ASSERT_EQ(groups.back().layers.size(), 1u);
    EXPECT_EQ(groups.back().layers[0].key, QStringLiteral("lm_head"));
    EXPECT_EQ(groups.back().layers[0].tensor, QStringLiteral("model.embed_tokens.weight"));
    EXPECT_FALSE(groups.front().layers[0].factorizable);
}

TEST(LayerTreeModel, UntiedHeadAndUnknownTensors)
{
    std::vector<io::TensorInfo> tensors = {tensor("lm_head.weight", {50, 8}),
                                           tensor("model.embed_tokens.weight", {50, 8}),
                                           tensor("model.layers.10.mlp.down_proj.weight", {8, 20}),
                                           tensor("model.layers.2.self_attn.q_proj.weight", {8, 8}),
                                           tensor("model.layers.2.self_attn.q_proj.bias", {8}),
                                           tensor("model.layers.2.extra.weight", {3, 3}),
                                           tensor("vision.proj.weight", {4, 4})};
    const auto groups = groupLayers(tensors, false);
    ASSERT_EQ(groups.size(), 5u);
    EXPECT_EQ(groups[1].label, QStringLiteral("block 2"));  // numeric, not lexicographic, block order
    EXPECT_EQ(groups[2].label, QStringLiteral("block 10"));
    ASSERT_EQ(groups[1].layers.size(), 1u);  // the bias is 1-D and left out
    EXPECT_EQ(groups[1].layers[0].label, QStringLiteral("q_proj"));
    EXPECT_TRUE(groups[1].layers[0].factorizable);
    EXPECT_TRUE(groups[1].layers[0].factorizedByDefault);
    EXPECT_EQ(groups[3].layers[0].tensor, QStringLiteral("lm_head.weight"));
    EXPECT_TRUE(groups[3].layers[0].factorizable);
    EXPECT_FALSE(groups[3].layers[0].factorizedByDefault);  // the head stays dense unless chosen
    // A 2-D tensor the architecture table does not know is listed but never offered for factorization,
    // even inside a block.
    EXPECT_EQ(groups[4].label, QStringLiteral("other"));
    ASSERT_EQ(groups[4].layers.size(), 2u);
    EXPECT_EQ(groups[4].layers[0].key, QStringLiteral("model.layers.2.extra"));
    EXPECT_FALSE(groups[4].layers[0].factorizable);
    EXPECT_FALSE(groups[4].layers[1].factorizable);
}

TEST(LayerTreeModel, ShowsNormsAndFactorizationsAndSortsWithinGroups)
{
    const auto checkpoint = io::Checkpoint::open(mdbf::test::demoModel());
    LayerTreeModel model;
    model.setGroups(groupLayers(checkpoint.tensors(), true));
    EXPECT_EQ(model.rowCount(), 6);
    EXPECT_EQ(model.layerCount(), 30);
    EXPECT_EQ(model.factorizableCount(), 29);
    const QString up = QStringLiteral("model.layers.0.mlp.up_proj");
    const QString down = QStringLiteral("model.layers.0.mlp.down_proj");
    const QModelIndex upIndex = model.indexOfLayer(up, LayerTreeModel::ColShape);
    ASSERT_TRUE(upIndex.isValid());
    EXPECT_EQ(model.parent(upIndex).row(), 1);
    EXPECT_EQ(upIndex.data().toString(), QStringLiteral("352 × 128"));

    model.setNorm(QStringLiteral("model.layers.0.mlp.up_proj.weight"), 12.5);
    EXPECT_EQ(model.indexOfLayer(up, LayerTreeModel::ColNorm).data().toString(), QStringLiteral("12.500"));
    LayerFactorSummary s{QStringLiteral("MDBF"), 2, 75, 0.998, 0.61, QStringLiteral("plain"), true};
    model.setFactorization(up, s);
    model.setFactorization(down, {QStringLiteral("DBF"), 1, 80, 1.0, 0.7, QStringLiteral("plain"), false});
    EXPECT_EQ(model.factorizedCount(), 2);
    EXPECT_EQ(model.indexOfLayer(up, LayerTreeModel::ColK).data().toLongLong(), 75);
    EXPECT_EQ(model.indexOfLayer(up, LayerTreeModel::ColError).data().toString(), QStringLiteral("0.6100"));

    LayerSortProxy proxy;
    proxy.setSourceModel(&model);
    proxy.sort(LayerTreeModel::ColError, Qt::DescendingOrder);
    // Groups keep their order; inside block 0 the factorized layers come first by error, the rest after.
    EXPECT_EQ(proxy.index(0, 0).data().toString(), QStringLiteral("embeddings"));
    EXPECT_EQ(proxy.index(1, 0).data().toString(), QStringLiteral("block 0"));
    const QModelIndex block0 = proxy.index(1, 0);
    EXPECT_EQ(proxy.index(0, 0, block0).data(LayerTreeModel::KeyRole).toString(), down);
    EXPECT_EQ(proxy.index(1, 0, block0).data(LayerTreeModel::KeyRole).toString(), up);
    proxy.sort(LayerTreeModel::ColError, Qt::AscendingOrder);
    EXPECT_EQ(proxy.index(0, 0, proxy.index(1, 0)).data(LayerTreeModel::KeyRole).toString(), up);
    EXPECT_EQ(proxy.index(1, 0, proxy.index(1, 0)).data(LayerTreeModel::KeyRole).toString(), down);
    EXPECT_EQ(proxy.index(5, 0).data().toString(), QStringLiteral("head"));

    proxy.setFilterFixedString(QStringLiteral("layers.3.mlp"));
    ASSERT_EQ(proxy.rowCount(), 1);
    EXPECT_EQ(proxy.rowCount(proxy.index(0, 0)), 3);

    model.clearFactorization(up);
    EXPECT_FALSE(model.factorization(up).has_value());
    EXPECT_TRUE(model.factorization(down).has_value());
}

}  // namespace
}  // namespace mdbf::widgets
