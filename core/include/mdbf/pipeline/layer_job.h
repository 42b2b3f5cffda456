#pragma once
// One layer through the engine (docs/ARCHITECTURE.md, "The per-layer chain"): its weights from the
// checkpoint, the matrix the objective fits, the decomposition every closed form of the layer starts
// from, the factorization, and what the views show of a result. Whole-model quantization, the study,
// `mdbf factorize` and the studio's inspector and Apply run a layer through these same steps, so
// equal settings give equal bits whichever front end asked.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <Eigen/Core>

#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"
#include "mdbf/factor/envelope_spectra.h"
#include "mdbf/factor/factor_result.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/input_gram.h"
#include <string>
#include <string_view>

#include "mdbf/factor/decomposition_cache.h"
#include "mdbf/factor/layer_svd.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/io/checkpoint.h"

namespace mdbf::pipeline {

/// The calibration statistics of one projection's inputs for an activation-aware objective.
struct LayerStatistics {
    VectorF channelWeights;     ///< diag: d_j = mean(x_j²), m entries
    Eigen::MatrixXd inputGram;  ///< gram, and with `cross`: H = XᵀX / N, m×m (empty otherwise)
    /// Sequential runs: C = XᵀX_ref / N (m×m), X the inputs in the partly quantized model and X_ref
    /// in the original. When set (with inputGram) for the gram objective, the layer is fitted to
    /// outputMatchingTarget(W) instead of W; the diagonal objective ignores it (a diagonal H cannot
    /// carry the correction). Empty otherwise.
    Eigen::MatrixXd cross;
    /// gram: inputGram prepared for the factorizer (LayerJob::prepareGram), shared by every
    /// factorization of the layer; null: each prepares its own.
    std::shared_ptr<const factor::InputGram> preparedGram;
};

/// `statistics` as bytes, to hand a layer's statistics to another process: each of the channel
/// weights, the Gram and the cross matrix as its shape and native-endian elements. Never throws
/// except std::bad_alloc.
std::string encodeStatistics(const LayerStatistics& statistics);

/// The statistics encodeStatistics made. Throws FormatError when the bytes are not such a record.
LayerStatistics decodeStatistics(std::string_view bytes);

/// The weights whose error under H measures the output error against the original model: with
/// inputs X in the quantized model and X_ref in the original, ‖XŴᵀ − X_ref Wᵀ‖² / N equals
/// tr((Ŵ − W*) H (Ŵ − W*)ᵀ) plus a constant for W* = W + W (Cᵀ − H) H_λ⁻¹, H_λ = H + λ·mean(diag H)·I
/// (exact for λ = 0; W* = W when C = H, i.e. when the inputs agree). Takes W (n×m), H and C (m×m),
/// λ ≥ 0. Throws InvalidArgument on a shape mismatch, a negative λ or an H_λ that is not positive
/// definite.
RowMatrixF outputMatchingTarget(const RowMatrixF& W, const Eigen::MatrixXd& gram, const Eigen::MatrixXd& cross,
                                double damping);

/// Where a run reads and stores layer decompositions (docs/ALGORITHM.md §4.1).
struct DecompositionStore {
    std::shared_ptr<const factor::DecompositionCache> cache;  ///< null: every decomposition is computed
    /// Identity of the calibration statistics the weighted objectives decompose with (what they
    /// depend on: text, window, model files); empty: only plain-objective decompositions are cached.
    std::string calibration;
};

/// Engine settings shared by every layer of a run.
struct EngineSettings {
    std::uint64_t seed = 0;       ///< seeds the factorizer's power iterations
    int innerIterations = 3;      ///< ADMM steps per half-step
    double rhoStart = 0.03;       ///< ρ_0 of the ADMM penalty ramp
    double rhoPower = 3.0;        ///< power of the ADMM penalty ramp
    double relaxation = 1.0;      ///< over-relaxation α of the ADMM projection
    double stallTolerance = 1e-5; ///< early end of a stalled refinement (factor::FactorizerOptions)
    double targetDamping = 0.01;  ///< λ of outputMatchingTarget
    DecompositionStore decompositions;  ///< the decomposition cache of the run (none by default)
};

/// What one layer is factorized with.
struct LayerJob {
    factor::LayerQuantSettings settings;  ///< method, budget, l, P, iterations, objective (not dense)
    LayerStatistics statistics;           ///< what the objective needs: channel weights or a Gram matrix
    EngineSettings engine;

