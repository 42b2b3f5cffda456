// mdbf-study-plot: renders the figures of an `mdbf study` run (study.json) as PNG files with the
// studio's own plot widgets, offscreen. Usage: mdbf-study-plot --study DIR/study.json [--out DIR]
//
//   ppl_vs_bpw_<model>.png            perplexity against model bpw, one curve per method / l / objective
//   layer_error_vs_l_<model>_<b>.png  relative error against l at budget b, one curve per layer shape

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

#include <nlohmann/json.hpp>

#include "mdbf/base/json_text.h"
#include "mdbf/widgets/series_plot.h"

namespace {

using nlohmann::json;

QString q(const std::string& s) { return QString::fromStdString(s); }

/// "DBF" or "MDBF l=4": the curve's colour.
QString familyName(const json& p)
{
    return p.at("method").get<std::string>() == "dbf" ? QStringLiteral("DBF")
                                                       : QStringLiteral("MDBF l=%1").arg(p.at("l").get<int>());
}

/// "diag seq", "T=260" or "" (plain, one calibration, the grid's iterations): the curve's line and marker.
QString variantName(const json& p, int gridIterations)
{
    QStringList parts;
    const std::string objective = p.at("objective").get<std::string>();
    if (objective != "plain") parts << q(objective);
    if (p.at("sequential").get<bool>()) parts << QStringLiteral("seq");
    const int iterations = p.at("iterations").get<int>();
    if (iterations != gridIterations) parts << QStringLiteral("T=%1").arg(iterations);
    return parts.join(QLatin1Char(' '));
}

int mostCommonIterations(const json& points)
{
    std::map<int, int> counts;
    for (const json& p : points) ++counts[p.at("iterations").get<int>()];
    int best = 0, bestCount = -1;
    for (const auto& [iterations, count] : counts) {
        if (count > bestCount) {
            best = iterations;
            bestCount = count;
        }
    }
    return best;
}

bool renderModel(const json& model, const QDir& out)
{
    const QString name = q(model.at("model").get<std::string>());
    const json& points = model.at("points");
    bool ok = true;
    {
        mdbf::widgets::SeriesPlot plot;
        plot.resize(900, 560);
        plot.setTitle(QStringLiteral("%1 — perplexity on %2 (ctx %3) against model bits per weight")
                          .arg(name, q(model.at("eval_text").get<std::string>()))
                          .arg(model.at("ctx").get<int>()));
        plot.setAxisLabels(QStringLiteral("model bits per weight (all weights, dense tensors at stored precision)"),
                           QStringLiteral("perplexity"));
        plot.setLogY(true);
        plot.setReference(model.at("original_ppl").get<double>(),
                          QStringLiteral("original %1").arg(model.at("original_ppl").get<double>(), 0, 'f', 2));
        const int gridIterations = mostCommonIterations(points);
        QStringList variants{QString()};  // the plain grid is variant 0
        for (const json& p : points) {
            const QString family = familyName(p), variant = variantName(p, gridIterations);
            if (!variants.contains(variant)) variants << variant;
            const QString curve = variant.isEmpty() ? family : family + QLatin1Char(' ') + variant;
            plot.setSeriesStyle(curve, family, static_cast<int>(variants.indexOf(variant)));
            plot.addPoint(curve, p.at("model_bpw").get<double>(), p.at("ppl").get<double>());
        }
        ok = plot.exportPng(out.filePath(QStringLiteral("ppl_vs_bpw_%1.png").arg(name)), 900, 560, 1.0) && ok;
    }
    std::map<std::string, mdbf::widgets::SeriesPlot*> byBudget;
    std::vector<std::unique_ptr<mdbf::widgets::SeriesPlot>> plots;
    for (const json& c : model.at("layer_view")) {
        if (c.at("rel_error").is_null()) continue;  // infeasible at this budget and l
        const std::string bpw = c.at("bpw_requested").get<std::string>();
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
        const QString shape = QStringLiteral("%1×%2").arg(c.at("n").get<long long>()).arg(c.at("m").get<long long>());
        const bool dbf = c.at("method").get<std::string>() == "dbf";
        const QString curve = (dbf ? QStringLiteral("DBF ") : QStringLiteral("MDBF ")) + shape;
        plot->setSeriesStyle(curve, shape, dbf ? 1 : 0);  // a shape's DBF point in its MDBF curve's colour
        plot->addPoint(curve, c.at("l").get<int>(), c.at("rel_error").get<double>());
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
    json study;
    try {
        study = mdbf::readJsonFile(studyFile);
        if (study.value("format", "") != "mdbf-study") throw std::runtime_error("not an mdbf study (format field)");
        const QDir out(q(outDir.empty() ? QFileInfo(q(studyFile)).absolutePath().toStdString() : outDir));
        if (!out.exists() && !QDir().mkpath(out.path())) {
            throw std::runtime_error("cannot create the output directory '" + out.path().toStdString() + "'");
        }
        for (const json& model : study.at("models")) {
            if (!renderModel(model, out)) throw std::runtime_error("cannot write a PNG into " + out.path().toStdString());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mdbf-study-plot: '%s': %s\n", studyFile.c_str(), e.what());
        return 1;
    }
    return 0;
}
