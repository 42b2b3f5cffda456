// The inspector's result tabs: what the residual view says when a result comes without its views.

#include <gtest/gtest.h>

#include <memory>

#include "factor_cache.h"
#include "layer_result_tabs.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/layer_svd.h"
#include "mdbf/widgets/heatmap_plot.h"
#include "widget_test_support.h"

namespace mdbf::studio {
namespace {

std::shared_ptr<LayerFactorization> resultWithoutViews(bool complete)
{
    RowMatrixF W = RowMatrixF::Random(48, 64);
    factor::FactorizerOptions o;
    o.bpw = factor::Bpw::parse("2");
    o.outerIterations = 0;
    auto f = std::make_shared<LayerFactorization>();
    f->result = std::make_shared<const factor::FactorResult>(
        factor::Factorizer(o).run(W, factor::LayerSvd::compute(W)));
    f->complete = complete;
    return f;
}

TEST(LayerResultTabs, AResultWithoutViewsSaysWhetherTheyAreComing)
{
    LayerResultTabs tabs;
    tabs.showResult(resultWithoutViews(true), nullptr);
    EXPECT_TRUE(tabs.residualHeatmap()->title().contains("computing")) << tabs.residualHeatmap()->title().toStdString();
    // A cancelled run's views are never computed: saying "computing" would promise what no job does.
    tabs.showResult(resultWithoutViews(false), nullptr);
    EXPECT_TRUE(tabs.residualHeatmap()->title().contains("not computed")) << tabs.residualHeatmap()->title().toStdString();
    EXPECT_FALSE(tabs.residualHeatmap()->title().contains("computing…"));
}

}  // namespace
}  // namespace mdbf::studio
