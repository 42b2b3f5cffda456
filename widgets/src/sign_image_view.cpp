#include "mdbf/widgets/sign_image_view.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>
#include <QWheelEvent>

namespace mdbf::widgets {

namespace {

constexpr int kHeader = 20;
constexpr int kFooter = 20;
constexpr double kMaxScale = 64.0;
// Cells may be stretched up to this aspect ratio so that thin matrices (n×k with k ≪ n) fill the view.
constexpr double kMaxAspect = 6.0;

}  // namespace

SignImageView::SignImageView(QWidget* parent) : QWidget(parent)
{
    setMouseTracking(true);
    setFocusPolicy(Qt::WheelFocus);
    setAttribute(Qt::WA_OpaquePaintEvent);
    setToolTip(tr("Sign matrix: black −1, white +1. Wheel to zoom, drag to pan, double-click to fit"));
    clear();
}

void SignImageView::setSigns(std::shared_ptr<const kernels::PackedSigns> signs, const QString& title)
{
    m_signs = std::move(signs);
    m_title = title;
    m_message.clear();
    buildOverview();
    resetView();
}

void SignImageView::clear(const QString& message)
{
    m_signs.reset();
    m_overview = QImage();
    m_factor = 1;
    m_message = message.isEmpty() ? tr("no matrix") : message;
    m_hover.clear();
    update();
}

void SignImageView::buildOverview()
{
    m_overview = QImage();
    m_factor = 1;
    if (!m_signs || m_signs->rows() == 0 || m_signs->cols() == 0) return;
    const std::int64_t rows = m_signs->rows();
    const std::int64_t cols = m_signs->cols();
    const std::int64_t side = std::max(rows, cols);
    m_factor = static_cast<int>((side + kMaxOverviewSide - 1) / kMaxOverviewSide);
    const std::int64_t f = m_factor;
    const int w = static_cast<int>((cols + f - 1) / f);
    const int h = static_cast<int>((rows + f - 1) / f);
    m_overview = QImage(w, h, QImage::Format_Grayscale8);
    if (f == 1) {
        for (int y = 0; y < h; ++y) {
            uchar* line = m_overview.scanLine(y);
            for (int x = 0; x < w; ++x) line[x] = m_signs->isNegative(y, x) ? 0 : 255;
        }
        return;
    }
    // Counts the −1 entries of each block with popcounts over the packed words of every row.
    std::vector<std::int32_t> negatives(static_cast<std::size_t>(w));
    for (int y = 0; y < h; ++y) {
        std::fill(negatives.begin(), negatives.end(), 0);
        const std::int64_t r0 = y * f;
        const std::int64_t r1 = std::min(rows, r0 + f);
        for (std::int64_t r = r0; r < r1; ++r) {
            const std::uint64_t* words = m_signs->row(r);
            for (int x = 0; x < w; ++x) {
                const std::int64_t c0 = x * f;
                const std::int64_t c1 = std::min(cols, c0 + f);
                std::int32_t n = 0;
                std::int64_t c = c0;
                while (c < c1) {
                    const std::int64_t word = c / 64;
                    const int bit = static_cast<int>(c % 64);
                    const int span = static_cast<int>(std::min<std::int64_t>(64 - bit, c1 - c));
                    const std::uint64_t mask = span == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << span) - 1) << bit;
                    n += std::popcount(words[word] & mask);
                    c += span;
                }
                negatives[static_cast<std::size_t>(x)] += n;
            }
        }
        uchar* line = m_overview.scanLine(y);
        for (int x = 0; x < w; ++x) {
            const std::int64_t c0 = x * f;
            const std::int64_t cells = (std::min(cols, c0 + f) - c0) * (r1 - r0);
            const double positiveShare = 1.0 - static_cast<double>(negatives[static_cast<std::size_t>(x)]) / cells;
            line[x] = static_cast<uchar>(std::lround(255.0 * positiveShare));
        }
    }
}

