#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include <QFile>
#include <QMenu>
#include <memory>
#include <QImage>
#include <QTemporaryDir>

#include "mdbf/widgets/error_curve_plot.h"
#include "mdbf/widgets/heatmap_plot.h"
#include "mdbf/widgets/histogram_plot.h"
#include "mdbf/widgets/method_comparison_plot.h"
#include "mdbf/widgets/perplexity_plot.h"
#include "mdbf/widgets/spectrum_plot.h"
#include "widget_test_support.h"

namespace mdbf::widgets {
namespace {

RowMatrixF randomMatrix(Eigen::Index rows, Eigen::Index cols, unsigned seed)
{
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    RowMatrixF m(rows, cols);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = dist(gen);
    return m;
}

TEST(HeatmapPlot, CellsEqualTheMatrixAtFullResolution)
{
    const RowMatrixF m = randomMatrix(37, 53, 1);
    HeatmapPlot plot;
    plot.setMatrix(m, QStringLiteral("W"));
    ASSERT_EQ(plot.poolFactor(), 1);
    QCPColorMapData* data = plot.colorMap()->data();
    ASSERT_EQ(data->keySize(), 53);
    ASSERT_EQ(data->valueSize(), 37);
    for (Eigen::Index r = 0; r < m.rows(); ++r)
        for (Eigen::Index c = 0; c < m.cols(); ++c)
            ASSERT_EQ(data->cell(static_cast<int>(c), static_cast<int>(r)), static_cast<double>(m(r, c)));
    // Cell centres sit on the matrix indices, so coordinate lookups hit the right entry.
    int key = -1, value = -1;
    data->coordToCell(17.0, 5.0, &key, &value);
    EXPECT_EQ(key, 17);
    EXPECT_EQ(value, 5);
    EXPECT_DOUBLE_EQ(plot.dataMaxAbs(), static_cast<double>(m.cwiseAbs().maxCoeff()));
    // The colour range is symmetric around zero.
    const QCPRange range = plot.colorMap()->dataRange();
    EXPECT_DOUBLE_EQ(range.lower, -range.upper);
    EXPECT_EQ(plot.csv().count(QLatin1Char('\n')), 37);
}

TEST(HeatmapPlot, LargeMatricesAreMaxAbsPooled)
{
    const RowMatrixF m = randomMatrix(1000, 1700, 2);
    HeatmapPlot plot;
    plot.setMatrix(m);
    const int f = plot.poolFactor();
    ASSERT_EQ(f, 3);  // ceil(1700 / 768)
    EXPECT_TRUE(plot.title().contains(QStringLiteral("pooled")));
    for (Eigen::Index r : {0, 301, 999}) {
        for (Eigen::Index c : {0, 855, 1699}) {
            const Eigen::Index r0 = r / f * f, c0 = c / f * f;
            float best = 0.0f;
            for (Eigen::Index i = r0; i < std::min<Eigen::Index>(r0 + f, 1000); ++i)
                for (Eigen::Index j = c0; j < std::min<Eigen::Index>(c0 + f, 1700); ++j)
                    if (std::abs(m(i, j)) > std::abs(best)) best = m(i, j);
            EXPECT_EQ(plot.displayedValue(r, c), static_cast<double>(best)) << r << "," << c;
        }
    }
}

TEST(HeatmapPlot, SharedRangeIsTheLargestMaxAbs)
{
    RowMatrixF a = randomMatrix(20, 30, 3);
    RowMatrixF b = 5.0f * randomMatrix(20, 30, 4);
    HeatmapPlot pa, pb;
    pa.setMatrix(a);
    pb.setMatrix(b);
    HeatmapPlot::shareRange({&pa, &pb});
    const double expected = std::max(a.cwiseAbs().maxCoeff(), b.cwiseAbs().maxCoeff());
    EXPECT_DOUBLE_EQ(pa.colorRangeHalfWidth(), expected);
    EXPECT_DOUBLE_EQ(pb.colorRangeHalfWidth(), expected);
    EXPECT_DOUBLE_EQ(pa.colorMap()->dataRange().upper, expected);
    EXPECT_DOUBLE_EQ(pa.colorMap()->dataRange().lower, -expected);
}

TEST(SpectrumPlot, HoldsTheValuesAndTheEnergyShare)
{
    SpectrumSeries f{QStringLiteral("|F|"), {9.0, 4.0, 2.0, 1.0, 0.5}, 0.0, 0};
    SpectrumSeries g{QStringLiteral("|G|"), {3.0, 3.0, 1.0}, 100.0, 40};
    SpectrumPlot plot;
    plot.setSpectra({f, g}, 2);
    // Graph 0 is the |F| curve, graph 2 the |G| curve; graphs 1 and 3 hold the marked first l.
    ASSERT_EQ(plot.graphCount(), 4);
    ASSERT_EQ(plot.graph(0)->data()->size(), 5);
    int i = 0;
    for (auto it = plot.graph(0)->data()->constBegin(); it != plot.graph(0)->data()->constEnd(); ++it, ++i) {
        EXPECT_EQ(it->key, i + 1.0);
        EXPECT_EQ(it->value, f.values[static_cast<std::size_t>(i)]);
    }
    EXPECT_EQ(plot.graph(1)->data()->size(), 2);
    EXPECT_EQ(plot.graph(3)->data()->size(), 2);
    const double totalF = 81 + 16 + 4 + 1 + 0.25;
    EXPECT_NEAR(plot.energyShare(0), (81.0 + 16.0) / totalF, 1e-12);
    EXPECT_NEAR(plot.energyShare(1), 18.0 / 100.0, 1e-12);  // the given total energy is the denominator
    EXPECT_TRUE(plot.caption().contains(QStringLiteral("of 40")));
    EXPECT_TRUE(plot.yAxis->scaleType() == QCPAxis::stLogarithmic);
}

TEST(ErrorCurvePlot, AppendsLiveAndReplacesWithHistory)
{
    ErrorCurvePlot plot;
    plot.appendPoint(1, 0.7);
    plot.appendPoint(2, 0.65);
    plot.appendPoint(3, 0.62);
    EXPECT_EQ(plot.pointCount(), 3);
    EXPECT_EQ(plot.lastError(), 0.62);
    plot.setReference(0.75, QStringLiteral("closed form"));
    EXPECT_EQ(plot.reference(), 0.75);
    // The coalesced replot runs from the event loop and rescales to include every point.
    ASSERT_TRUE(mdbf::test::waitUntil([&] { return plot.yAxis->range().contains(0.75) && plot.yAxis->range().contains(0.62); }, 5000));
    plot.setHistory({0.5, 0.4});
    EXPECT_EQ(plot.pointCount(), 2);
    EXPECT_EQ(plot.lastError(), 0.4);
    EXPECT_EQ(plot.csv(), QStringLiteral("iteration,rel_error\n1,0.5\n2,0.40000000000000002\n"));
}

TEST(PlotWidget, HoverReadsOutTheNearestPoint)
{
    ErrorCurvePlot plot;
    plot.resize(480, 320);
    plot.appendPoint(1, 0.7);
    plot.appendPoint(5, 0.5);
    plot.appendPoint(9, 0.45);
    // The coalesced replot rescales the axes to the points.
    ASSERT_TRUE(mdbf::test::waitUntil([&] { return plot.xAxis->range().contains(9) && plot.yAxis->range().contains(0.45); }, 5000));
    plot.replot();
    const QCPGraph* graph = plot.graph(0);
    const QPointF at = graph->coordsToPixels(5, 0.5);
    const QString readout = plot.pointReadout(at + QPointF(3, -2));
    EXPECT_TRUE(readout.contains(QStringLiteral("= 5,"))) << readout.toStdString();
    EXPECT_TRUE(readout.endsWith(QStringLiteral("= 0.5"))) << readout.toStdString();
    // Between points, farther than the radius from each: nothing.
    const QPointF between = (graph->coordsToPixels(1, 0.7) + at) / 2.0 + QPointF(0, 40);
    EXPECT_TRUE(plot.pointReadout(between).isEmpty()) << plot.pointReadout(between).toStdString();
}

TEST(MethodComparisonPlot, KeepsOnePointPerBudgetSortedByBpw)
{
    MethodComparisonPlot plot;
    plot.setPoint(QStringLiteral("MDBF"), 2, {1.5, 0.4, 90, true});
    plot.setPoint(QStringLiteral("MDBF"), 2, {0.99, 0.6, 60, true});
    plot.setPoint(QStringLiteral("MDBF"), 2, {1.5, 0.38, 90, true});  // replaces the first
    plot.setPoint(QStringLiteral("DBF"), 1, {1.0, 0.62, 64, true});
    const auto pts = plot.points(QStringLiteral("MDBF"), 2);
    ASSERT_EQ(pts.size(), 2u);
    EXPECT_EQ(pts[0].bpw, 0.99);
    EXPECT_EQ(pts[1].bpw, 1.5);
    EXPECT_EQ(pts[1].error, 0.38);
    EXPECT_EQ(plot.seriesCount(), 2);
    EXPECT_EQ(plot.csv().count(QLatin1Char('\n')), 4);
}

TEST(HistogramPlot, CountsEveryEntryOnce)
{
    const RowMatrixF m = randomMatrix(31, 17, 5);
    HistogramPlot plot;
    plot.setValues(m, QStringLiteral("x"), 21);
    ASSERT_EQ(plot.counts().size(), 21u);
    std::int64_t total = 0;
    for (auto c : plot.counts()) total += c;
    EXPECT_EQ(total, m.size());
    EXPECT_DOUBLE_EQ(plot.edges().front(), -static_cast<double>(m.cwiseAbs().maxCoeff()));
    EXPECT_DOUBLE_EQ(plot.edges().back(), static_cast<double>(m.cwiseAbs().maxCoeff()));
    // Independent binning of one entry.
    const double r = m.cwiseAbs().maxCoeff();
    int inFirst = 0;
    for (Eigen::Index i = 0; i < m.size(); ++i)
        if (m.data()[i] < -r + 2.0 * r / 21) ++inFirst;
    EXPECT_EQ(plot.counts().front(), inFirst);
}

TEST(PlotWidget, ExportsPngPdfSvgAndCsv)
{
    PerplexityPlot plot;
    plot.resize(480, 320);
    plot.setOriginal(57.99, 16.0);
    plot.addPoint({1.07, 63.2, QStringLiteral("12 layers")});
    plot.replot();
    QTemporaryDir dir;
    const QString png = dir.filePath(QStringLiteral("p.png"));
    const QString pdf = dir.filePath(QStringLiteral("p.pdf"));
    const QString svg = dir.filePath(QStringLiteral("p.svg"));
    ASSERT_TRUE(plot.exportPng(png));
    ASSERT_TRUE(plot.exportPdf(pdf));
    ASSERT_TRUE(plot.exportSvg(svg));
    const QImage image(png);
    ASSERT_FALSE(image.isNull());
    EXPECT_EQ(image.width(), 960);  // twice the widget size
    EXPECT_GT(mdbf::test::distinctColors(image), 10);
    QFile pdfFile(pdf);
    ASSERT_TRUE(pdfFile.open(QIODevice::ReadOnly));
    EXPECT_TRUE(pdfFile.read(5).startsWith("%PDF"));
    QFile svgFile(svg);
    ASSERT_TRUE(svgFile.open(QIODevice::ReadOnly));
    const QByteArray svgText = svgFile.readAll();
    EXPECT_TRUE(svgText.contains("<svg"));
    EXPECT_GT(svgText.size(), 1000);
    EXPECT_FALSE(QFile::exists(png + QStringLiteral(".partial")));
    EXPECT_EQ(plot.csv(), QStringLiteral("label,model_bpw,ppl\noriginal,16,57.990000000000002\n\"12 layers\",1.0700000000000001,63.200000000000003\n"));
    // The context menu offers the four entries.
    std::unique_ptr<QMenu> menu(plot.createContextMenu(nullptr));
    EXPECT_GE(menu->actions().size(), 4);
}

}  // namespace
}  // namespace mdbf::widgets
