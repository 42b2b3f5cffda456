// Package writer and reader: exact round trips, atomic replacement on success, nothing left behind
// on cancellation or when the writing process is killed, and readability by h5dump.

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <stop_token>
#include <thread>

#include <gtest/gtest.h>

#include "cli_runner.h"
#include "deploy_test_util.h"
#include "mdbf/base/error.h"
#include "mdbf/io/package.h"
#include "test_fixtures.h"

namespace mdbf {
namespace {

namespace fs = std::filesystem;
using test::directoryEntries;

TEST(Package, RoundTripReproducesEverythingExactly)
{
    test::TempDir dir;
    const io::Package pkg = test::syntheticPackage();
    io::writePackage(pkg, dir / "p.h5");
    EXPECT_EQ(directoryEntries(dir.path()), std::vector<std::string>{"p.h5"});  // no temporary left
    // Permissions of an ordinary new file (the temporary file's 0600 is not kept).
    const mode_t mask = umask(022);
    umask(mask);
    EXPECT_EQ(static_cast<unsigned>(fs::status(dir / "p.h5").permissions()) & 0777u, 0666u & ~mask);
    const io::Package back = io::readPackage(dir / "p.h5");
    test::expectSamePackage(back, pkg);
}

TEST(Package, WriteReadWriteGivesIdenticalDatasets)
{
    test::TempDir dir;
    io::writePackage(test::syntheticPackage(3), dir / "a.h5");
    const io::Package first = io::readPackage(dir / "a.h5");
    io::writePackage(first, dir / "b.h5");
    const io::Package second = io::readPackage(dir / "b.h5");
    test::expectSamePackage(second, first);
    // Without timestamps in the schema, the same content gives the same bytes.
    EXPECT_EQ(test::slurp(dir / "a.h5"), test::slurp(dir / "b.h5"));
}

TEST(Package, ReplacesAnExistingFileAndReportsProgress)
{
    test::TempDir dir;
    test::writeTextFile(dir / "p.h5", "old content");
    std::int64_t last = -1, total = 0;
    bool monotonic = true;
    RunContext ctx;
    ctx.progress = [&](const Progress& p) {
        EXPECT_EQ(p.stage, "writing");
        monotonic = monotonic && p.done >= last;
        last = p.done;
        total = p.total;
    };
    io::writePackage(test::syntheticPackage(), dir / "p.h5", ctx);
    EXPECT_TRUE(monotonic);
    EXPECT_GT(total, 0);
    EXPECT_EQ(last, total);
    EXPECT_NO_THROW(io::readPackage(dir / "p.h5"));
}

TEST(Package, RejectsInconsistentContentBeforeWriting)
{
    test::TempDir dir;
    auto expectRejected = [&](io::Package pkg) {
        EXPECT_THROW(io::writePackage(pkg, dir / "bad.h5"), InvalidArgument);
        EXPECT_TRUE(directoryEntries(dir.path()).empty());
    };
    io::Package a = test::syntheticPackage();
    a.dense[0].name = "a/b";
    expectRejected(a);
    io::Package b = test::syntheticPackage();
    b.dense[1].data.pop_back();
    expectRejected(b);
    io::Package c = test::syntheticPackage();
    c.layers[1].name = c.layers[0].name;
    expectRejected(c);
    io::Package d = test::syntheticPackage();
    d.layers[1].paths[1].B.resize(3, 2);
    expectRejected(d);
    io::Package e = test::syntheticPackage();
    e.layers[0].paths.clear();
    expectRejected(e);
}

TEST(Package, CancelledWriteLeavesNoFileAndKeepsThePreviousOne)
{
    test::TempDir dir;
    const io::Package pkg = test::syntheticPackage();
    for (const bool previous : {false, true}) {
        SCOPED_TRACE(previous);
        if (previous) test::writeTextFile(dir / "p.h5", "previous package");
        std::stop_source stop;
        RunContext ctx;
        ctx.stop = stop.get_token();
        int reports = 0;
        ctx.progress = [&](const Progress&) {
            if (++reports == 3) stop.request_stop();  // half-way through the datasets
        };
        EXPECT_THROW(io::writePackage(pkg, dir / "p.h5", ctx), Cancelled);
        EXPECT_GE(reports, 3);
        if (previous) {
            EXPECT_EQ(test::slurp(dir / "p.h5"), "previous package");
            EXPECT_EQ(directoryEntries(dir.path()), std::vector<std::string>{"p.h5"});
        } else {
            EXPECT_TRUE(directoryEntries(dir.path()).empty());
        }
    }
}

TEST(Package, MissingDirectoryIsAnIoError)
{
    EXPECT_THROW(io::writePackage(test::syntheticPackage(), "/nonexistent-dir-mdbf/p.h5"), IoError);
}

TEST(Package, KilledWriterLeavesNoFileAndKeepsThePreviousOne)
{
    test::TempDir dir;
    const fs::path dest = dir / "big.h5";
    test::writeTextFile(dest, "previous package");

    // A package with 64 MiB of dense data, written slowly so the kill lands mid-write.
    io::Package pkg = test::syntheticPackage();
    io::PackageTensor big;
    big.name = "model.embed_tokens.weight";
    big.dtype = io::DType::BF16;
    big.shape = {32768, 1024};
    big.data.assign(static_cast<std::size_t>(big.elementCount()) * 2, std::byte{0x3f});
    pkg.dense[0] = std::move(big);

    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        RunContext ctx;
        ctx.progress = [](const Progress&) { std::this_thread::sleep_for(std::chrono::milliseconds(100)); };
        try {
            io::writePackage(pkg, dest, ctx);
        } catch (...) {
            _exit(3);
        }
        _exit(0);
    }
    // Wait until the temporary file has data in it, then kill the writer without warning.
    bool sawTemporary = false;
    for (int i = 0; i < 400 && !sawTemporary; ++i) {
        for (const auto& e : fs::directory_iterator(dir.path())) {
            const std::string name = e.path().filename().string();
            if (name.rfind(".big.h5.tmp-", 0) == 0 && fs::file_size(e.path()) > (1u << 20)) sawTemporary = true;
        }
        if (!sawTemporary) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(sawTemporary) << "the writer never started its temporary file";
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer finished before it was killed";
    EXPECT_EQ(test::slurp(dest), "previous package");
    // Only the killed writer's hidden temporary may remain beside it.
    for (const std::string& name : directoryEntries(dir.path())) {
        EXPECT_TRUE(name == "big.h5" || name.rfind(".big.h5.tmp-", 0) == 0) << name;
    }
}

TEST(Package, H5dumpReadsTheHeader)
{
    if (std::system("command -v h5dump >/dev/null 2>&1") != 0) GTEST_SKIP() << "h5dump not installed (hdf5-tools)";
    test::TempDir dir;
    io::writePackage(test::syntheticPackage(), dir / "p.h5");
    const std::string out = (dir / "dump.txt").string();
    const std::string cmd = "h5dump -H " + test::shellQuote((dir / "p.h5").string()) + " >" + test::shellQuote(out) + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << test::slurp(out);
    const std::string dump = test::slurp(out);
    EXPECT_NE(dump.find("GROUP \"layers\""), std::string::npos);
    EXPECT_NE(dump.find("GROUP \"model.layers.0.self_attn.q_proj\""), std::string::npos);
    EXPECT_NE(dump.find("DATASET \"tokenizer.json\""), std::string::npos);
    EXPECT_NE(dump.find("ATTRIBUTE \"format_version\""), std::string::npos);
    EXPECT_NE(dump.find("H5T_STD_U64LE"), std::string::npos);

    // The root attributes' values, as any HDF5 tool sees them.
    const std::string attrCmd = "h5dump -a /format " + test::shellQuote((dir / "p.h5").string()) + " >" +
                                test::shellQuote(out) + " 2>&1";
    ASSERT_EQ(std::system(attrCmd.c_str()), 0) << test::slurp(out);
    EXPECT_NE(test::slurp(out).find("mdbf-package"), std::string::npos);
}

}  // namespace
}  // namespace mdbf