    /// The engine options of this job with `iterations` outer iterations per path (the settings'
    /// count when negative). Throws InvalidArgument when the objective's statistics are missing or
    /// the options are invalid.
    factor::FactorizerOptions options(int iterations = -1) const;

    /// Checks what options() checks without copying the statistics (a Gram matrix may be a gigabyte).
    /// Throws InvalidArgument as options() does.
    void validate() const;

    /// True when the fit is to outputMatchingTarget(W) rather than W (gram with cross statistics).
    bool matchesOutputs() const;

    /// Gram objective: prepares the weighting of statistics.inputGram once (statistics.preparedGram)
    /// for a caller about to factorize this layer more than once, so that the m×m eigendecomposition
    /// is not repeated by each run; options() hands it on. No-op for the other objectives or when it
    /// is already prepared. Throws InvalidArgument as options() and InputGram::prepare do.
    void prepareGram();

private:
    factor::FactorizerOptions settingsOptions(int iterations) const;
};

/// The float32 weights of layer `name` (n×m; a tied head reads the embedding table). The tensor's
/// mapped bytes are dropped from resident memory afterwards (io::releaseMappedPages), so a pass over
/// a large checkpoint does not accumulate the file in RSS. Throws FormatError naming the file and
/// tensor when it is missing or not a non-empty matrix.
RowMatrixF loadLayerWeights(const io::Checkpoint& checkpoint, const std::string& name);

/// The bias of layer `name` as float32, or an empty vector when the checkpoint holds none. Throws
/// FormatError for an unreadable tensor.
VectorF loadLayerBias(const io::Checkpoint& checkpoint, const std::string& name);

/// The matrix `job` fits for weights W: W itself, or outputMatchingTarget(W) when the job matches
/// outputs. Throws what outputMatchingTarget throws.
RowMatrixF fittedWeights(const RowMatrixF& W, const LayerJob& job);

/// The decomposition every closed form of this layer under the job's objective starts from (the
/// SVD of the objective's target of `fitted`), for any budget and l. Uses ctx.threadCount() threads;
/// throws InvalidArgument for non-finite weights or unusable statistics, Cancelled when a stop is
/// requested before it starts.
std::shared_ptr<const factor::LayerSvd> decomposeLayer(const RowMatrixF& fitted, const LayerJob& job,
                                                       const RunContext& ctx = {});


/// A layer's decomposition and where it came from.
struct LayerDecomposition {
    std::shared_ptr<const factor::LayerSvd> svd;  ///< never null
    bool cached = false;  ///< read from job.engine.decompositions (then svd->seconds() is 0)
    std::string warning;  ///< why it could not be stored in the cache; empty otherwise
};

/// decomposeLayer() through job.engine.decompositions: the entry for projection `name` of
/// `checkpoint` under the job's objective when the cache holds one, else computed and stored (a
/// failed write leaves `warning`, the run goes on). Always computed without a cache, for a job that
/// matches outputs (its target depends on the layers quantized before it) and for a weighted
/// objective without a calibration identity. Throws what decomposeLayer and
/// DecompositionKey::forFile throw.
LayerDecomposition decomposeLayerCached(const RowMatrixF& fitted, const LayerJob& job, const io::Checkpoint& checkpoint,
                                        const std::string& name, const RunContext& ctx = {});

/// Factorizes `fitted` from its decomposition with `iterations` outer iterations per path (the
/// settings' count when negative; 0 is the closed form). A stop request returns the best result so
/// far with termination Cancelled. `onIteration` (optional) receives the per-iteration feed on the
/// calling thread. Throws InvalidArgument for an infeasible budget or a decomposition of another
/// matrix.
factor::FactorResult factorizeLayer(const RowMatrixF& fitted, const factor::LayerSvd& decomposition,
                                    const LayerJob& job, int iterations = -1, const RunContext& ctx = {},
                                    std::function<void(const factor::IterationReport&)> onIteration = {});

/// The same, letting go of `decomposition` once the start is formed (factor::Factorizer::run): hand
/// over the only reference and the refinement runs without it in memory.
factor::FactorResult factorizeLayer(const RowMatrixF& fitted, std::shared_ptr<const factor::LayerSvd> decomposition,
                                    const LayerJob& job, int iterations = -1, const RunContext& ctx = {},
                                    std::function<void(const factor::IterationReport&)> onIteration = {});

/// factorizeLayer() started from `previous` (a result of the same layer, objective and path count at
/// any k and l) instead of the closed form: Factorizer::refineFrom (docs/ALGORITHM.md §5.7). The
/// result's initialError is the warm start's. Throws what factorizeLayer throws, and
/// InvalidArgument when `previous` does not fit the layer, the objective or the path count.
factor::FactorResult refineLayer(const RowMatrixF& fitted, const factor::LayerSvd& decomposition, const LayerJob& job,
                                 const factor::FactorResult& previous, int iterations = -1, const RunContext& ctx = {},
                                 std::function<void(const factor::IterationReport&)> onIteration = {});

/// Rows a closed-form preview estimates its errors from before the exact values: at 4096×11008 a
/// sixteenth of the cost of forming Ŵ, and within 2e-4 of the exact error on 7B-shaped random weights
/// (README, Benchmarks).
inline constexpr std::int64_t kPreviewSampleRows = 256;

/// The closed form of `fitted` under `job` with its errors estimated from `sampleRows` evenly spaced
/// rows (factor::FactorizerOptions::errorSampleRows; exact when sampleRows is 0 or ≥ n): what a
/// preview shows first, at sampleRows/n of the cost of forming Ŵ. Throws what factorizeLayer throws,
/// and Cancelled when ctx's stop is requested before the preview is complete (when sampleRows
/// estimates; an exact closed form completes, as factorizeLayer's does).
factor::FactorResult previewLayer(const RowMatrixF& fitted, const factor::LayerSvd& decomposition,
                                  const LayerJob& job, std::int64_t sampleRows, const RunContext& ctx = {});

/// What the views show of a result besides the result itself.
struct LayerView {
    factor::EnvelopeSpectra spectra;             ///< of the closed-form start |U'|, |V'| at the result's k, l
    std::shared_ptr<const RowMatrixH> residual;  ///< W − Ŵ, n×m, in FP16 (for display only)
};

/// The residual `fitted` − Ŵ of `result` in FP16 (n×m), forming Ŵ once (O(n·m·k)). When `result`
/// holds sampled error estimates (errorSampleRows > 0) they are replaced by the exact errors under
/// the job's objective, computed from the same Ŵ. Throws what reconstruct and
/// factor::relativeError throw (Cancelled when ctx's stop is requested while Ŵ is formed).
std::shared_ptr<const RowMatrixH> residualOf(const RowMatrixF& fitted, factor::FactorResult& result, const LayerJob& job,
                                             const RunContext& ctx = {});

/// The view of `result`, computed from the weights it fitted and their decomposition: the envelope
/// spectra and residualOf() (which may complete `result`'s errors). Throws what EnvelopeSpectra and
/// residualOf throw (Cancelled when ctx's stop is requested, in either).
LayerView describeLayer(const RowMatrixF& fitted, const factor::LayerSvd& decomposition, factor::FactorResult& result,
                        const LayerJob& job, const RunContext& ctx = {});

}  // namespace mdbf::pipeline
