#include "factor_cache.h"

#include <cstdlib>
#include <tuple>

#include "mdbf/factor/decomposition_cache.h"
#include "mdbf/pipeline/layer_job.h"

namespace mdbf::studio {

bool resultOf(const LayerFactorization& f, const FactorSettings& s)
{
    if (f.refined) return f.settings == s;
    FactorSettings a = f.settings, b = s;
    a.iterations = b.iterations = 0;
    return a == b;
}

namespace {

QString weightsId(const QString& layer) { return layer + QStringLiteral("#W"); }
QString svdId(const QString& layer, const QString& svdKey) { return layer + QStringLiteral("#svd#") + svdKey; }
QString resultId(const QString& layer, const QString& key) { return layer + QStringLiteral("#r#") + key; }

std::size_t matrixBytes(Eigen::Index rows, Eigen::Index cols)
{
    return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * sizeof(float);
}

}  // namespace

std::size_t LayerFactorization::bytes() const
{
    std::size_t total = sizeof(*this);
    if (residual) total += static_cast<std::size_t>(residual->size()) * sizeof(Eigen::half);
    if (result) {
        for (const auto& p : result->paths) {
            total += (p.sa.words().size() + p.sb.words().size()) * sizeof(std::uint64_t);
            total += matrixBytes(p.A.rows() + p.Qa.rows() + p.Qb.rows() + p.B.rows(), p.A.cols());
        }
        total += result->errorHistory.size() * sizeof(double);
    }
    return total;
}

namespace {

// Fills f's spectra and residual from `result` (whose sampled errors become exact) and stores it in f.
void attachViews(LayerFactorization& f, const RowMatrixF& W, const factor::LayerSvd& svd, factor::FactorResult result,
                 const pipeline::LayerJob& job, const RunContext& ctx)
{
    pipeline::LayerView view = pipeline::describeLayer(W, svd, result, job, ctx);
    f.spectra = std::move(view.spectra);
    f.residual = std::move(view.residual);
    f.result = std::make_shared<const factor::FactorResult>(std::move(result));
}

}  // namespace

std::shared_ptr<const LayerFactorization> describeFactorization(const RowMatrixF& W, const factor::LayerSvd& svd,
                                                                factor::FactorResult result,
                                                                const FactorSettings& settings, bool refined,
                                                                const pipeline::LayerJob& job, bool withViews,
                                                                bool decompositionCached, const RunContext& ctx)
{
    auto f = std::make_shared<LayerFactorization>();
    f->refined = refined;
    f->complete = result.termination != factor::Termination::Cancelled;
    f->settings = settings;
    f->decompositionCached = decompositionCached;
    if (withViews) attachViews(*f, W, svd, std::move(result), job, ctx);
    else f->result = std::make_shared<const factor::FactorResult>(std::move(result));
    return f;
}

std::shared_ptr<const LayerFactorization> withViews(const RowMatrixF& W, const factor::LayerSvd& svd,
                                                    const LayerFactorization& f, const pipeline::LayerJob& job,
                                                    const RunContext& ctx)
{
    auto out = std::make_shared<LayerFactorization>(f);
    attachViews(*out, W, svd, *f.result, job, ctx);
    return out;
}

pipeline::LayerDecomposition decomposeWithDiskCache(const RowMatrixF& W, pipeline::LayerJob job,
                                                    const io::Checkpoint& checkpoint, const QString& layer,
                                                    const QString& calibrationTag, const RunContext& ctx)
{
    job.engine.decompositions.cache =
        std::make_shared<const factor::DecompositionCache>(factor::DecompositionCache::defaultFolder());
    job.engine.decompositions.calibration = calibrationTag.toStdString();
    return pipeline::decomposeLayerCached(W, job, checkpoint, layer.toStdString(), ctx);
}

FactorCache::FactorCache(std::size_t maxBytes) : m_maxBytes(maxBytes) {}

void FactorCache::touch(const QString& id)
{
    auto it = m_index.find(id);
    if (it == m_index.end()) return;
    m_lru.splice(m_lru.begin(), m_lru, *it);
}

void FactorCache::put(const QString& id, std::shared_ptr<const void> value, std::size_t bytes)
{
    auto it = m_index.find(id);
    if (it != m_index.end()) {
        m_bytes -= (*it)->bytes;
        m_lru.erase(*it);
        m_index.erase(it);
    }
    m_lru.push_front(Entry{id, bytes, std::move(value)});
    m_index.insert(id, m_lru.begin());
    m_bytes += bytes;
    evict();
}

void FactorCache::evict()
{
    // The newest entry always stays, even if it alone exceeds the bound.
    while (m_bytes > m_maxBytes && m_lru.size() > 1) {
        const Entry& last = m_lru.back();
        m_bytes -= last.bytes;
        m_index.remove(last.id);
        m_lru.pop_back();
    }
}

LayerInputs FactorCache::inputs(const QString& layer, const QString& svdKey)
{
    LayerInputs in;
    if (auto it = m_index.find(weightsId(layer)); it != m_index.end()) {
        in.weights = std::static_pointer_cast<const RowMatrixF>((*it)->keepAlive);
        touch(weightsId(layer));
    }
    if (auto it = m_index.find(svdId(layer, svdKey)); it != m_index.end()) {
        in.svd = std::static_pointer_cast<const factor::LayerSvd>((*it)->keepAlive);
        touch(svdId(layer, svdKey));
    }
    return in;
}

void FactorCache::setWeights(const QString& layer, std::shared_ptr<const RowMatrixF> w)
{
    const std::size_t bytes = matrixBytes(w->rows(), w->cols());
    put(weightsId(layer), std::move(w), bytes);
}

void FactorCache::setSvd(const QString& layer, const QString& svdKey, std::shared_ptr<const factor::LayerSvd> svd)
{
    const std::size_t bytes = matrixBytes(svd->u().rows() + svd->v().rows() + 1, svd->rank());
    put(svdId(layer, svdKey), std::move(svd), bytes);
}

std::shared_ptr<const LayerFactorization> FactorCache::result(const QString& layer, const QString& key)
{
    const QString id = resultId(layer, key);
    auto it = m_index.find(id);
    if (it == m_index.end()) return nullptr;
    touch(id);
    return std::static_pointer_cast<const LayerFactorization>((*it)->keepAlive);
}

void FactorCache::setResult(const QString& layer, const QString& key, std::shared_ptr<const LayerFactorization> r)
{
    const std::size_t bytes = r->bytes();
    put(resultId(layer, key), std::move(r), bytes);
}

std::shared_ptr<const LayerFactorization> FactorCache::nearestRefinement(const QString& layer, const FactorSettings& s,
                                                                       std::int64_t k) const
{
    const QString prefix = resultId(layer, QString());
    std::shared_ptr<const LayerFactorization> best;
    auto rank = [&](const LayerFactorization& f) {
        return std::tuple(std::abs(f.result->k - k), f.result->l != s.effectiveL(), f.result->finalError);
    };
    for (const Entry& e : m_lru) {
        if (!e.id.startsWith(prefix)) continue;
        auto f = std::static_pointer_cast<const LayerFactorization>(e.keepAlive);
        if (!f->refined || !f->result || f->settings.objective != s.objective ||
            f->settings.calibration != s.calibration || f->settings.paths != s.paths)
            continue;
        if (!best || rank(*f) < rank(*best)) best = std::move(f);
    }
    return best;
}

void FactorCache::clear()
{
    m_lru.clear();
    m_index.clear();
    m_bytes = 0;
}

}  // namespace mdbf::studio