QRect SignImageView::imageArea() const
{
    return QRect(0, kHeader, width(), std::max(1, height() - kHeader - kFooter));
}

QSizeF SignImageView::fitScales() const
{
    if (!m_signs || m_signs->rows() == 0) return {1.0, 1.0};
    const QRect area = imageArea().adjusted(4, 4, -4, -4);
    double sx = std::max(area.width(), 1) / static_cast<double>(m_signs->cols());
    double sy = std::max(area.height(), 1) / static_cast<double>(m_signs->rows());
    sx = std::min(sx, sy * kMaxAspect);
    sy = std::min(sy, sx * kMaxAspect);
    return {sx, sy};
}

void SignImageView::resetView()
{
    m_fitted = true;
    if (m_signs) {
        const QSizeF fit = fitScales();
        m_sx = std::max(fit.width(), 1e-6);
        m_sy = std::max(fit.height(), 1e-6);
        const QRect area = imageArea();
        m_origin = QPointF(m_signs->cols() / 2.0 - area.width() / (2.0 * m_sx),
                           m_signs->rows() / 2.0 - area.height() / (2.0 * m_sy));
    }
    update();
}

void SignImageView::clampView()
{
    if (!m_signs) return;
    const QRect area = imageArea();
    const double visW = area.width() / m_sx;
    const double visH = area.height() / m_sy;
    const double cols = static_cast<double>(m_signs->cols());
    const double rows = static_cast<double>(m_signs->rows());
    // When the matrix is smaller than the view it stays centred; otherwise it cannot leave it.
    m_origin.setX(visW >= cols ? cols / 2.0 - visW / 2.0 : std::clamp(m_origin.x(), 0.0, cols - visW));
    m_origin.setY(visH >= rows ? rows / 2.0 - visH / 2.0 : std::clamp(m_origin.y(), 0.0, rows - visH));
}

void SignImageView::zoomBy(double factor, QPointF anchor)
{
    if (!m_signs) return;
    const QRect area = imageArea();
    const QPointF local = anchor - QPointF(area.topLeft());
    const QPointF cell(m_origin.x() + local.x() / m_sx, m_origin.y() + local.y() / m_sy);
    const QSizeF fit = fitScales();
    const double minScale = std::min({fit.width(), fit.height(), 1.0}) * 0.5;
    const double current = std::min(m_sx, m_sy);
    const double target = std::clamp(current * factor, minScale, kMaxScale);
    m_sx *= target / current;
    m_sy *= target / current;
    m_origin = QPointF(cell.x() - local.x() / m_sx, cell.y() - local.y() / m_sy);
    m_fitted = false;
    clampView();
    update();
}

QPointF SignImageView::cellCenter(std::int64_t row, std::int64_t col) const
{
    const QRect area = imageArea();
    return QPointF(area.left() + (col + 0.5 - m_origin.x()) * m_sx, area.top() + (row + 0.5 - m_origin.y()) * m_sy);
}

bool SignImageView::cellAt(QPointF pos, std::int64_t& row, std::int64_t& col) const
{
    if (!m_signs) return false;
    const QRect area = imageArea();
    if (!area.contains(pos.toPoint())) return false;
    const double c = m_origin.x() + (pos.x() - area.left()) / m_sx;
    const double r = m_origin.y() + (pos.y() - area.top()) / m_sy;
    if (c < 0 || r < 0) return false;
    col = static_cast<std::int64_t>(std::floor(c));
    row = static_cast<std::int64_t>(std::floor(r));
    return row < m_signs->rows() && col < m_signs->cols();
}

QString SignImageView::description() const
{
    if (!m_signs) return m_message;
    QString text = QStringLiteral("%1  %2 × %3").arg(m_title).arg(m_signs->rows()).arg(m_signs->cols());
    if (m_factor > 1 && !exactOnScreen()) text += tr("  ·  mean of %1×%1 blocks (grey = mixed)").arg(m_factor);
    else if (!exactOnScreen()) text += tr("  ·  subsampled on screen");
    else text += tr("  ·  exact");
    return text.trimmed();
}

