// The studio as a document: the document object alone (no window), then browsing, applying,
// undo/redo, the unsaved-changes questions and saving/reopening a configuration in the main window.

#include <gtest/gtest.h>

#include <QAction>
#include <QApplication>
#include <QMessageBox>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTreeView>
#include <QUndoStack>

#include "comparison_tab.h"
#include "configuration_files.h"
#include "factor_control_bar.h"
#include "layer_browser_dock.h"
#include "layer_inspector_panel.h"
#include "main_window.h"
#include "model_commands.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/widgets/heatmap_plot.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "mdbf/widgets/method_comparison_plot.h"
#include "factorization_service.h"
#include "model_apply_panel.h"
#include "studio_document.h"
#include "studio_test_support.h"
#include "widget_test_support.h"

namespace mdbf::studio {
namespace {

using mdbf::test::editSettings;
using mdbf::test::findAction;
using mdbf::test::openDemo;
using mdbf::test::waitUntil;

std::shared_ptr<const LayerFactorization> fakeResult(double bpw)
{
    auto f = std::make_shared<LayerFactorization>();
    f->settings.bpw = factor::Bpw::fromDouble(bpw);
    return f;
}

TEST(StudioDocument, ApplyUndoRedoRestoreTheExactResults)
{
    StudioDocument doc;
    QSignalSpy modified(&doc, &StudioDocument::modifiedChanged);
    const auto a = fakeResult(1.0), b = fakeResult(1.5);
    EXPECT_FALSE(doc.isModified());
    doc.applyLayer(QStringLiteral("q"), a);
    doc.applyLayer(QStringLiteral("q"), b);
    doc.applyLayer(QStringLiteral("q"), b);  // no change, no step
    EXPECT_EQ(doc.undoStack()->count(), 2);
    EXPECT_TRUE(doc.isModified());
    EXPECT_EQ(modified.count(), 1);

    doc.undoStack()->undo();
    EXPECT_EQ(doc.applied(QStringLiteral("q")), a);
    doc.undoStack()->undo();
    EXPECT_EQ(doc.applied(QStringLiteral("q")), nullptr);
    EXPECT_TRUE(doc.configuration().empty());
    EXPECT_FALSE(doc.isModified());  // back at the (empty) saved state
    doc.undoStack()->redo();
    doc.undoStack()->redo();
    EXPECT_EQ(doc.applied(QStringLiteral("q")), b);
}

TEST(StudioDocument, BatchIsOneStepAndSavedStateFollowsTheUndoStack)
{
    StudioDocument doc;
    QSignalSpy changed(&doc, &StudioDocument::layerChanged);
    const auto a = fakeResult(1.0), b = fakeResult(1.25), c = fakeResult(2.0);
    doc.applyLayer(QStringLiteral("x"), c);
    doc.markSaved(QStringLiteral("/tmp/cfg.json"));
    EXPECT_FALSE(doc.isModified());
    EXPECT_EQ(doc.filePath(), QStringLiteral("/tmp/cfg.json"));

    doc.beginBatch(QStringLiteral("apply"));
    doc.applyLayer(QStringLiteral("q"), a);
    doc.applyLayer(QStringLiteral("k"), b);
    doc.applyLayer(QStringLiteral("q"), b);
    doc.revertLayers({QStringLiteral("x")});
    doc.endBatch();
    EXPECT_EQ(doc.undoStack()->count(), 2);
    EXPECT_EQ(doc.undoStack()->undoText(), QStringLiteral("apply"));
    EXPECT_TRUE(doc.isModified());
    EXPECT_EQ(doc.configuration().size(), 2u);

    changed.clear();
    doc.undoStack()->undo();
    EXPECT_EQ(doc.configuration().size(), 1u);
    EXPECT_EQ(doc.applied(QStringLiteral("x")), c);
    EXPECT_FALSE(doc.isModified());
    EXPECT_GE(changed.count(), 3);  // q, k and x, each once

    doc.undoStack()->redo();
    EXPECT_EQ(doc.applied(QStringLiteral("q")), b);
    EXPECT_EQ(doc.applied(QStringLiteral("k")), b);
    EXPECT_EQ(doc.applied(QStringLiteral("x")), nullptr);

    doc.revertLayers({});
    EXPECT_TRUE(doc.configuration().empty());
    doc.undoStack()->undo();
    EXPECT_EQ(doc.configuration().size(), 2u);

    // A batch that changes nothing in the end adds no step.
    const int steps = doc.undoStack()->count();
    doc.beginBatch(QStringLiteral("nothing"));
    doc.applyLayer(QStringLiteral("z"), a);
    doc.revertLayers({QStringLiteral("z")});
    doc.endBatch();
    EXPECT_EQ(doc.undoStack()->count(), steps);
}

TEST(StudioDocument, NewSessionEmptiesTheConfigurationAndHistory)
{
    StudioDocument doc;
    doc.applyLayer(QStringLiteral("q"), fakeResult(1.0));
    QSignalSpy modified(&doc, &StudioDocument::modifiedChanged);
    doc.setSession(nullptr);
    EXPECT_TRUE(doc.configuration().empty());
    EXPECT_EQ(doc.undoStack()->count(), 0);
    EXPECT_FALSE(doc.isModified());
    ASSERT_EQ(modified.count(), 1);
    EXPECT_FALSE(modified.front().front().toBool());
}

/// Waits until the inspector shows the result of its controls' settings.
bool waitForPreview(LayerInspectorPanel* inspector)
{
    return waitUntil(
        [&] {
            const FactorSettings s = inspector->settings();
            return !inspector->isBusy() && inspector->current() && resultOf(*inspector->current(), s) &&
                   (inspector->current()->refined || s.iterations == 0);
        },
        60000);
}

void useClosedForm(MainWindow& window)
{
    editSettings(window.inspector(), [](FactorSettings& s) { s.iterations = 0; });
    ASSERT_TRUE(waitForPreview(window.inspector()));
}

using mdbf::test::findUnsavedDialog;

TEST(StudioDocumentWindow, BrowsingManyLayersLeavesTheConfigurationUnchanged)
{
    auto window = openDemo();
    useClosedForm(*window);
    for (int i = 0; i < 8; ++i) {
        window->layerBrowser()->stepLayer(+1);
        ASSERT_TRUE(waitForPreview(window->inspector())) << i;
        EXPECT_FALSE(window->inspector()->isShowingApplied());
        EXPECT_EQ(window->inspector()->stateText(), QStringLiteral("preview · not applied"));
    }
    editSettings(window->inspector(), [](FactorSettings& s) { s.bpw = factor::Bpw::fromDouble(1.5); });
    ASSERT_TRUE(waitForPreview(window->inspector()));
    EXPECT_TRUE(window->configuration().empty());
    EXPECT_FALSE(window->document()->isModified());
    EXPECT_FALSE(window->isWindowModified());
}

TEST(StudioDocumentWindow, ApplyToLayerThenUndoAndRedoRestoreExactSettings)
{
    auto window = openDemo();
    useClosedForm(*window);
    LayerInspectorPanel* inspector = window->inspector();
    const QString layer = inspector->layer().key;
    editSettings(inspector, [](FactorSettings& s) { s.bpw = factor::Bpw::fromDouble(1.5); });
    ASSERT_TRUE(waitForPreview(inspector));
    const auto preview = inspector->current();
    ASSERT_TRUE(inspector->applyAction()->isEnabled());
    inspector->applyAction()->trigger();
    ASSERT_EQ(window->configuration().size(), 1u);
    EXPECT_EQ(window->configuration().at(layer), preview);
    EXPECT_TRUE(inspector->isShowingApplied());
    EXPECT_TRUE(window->isWindowModified());
    ASSERT_TRUE(window->layerBrowser()->model()->factorization(layer).has_value());

    // A second setting on the same layer, applied, then undone: the first comes back exactly,
    // controls included.
    editSettings(inspector, [](FactorSettings& s) { s.bpw = factor::Bpw::fromDouble(2.0); });
    ASSERT_TRUE(waitForPreview(inspector));
    EXPECT_FALSE(inspector->isShowingApplied());
    inspector->applyAction()->trigger();
    const auto second = window->configuration().at(layer);
    EXPECT_EQ(second->settings.bpw, factor::Bpw::fromDouble(2.0));

    window->document()->undoStack()->undo();
    EXPECT_EQ(window->configuration().at(layer), preview);
    EXPECT_TRUE(resultOf(*preview, inspector->settings()));
    window->document()->undoStack()->undo();
    EXPECT_TRUE(window->configuration().empty());
    EXPECT_FALSE(window->layerBrowser()->model()->factorization(layer).has_value());
    EXPECT_FALSE(window->isWindowModified());
    window->document()->undoStack()->redo();
    window->document()->undoStack()->redo();
    EXPECT_EQ(window->configuration().at(layer), second);
}

TEST(StudioDocumentWindow, OpenAndQuitWithUnsavedChangesAskAndCancelKeepsEverything)
{
    auto window = openDemo();
    useClosedForm(*window);
    window->inspector()->applyAction()->trigger();
    ASSERT_EQ(window->configuration().size(), 1u);
    const auto session = window->session();

    window->openModel(mdbf::test::demoDir());
    QMessageBox* box = findUnsavedDialog();
    ASSERT_NE(box, nullptr);
    box->button(QMessageBox::Cancel)->click();
    QApplication::processEvents();
    EXPECT_EQ(window->session(), session);
    EXPECT_EQ(window->configuration().size(), 1u);

    EXPECT_FALSE(window->close());
    box = findUnsavedDialog();
    ASSERT_NE(box, nullptr);
    box->button(QMessageBox::Cancel)->click();
    QApplication::processEvents();
    EXPECT_TRUE(window->isVisible());
    EXPECT_EQ(window->configuration().size(), 1u);

    // Discard goes ahead: the model reopens with an empty configuration.
    QSignalSpy loaded(window.get(), &MainWindow::modelLoaded);
    window->openModel(mdbf::test::demoDir());
    box = findUnsavedDialog();
    ASSERT_NE(box, nullptr);
    box->button(QMessageBox::Discard)->click();
    ASSERT_TRUE(waitUntil([&] { return loaded.count() == 1; }, 60000));
    EXPECT_NE(window->session(), session);
    EXPECT_TRUE(window->configuration().empty());
    EXPECT_FALSE(window->isWindowModified());
}

TEST(StudioDocumentWindow, SavedConfigurationReopensIdentically)
{
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("config.json"));
    auto window = openDemo();
    useClosedForm(*window);
    // Two layers with different settings: one from the inspector, one from the Model panel's apply.
    editSettings(window->inspector(), [](FactorSettings& s) { s.bpw = factor::Bpw::fromDouble(1.5); });
    ASSERT_TRUE(waitForPreview(window->inspector()));
    window->inspector()->applyAction()->trigger();
    findAction(*window, QStringLiteral("Method &DBF"))->trigger();
    editSettings(window->inspector(), [](FactorSettings& s) { s.bpw = factor::Bpw::fromDouble(1.25); });
    const QStringList keys = window->layerBrowser()->model()->defaultLayerKeys();
    ASSERT_GE(keys.size(), 3);
    ASSERT_TRUE(window->commands()->applySettingsToLayers({keys[1], keys[2]}));
    ASSERT_TRUE(waitUntil([&] { return !window->factorizationService()->isApplying(); }, 60000));
    ASSERT_EQ(window->configuration().size(), 3u);
    ASSERT_TRUE(window->configurationFiles()->saveTo(path));
    EXPECT_FALSE(window->isWindowModified());
    EXPECT_EQ(window->document()->filePath(), path);

