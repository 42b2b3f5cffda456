// mdbf-studio: opens the model folder given on the command line, or the demo model shipped next to
// the executable. --screenshot FILE saves the window once the first layer is refined (and, with
// --apply-all, every layer is applied; with --text, the perplexities are measured), then exits.

#include <memory>

#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QAction>
#include <QTimer>

#include "mdbf/base/huge_pages.h"
#include "factorization_service.h"
#include "layer_browser_dock.h"
#include "layer_inspector_panel.h"
#include "main_window.h"
#include "model_commands.h"
#include "perplexity_panel.h"
#include "studio_settings.h"

int main(int argc, char** argv)
{
    mdbf::enableHugePages(argv);  // first: it may re-execute the program
    QApplication app(argc, argv);
    mdbf::studio::configureApplication();

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Compress and inspect language-model layers with DBF and MDBF."));
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument(QStringLiteral("model"), QStringLiteral("Hugging Face model folder (default: the demo model)"));
    const QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                        QStringLiteral("Save a PNG of the window after the first refinement, then quit."),
                                        QStringLiteral("file"));
    const QCommandLineOption layer(QStringLiteral("layer"), QStringLiteral("Layer to select first (e.g. model.layers.1.mlp.up_proj)."),
                                   QStringLiteral("name"));
    const QCommandLineOption tab(QStringLiteral("tab"), QStringLiteral("Inspector tab to show first (0-3)."), QStringLiteral("index"));
    const QCommandLineOption text(QStringLiteral("text"),
                                  QStringLiteral("Text file for the perplexity panel; with --screenshot, the original and "
                                                 "configured perplexities are evaluated before the picture is taken."),
                                  QStringLiteral("file"));
    const QCommandLineOption applyAll(QStringLiteral("apply-all"),
                                      QStringLiteral("Apply the inspector's settings to every layer once the model is open."));
    parser.addOption(applyAll);
    parser.addOption(text);
    parser.addOption(screenshot);
    parser.addOption(layer);
    parser.addOption(tab);
    parser.process(app);

    mdbf::studio::MainWindow window;
    window.show();
    const QStringList args = parser.positionalArguments();
    window.openModel(args.isEmpty() ? mdbf::studio::demoModelPath() : args.first());

    if (parser.isSet(text)) window.perplexityPanel()->setTextFile(parser.value(text));
    if (parser.isSet(layer) || parser.isSet(tab)) {
        QObject::connect(&window, &mdbf::studio::MainWindow::modelLoaded, &window, [&] {
            if (parser.isSet(layer)) window.layerBrowser()->selectLayer(parser.value(layer));
            if (parser.isSet(tab)) {
                const auto& tabs = window.inspector()->tabActions();
                const int i = parser.value(tab).toInt();
                if (i >= 0 && i < tabs.size()) tabs[i]->trigger();
            }
        });
    }
    if (parser.isSet(applyAll)) {
        QObject::connect(&window, &mdbf::studio::MainWindow::modelLoaded, &window,
                         [&window] { window.commands()->applySettingsToAllLayers(); });
    }
    if (parser.isSet(screenshot)) {
        const QString file = parser.value(screenshot);
        QObject::connect(&window, &mdbf::studio::MainWindow::modelLoadFailed, &app, [] { QCoreApplication::exit(1); });
        auto grab = [&window, file] {
            // Lets the queued replots land before grabbing.
            QTimer::singleShot(800, &window, [&window, file] {
                const bool ok = window.grab().save(file, "PNG");
                QCoreApplication::exit(ok ? 0 : 1);
            });
        };
        // The picture waits for every requested piece: the first refinement, the apply, the perplexities.
        auto* ppl = window.perplexityPanel();
        auto* service = window.factorizationService();
        const bool withPerplexity = parser.isSet(text);
        const bool withApply = parser.isSet(applyAll);
        auto refined = std::make_shared<bool>(false);
        auto applied = std::make_shared<bool>(!withApply);
        auto measureRequested = std::make_shared<bool>(false);
        auto advance = [ppl, grab, withPerplexity, refined, applied, measureRequested] {
            if (!*refined || !*applied) return;
            if (!withPerplexity) return grab();
            if (ppl->configuredPpl()) return grab();
            // The configured evaluation starts once the original one is done and the layers are in place.
            if (ppl->originalPpl() && !*measureRequested) {
                *measureRequested = true;
                ppl->evaluateConfiguration();
            }
        };
        if (withPerplexity) {
            QObject::connect(&window, &mdbf::studio::MainWindow::modelLoaded, ppl, [ppl] { ppl->evaluateOriginal(); });
            QObject::connect(ppl, &mdbf::studio::PerplexityPanel::evaluated, &window, [advance](bool, double) { advance(); });
            QObject::connect(ppl, &mdbf::studio::PerplexityPanel::evaluationFailed, &app, [] { QCoreApplication::exit(1); });
        }
        QObject::connect(window.inspector(), &mdbf::studio::LayerInspectorPanel::refinementFinished, &window,
                         [refined, advance] {
                             *refined = true;
                             advance();
                         });
        QObject::connect(service, &mdbf::studio::FactorizationService::applyEnded, &window, [applied, advance](bool) {
            *applied = true;
            advance();
        });
        QTimer::singleShot(300000, &app, [] { QCoreApplication::exit(2); });
    }
    return app.exec();
}
