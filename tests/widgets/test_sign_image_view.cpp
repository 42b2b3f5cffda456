#include <random>

#include <gtest/gtest.h>

#include <QApplication>
#include <QImage>
#include <QWheelEvent>

#include "mdbf/widgets/sign_image_view.h"
#include "widget_test_support.h"

namespace mdbf::widgets {
namespace {

std::shared_ptr<kernels::PackedSigns> randomSigns(std::int64_t rows, std::int64_t cols, unsigned seed)
{
    std::mt19937 gen(seed);
    auto s = std::make_shared<kernels::PackedSigns>(rows, cols);
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t j = 0; j < cols; ++j)
            if (gen() & 1u) s->setNegative(i, j);
    return s;
}

TEST(SignImageView, OverviewPixelsEqualTheSigns)
{
    auto signs = randomSigns(71, 130, 11);  // odd sizes, a row spans three words
    SignImageView view;
    view.resize(400, 300);
    view.setSigns(signs, QStringLiteral("S_a"));
    ASSERT_EQ(view.downsampleFactor(), 1);
    const QImage& image = view.overviewImage();
    ASSERT_EQ(image.width(), 130);
    ASSERT_EQ(image.height(), 71);
    for (int r = 0; r < 71; ++r)
        for (int c = 0; c < 130; ++c)
            ASSERT_EQ(qGray(image.pixel(c, r)), signs->isNegative(r, c) ? 0 : 255) << r << "," << c;
    EXPECT_TRUE(view.description().contains(QStringLiteral("71 × 130")));
}

TEST(SignImageView, RenderedCellsAreBlackOrWhiteAtTheirPlace)
{
    auto signs = randomSigns(40, 25, 12);
    SignImageView view;
    view.resize(300, 340);
    view.setSigns(signs);
    ASSERT_GE(view.zoom(), 4.0);  // a 40×25 matrix is magnified to fit
    const QImage shot = view.grab().toImage();
    for (std::int64_t r = 0; r < 40; r += 3) {
        for (std::int64_t c = 0; c < 25; c += 2) {
            const QPoint p = view.cellCenter(r, c).toPoint();
            ASSERT_EQ(qGray(shot.pixel(p)), signs->isNegative(r, c) ? 0 : 255) << r << "," << c;
        }
    }
    std::int64_t row = -1, col = -1;
    ASSERT_TRUE(view.cellAt(view.cellCenter(7, 9), row, col));
    EXPECT_EQ(row, 7);
    EXPECT_EQ(col, 9);
}

TEST(SignImageView, LargeMatricesArePooledByMeanAndZoomShowsExactCells)
{
    auto signs = randomSigns(2100, 700, 13);
    SignImageView view;
    view.resize(500, 500);
    view.setSigns(signs);
    const int f = view.downsampleFactor();
    ASSERT_EQ(f, 3);  // ceil(2100 / 1024)
    const QImage& image = view.overviewImage();
    ASSERT_EQ(image.height(), 700);
    ASSERT_EQ(image.width(), 234);
    for (int y : {0, 350, 699}) {
        for (int x : {0, 100, 233}) {
            int positives = 0, cells = 0;
            for (int r = y * f; r < std::min(2100, y * f + f); ++r)
                for (int c = x * f; c < std::min(700, x * f + f); ++c, ++cells) positives += signs->isNegative(r, c) ? 0 : 1;
            EXPECT_NEAR(qGray(image.pixel(x, y)), 255.0 * positives / cells, 0.51) << x << "," << y;
        }
    }
    EXPECT_TRUE(view.description().contains(QStringLiteral("mean of 3×3")));
    // Zoom in around the centre until a cell covers several pixels: the view then draws exact signs.
    const QPointF centre = QRectF(view.imageArea()).center();
    for (int i = 0; i < 20 && view.zoom() < 6.0; ++i) view.zoomBy(1.5, centre);
    ASSERT_GE(view.zoom(), 6.0);
    EXPECT_TRUE(view.description().contains(QStringLiteral("exact")));
    const QImage shot = view.grab().toImage();
    std::int64_t row = 0, col = 0;
    ASSERT_TRUE(view.cellAt(centre, row, col));
    for (std::int64_t dr = -2; dr <= 2; ++dr) {
        for (std::int64_t dc = -2; dc <= 2; ++dc) {
            const QPoint p = view.cellCenter(row + dr, col + dc).toPoint();
            EXPECT_EQ(qGray(shot.pixel(p)), signs->isNegative(row + dr, col + dc) ? 0 : 255);
        }
    }
}

TEST(SignImageView, WheelZoomsAroundTheCursor)
{
    auto signs = randomSigns(100, 100, 14);
    SignImageView view;
    view.resize(300, 300);
    view.setSigns(signs);
    const double before = view.zoom();
    const QPointF at = view.cellCenter(45, 55);
    QWheelEvent wheel(at, view.mapToGlobal(at), QPoint(), QPoint(0, 120), Qt::NoButton, Qt::NoModifier,
                      Qt::NoScrollPhase, false);
    QApplication::sendEvent(&view, &wheel);
    EXPECT_NEAR(view.zoom(), before * 1.25, 1e-9);
    std::int64_t row = 0, col = 0;
    ASSERT_TRUE(view.cellAt(at, row, col));
    EXPECT_EQ(row, 45);
    EXPECT_EQ(col, 55);
}

}  // namespace
}  // namespace mdbf::widgets
