// mdbf-study-plot: renders the figures of an `mdbf study` run (study.json) as PNG files with the
// studio's own plot widgets, offscreen. Usage: mdbf-study-plot --study DIR/study.json [--out DIR]
//
//   ppl_vs_bpw_<model>.png            perplexity against model bpw, one curve per method / l / objective
//   layer_error_vs_l_<model>_<b>.png  relative error against l at budget b, one curve per layer shape

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <vector>
#include <string>

#include <QApplication>
#include <QDir>
#include <QFileInfo>
#include <QStringList>

#include "mdbf/base/error.h"
#include "mdbf/pipeline/study_file.h"
#include "mdbf/widgets/series_plot.h"

namespace {

using mdbf::pipeline::LayerViewCell;
using mdbf::pipeline::StudyPointResult;
using mdbf::pipeline::StudyResult;

QString q(const std::string& s) { return QString::fromStdString(s); }

/// "DBF", "MDBF l=4" or "planned": the curve's colour.
QString familyName(const StudyPointResult& p)
{
    if (p.point.planned) return QStringLiteral("planned");
    return p.point.method == mdbf::factor::Method::Dbf ? QStringLiteral("DBF") : QStringLiteral("MDBF l=%1").arg(p.point.l);
}

/// "diag seq", "T=260" or "" (plain, one calibration, the grid's iterations): the curve's line and marker.
QString variantName(const StudyPointResult& p, int gridIterations)
{
    QStringList parts;
    if (p.point.objective != mdbf::factor::Objective::Plain) parts << q(std::string(mdbf::factor::objectiveName(p.point.objective)));
    if (p.point.sequential) parts << QStringLiteral("seq");
    const int iterations = p.point.iterations;
    if (iterations != gridIterations) parts << QStringLiteral("T=%1").arg(iterations);
    return parts.join(QLatin1Char(' '));
}

int mostCommonIterations(const std::vector<StudyPointResult>& points)
{
    std::map<int, int> counts;
    for (const StudyPointResult& p : points) ++counts[p.point.iterations];
    int best = 0, bestCount = -1;
    for (const auto& [iterations, count] : counts) {
        if (count > bestCount) {
            best = iterations;
            bestCount = count;
        }
    }
    return best;
}

bool renderModel(const StudyResult& model, const QDir& out)
{
    const QString name = q(model.model);
    const std::vector<StudyPointResult>& points = model.points;
    bool ok = true;
    {
        mdbf::widgets::SeriesPlot plot;
        plot.resize(900, 560);
        plot.setTitle(QStringLiteral("%1 — perplexity on %2 (ctx %3) against model bits per weight")
                          .arg(name, q(model.evalText))
                          .arg(model.ctx));
        plot.setAxisLabels(QStringLiteral("model bits per weight (all weights, dense tensors at stored precision)"),
                           QStringLiteral("perplexity"));
        plot.setLogY(true);
        plot.setReference(model.originalPpl, QStringLiteral("original %1").arg(model.originalPpl, 0, 'f', 2));
        const int gridIterations = mostCommonIterations(points);
        QStringList variants{QString()};  // the plain grid is variant 0
        for (const StudyPointResult& p : points) {
            if (!std::isfinite(p.modelBpw) || !std::isfinite(p.ppl)) continue;
            const QString family = familyName(p), variant = variantName(p, gridIterations);
            if (!variants.contains(variant)) variants << variant;
            const QString curve = variant.isEmpty() ? family : family + QLatin1Char(' ') + variant;
            plot.setSeriesStyle(curve, family, static_cast<int>(variants.indexOf(variant)));
            plot.addPoint(curve, p.modelBpw, p.ppl);
        }
        ok = plot.exportPng(out.filePath(QStringLiteral("ppl_vs_bpw_%1.png").arg(name)), 900, 560, 1.0) && ok;
    }
    std::map<std::string, mdbf::widgets::SeriesPlot*> byBudget;
    std::vector<std::unique_ptr<mdbf::widgets::SeriesPlot>> plots;
    for (const LayerViewCell& c : model.layerView) {
        if (!std::isfinite(c.relError)) continue;  // infeasible at this budget and l
        const std::string bpw = c.bpw.text();
        auto& plot = byBudget[bpw];
        if (!plot) {
            plots.push_back(std::make_unique<mdbf::widgets::SeriesPlot>());
            plot = plots.back().get();
            plot->resize(900, 560);
            plot->setTitle(QStringLiteral("%1 — relative error against envelope rank l at %2 bpw, per layer shape")
                               .arg(name, q(bpw)));
            plot->setAxisLabels(QStringLiteral("envelope rank l (DBF drawn at l = 1)"),
                                QStringLiteral("relative error (plain)"));
        }
        const QString shape = QStringLiteral("%1×%2").arg(c.n).arg(c.m);
        const bool dbf = c.method == mdbf::factor::Method::Dbf;
        const QString curve = (dbf ? QStringLiteral("DBF ") : QStringLiteral("MDBF ")) + shape;
        plot->setSeriesStyle(curve, shape, dbf ? 1 : 0);  // a shape's DBF point in its MDBF curve's colour
        plot->addPoint(curve, c.l, c.relError);
    }
    for (const auto& [bpw, plot] : byBudget) {
        ok = plot->exportPng(out.filePath(QStringLiteral("layer_error_vs_l_%1_%2.png").arg(name, q(bpw))), 900, 560, 1.0) &&
             ok;
    }
    return ok;
}

}  // namespace

int main(int argc, char** argv)
{
    // Rendering needs no display.
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
    std::string studyFile;
    std::string outDir;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--study") == 0 && i + 1 < argc) {
            studyFile = argv[++i];
        } else if (std::strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            outDir = argv[++i];
        } else if (std::strcmp(argv[i], "--help") == 0) {
            std::printf("usage: mdbf-study-plot --study DIR/study.json [--out DIR]\n"
                        "Renders the figures of an `mdbf study` run as PNG files (default: beside study.json).\n");
            return 0;
        } else {
            std::fprintf(stderr, "mdbf-study-plot: unknown argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (studyFile.empty()) {
        std::fprintf(stderr, "mdbf-study-plot: --study FILE is required (see --help)\n");
        return 2;
    }
    QApplication app(argc, argv);
    try {
        const std::vector<StudyResult> study = mdbf::pipeline::readStudyFile(studyFile);
        const QDir out(q(outDir.empty() ? QFileInfo(q(studyFile)).absolutePath().toStdString() : outDir));
        if (!out.exists() && !QDir().mkpath(out.path())) {
            throw std::runtime_error("cannot create the output directory '" + out.path().toStdString() + "'");
        }
        for (const StudyResult& model : study) {
            if (!renderModel(model, out)) throw std::runtime_error("cannot write a PNG into " + out.path().toStdString());
        }
    } catch (const mdbf::Error& e) {
        std::fprintf(stderr, "mdbf-study-plot: %s\n", e.what());  // the message names the file
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mdbf-study-plot: '%s': %s\n", studyFile.c_str(), e.what());
        return 1;
    }
    return 0;
}
