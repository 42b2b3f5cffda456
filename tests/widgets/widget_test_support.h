#pragma once
// Helpers shared by the widget tests: waiting on the event loop with a deadline.

#include <chrono>
#include <functional>

#include <QElapsedTimer>
#include <QImage>
#include <QSet>
#include <QTest>

namespace mdbf::test {

/// Runs the event loop until `condition` holds or `timeoutMs` passes; returns the condition.
inline bool waitUntil(const std::function<bool()>& condition, int timeoutMs = 60000)
{
    QElapsedTimer timer;
    timer.start();
    while (!condition()) {
        if (timer.elapsed() > timeoutMs) return false;
        QTest::qWait(10);
    }
    return true;
}

/// Number of distinct colours in an image (a blank render has one or two).
inline int distinctColors(const QImage& image)
{
    QSet<QRgb> colors;
    const QImage rgb = image.convertToFormat(QImage::Format_RGB32);
    for (int y = 0; y < rgb.height(); ++y) {
        const auto* line = reinterpret_cast<const QRgb*>(rgb.constScanLine(y));
        for (int x = 0; x < rgb.width(); ++x) colors.insert(line[x]);
    }
    return static_cast<int>(colors.size());
}

}  // namespace mdbf::test
