// The studio meets the same hostile files as the CLI: each becomes an error dialog naming the file
// and the problem, the window stays usable, and a good model opens afterwards.

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <QMessageBox>
#include <QSignalSpy>
#include <QTemporaryDir>

#include <gtest/gtest.h>

#include "layer_browser_dock.h"
#include "main_window.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "model_session.h"
#include "studio_test_support.h"
#include "test_fixtures.h"
#include "widget_test_support.h"

namespace mdbf::studio {
namespace {

namespace fs = std::filesystem;
using mdbf::test::demoDir;
using mdbf::test::findErrorDialog;
using mdbf::test::waitUntil;

/// A copy of the demo model whose file `name` is replaced by what `edit` makes of it.
fs::path hostileCopy(const QTemporaryDir& root, const std::string& folder, const std::string& name,
                     const std::function<std::string(std::string)>& edit)
{
    const fs::path dir = fs::path(root.path().toStdString()) / folder;
    fs::create_directories(dir);
    for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"}) {
        fs::copy_file(mdbf::test::demoModel() / f, dir / f);
        fs::permissions(dir / f, fs::perms::owner_write, fs::perm_options::add);
    }
    std::ifstream in(dir / name, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << edit(std::move(bytes));
    return dir;
}

TEST(HostileFiles, EachBecomesAnErrorDialogAndTheStudioKeepsRunning)
{
    QTemporaryDir root;
    struct Case {
        fs::path dir;
        const char* mustMention;
    };
    const Case cases[] = {
        // An array nested 100,000 deep in config.json used to exhaust the stack.
        {hostileCopy(root, "deep-config", "config.json",
                     [](std::string s) {
                         s.insert(s.rfind('}'), ",\"x\":" + std::string(100000, '[') + std::string(100000, ']'));
                         return s;
                     }),
         "nested more than"},
        // Four bytes before the data region used to shift every tensor silently.
        {hostileCopy(root, "shifted-data", "model.safetensors",
                     [](std::string s) {
                         std::uint64_t header = 0;
                         for (int i = 7; i >= 0; --i) header = (header << 8) | static_cast<unsigned char>(s[i]);
                         s.insert(8 + header, 4, '\0');
                         return s;
                     }),
         "model.safetensors"},
    };
    MainWindow window;
    window.show();
    QSignalSpy failed(&window, &MainWindow::modelLoadFailed);
    int expectedFailures = 0;
    for (const Case& c : cases) {
        window.openModel(QString::fromStdString(c.dir.string()));
        ++expectedFailures;
        ASSERT_TRUE(waitUntil([&] { return failed.count() == expectedFailures; }, 60000)) << c.dir;
        EXPECT_TRUE(window.lastError().contains(QString::fromUtf8(c.mustMention))) << window.lastError().toStdString();
        // The dialog puts the folder above the core's message, which itself is one line.
        const QString message = window.lastError().section(QStringLiteral("\n\n"), 1);
        EXPECT_FALSE(message.isEmpty());
        EXPECT_FALSE(message.contains(QLatin1Char('\n'))) << "message is not one line: " << message.toStdString();
        QMessageBox* box = nullptr;
        ASSERT_TRUE(waitUntil([&] { return (box = findErrorDialog()) != nullptr; }, 5000));
        EXPECT_TRUE(box->text().contains(QString::fromUtf8(c.mustMention))) << box->text().toStdString();
        box->close();
        ASSERT_TRUE(waitUntil([] { return findErrorDialog() == nullptr; }, 5000));
        EXPECT_FALSE(window.session());
    }

    // A tokenizer of pre-tokenizer sequences nested 50,000 deep: the model opens, and the
    // tokenizer's problem is reported instead of crashing.
    std::string nested = R"({"type": "ByteLevel", "add_prefix_space": false})";
    for (int i = 0; i < 50000; ++i) nested = R"({"type": "Sequence", "pretokenizers": [)" + nested + "]}";
    const fs::path deepTokenizer = hostileCopy(root, "deep-tokenizer", "tokenizer.json", [&](std::string s) {
        const auto at = s.find("\"pre_tokenizer\"");
        const auto end = s.find("\"post_processor\"");
        if (at == std::string::npos || end == std::string::npos) return s;
        return s.substr(0, at) + "\"pre_tokenizer\": " + nested + ",\n  " + s.substr(end);
    });
    QSignalSpy loaded(&window, &MainWindow::modelLoaded);
    window.openModel(QString::fromStdString(deepTokenizer.string()));
    ASSERT_TRUE(waitUntil([&] { return loaded.count() == 1; }, 60000));
    ASSERT_TRUE(window.session());
    EXPECT_TRUE(window.session()->tokenizerError().contains(QStringLiteral("nested more than")))
        << window.session()->tokenizerError().toStdString();

    // The good model opens afterwards.
    window.openModel(demoDir());
    ASSERT_TRUE(waitUntil([&] { return loaded.count() == 2; }, 60000));
    EXPECT_EQ(window.layerBrowser()->model()->layerCount(), 30);
}

}  // namespace
}  // namespace mdbf::studio
