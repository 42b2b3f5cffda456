#pragma once
// One look for every plot of the studio: fonts, axis colours, grid, and a colour cycle that stays
// distinguishable for colour-blind readers (Okabe–Ito).

#include <QColor>

class QCustomPlot;
class QCPAxisRect;
class QCPColorGradient;

namespace mdbf::widgets::plotStyle {

/// The i-th colour of the series cycle (wraps around).
QColor seriesColor(int i);

/// Colour used for reference lines (closed-form error, original perplexity).
QColor referenceColor();

/// Applies the house look to a plot: white background, light grid, grey axes, no top/right axes.
void apply(QCustomPlot* plot);

/// Applies the axis part of the look to one axis rect (for plots with several rects).
void applyAxisRect(QCPAxisRect* rect);

/// The diverging blue–white–red gradient used for signed data (symmetric ranges only).
QCPColorGradient divergingGradient();

}  // namespace mdbf::widgets::plotStyle
