// The factorization service and the document without a window: a layer's preview against the core
// factorizer run here, the decomposition read back from the on-disk cache by a fresh service, the
// method comparison against the core, Apply to Model with per-layer settings filling the document
// as one undoable step, and cancelling both (best iterate kept, document consistent).

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include <QDir>
#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QUndoStack>

#include "calibration_state.h"
#include "factorization_service.h"
#include "job_runner.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/eval/calibration.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "model_session.h"
#include "studio_document.h"
#include "studio_test_support.h"
#include "test_fixtures.h"
#include "widget_test_support.h"

namespace mdbf::studio {
namespace {

using mdbf::test::waitUntil;

const QString kQ = QStringLiteral("model.layers.1.self_attn.q_proj");
const QString kK = QStringLiteral("model.layers.1.self_attn.k_proj");
const QString kUp = QStringLiteral("model.layers.1.mlp.up_proj");
const QString kDown = QStringLiteral("model.layers.0.mlp.down_proj");

std::filesystem::path tinyLlama()
{
    const auto shared = mdbf::test::sharedFixtures() / "tiny-llama";
    return std::filesystem::exists(shared) ? shared : mdbf::test::demoModel();
}

using mdbf::test::settingsOf;

/// The document and the service on tiny-llama, as the main window wires them.
struct ServiceRig {
    JobRunner runner;
    StudioDocument document;
    FactorizationService service{&runner, &document};
    const widgets::LayerTreeModel& layers = *document.layers();

    ServiceRig() { document.setSession(ModelSession::load(tinyLlama())); }
    ~ServiceRig() { runner.shutdown(); }