QImage SignImageView::renderExactRegion(std::int64_t r0, std::int64_t c0, std::int64_t r1, std::int64_t c1) const
{
    QImage image(static_cast<int>(c1 - c0), static_cast<int>(r1 - r0), QImage::Format_Grayscale8);
    for (std::int64_t r = r0; r < r1; ++r) {
        uchar* line = image.scanLine(static_cast<int>(r - r0));
        for (std::int64_t c = c0; c < c1; ++c) line[c - c0] = m_signs->isNegative(r, c) ? 0 : 255;
    }
    return image;
}

void SignImageView::paintEvent(QPaintEvent* /*event*/)
{
    QPainter p(this);
    p.fillRect(rect(), palette().window());
    const QRect area = imageArea();
    p.fillRect(area, QColor(214, 218, 224));
    QFont small = font();
    small.setPointSizeF(std::max(7.5, small.pointSizeF() - 0.5));
    p.setFont(small);

    if (m_signs && m_signs->rows() > 0 && m_signs->cols() > 0) {
        p.setRenderHint(QPainter::SmoothPixmapTransform, false);
        p.setClipRect(area);
        const double cols = static_cast<double>(m_signs->cols());
        const double rows = static_cast<double>(m_signs->rows());
        const QRectF matrixRect(area.left() - m_origin.x() * m_sx, area.top() - m_origin.y() * m_sy, cols * m_sx,
                                rows * m_sy);
        if (exactOnScreen() || m_factor == 1) {
            // Each cell covers at least a pixel (or the overview is exact): draw the visible cells.
            const std::int64_t c0 = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::floor(m_origin.x())), 0,
                                                             m_signs->cols());
            const std::int64_t r0 = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::floor(m_origin.y())), 0,
                                                             m_signs->rows());
            const std::int64_t c1 = std::clamp<std::int64_t>(
                static_cast<std::int64_t>(std::ceil(m_origin.x() + area.width() / m_sx)), 0, m_signs->cols());
            const std::int64_t r1 = std::clamp<std::int64_t>(
                static_cast<std::int64_t>(std::ceil(m_origin.y() + area.height() / m_sy)), 0, m_signs->rows());
            if (c1 > c0 && r1 > r0) {
                const QRectF target(area.left() + (c0 - m_origin.x()) * m_sx, area.top() + (r0 - m_origin.y()) * m_sy,
                                    (c1 - c0) * m_sx, (r1 - r0) * m_sy);
                if (m_factor == 1) {
                    p.drawImage(target, m_overview, QRectF(c0, r0, c1 - c0, r1 - r0));
                } else {
                    p.drawImage(target, renderExactRegion(r0, c0, r1, c1));
                }
            }
        } else {
            p.drawImage(matrixRect, m_overview);
        }
        p.setClipping(false);
        p.setPen(QPen(QColor(120, 120, 120), 1));
        p.setBrush(Qt::NoBrush);
        p.drawRect(matrixRect.adjusted(-0.5, -0.5, 0.5, 0.5).intersected(QRectF(area).adjusted(0, 0, -1, -1)));
    } else {
        p.setPen(QColor(90, 90, 90));
        p.drawText(area, Qt::AlignCenter | Qt::TextWordWrap, m_message);
    }

    // Header: what is shown and how; footer: the hovered cell.
    // The scale sits at the right; the description gets what is left, elided rather than drawn under it.
    const QRect header(6, 0, width() - 12, kHeader);
    int descriptionWidth = header.width();
    if (m_signs) {
        p.setPen(QColor(110, 110, 110));
        const QString cell = std::abs(m_sx - m_sy) < 1e-9 * m_sx
                                 ? tr("%1 px/cell").arg(m_sx, 0, 'g', 3)
                                 : tr("cell %1 × %2 px").arg(m_sx, 0, 'g', 3).arg(m_sy, 0, 'g', 3);
        p.drawText(header, Qt::AlignVCenter | Qt::AlignRight, cell);
        descriptionWidth -= p.fontMetrics().horizontalAdvance(cell) + p.fontMetrics().averageCharWidth() * 2;
    }
    p.setPen(QColor(40, 40, 40));
    p.drawText(header, Qt::AlignVCenter | Qt::AlignLeft,
               p.fontMetrics().elidedText(description(), Qt::ElideRight, std::max(0, descriptionWidth)));
    const QRect footer(6, height() - kFooter, width() - 12, kFooter);
    p.setPen(QColor(40, 40, 40));
    p.drawText(footer, Qt::AlignVCenter | Qt::AlignLeft,
               m_hover.isEmpty() && m_signs ? tr("black −1 · white +1 · wheel zoom · drag pan") : m_hover);
}

