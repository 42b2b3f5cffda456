#pragma once
// What the factorization service keeps per layer so that a setting seen before reappears at once
// (preview, apply and comparison share it): the layer's
// float32 weights and SVDs (one per objective and calibration, since the SVD is of the objective's
// target W, W·D^{1/2} or W·H^{1/2}; independent of budget and l), and the results for each setting,
// bounded by memory (least recently used evicted first). GUI-thread only; workers
// receive shared_ptr copies and hand new entries back through Job::post.

#include <cstdint>
#include <list>
#include <memory>
#include <optional>

#include <QHash>
#include <QString>

#include "mdbf/base/matrix.h"
#include "mdbf/factor/envelope_spectra.h"
#include "mdbf/factor/factor_result.h"
#include "factor_settings.h"
#include "mdbf/pipeline/layer_job.h"

namespace mdbf::factor {
class LayerSvd;
}

namespace mdbf::studio {

/// One factorization with what the views need, computed off the GUI thread.
struct LayerFactorization {
    std::shared_ptr<const factor::FactorResult> result;
    /// Of the closed-form start |U'|, |V'| at k; empty, like `residual`, until the views are computed.
    factor::EnvelopeSpectra spectra;
    /// W − Ŵ (n×m) in FP16, for the heatmap and histogram; null until a view asks for it (a preview
    /// shows first, an applied layer keeps none until it is looked at).
    std::shared_ptr<const RowMatrixH> residual;
    bool refined = false;                        ///< false: closed form only
    bool complete = true;                        ///< false: refinement was cancelled part way
    bool decompositionCached = false;            ///< its SVD was read from the on-disk decomposition cache
    FactorSettings settings;                     ///< the settings that asked for this result
    /// Refined from the result of these settings (a warm start, docs/ALGORITHM.md §5.7) rather
    /// than from the closed form; empty for a cold start.
    std::optional<FactorSettings> warmFrom;

    /// True when the result's errors are estimates from a sample of rows (a first preview).
    bool estimated() const { return result && result->errorSampleRows > 0; }

    /// Approximate bytes held (for the cache bound).
    std::size_t bytes() const;
};

/// True when `f` is what `s` asks for, or its closed-form first step: a closed form stands for any
/// iteration count (it is where the refinement starts), a refined result only for its own.
bool resultOf(const LayerFactorization& f, const FactorSettings& s);

/// One engine result for the views. With `withViews`, its envelope spectra at the result's k and l
/// and its residual W − Ŵ (Ŵ formed once; sampled error estimates in `result` are replaced by exact
/// ones under `job`'s objective: pipeline::describeLayer); without, neither (a first preview, or an
/// applied layer not looked at yet: withViews() adds them). `svd` must be the SVD the result was
/// computed from. Call on a worker thread (O(n·m·k) with the views); throws what describeLayer throws,
/// Cancelled when ctx's stop is requested while Ŵ is formed.
std::shared_ptr<const LayerFactorization> describeFactorization(const RowMatrixF& W, const factor::LayerSvd& svd,
                                                                factor::FactorResult result,
                                                                const FactorSettings& settings, bool refined,
                                                                const pipeline::LayerJob& job, bool withViews,
                                                                bool decompositionCached = false,
                                                                const RunContext& ctx = {});

/// `f` with its spectra, residual and exact errors, computed as describeFactorization does.
std::shared_ptr<const LayerFactorization> withViews(const RowMatrixF& W, const factor::LayerSvd& svd,
                                                    const LayerFactorization& f, const pipeline::LayerJob& job,
                                                    const RunContext& ctx = {});

/// The decomposition of projection `layer` of `checkpoint` for `job` (W: its float32 weights, n×m)
/// through the on-disk cache at factor::DecompositionCache::defaultFolder() (read at each call, so
/// $MDBF_CACHE_DIR applies): read when an entry exists, else computed and stored, so reopening a model
/// or restarting the studio does not redo it. `calibrationTag` identifies the statistics of a diag or
/// gram objective (StudioCalibration::tag). A failed write only leaves the result's warning. Throws
/// what pipeline::decomposeLayerCached throws.
pipeline::LayerDecomposition decomposeWithDiskCache(const RowMatrixF& W, pipeline::LayerJob job,
                                                    const io::Checkpoint& checkpoint, const QString& layer,
                                                    const QString& calibrationTag, const RunContext& ctx);

/// The per-layer inputs of every factorization of that layer.
struct LayerInputs {
    std::shared_ptr<const RowMatrixF> weights;      ///< W, float32, n×m
    std::shared_ptr<const factor::LayerSvd> svd;    ///< SVD of the objective's target (plain: W)
};

/// LRU store of layer inputs and results.
class FactorCache {
public:
    /// `maxBytes` bounds the results plus inputs kept (approximately).
    explicit FactorCache(std::size_t maxBytes = std::size_t{768} << 20);

    /// Inputs of `layer`, with the SVD stored under `svdKey` (FactorSettings::svdKey(); either
    /// pointer may be null when not computed yet).
    LayerInputs inputs(const QString& layer, const QString& svdKey = QStringLiteral("plain"));
    void setWeights(const QString& layer, std::shared_ptr<const RowMatrixF> w);
    /// Stores the SVD of the target of the objective named by `svdKey` for `layer`.
    void setSvd(const QString& layer, const QString& svdKey, std::shared_ptr<const factor::LayerSvd> svd);

    /// The result stored under (layer, key), or null.
    std::shared_ptr<const LayerFactorization> result(const QString& layer, const QString& key);
    void setResult(const QString& layer, const QString& key, std::shared_ptr<const LayerFactorization> r);

    /// The refinement of `layer` to warm-start `s` (at middle dimension k) from: among the refined
    /// results kept for the layer (complete, or cancelled with their best iterate) of the same
    /// objective, calibration and path count, the one nearest in k, then of the same l, then of
    /// the lowest error. Null when there is none. Does not count as a use for the LRU order.
    std::shared_ptr<const LayerFactorization> nearestRefinement(const QString& layer, const FactorSettings& s,
                                                                std::int64_t k) const;

    /// Forgets everything (a new model was opened).
    void clear();

    std::size_t bytes() const { return m_bytes; }

private:
    struct Entry {
        QString id;
        std::size_t bytes = 0;
        std::shared_ptr<const void> keepAlive;
    };
    void touch(const QString& id);
    void put(const QString& id, std::shared_ptr<const void> value, std::size_t bytes);
    void evict();

    std::size_t m_maxBytes;
    std::size_t m_bytes = 0;
    std::list<Entry> m_lru;  ///< most recent first
    QHash<QString, std::list<Entry>::iterator> m_index;
};

}  // namespace mdbf::studio
