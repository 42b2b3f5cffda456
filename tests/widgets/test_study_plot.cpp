// SeriesPlot, and mdbf-study-plot rendering a study file written here by hand: the curves hold the
// points of the file, and the PNGs it writes are real images with something drawn in them.

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <QImage>
#include <QString>

#include "test_fixtures.h"
#include "mdbf/widgets/series_plot.h"
#include "widget_test_support.h"

namespace mdbf::widgets {
namespace {

TEST(SeriesPlot, CurvesHoldTheirPointsSortedAndSkipUnplottableOnes)
{
    SeriesPlot plot;
    plot.setLogY(true);
    plot.addPoint(QStringLiteral("MDBF l=2"), 1.5, 30.0);
    plot.addPoint(QStringLiteral("MDBF l=2"), 1.0, 80.0);
    plot.addPoint(QStringLiteral("DBF"), 1.0, 90.0);
    plot.addPoint(QStringLiteral("DBF"), 1.5, -1.0);  // not drawable on a log axis
    plot.addPoint(QStringLiteral("DBF"), std::nan(""), 5.0);
    ASSERT_EQ(plot.seriesCount(), 2);
    const auto mdbf = plot.points(QStringLiteral("MDBF l=2"));
    ASSERT_EQ(mdbf.size(), 2u);
    EXPECT_EQ(mdbf[0], QPointF(1.0, 80.0));
    EXPECT_EQ(mdbf[1], QPointF(1.5, 30.0));
    EXPECT_EQ(plot.points(QStringLiteral("DBF")).size(), 1u);
    EXPECT_EQ(plot.graphCount(), 2);
    EXPECT_EQ(plot.graph(0)->data()->size(), 2);
    EXPECT_EQ(plot.csv(), QStringLiteral("series,x,y\nMDBF l=2,1,80\nMDBF l=2,1.5,30\nDBF,1,90\n"));
    EXPECT_EQ(plot.yAxis->scaleType(), QCPAxis::stLogarithmic);
}

TEST(SeriesPlot, SeriesOfOneFamilyShareAColourAndVariantsDifferInLineAndMarker)
{
    SeriesPlot plot;
    plot.setSeriesStyle(QStringLiteral("MDBF l=2"), QStringLiteral("MDBF l=2"), 0);
    plot.setSeriesStyle(QStringLiteral("MDBF l=2 gram"), QStringLiteral("MDBF l=2"), 1);
    plot.setSeriesStyle(QStringLiteral("MDBF l=4"), QStringLiteral("MDBF l=4"), 0);
    plot.setSeriesStyle(QStringLiteral("DBF gram"), QStringLiteral("DBF"), 1);
    plot.addPoint(QStringLiteral("MDBF l=2 gram"), 1.0, 2.0);  // points keep the style
    ASSERT_EQ(plot.seriesCount(), 4);
    const QCPGraph* plain = plot.graph(0);
    const QCPGraph* gram = plot.graph(1);
    const QCPGraph* other = plot.graph(2);
    const QCPGraph* dbf = plot.graph(3);
    EXPECT_EQ(plain->pen().color(), gram->pen().color());
    EXPECT_NE(plain->pen().color(), other->pen().color());
    EXPECT_EQ(plain->pen().style(), Qt::SolidLine);
    EXPECT_NE(gram->pen().style(), Qt::SolidLine);
    EXPECT_EQ(other->pen().style(), Qt::SolidLine);
    EXPECT_NE(plain->scatterStyle().shape(), gram->scatterStyle().shape());
    EXPECT_EQ(gram->scatterStyle().shape(), dbf->scatterStyle().shape());
    EXPECT_EQ(dbf->pen().color(), QColor(30, 30, 30));
    EXPECT_EQ(plot.points(QStringLiteral("MDBF l=2 gram")).size(), 1u);
}

/// Number of pixels of an image that differ from its top-left (background) pixel.
int drawnPixels(const QImage& image)
{
    const QRgb background = image.pixel(0, 0);
    int count = 0;
    for (int y = 0; y < image.height(); ++y)
        for (int x = 0; x < image.width(); ++x) count += image.pixel(x, y) != background ? 1 : 0;
    return count;
}

TEST(StudyPlotTool, RendersEveryFigureOfAStudyFile)
{
    test::TempDir dir;
    const nlohmann::json point = {{"method", "mdbf"}, {"l", 2}, {"bpw_requested", "1"}, {"objective", "plain"},
                                  {"sequential", false}, {"iterations", 60}, {"model_bpw", 1.2}, {"ppl", 80.0},
                                  {"factorized_bpw", 1.0}, {"seconds", 2.0}, {"cached_layers", 0},
                                  {"from_cache", false}, {"layers", nlohmann::json::array()}};
    nlohmann::json dbf = point;
    dbf["method"] = "dbf";
    dbf["l"] = 1;
    dbf["ppl"] = 95.0;
    nlohmann::json high = point;
    high["model_bpw"] = 1.7;
    high["ppl"] = 40.0;
    const nlohmann::json cell = {{"layer", "model.layers.0.mlp.up_proj"}, {"n", 128}, {"m", 352}, {"method", "mdbf"},
                                 {"l", 2}, {"k", 30}, {"bpw", 0.99}, {"bpw_requested", "1"}, {"rel_error", 0.6}};
    nlohmann::json infeasible = cell;
    infeasible["l"] = 8;
    infeasible["rel_error"] = nullptr;
    const nlohmann::json study = {
        {"format", "mdbf-study"},
        {"version", 1},
        {"models",
         {{{"model", "m1"}, {"eval_text", "eval.txt"}, {"ctx", 256}, {"eval_tokens", 4096}, {"original_ppl", 30.0},
           {"original_bpw", 16.0}, {"cancelled", false}, {"points", {point, dbf, high}},
           {"layer_view", {cell, infeasible}}}}}};
    test::writeTextFile(dir / "study.json", study.dump());
    const std::string command = std::string("'") + MDBF_STUDY_PLOT_PATH + "' --study '" + (dir / "study.json").string() +
                                "' > /dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0);
    for (const char* file : {"ppl_vs_bpw_m1.png", "layer_error_vs_l_m1_1.png"}) {
        const QImage image(QString::fromStdString((dir / file).string()));
        ASSERT_FALSE(image.isNull()) << file;
        EXPECT_EQ(image.width(), 900);
        EXPECT_GT(drawnPixels(image), 5000) << file;
    }
    // --out names a folder that is created when missing; one under a regular file cannot be, and is refused.
    const auto plotInto = [&](const std::filesystem::path& out) {
        const std::string c = std::string("'") + MDBF_STUDY_PLOT_PATH + "' --study '" + (dir / "study.json").string() +
                              "' --out '" + out.string() + "' > /dev/null 2>&1";
        return std::system(c.c_str());
    };
    ASSERT_EQ(plotInto(dir / "new" / "plots"), 0);
    EXPECT_FALSE(QImage(QString::fromStdString((dir / "new" / "plots" / "ppl_vs_bpw_m1.png").string())).isNull());
    EXPECT_NE(plotInto(dir / "study.json" / "plots"), 0);
    // A file that is not a study is refused with a message and a non-zero status.
    test::writeTextFile(dir / "other.json", "{\"format\": \"something\"}");
    const std::string bad = std::string("'") + MDBF_STUDY_PLOT_PATH + "' --study '" + (dir / "other.json").string() +
                            "' > /dev/null 2>&1";
    EXPECT_NE(std::system(bad.c_str()), 0);
}

}  // namespace
}  // namespace mdbf::widgets