    std::set<QString> configured() const
    {
        std::set<QString> out;
        for (const auto& [key, f] : document.configuration()) out.insert(key);
        return out;
    }
};

/// The core factorizer on the layer's stored weights, as the studio's jobs run it: an independent
/// path to the same result.
factor::FactorResult coreFactorization(const QString& layer, const FactorSettings& s)
{
    return mdbf::test::coreFactorization(tinyLlama(), layer.toStdString() + ".weight", s);
}

TEST(StudioDocument, CalibrationIsTheDocumentsAndANewModelDropsIt)
{
    StudioDocument doc;
    QSignalSpy changed(&doc, &StudioDocument::calibrationChanged);
    auto calibration = std::make_shared<StudioCalibration>();
    calibration->tag = QStringLiteral("tag-1");
    doc.setCalibration(calibration);
    doc.setCalibration(calibration);  // the same: no signal
    EXPECT_EQ(changed.count(), 1);
    EXPECT_EQ(doc.calibrationTag(), QStringLiteral("tag-1"));
    doc.setSession(nullptr);
    EXPECT_EQ(doc.calibration(), nullptr);
    EXPECT_TRUE(doc.calibrationTag().isEmpty());
    EXPECT_EQ(changed.count(), 2);
}

TEST(FactorizationService, OpeningAModelFillsTheDocumentAndAFailureKeepsIt)
{
    JobRunner runner;
    StudioDocument document;
    FactorizationService service{&runner, &document};
    QSignalSpy opened(&service, &FactorizationService::modelOpened);
    QSignalSpy current(&document, &StudioDocument::currentLayerChanged);
    const QString path = QString::fromStdString(tinyLlama().string());
    ASSERT_NE(service.openModel(path), nullptr);
    ASSERT_TRUE(waitUntil([&] { return opened.count() == 1; }, 60000));
    ASSERT_NE(document.session(), nullptr);
    const io::Checkpoint checkpoint = io::Checkpoint::open(tinyLlama());
    const widgets::LayerTreeModel& layers = *document.layers();
    // Every projection the core plans is listed, in model order; the first one is the layer to inspect.
    QStringList projections;
    for (const std::string& name : pipeline::plannedLayerNames(document.session()->config()))
        projections << QString::fromStdString(name);
    EXPECT_EQ(layers.defaultLayerKeys(), projections);
    EXPECT_EQ(document.currentLayer(), projections.front());
    EXPECT_EQ(current.count(), 1);
    EXPECT_TRUE(document.configuration().empty());
    EXPECT_FALSE(document.isModified());
    // The norms arrive in the document's layer list, equal to the stored weights' Frobenius norms.
    ASSERT_TRUE(waitUntil([&] { return layers.tensorsWithoutNorm().isEmpty(); }, 60000));
    const QString key = layers.defaultLayerKeys().front();
    const RowMatrixF W = checkpoint.matrix(layers.layer(key)->tensor.toStdString());
    EXPECT_NEAR(*layers.norm(key), std::sqrt(W.cast<double>().squaredNorm()), 1e-9 * W.cast<double>().norm());

    // A folder that is not a model: the document keeps the model it had.
    QTemporaryDir empty;
    QSignalSpy failed(&service, &FactorizationService::modelOpenFailed);
    const auto before = document.session();
    service.openModel(empty.path());
    ASSERT_TRUE(waitUntil([&] { return failed.count() == 1; }, 60000));
    EXPECT_EQ(document.session(), before);
    EXPECT_EQ(document.currentLayer(), key);
    runner.shutdown();
}

TEST(FactorizationService, LayerPreviewEqualsTheCoreFactorization)
{
    ServiceRig rig;
    const FactorSettings s = settingsOf(factor::Method::Mdbf, 2, "1.25", 6);
    std::shared_ptr<const LayerFactorization> closed, final;
    std::vector<std::shared_ptr<const LayerFactorization>> previews;
    int iterations = 0;
    QObject::connect(&rig.service, &FactorizationService::layerPreviewReady, &rig.service,
                     [&](const QString& layer, const FactorSettings& settings, std::shared_ptr<const LayerFactorization> f) {
                         EXPECT_EQ(layer, kUp);
                         EXPECT_EQ(settings, s);
                         closed = f;
                         previews.push_back(f);
                     });
    QObject::connect(&rig.service, &FactorizationService::layerIteration, &rig.service,
                     [&](const QString&, int, double) { ++iterations; });
    QObject::connect(&rig.service, &FactorizationService::layerFactorized, &rig.service,
                     [&](const QString& layer, const FactorSettings& settings, std::shared_ptr<const LayerFactorization> f) {
                         EXPECT_EQ(layer, kUp);
                         EXPECT_EQ(settings, s);
                         final = f;
                     });
    ASSERT_NE(rig.service.factorizeLayer(kUp, s, QStringLiteral("test")), nullptr);
    ASSERT_TRUE(waitUntil([&] { return final != nullptr && !rig.service.isLayerBusy(); }, 60000));
    ASSERT_NE(closed, nullptr);
    EXPECT_FALSE(closed->refined);
    EXPECT_TRUE(final->refined && final->complete);
    EXPECT_GE(iterations, 1);

    // The same settings through the core factorizer: same k and l, same errors (1e-6 relative: both
    // runs use the same seed and threads, so any difference is float summation order at most).
    const factor::FactorResult ref = coreFactorization(kUp, s);
    const factor::FactorResult& r = *final->result;
    EXPECT_EQ(r.k, ref.k);
    EXPECT_EQ(r.l, ref.l);
    EXPECT_EQ(r.iterations, ref.iterations);
    EXPECT_NEAR(r.initialError, ref.initialError, 1e-6 * ref.initialError);
    EXPECT_NEAR(r.finalError, ref.finalError, 1e-6 * ref.finalError);
    EXPECT_NEAR(closed->result->finalError, ref.initialError, 1e-6 * ref.initialError);

    // The closed form showed twice: first with its error estimated from pipeline::kPreviewSampleRows of the
    // 352 rows and no spectra or residual yet, then exact with both; the same parameters both times.
    ASSERT_EQ(previews.size(), 2u);
    EXPECT_TRUE(previews[0]->estimated());
    EXPECT_EQ(previews[0]->result->errorSampleRows, pipeline::kPreviewSampleRows);
    EXPECT_EQ(previews[0]->residual, nullptr);
    EXPECT_EQ(previews[0]->spectra.sigmaF.size(), 0);
    EXPECT_GT(previews[1]->spectra.sigmaF.size(), 0);
    EXPECT_NEAR(previews[0]->result->finalError, ref.initialError, 0.05 * ref.initialError);
    EXPECT_FALSE(previews[1]->estimated());
    ASSERT_NE(previews[1]->residual, nullptr);
    EXPECT_EQ(previews[1]->result->paths[0].sa, previews[0]->result->paths[0].sa);
    EXPECT_EQ(previews[1]->result->paths[0].A, previews[0]->result->paths[0].A);
    ASSERT_NE(final->residual, nullptr);

    // Asked again, the result comes from the cache at once: no job.
    std::shared_ptr<const LayerFactorization> again;
    QObject::connect(&rig.service, &FactorizationService::layerPreviewReady, &rig.service,
                     [&](const QString&, const FactorSettings&, std::shared_ptr<const LayerFactorization> f) { again = f; });
    EXPECT_EQ(rig.service.factorizeLayer(kUp, s, QStringLiteral("test")), nullptr);
    EXPECT_EQ(again, final);
    // Previewing never changes the document.
    EXPECT_TRUE(rig.document.configuration().empty());
    EXPECT_FALSE(rig.document.isModified());
}

/// The closed form of `layer` previewed by a service of its own (fresh in-memory cache).
std::shared_ptr<const LayerFactorization> freshPreview(const QString& layer, const FactorSettings& s)
{
    ServiceRig rig;
    std::shared_ptr<const LayerFactorization> final;
    QObject::connect(&rig.service, &FactorizationService::layerFactorized, &rig.service,
                     [&](const QString&, const FactorSettings&, std::shared_ptr<const LayerFactorization> f) { final = f; });
    EXPECT_NE(rig.service.factorizeLayer(layer, s, QStringLiteral("test")), nullptr);
    EXPECT_TRUE(waitUntil([&] { return final != nullptr && !rig.service.isLayerBusy(); }, 60000));
    return final;
}

TEST(FactorizationService, FreshServiceReadsTheDecompositionFromTheDiskCache)
{
    // A folder of this test's own, so that the first preview is sure to compute.
    QTemporaryDir folder;
    ASSERT_TRUE(folder.isValid());
    const QByteArray previous = qgetenv("MDBF_CACHE_DIR");
    qputenv("MDBF_CACHE_DIR", folder.path().toUtf8());
    const FactorSettings s = settingsOf(factor::Method::Mdbf, 2, "1.5", 0);
    auto first = freshPreview(kK, s);
    const QStringList entries = QDir(folder.path()).entryList({QStringLiteral("*.svd")}, QDir::Files);
    auto second = freshPreview(kK, s);
    qputenv("MDBF_CACHE_DIR", previous);
    ASSERT_NE(first, nullptr);
    ASSERT_NE(second, nullptr);
    EXPECT_FALSE(first->decompositionCached);
    EXPECT_EQ(entries.size(), 1);
    EXPECT_TRUE(second->decompositionCached);
    // The stored decomposition is the computed one: the same closed form to the last bit.
    EXPECT_EQ(second->result->k, first->result->k);
    EXPECT_EQ(second->result->finalError, first->result->finalError);
    EXPECT_TRUE(*second->residual == *first->residual);
}

TEST(FactorizationService, ComparisonReportsEachFeasibleConfigurationAsTheCoreComputesIt)
{
    ServiceRig rig;
    ComparisonRequest request;
    request.budgets = {factor::Bpw::parse("1.5"), factor::Bpw::parse("2")};
    request.ranks = {2};
    int runs = -1, done = -1;
    QStringList skipped;
    QString error = QStringLiteral("not ended");
    std::vector<std::shared_ptr<const LayerFactorization>> results;
    QObject::connect(&rig.service, &FactorizationService::comparisonStarted, &rig.service,
                     [&](const QString& layer, int n, const QStringList& s) {
                         EXPECT_EQ(layer, kK);
                         runs = n;
                         skipped = s;
                     });
    QObject::connect(&rig.service, &FactorizationService::comparisonResult, &rig.service,
                     [&](const QString&, std::shared_ptr<const LayerFactorization> f) { results.push_back(f); });
    QObject::connect(&rig.service, &FactorizationService::comparisonEnded, &rig.service,
                     [&](const QString&, int d, int, const QStringList&, const QString& e) {
                         done = d;
                         error = e;
                     });
    const FactorSettings base = settingsOf(factor::Method::Mdbf, 4, "1", 50);
    ASSERT_NE(rig.service.compareMethods(kK, base, request, QStringLiteral("test")), nullptr);
    ASSERT_TRUE(waitUntil([&] { return done >= 0; }, 60000));
    EXPECT_FALSE(rig.service.isComparing());
    EXPECT_TRUE(error.isEmpty()) << error.toStdString();
    // Two budgets × (DBF, MDBF l=2): each is computed or named as infeasible.
    EXPECT_EQ(runs + skipped.size(), 4);
    EXPECT_GE(runs, 1);
    EXPECT_EQ(done, runs);
    ASSERT_EQ(static_cast<int>(results.size()), runs);
    for (const auto& f : results) {
        const FactorSettings& s = f->settings;
        EXPECT_EQ(s.iterations, 0);  // closed form: the request does not refine
        EXPECT_EQ(s.l, s.method == factor::Method::Dbf ? 1 : 2);
        EXPECT_FALSE(f->refined);
        const factor::FactorResult ref = coreFactorization(kK, s);
        EXPECT_EQ(f->result->k, ref.k);
        EXPECT_NEAR(f->result->finalError, ref.initialError, 1e-6 * ref.initialError);
        // Kept in the result cache, so the preview of these settings shows at once.
        EXPECT_EQ(rig.service.cache().result(kK, s.closedFormKey()), f);
    }
    EXPECT_TRUE(rig.document.configuration().empty());
}

TEST(FactorizationService, CancelledPreviewReportsItsBestIterate)
{
    ServiceRig rig;
    const FactorSettings s = settingsOf(factor::Method::Mdbf, 2, "1", 100000);
    int iterations = 0;
    std::shared_ptr<const LayerFactorization> final;
    QObject::connect(&rig.service, &FactorizationService::layerIteration, &rig.service,
                     [&](const QString&, int, double) { ++iterations; });
    QObject::connect(&rig.service, &FactorizationService::layerFactorized, &rig.service,
                     [&](const QString&, const FactorSettings&, std::shared_ptr<const LayerFactorization> f) { final = f; });
    ASSERT_NE(rig.service.factorizeLayer(kQ, s, QStringLiteral("test")), nullptr);
    ASSERT_TRUE(waitUntil([&] { return iterations >= 2; }, 60000));
    rig.service.cancelLayer();
    ASSERT_TRUE(waitUntil([&] { return final != nullptr && !rig.service.isLayerBusy(); }, 60000));
    EXPECT_FALSE(final->complete);
    EXPECT_EQ(final->result->termination, factor::Termination::Cancelled);
    EXPECT_GE(final->result->iterations, 1);
    EXPECT_LT(final->result->iterations, s.iterations);
    EXPECT_LE(final->result->finalError, final->result->initialError);
    // An incomplete refinement is not what the settings ask for: it is not cached as theirs.
    EXPECT_EQ(rig.service.cache().result(kQ, s.refinedKey()), nullptr);
}

// A second preview of the same layer at another budget starts from the first refinement (warm
// start, docs/ALGORITHM.md §5.7) instead of the closed form, says so, and ends no worse than a cold
// preview with the same iterations (1e-4 absolute on the relative error).
TEST(FactorizationService, SecondBudgetOfALayerIsWarmStartedFromTheFirst)
{
    ServiceRig rig;
    const FactorSettings first = settingsOf(factor::Method::Mdbf, 2, "1.5", 8);
    const FactorSettings second = settingsOf(factor::Method::Mdbf, 2, "1.25", 8);
    std::shared_ptr<const LayerFactorization> final;
    int previews = 0;
    QObject::connect(&rig.service, &FactorizationService::layerPreviewReady, &rig.service,
                     [&](const QString&, const FactorSettings&, std::shared_ptr<const LayerFactorization>) { ++previews; });
    QObject::connect(&rig.service, &FactorizationService::layerFactorized, &rig.service,
                     [&](const QString&, const FactorSettings&, std::shared_ptr<const LayerFactorization> f) { final = f; });
    ASSERT_NE(rig.service.factorizeLayer(kUp, first, QStringLiteral("test")), nullptr);
    ASSERT_TRUE(waitUntil([&] { return final != nullptr && !rig.service.isLayerBusy(); }, 60000));
    const auto source = final;
    EXPECT_FALSE(source->warmFrom);  // nothing was kept to start from
    EXPECT_EQ(FactorizationService::startText(*source), QStringLiteral("closed form"));
    EXPECT_EQ(previews, 2);  // the closed form, estimated and then exact

    final.reset();
    ASSERT_NE(rig.service.factorizeLayer(kUp, second, QStringLiteral("test")), nullptr);
    ASSERT_TRUE(waitUntil([&] { return final != nullptr && !rig.service.isLayerBusy(); }, 60000));
    const auto warm = final;
    EXPECT_EQ(previews, 2);  // no closed form on the way
    ASSERT_TRUE(warm->warmFrom);
    EXPECT_EQ(*warm->warmFrom, first);
    EXPECT_EQ(FactorizationService::startText(*warm), QStringLiteral("warm start from 1.50 bpw, l = 2"));
    EXPECT_TRUE(warm->refined && warm->complete);
    EXPECT_EQ(warm->settings, second);
    EXPECT_EQ(rig.service.cache().result(kUp, second.refinedKey()), warm);

    // The same settings in a service that has nothing to start from: the cold preview.
    const auto cold = freshPreview(kUp, second);
    ASSERT_NE(cold, nullptr);
    EXPECT_FALSE(cold->warmFrom);
    const factor::FactorResult& w = *warm->result;
    const factor::FactorResult& c = *cold->result;
    EXPECT_EQ(w.k, c.k);
    EXPECT_LT(w.k, source->result->k);
    EXPECT_EQ(w.iterations, c.iterations);
    // The warm start is not the closed form (their errors differ by far more than float noise), and
    // after the same iterations it is at least as good.
    EXPECT_GT(std::abs(w.initialError - c.initialError), 1e-4);
    EXPECT_LE(w.finalError, c.finalError + 1e-4);
    std::printf("%s 1.5 -> 1.25 bpw, T=%d: start cold %.5f warm %.5f; final cold %.5f warm %.5f; "
                "%.3f s cold, %.3f s warm\n",
                kUp.toStdString().c_str(), second.iterations, c.initialError, w.initialError, c.finalError,
                w.finalError, c.seconds, w.seconds);
}

TEST(FactorizationService, ApplyFillsTheDocumentWithTheRequestedSettingsAsOneStep)
{
    ServiceRig rig;
    // l = 4 at 1.5 bpw cannot pay for k ≥ 4 on the 64×128 k projection: it stays dense.
    const std::map<QString, FactorSettings> wanted = {
        {kQ, settingsOf(factor::Method::Dbf, 1, "1.5", 0)},
        {kUp, settingsOf(factor::Method::Mdbf, 2, "1", 3)},
        {kDown, settingsOf(factor::Method::Mdbf, 4, "2", 0)},
        {kK, settingsOf(factor::Method::Mdbf, 4, "1.5", 0)},
    };
    std::vector<FactorizationService::LayerRequest> requests;
    for (const auto& [layer, s] : wanted) requests.push_back({layer, s});
    std::map<QString, FactorSettings> reported;
    QSignalSpy dense(&rig.service, &FactorizationService::applyLayerKeptDense);
    QSignalSpy ended(&rig.service, &FactorizationService::applyEnded);
    QObject::connect(&rig.service, &FactorizationService::applyLayerDone, &rig.service,
                     [&](const QString& layer, const FactorSettings& s, std::shared_ptr<const LayerFactorization>) {
                         reported[layer] = s;
                     });
    ASSERT_TRUE(rig.service.applyToModel(requests, QStringLiteral("test settings"))) << rig.service.refusalText().toStdString();
    EXPECT_FALSE(rig.service.applyToModel(requests, QStringLiteral("again")));  // one at a time
    ASSERT_TRUE(waitUntil([&] { return ended.count() == 1 && !rig.service.isApplying(); }, 120000));
    EXPECT_FALSE(ended.at(0).at(0).toBool());

    EXPECT_EQ(rig.configured(), (std::set<QString>{kQ, kUp, kDown}));
    ASSERT_EQ(dense.count(), 1);
    EXPECT_EQ(dense.at(0).at(0).toString(), kK);
    for (const QString& layer : {kQ, kUp, kDown}) {
        const auto f = rig.document.applied(layer);
        ASSERT_NE(f, nullptr) << layer.toStdString();
        const FactorSettings& s = wanted.at(layer);
        EXPECT_EQ(f->settings, s) << layer.toStdString();
        EXPECT_EQ(reported.at(layer), s);
        EXPECT_TRUE(f->complete);
        EXPECT_EQ(f->refined, s.iterations > 0);
        EXPECT_EQ(f->result->method, s.method);
        EXPECT_EQ(f->result->l, s.effectiveL());
        EXPECT_EQ(f->result->k, factor::computeBitBudget(f->result->n, f->result->m, s.bpw, s.method, s.effectiveL(), 1).k)
            << layer.toStdString();
    }
    const auto& report = rig.service.applyReport();
    ASSERT_TRUE(report.has_value());
    EXPECT_EQ(report->requested, 4);
    EXPECT_EQ(report->computed, 3);
    EXPECT_EQ(report->dense, 1);

    // One undoable step, undone back to the empty, unmodified document.
    EXPECT_EQ(rig.document.undoStack()->count(), 1);
    EXPECT_FALSE(rig.document.inBatch());
    EXPECT_TRUE(rig.document.isModified());
    rig.document.undoStack()->undo();
    EXPECT_TRUE(rig.document.configuration().empty());
    EXPECT_FALSE(rig.document.isModified());

    // Applied again, every layer comes from the cache: no job, the same results.
    rig.document.undoStack()->redo();
    const auto upResult = rig.document.applied(kUp);
    rig.document.revertLayers({});
    ASSERT_TRUE(rig.service.applyToModel(requests, QStringLiteral("test settings")));
    EXPECT_FALSE(rig.service.isApplying());
    EXPECT_EQ(ended.count(), 2);
    EXPECT_EQ(rig.service.applyReport()->cached, 3);
    EXPECT_EQ(rig.document.applied(kUp), upResult);

    // An applied layer keeps no residual until it is looked at: then it shows at once and one job
    // adds the residual, with the same parameters and errors.
    EXPECT_EQ(upResult->residual, nullptr);
    std::shared_ptr<const LayerFactorization> shown, completed;
    QObject::connect(&rig.service, &FactorizationService::layerPreviewReady, &rig.service,
                     [&](const QString&, const FactorSettings&, std::shared_ptr<const LayerFactorization> f) { shown = f; });
    QObject::connect(&rig.service, &FactorizationService::layerFactorized, &rig.service,
                     [&](const QString&, const FactorSettings&, std::shared_ptr<const LayerFactorization> f) { completed = f; });
    ASSERT_NE(rig.service.factorizeLayer(kUp, wanted.at(kUp), QStringLiteral("test")), nullptr);
    EXPECT_EQ(shown, upResult);
    ASSERT_TRUE(waitUntil([&] { return completed != nullptr && !rig.service.isLayerBusy(); }, 60000));
    ASSERT_NE(completed->residual, nullptr);
    EXPECT_EQ(completed->residual->rows(), upResult->result->n);
    EXPECT_EQ(completed->result->finalError, upResult->result->finalError);
    EXPECT_EQ(completed->result->paths[0].sb, upResult->result->paths[0].sb);
    EXPECT_EQ(rig.service.factorizeLayer(kUp, wanted.at(kUp), QStringLiteral("test")), nullptr);  // kept now
}

TEST(FactorizationService, CancelledApplyKeepsTheLayersDoneAndTheDocumentConsistent)
{
    ServiceRig rig;
    const FactorSettings s = settingsOf(factor::Method::Mdbf, 2, "1", 1500);
    std::set<QString> done;
    QObject::connect(&rig.service, &FactorizationService::applyLayerDone, &rig.service,
                     [&](const QString& layer, const FactorSettings&, std::shared_ptr<const LayerFactorization>) {
                         done.insert(layer);
                     });
    QSignalSpy ended(&rig.service, &FactorizationService::applyEnded);
    ASSERT_TRUE(rig.service.applyToModel(rig.layers.defaultLayerKeys(), s));
    ASSERT_TRUE(waitUntil([&] { return !done.empty(); }, 120000));
    rig.service.cancelApply();
    ASSERT_TRUE(waitUntil([&] { return ended.count() == 1; }, 60000));
    EXPECT_TRUE(ended.at(0).at(0).toBool());
    EXPECT_FALSE(rig.service.isApplying());
    EXPECT_EQ(rig.service.applyReport()->outcome, QStringLiteral("cancelled"));

    // Exactly the layers reported done, each the complete result of the settings.
    EXPECT_LT(done.size(), static_cast<std::size_t>(rig.layers.defaultLayerKeys().size()));
    EXPECT_EQ(rig.configured(), done);
    for (const auto& [key, f] : rig.document.configuration()) {
        EXPECT_TRUE(FactorizationService::satisfies(*f, s)) << key.toStdString();
        EXPECT_NE(f->result->termination, factor::Termination::Cancelled);
    }
    // The batch is closed: one step, and undo empties the configuration.
    EXPECT_FALSE(rig.document.inBatch());
    EXPECT_EQ(rig.document.undoStack()->count(), 1);
    rig.document.undoStack()->undo();
    EXPECT_TRUE(rig.document.configuration().empty());
    EXPECT_EQ(rig.runner.runningCount(), 0);
}

TEST(FactorizationService, PlanAtBudgetFillsTheConfigurationAsOneUndoableStep)
{
    ServiceRig rig;
    // A configuration before the plan: one layer the plan re-plans, applied and kept by undo.
    const FactorSettings before = settingsOf(factor::Method::Dbf, 1, "1.5", 0);
    ASSERT_TRUE(rig.service.applyToModel(QStringList{kQ}, before));
    ASSERT_TRUE(waitUntil([&] { return !rig.service.isApplying(); }, 60000));
    const auto previous = rig.document.configuration();
    ASSERT_EQ(previous.size(), 1u);
    const int steps = rig.document.undoStack()->count();

    pipeline::PlanOptions options;
    options.budget = factor::Bpw::parse("1.5");
    options.ls = {2};
    options.gridPoints = 3;
    options.trialIterations = 0;  // closed-form trials and results: the plan runs in about a second
    options.iterations = 0;
    std::shared_ptr<const pipeline::ModelPlan> plan;
    QObject::connect(&rig.service, &FactorizationService::planFinished, &rig.service,
                     [&](std::shared_ptr<const pipeline::ModelPlan> p) { plan = std::move(p); });
    QSignalSpy ended(&rig.service, &FactorizationService::applyEnded);
    QSignalSpy started(&rig.service, &FactorizationService::planStarted);
    ASSERT_TRUE(rig.service.planAtBudget(options)) << rig.service.refusalText().toStdString();
    EXPECT_TRUE(rig.service.isPlanning());
    EXPECT_EQ(started.count(), 1);
    ASSERT_TRUE(waitUntil([&] { return plan != nullptr && ended.count() == 1 && !rig.service.isApplying(); }, 120000));

    // The configuration is exactly the plan's layers, each with its format, l and k.
    std::set<QString> planned;
    for (const pipeline::PlannedLayer& layer : plan->layers) planned.insert(QString::fromStdString(layer.name));
    EXPECT_EQ(rig.configured(), planned);
    for (const pipeline::PlannedLayer& layer : plan->layers) {
        const auto f = rig.document.applied(QString::fromStdString(layer.name));
        ASSERT_NE(f, nullptr) << layer.name;
        EXPECT_EQ(f->settings.method, layer.choice.format.method) << layer.name;
        EXPECT_EQ(f->settings.effectiveL(), layer.choice.format.l) << layer.name;
        EXPECT_EQ(f->settings.bpw, layer.bpw) << layer.name;
        EXPECT_EQ(f->result->k, layer.choice.k) << layer.name;
    }
    // The model's accounting of the configuration is the plan's.
    const pipeline::ModelBits bits = accountConfiguration(rig.document.session()->checkpoint(), rig.document.configuration());
    EXPECT_DOUBLE_EQ(bits.factorizedBpw(), plan->bits.factorizedBpw());
    EXPECT_LE(bits.factorizedBpw(), 1.5);

    // One step, named after the budget; undo restores the configuration before the plan.
    ASSERT_EQ(rig.document.undoStack()->count(), steps + 1);
    EXPECT_EQ(rig.document.undoStack()->undoText(), QStringLiteral("Plan at 1.5 bpw"));
    rig.document.undoStack()->undo();
    EXPECT_EQ(rig.document.configuration(), previous);
}

TEST(FactorizationService, PlanAtBudgetWeighsOutputErrorsUnderTheDocumentsCalibration)
{
    ServiceRig rig;
    // A short calibration text (a few windows) keeps the test quick; the plan only needs some H.
    QTemporaryDir dir;
    const QString text = dir.filePath(QStringLiteral("calibration.txt"));
    QFile source(QString::fromStdString((mdbf::test::testData() / "eval-small.txt").string()));
    QFile target(text);
    ASSERT_TRUE(source.open(QIODevice::ReadOnly) && target.open(QIODevice::WriteOnly));
    target.write(source.read(600));
    target.close();
    eval::CalibrationOptions request;
    request.ctx = 64;
    request.gram = true;
    request.layers = pipeline::plannedLayerNames(rig.document.session()->config());
    const auto calibration =
        StudioCalibration::make(eval::calibrateModel(tinyLlama(), text.toStdString(), request), text);
    pipeline::PlanOptions options;
    options.budget = factor::Bpw::parse("1.25");
    options.methods = {factor::Method::Dbf};
    options.gridPoints = 3;
    options.trialIterations = 0;
    options.iterations = 0;

    // Without a calibration holding H, an activation-aware plan is refused and nothing runs.
    EXPECT_FALSE(rig.service.plansOnOutputs());
    pipeline::PlanOptions diag = options;
    diag.objective = factor::Objective::DiagonalWeighted;
    EXPECT_FALSE(rig.service.planAtBudget(diag));
    EXPECT_TRUE(rig.service.refusalText().contains(QStringLiteral("calibrat"))) << rig.service.refusalText().toStdString();
    EXPECT_FALSE(rig.service.isPlanning());

    // With one, the plan weighs each layer's output error under it (plain objective: the
    // decompositions are the shared plain ones, so the test stays fast).
    rig.document.setCalibration(calibration);
    EXPECT_TRUE(rig.service.plansOnOutputs());
    std::shared_ptr<const pipeline::ModelPlan> plan;
    QObject::connect(&rig.service, &FactorizationService::planFinished, &rig.service,
                     [&](std::shared_ptr<const pipeline::ModelPlan> p) { plan = std::move(p); });
    QSignalSpy ended(&rig.service, &FactorizationService::applyEnded);
    ASSERT_TRUE(rig.service.planAtBudget(options)) << rig.service.refusalText().toStdString();
    ASSERT_TRUE(waitUntil([&] { return plan != nullptr && ended.count() == 1 && !rig.service.isApplying(); }, 120000));
    EXPECT_TRUE(plan->outputError);

    // The core planner given the same statistics, as `mdbf plan --calib-text` gives them, chooses the same.
    pipeline::PlanOptions direct = options;
    for (const std::string& name : pipeline::plannedLayerNames(rig.document.session()->config()))
        direct.inputGrams.emplace(name, calibration->stats->layer(name).gram);
    const pipeline::ModelPlan expected =
        pipeline::planModel(rig.document.session()->config(), rig.document.session()->checkpoint(), direct);
    ASSERT_EQ(plan->layers.size(), expected.layers.size());
    for (std::size_t i = 0; i < expected.layers.size(); ++i) {
        EXPECT_EQ(plan->layers[i].choice.format, expected.layers[i].choice.format) << expected.layers[i].name;
        EXPECT_EQ(plan->layers[i].choice.k, expected.layers[i].choice.k) << expected.layers[i].name;
    }
    EXPECT_NEAR(plan->predictedCost, expected.predictedCost, 1e-6 * expected.predictedCost);
    // The configuration is the plan's.
    for (const pipeline::PlannedLayer& layer : plan->layers) {
        const auto f = rig.document.applied(QString::fromStdString(layer.name));
        ASSERT_NE(f, nullptr) << layer.name;
        EXPECT_EQ(f->result->k, layer.choice.k) << layer.name;
    }
}

}  // namespace
}  // namespace mdbf::studio
