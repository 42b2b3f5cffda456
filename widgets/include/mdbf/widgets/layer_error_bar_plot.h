#pragma once
// Relative error of every factorized layer of a model as bars in model order (x = layer, y = error),
// coloured by the kind of projection, with layers that stayed dense marked on the axis. Hovering a
// bar names its layer; clicking it emits barClicked().

#include <optional>
#include <vector>

#include <QString>

#include "mdbf/widgets/plot_widget.h"

namespace mdbf::widgets {

/// One layer on the chart.
struct LayerErrorBar {
    QString name;       ///< full layer name ("model.layers.1.mlp.up_proj"), unique on the chart
    QString label;      ///< short tick label ("1·up")
    QString category;   ///< colour group and legend entry ("up_proj", "lm_head")
    double error = 0.0; ///< relative error ‖W−Ŵ‖/‖W‖ under the layer's objective (ignored when dense)
    QString detail;     ///< extra tooltip line ("MDBF l=2 · k 54 · 0.993 bpw")
    bool dense = false; ///< not factorized (e.g. its budget is infeasible): a marker, no bar
    int colorIndex = -1; ///< fixed colour of the category (e.g. its projection's index), so a category
                         ///< keeps its colour whatever else is on the chart; −1: by order of appearance
};

/// Bar chart of per-layer errors. GUI-thread only.
class LayerErrorBarPlot : public PlotWidget {
    Q_OBJECT
public:
    explicit LayerErrorBarPlot(QWidget* parent = nullptr);

    /// Replaces the chart with `entries`, drawn left to right in the given order (x = index).
    void setEntries(std::vector<LayerErrorBar> entries);

    /// Removes every bar and marker.
    void clear();

    /// The entries shown, in x order.
    const std::vector<LayerErrorBar>& entries() const { return m_entries; }

    /// Number of bars (entries that are not dense).
    int barCount() const;

    /// The height of the bar drawn for layer `name`, read back from the plotted data; empty when the
    /// layer has no bar.
    std::optional<double> plottedError(const QString& name) const;

    /// Outlines the bar (or marker) of layer `name`; an empty or unknown name removes the outline.
    void setHighlighted(const QString& name);

    /// Names the objective on the y axis ("plain", or a phrase when the layers differ); the label is
    /// shortened when the axis is too short to hold it (the full text stays in yAxisLabelText()).
    void setObjectiveLabel(const QString& objective);
    /// The full y-axis label ("rel. error (plain)"), whatever is drawn.
    QString yAxisLabelText() const;

    /// Index of the entry whose column contains widget position `pos`, or −1.
    int entryAt(const QPoint& pos) const;

    /// The tooltip text of entry `index` (name, detail and error).
    QString entryToolTip(int index) const;

    /// layer,category,rel_error,dense (one line per entry, in x order).
    QString csv() const override;

signals:
    /// A bar or dense marker was clicked (left button): `name` is its layer.
    void barClicked(const QString& name);

protected:
    bool event(QEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;

private:
    void rebuild();
    void updateTicks();
    void fitYLabel();

    std::vector<LayerErrorBar> m_entries;
    std::vector<QCPBars*> m_bars;            ///< one per category, in order of first appearance
    std::vector<QCPItemText*> m_denseMarks;
    QCPBars* m_highlight = nullptr;          ///< outline drawn over the highlighted entry
    QString m_highlighted;
    QString m_objective;
    QPoint m_pressPos;
};

}  // namespace mdbf::widgets
