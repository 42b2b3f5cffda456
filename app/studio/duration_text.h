#pragma once
// How long something takes or has left, as the studio's progress displays write it.

#include <algorithm>
#include <cmath>

#include <QString>

namespace mdbf::studio {

/// "m:ss", or "h:mm:ss" from an hour on; negative durations read as 0.
inline QString durationText(double seconds)
{
    const auto total = static_cast<qint64>(std::llround(std::max(0.0, seconds)));
    const qint64 h = total / 3600, m = (total / 60) % 60, s = total % 60;
    if (h > 0) return QStringLiteral("%1:%2:%3").arg(h).arg(m, 2, 10, QLatin1Char('0')).arg(s, 2, 10, QLatin1Char('0'));
    return QStringLiteral("%1:%2").arg(m).arg(s, 2, 10, QLatin1Char('0'));
}

}  // namespace mdbf::studio
