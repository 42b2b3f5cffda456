// The layer store and the streamed package: a record round-trips through the bytes that travel
// between processes, the package written layer by layer from the store is the file writePackage
// makes of the whole package, an abandoned writer leaves nothing, and layer statistics survive
// their encoding.

#include <gtest/gtest.h>

#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/dist/task_queue.h"
#include "mdbf/io/model_config.h"
#include "mdbf/io/package.h"
#include "mdbf/pipeline/layer_store.h"
#include "mdbf/pipeline/quantize.h"
#include "test_fixtures.h"

namespace mdbf {
namespace {

namespace fs = std::filesystem;

factor::QuantConfig closedFormConfig()
{
    factor::LayerQuantSettings s;
    s.method = factor::Method::Mdbf;
    s.bpw = factor::Bpw::parse("1.25");
    s.l = 2;
    s.iterations = 0;
    return factor::QuantConfig::uniform(s);
}

void expectSameLayer(const io::PackageLayer& a, const io::PackageLayer& b)
{
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.bpw, b.bpw);
    EXPECT_EQ(a.relError, b.relError);
    ASSERT_EQ(a.paths.size(), b.paths.size());
    for (std::size_t p = 0; p < a.paths.size(); ++p) {
        EXPECT_TRUE(a.paths[p].sa.words() == b.paths[p].sa.words());
        EXPECT_TRUE(a.paths[p].sb.words() == b.paths[p].sb.words());
        EXPECT_TRUE(a.paths[p].A == b.paths[p].A);
        EXPECT_TRUE(a.paths[p].Qa == b.paths[p].Qa);
        EXPECT_TRUE(a.paths[p].Qb == b.paths[p].Qb);
        EXPECT_TRUE(a.paths[p].B == b.paths[p].B);
    }
}

TEST(LayerStore, StreamedPackageFromTheStoreIsTheWholePackageFile)
{
    const fs::path modelDir = test::demoModel();
    const io::ModelConfig config = io::ModelConfig::fromFile(modelDir / "config.json");
    const io::Checkpoint ckpt = io::Checkpoint::open(modelDir);
    test::TempDir dir;
    const pipeline::LayerStore store(dir / "work", "test prefix");
    pipeline::QuantizeOptions options;
    options.config = closedFormConfig();
    options.store = &store;
    const pipeline::QuantizeResult result = pipeline::quantizeCheckpoint(config, ckpt, options);
    io::writePackage(pipeline::makePackage(modelDir, ckpt, result, options.config), dir / "whole.h5");

    // Figures only, as a resumed or distributed run holds them; the layers come from the store.
    pipeline::QuantizeResult figures = result;
    int fetched = 0;
    for (pipeline::LayerQuantResult& layer : figures.layers) layer.layer.reset();
    const std::vector<pipeline::LayerPlan> plans = pipeline::planQuantization(options.config, config, ckpt);
    pipeline::writeQuantizedPackage(
        modelDir, ckpt, figures, options.config,
        [&](const pipeline::LayerQuantResult& r) {
            ++fetched;
            const std::optional<pipeline::LayerQuantResult> stored = store.load(r.name, plans.front().settings);
            EXPECT_TRUE(stored.has_value()) << r.name;
            return pipeline::packageLayerOf(*stored);
        },
        dir / "streamed.h5");
    EXPECT_EQ(fetched, 28);
    EXPECT_TRUE(readBinaryFile(dir / "streamed.h5") == readBinaryFile(dir / "whole.h5"));

    // A second run finds every layer in the store.
    const pipeline::QuantizeResult again = pipeline::quantizeCheckpoint(config, ckpt, options);
    for (const pipeline::LayerQuantResult& layer : again.layers) EXPECT_EQ(layer.cached, !layer.keptDense) << layer.name;
}

TEST(LayerStore, EncodedRecordRoundTripsThroughAnotherStore)
{
    const fs::path modelDir = test::demoModel();
    const io::ModelConfig config = io::ModelConfig::fromFile(modelDir / "config.json");
    const io::Checkpoint ckpt = io::Checkpoint::open(modelDir);
    const std::vector<pipeline::LayerPlan> plans = pipeline::planQuantization(closedFormConfig(), config, ckpt);
    const pipeline::LayerPlan& plan = plans.at(1);
    const pipeline::LayerQuantResult computed = pipeline::quantizeLayer(plan, ckpt, {}, {});
    test::TempDir dir;
    const pipeline::LayerStore sender(dir / "a", "prefix");
    const pipeline::LayerStore receiver(dir / "b", "prefix");
    const std::string bytes = sender.encode(computed, plan.settings);
    EXPECT_FALSE(fs::exists(dir / "a"));  // encoding stores nothing
    const pipeline::LayerQuantResult received = receiver.put(plan.name, plan.settings, bytes);
    EXPECT_TRUE(receiver.contains(plan.name, plan.settings));
    EXPECT_EQ(received.plainError, computed.plainError);
    EXPECT_EQ(received.iterations, computed.iterations);
    expectSameLayer(pipeline::packageLayerOf(received), pipeline::packageLayerOf(computed));

    // A record of other settings or another prefix is refused, and nothing is kept.
    factor::LayerQuantSettings other = plan.settings;
    other.l = 1;
    EXPECT_THROW(receiver.put(plan.name, other, bytes), FormatError);
    EXPECT_FALSE(receiver.contains(plan.name, other));
    const pipeline::LayerStore foreign(dir / "c", "another prefix");
    EXPECT_THROW(foreign.put(plan.name, plan.settings, bytes), FormatError);
    EXPECT_THROW(receiver.put(plan.name, plan.settings, bytes.substr(0, bytes.size() / 2)), FormatError);
}

TEST(PackageWriter, AbandonedWriterLeavesThePreviousFile)
{
    test::TempDir dir;
    const fs::path out = dir / "p.h5";
    test::writeTextFile(out, "previous");
    {
        io::Package header;
        header.configJson = "{}";
        header.tokenizerJson = "{}";
        header.quantConfigJson = "{}";
        io::PackageWriter writer(out, header, 4);
        const std::vector<std::int64_t> shape = {2};
        const std::vector<std::byte> data(4, std::byte{0});
        writer.addDense("t", io::DType::F16, shape, data);
        EXPECT_THROW(writer.addDense("t", io::DType::F16, shape, data), InvalidArgument);  // twice
        EXPECT_THROW(writer.addDense("u", io::DType::F32, shape, data), InvalidArgument);  // 4 bytes for 8
    }
    EXPECT_EQ(test::directoryEntries(dir.path()), std::vector<std::string>{"p.h5"});
    EXPECT_EQ(readBinaryFile(out), "previous");
}

TEST(LayerStatistics, EncodingRoundTripsAndRefusesDamage)
{
    pipeline::LayerStatistics s;
    s.channelWeights = VectorF::LinSpaced(7, 0.5f, 3.5f);
    s.inputGram = Eigen::MatrixXd::Random(5, 5);
    const std::string bytes = pipeline::encodeStatistics(s);
    const pipeline::LayerStatistics back = pipeline::decodeStatistics(bytes);
    EXPECT_TRUE(back.channelWeights == s.channelWeights);
    EXPECT_TRUE(back.inputGram == s.inputGram);
    EXPECT_EQ(back.cross.size(), 0);
    EXPECT_EQ(pipeline::decodeStatistics(pipeline::encodeStatistics({})).channelWeights.size(), 0);
    EXPECT_THROW(pipeline::decodeStatistics(bytes.substr(0, bytes.size() - 1)), FormatError);
    EXPECT_THROW(pipeline::decodeStatistics(bytes + "x"), FormatError);
}

TEST(TaskQueue, SingleProcessRunsEveryTaskInOrder)
{
    const std::unique_ptr<dist::TaskQueue> queue = dist::makeLocalTaskQueue();
    EXPECT_EQ(queue->size(), 1);
    EXPECT_EQ(queue->broadcast(7), 7);
    std::vector<int> order;
    queue->run({{3, "c"}, {1, "a"}, {2, "b"}}, [](const dist::Task& t) { return t.payload + "!"; },
               [&](int id, std::string result, int rank) {
                   EXPECT_EQ(rank, 0);
                   EXPECT_EQ(result.back(), '!');
                   order.push_back(id);
               },
               {});
    EXPECT_EQ(order, (std::vector<int>{3, 1, 2}));
    std::stop_source stop;
    stop.request_stop();
    RunContext ctx;
    ctx.stop = stop.get_token();
    EXPECT_THROW(queue->run({{0, ""}}, [](const dist::Task&) { return std::string(); }, {}, ctx), Cancelled);
}

}  // namespace
}  // namespace mdbf