void SignImageView::resizeEvent(QResizeEvent* event)
{
    QWidget::resizeEvent(event);
    if (m_fitted) resetView();
    else clampView();
}

void SignImageView::wheelEvent(QWheelEvent* event)
{
    const double steps = event->angleDelta().y() / 120.0;
    if (steps != 0.0) zoomBy(std::pow(1.25, steps), event->position());
    event->accept();
}

void SignImageView::mousePressEvent(QMouseEvent* event)
{
    if (event->button() == Qt::LeftButton && m_signs) {
        m_dragging = true;
        m_dragStart = event->position();
        m_dragOrigin = m_origin;
        setCursor(Qt::ClosedHandCursor);
    }
    QWidget::mousePressEvent(event);
}

void SignImageView::mouseMoveEvent(QMouseEvent* event)
{
    if (m_dragging) {
        const QPointF delta = event->position() - m_dragStart;
        m_origin = QPointF(m_dragOrigin.x() - delta.x() / m_sx, m_dragOrigin.y() - delta.y() / m_sy);
        m_fitted = false;
        clampView();
        update();
    }
    updateHover(event->position());
    if (!m_hover.isEmpty()) QToolTip::showText(event->globalPosition().toPoint(), m_hover, this);
}

void SignImageView::mouseReleaseEvent(QMouseEvent* event)
{
    if (event->button() == Qt::LeftButton) {
        m_dragging = false;
        unsetCursor();
    }
    QWidget::mouseReleaseEvent(event);
}

void SignImageView::mouseDoubleClickEvent(QMouseEvent* /*event*/) { resetView(); }

void SignImageView::leaveEvent(QEvent* event)
{
    QWidget::leaveEvent(event);
    if (!m_hover.isEmpty()) {
        m_hover.clear();
        emit hoverTextChanged(m_hover);
        update();
    }
}

void SignImageView::keyPressEvent(QKeyEvent* event)
{
    const QPointF centre = QRectF(imageArea()).center();
    switch (event->key()) {
    case Qt::Key_Plus:
    case Qt::Key_Equal: zoomBy(1.25, centre); break;
    case Qt::Key_Minus: zoomBy(0.8, centre); break;
    case Qt::Key_0: resetView(); break;
    default: QWidget::keyPressEvent(event); return;
    }
    event->accept();
}

void SignImageView::updateHover(QPointF pos)
{
    std::int64_t row = 0;
    std::int64_t col = 0;
    QString text;
    if (cellAt(pos, row, col)) {
        text = tr("row %1, col %2: %3").arg(row).arg(col).arg(m_signs->isNegative(row, col) ? QStringLiteral("−1")
                                                                                             : QStringLiteral("+1"));
    }
    if (text != m_hover) {
        m_hover = text;
        emit hoverTextChanged(m_hover);
        update();
    }
}

}  // namespace mdbf::widgets
