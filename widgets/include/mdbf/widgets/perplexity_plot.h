#pragma once
// Perplexity against the model's bits per weight: one point per evaluated configuration, points
// accumulating, with the original model's perplexity as a reference line, and optionally the points
// of a study (`mdbf study`) as a second, labelled series in a distinct style.

#include <vector>

#include "mdbf/widgets/plot_widget.h"

namespace mdbf::widgets {

/// One evaluated configuration.
struct PerplexityPoint {
    double modelBpw = 0.0;  ///< bits per weight over all weights of the model
    double ppl = 0.0;
    QString label;          ///< what was evaluated ("12/28 layers MDBF l=2 @ 1.0")
};

/// Scatter of perplexity vs model bpw. The caption names the text and ctx the numbers refer to.
class PerplexityPlot : public PlotWidget {
    Q_OBJECT
public:
    explicit PerplexityPlot(QWidget* parent = nullptr);

    /// Sets the original model's perplexity (dashed line) at its stored bpw (NaN hides it).
    void setOriginal(double ppl, double modelBpw);

    /// Adds one configuration's point.
    void addPoint(const PerplexityPoint& p);

    /// Names what the numbers measure, e.g. "eval.txt · ctx 256".
    void setMeasureLabel(const QString& label);

    /// Replaces the study series with `points` (hollow triangles, each labelled with its label) named
    /// `name` in the legend ("study · eval.txt · ctx 256"); an empty vector removes it.
    void setStudyPoints(std::vector<PerplexityPoint> points, const QString& name);

    /// Removes all points (the user's and the study's) and the reference.
    void clear();

    const std::vector<PerplexityPoint>& points() const { return m_points; }
    const std::vector<PerplexityPoint>& studyPoints() const { return m_studyPoints; }

    /// The graph holding the study points (for tests and styling checks).
    const QCPGraph* studyGraph() const { return m_study; }
    const QCPGraph* pointGraph() const { return m_scatter; }

    /// label,model_bpw,ppl (the original first, when set; study points last, labelled "study: …")
    QString csv() const override;

private:
    void rescale();
    void clearStudyLabels();

    std::vector<PerplexityPoint> m_points;
    std::vector<PerplexityPoint> m_studyPoints;
    double m_originalPpl;
    double m_originalBpw;
    QCPGraph* m_scatter = nullptr;
    QCPGraph* m_original = nullptr;
    QCPGraph* m_study = nullptr;
    std::vector<QCPItemText*> m_studyLabels;
    QCPItemStraightLine* m_refLine = nullptr;
    QCPTextElement* m_title = nullptr;
};

}  // namespace mdbf::widgets
