#pragma once
// Helpers of the calibration tests: the demo model's token stream and a test-owned capturing layer
// that records a projection's inputs independently of the code under test.

#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "mdbf/base/text_file.h"
#include "mdbf/model/dense_linear.h"
#include "mdbf/model/linear.h"
#include "mdbf/model/transformer.h"
#include "mdbf/tokenizer/tokenizer.h"
#include "test_fixtures.h"

namespace mdbf::test {

/// The ids of eval-small.txt under the demo model's tokenizer.
inline std::vector<std::int32_t> demoTokens()
{
    const Tokenizer tokenizer = Tokenizer::fromFile(demoModel() / "tokenizer.json");
    return tokenizer.encode(readUtf8File(testData() / "eval-small.txt"));
}

/// Forwards to a dense copy of a layer and sums, in double, x_j² per channel and x xᵀ over every
/// input row it sees; it also keeps every row, in order.
class CapturingLinear final : public model::Linear {
public:
    explicit CapturingLinear(const model::DenseLinear& layer)
        : m_inner(layer.weight(), layer.bias()),
          m_squares(Eigen::VectorXd::Zero(layer.inFeatures())),
          m_outer(Eigen::MatrixXd::Zero(layer.inFeatures(), layer.inFeatures()))
    {
    }

    std::int64_t outFeatures() const override { return m_inner.outFeatures(); }
    std::int64_t inFeatures() const override { return m_inner.inFeatures(); }
    std::string kind() const override { return "capturing"; }

    void forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const override
    {
        m_inner.forward(X, Y, threads);
        const std::lock_guard lock(m_mutex);
        const Eigen::MatrixXd xd = X.cast<double>();
        m_all.conservativeResize(m_all.rows() + xd.rows(), xd.cols());
        m_all.bottomRows(xd.rows()) = xd;
        for (Eigen::Index t = 0; t < xd.rows(); ++t) {
            for (Eigen::Index j = 0; j < xd.cols(); ++j) m_squares[j] += xd(t, j) * xd(t, j);
            m_outer.noalias() += xd.row(t).transpose() * xd.row(t);
        }
        m_rows += X.rows();
    }

    const model::DenseLinear& inner() const { return m_inner; }
    std::int64_t rows() const { return m_rows; }
    Eigen::VectorXd meanSquares() const { return m_squares / static_cast<double>(m_rows); }
    /// Σ over rows of x xᵀ (not divided by the row count).
    const Eigen::MatrixXd& outerSum() const { return m_outer; }
    /// Every input row seen, in order (rows × in_features).
    const Eigen::MatrixXd& allRows() const { return m_all; }

private:
    model::DenseLinear m_inner;
    mutable std::mutex m_mutex;
    mutable Eigen::VectorXd m_squares;
    mutable Eigen::MatrixXd m_outer;
    mutable Eigen::MatrixXd m_all;
    mutable std::int64_t m_rows = 0;
};

/// Replaces `name` in `model` by a CapturingLinear over its dense weights; returns it.
inline std::shared_ptr<CapturingLinear> capture(model::Transformer& model, const std::string& name)
{
    const auto& dense = dynamic_cast<const model::DenseLinear&>(model.linear(name));
    auto capturing = std::make_shared<CapturingLinear>(dense);
    model.replaceLinear(name, capturing);
    return capturing;
}

/// Runs `ids` through `model` in consecutive windows of `ctx` tokens (the final partial one dropped).
inline void runWindows(const model::Transformer& model, std::span<const std::int32_t> ids, int ctx)
{
    for (std::size_t start = 0; start + static_cast<std::size_t>(ctx) <= ids.size(); start += static_cast<std::size_t>(ctx))
        model.forward(ids.subspan(start, static_cast<std::size_t>(ctx)), 2);
}

}  // namespace mdbf::test