    auto reopened = openDemo();
    ASSERT_TRUE(reopened->configurationFiles()->load(path));
    ASSERT_TRUE(waitUntil([&] { return !reopened->factorizationService()->isApplying(); }, 60000));
    ASSERT_EQ(reopened->configuration().size(), window->configuration().size());
    for (const auto& [key, f] : window->configuration()) {
        const auto it = reopened->configuration().find(key);
        ASSERT_NE(it, reopened->configuration().end()) << key.toStdString();
        EXPECT_EQ(it->second->settings, f->settings) << key.toStdString();
        ASSERT_TRUE(it->second->result && f->result);
        EXPECT_EQ(it->second->result->k, f->result->k);
        EXPECT_DOUBLE_EQ(it->second->result->finalError, f->result->finalError) << key.toStdString();
    }
    // Loading counts as saved, and is one undoable step.
    EXPECT_FALSE(reopened->isWindowModified());
    EXPECT_EQ(reopened->document()->filePath(), path);
    reopened->document()->undoStack()->undo();
    EXPECT_TRUE(reopened->configuration().empty());

    // An invalid file is refused with one message naming it, and nothing changes.
    const QString bad = dir.filePath(QStringLiteral("bad.json"));
    QFile file(bad);
    ASSERT_TRUE(file.open(QIODevice::WriteOnly));
    file.write("{\"defaults\": {\"bpw\": \"lots\"}}");
    file.close();
    QSignalSpy errors(reopened.get(), &MainWindow::errorReported);
    EXPECT_FALSE(reopened->configurationFiles()->load(bad));
    ASSERT_EQ(errors.count(), 1);
    EXPECT_TRUE(errors.front().at(1).toString().contains(QStringLiteral("bad.json")));
    EXPECT_TRUE(reopened->configuration().empty());
}

TEST(StudioDocumentWindow, SortingKeepsEveryGroupOpen)
{
    auto window = openDemo();
    QTreeView* view = window->layerBrowser()->view();
    QAbstractItemModel* proxy = view->model();
    ASSERT_GE(proxy->rowCount(), 3);
    for (int r = 0; r < proxy->rowCount(); ++r) ASSERT_TRUE(view->isExpanded(proxy->index(r, 0))) << r;
    view->collapse(proxy->index(1, 0));
    const QString collapsed = proxy->index(1, 0).data().toString();
    for (int column : {widgets::LayerTreeModel::ColParams, widgets::LayerTreeModel::ColName}) {
        view->sortByColumn(column, Qt::DescendingOrder);
        for (int r = 0; r < proxy->rowCount(); ++r) {
            const QModelIndex group = proxy->index(r, 0);
            EXPECT_EQ(view->isExpanded(group), group.data().toString() != collapsed) << group.data().toString().toStdString();
        }
    }
}

TEST(FactorControlBar, SteppedBudgetIsTheDecimalShownAndDbfIsLOne)
{
    FactorControlBar bar;
    bar.setLayerShape(384, 384);
    QSignalSpy changed(&bar, &FactorControlBar::settingsChanged);
    const QList<QAction*>& actions = bar.editActions();
    ASSERT_EQ(actions.size(), 6);
    // More Bits three times from 1: the binary sum is 1.1500000000000001, the budget is 1.15.
    for (int i = 0; i < 3; ++i) actions[2]->trigger();
    EXPECT_EQ(bar.settings().bpw, factor::Bpw::parse("1.15"));
    EXPECT_GE(changed.count(), 3);
    actions[3]->trigger();  // Fewer Bits
    EXPECT_EQ(bar.settings().bpw, factor::Bpw::parse("1.1"));
    actions[0]->trigger();  // Method DBF: one envelope rank
    EXPECT_EQ(bar.settings().method, factor::Method::Dbf);
    EXPECT_EQ(bar.settings().l, 1);
    EXPECT_EQ(bar.settings().effectiveL(), 1);
    actions[1]->trigger();  // back to MDBF: the l it had
    EXPECT_EQ(bar.settings().l, 2);
}

TEST(ComparisonTab, ParsesItsFieldsIntoARequestAndNamesABadField)
{
    ComparisonTab tab;
    tab.setRequestText(QStringLiteral("1, 1.5,2"), QStringLiteral("2, 4, 2"), true);
    ComparisonRequest request;
    QString error;
    ASSERT_TRUE(tab.request(request, error)) << error.toStdString();
    EXPECT_EQ(request.budgets, (std::vector<factor::Bpw>{factor::Bpw::parse("1"), factor::Bpw::parse("1.5"),
                                                         factor::Bpw::parse("2")}));
    EXPECT_EQ(request.ranks, (std::vector<int>{2, 4}));  // a repeated rank counts once
    EXPECT_TRUE(request.refine);
    tab.setRequestText(QStringLiteral("1.5"), QStringLiteral("2, 0"), false);
    EXPECT_FALSE(tab.request(request, error));
    EXPECT_TRUE(error.contains(QStringLiteral("'0'"))) << error.toStdString();
    tab.setRequestText(QString(), QStringLiteral("2"), false);
    EXPECT_FALSE(tab.request(request, error));
    EXPECT_EQ(error, QStringLiteral("no budget given"));
}

TEST(StudioDocumentWindow, ComparisonShowsDbfAndBestMdbfErrorMapsOnOneScale)
{
    auto window = openDemo();
    useClosedForm(*window);
    LayerInspectorPanel* inspector = window->inspector();
    ComparisonTab* tab = inspector->comparisonTab();
    ComparisonRequest request;
    request.budgets = {factor::Bpw::parse("1.5"), factor::Bpw::parse("2")};
    request.ranks = {2, 4};
    std::vector<std::shared_ptr<const LayerFactorization>> results;
    QObject::connect(window->factorizationService(), &FactorizationService::comparisonResult, tab,
                     [&](const QString&, std::shared_ptr<const LayerFactorization> f) { results.push_back(std::move(f)); });
    QSignalSpy done(inspector, &LayerInspectorPanel::comparisonFinished);
    inspector->runComparison(request);
    ASSERT_TRUE(waitUntil([&] { return done.count() == 1; }, 120000));
    ASSERT_EQ(tab->mapBudgets().size(), 2u);
    tab->showMaps(factor::Bpw::parse("2"));
    const auto& layer = inspector->layer();
    EXPECT_EQ(tab->dbfMap()->matrixRows(), layer.rows);
    EXPECT_EQ(tab->mdbfMap()->matrixCols(), layer.cols);
    EXPECT_TRUE(tab->dbfMap()->title().startsWith(QStringLiteral("DBF")));
    EXPECT_TRUE(tab->mdbfMap()->title().startsWith(QStringLiteral("MDBF")));
    // One colour scale: the larger of the two maxima.
    const double shared = std::max(tab->dbfMap()->dataMaxAbs(), tab->mdbfMap()->dataMaxAbs());
    EXPECT_DOUBLE_EQ(tab->dbfMap()->colorRangeHalfWidth(), shared);
    EXPECT_DOUBLE_EQ(tab->mdbfMap()->colorRangeHalfWidth(), shared);
    // The MDBF map is the best rank at that budget: its error is the lowest of the MDBF results the
    // service reported for the 2 bpw budget.
    double best = 1e300;
    for (const auto& f : results)
        if (f->settings.method == factor::Method::Mdbf && f->settings.bpw == factor::Bpw::parse("2"))
            best = std::min(best, f->result->finalError);
    ASSERT_LT(best, 1e300);
    EXPECT_TRUE(tab->mdbfMap()->title().contains(QStringLiteral("error ") + QString::number(best, 'f', 4)))
        << tab->mdbfMap()->title().toStdString();
    // Running a comparison changes nothing in the configuration.
    EXPECT_TRUE(window->configuration().empty());
}

}  // namespace
}  // namespace mdbf::studio
