#include "mdbf/factor/factorizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>

#include "factor/factor_detail.h"
#include "factor/warm_start.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/admm_refiner.h"
#include "mdbf/factor/closed_form_init.h"
#include "mdbf/factor/gram_refiner.h"
#include "mdbf/factor/input_gram.h"
#include "mdbf/factor/low_rank.h"
#include "mdbf/factor/path_products.h"

namespace mdbf::factor {

namespace detail {

// What the objective weighs the error with: nothing (plain), √(damped d) per input channel
// (diag), or the prepared Gram matrix (gram).
struct ObjectiveWeighting {
    std::optional<VectorF> sqrtD;
    std::shared_ptr<const InputGram> gram;
};

}  // namespace detail

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string fixed4(double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4f", v);
    return buf;
}

void requireFinite(const RowMatrixF& W)
{
    for (Eigen::Index i = 0; i < W.rows(); ++i)
        for (Eigen::Index j = 0; j < W.cols(); ++j)
            if (!std::isfinite(W(i, j)))
                throw InvalidArgument("weight matrix has a non-finite value at (" + std::to_string(i) + ", " +
                                      std::to_string(j) + ")");
}

// √(d_j + ε·mean(d)) for DiagonalWeighted, empty for Plain.
std::optional<VectorF> sqrtChannelWeights(const FactorizerOptions& o, std::int64_t m)
{
    if (o.objective != Objective::DiagonalWeighted) return std::nullopt;
    const VectorF& d = o.channelWeights;
    if (d.size() != m)
        throw InvalidArgument("diagonal objective: " + std::to_string(d.size()) + " channel weights for a layer with " +
                              std::to_string(m) + " input channels");
    double mean = 0.0;
    for (Eigen::Index j = 0; j < d.size(); ++j) {
        if (!std::isfinite(d[j]) || d[j] < 0.0f)
            throw InvalidArgument("diagonal objective: channel weight " + std::to_string(j) +
                                  " is negative or not finite");
        mean += d[j];
    }
    mean /= static_cast<double>(m);
    VectorF out(m);
    for (Eigen::Index j = 0; j < m; ++j) {
        const double damped = d[j] + o.damping * mean;
        if (!(damped > 0.0))
            throw InvalidArgument("diagonal objective: channel " + std::to_string(j) +
                                  " has zero weight after damping (all-zero weights or damping 0)");
        out[j] = static_cast<float>(std::sqrt(damped));
    }
    return out;
}

// ‖(W − Ŵ) S‖ / ‖W S‖ with S = diag(scale) (identity when absent), in double.
double relErr(const RowMatrixF& W, const RowMatrixF& approx, const VectorF* scale)
{
    double num = 0.0;
    double den = 0.0;
    for (Eigen::Index i = 0; i < W.rows(); ++i) {
        for (Eigen::Index j = 0; j < W.cols(); ++j) {
            const double s = scale ? static_cast<double>((*scale)[j]) : 1.0;
            const double w = static_cast<double>(W(i, j)) * s;
            const double e = w - static_cast<double>(approx(i, j)) * s;
            num += e * e;
            den += w * w;
        }
    }
    if (den == 0.0) return num == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
    return std::sqrt(num / den);
}

detail::ObjectiveWeighting makeWeighting(const FactorizerOptions& o, std::int64_t m)
{
    detail::ObjectiveWeighting w;
    w.sqrtD = sqrtChannelWeights(o, m);
    if (o.objective == Objective::Gram) {
        if (o.inputGram.rows() != m || o.inputGram.cols() != m)
            throw InvalidArgument("gram objective: a " + std::to_string(o.inputGram.rows()) + "x" +
                                  std::to_string(o.inputGram.cols()) + " input Gram matrix for a layer with " +
                                  std::to_string(m) + " input channels");
        if (!o.preparedGram) {
            w.gram = std::make_shared<const InputGram>(InputGram::prepare(o.inputGram, o.damping));
        } else if (o.preparedGram->size() != m || o.preparedGram->damping() != o.damping) {
            throw InvalidArgument("gram objective: the prepared Gram weighting (" +
                                  std::to_string(o.preparedGram->size()) + " channels, damping " +
                                  std::to_string(o.preparedGram->damping()) + ") does not fit a layer with " +
                                  std::to_string(m) + " input channels and damping " + std::to_string(o.damping));
        } else {
            w.gram = o.preparedGram;
        }
    }
    return w;
}

// The relative error under the objective of `w` (see relativeError).
double objectiveError(const RowMatrixF& W, const RowMatrixF& approx, const detail::ObjectiveWeighting& w, int threads)
{
    if (!w.gram) return relErr(W, approx, w.sqrtD ? &*w.sqrtD : nullptr);
    const RowMatrixF e = W - approx;
    const double num = w.gram->weightedSquaredNorm(e, threads);
    const double den = w.gram->weightedSquaredNorm(W, threads);
    if (den == 0.0) return num == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
    return std::sqrt(num / den);
}

// The matrix whose SVD starts the factorization (see Factorizer::target).
RowMatrixF weightedTarget(const RowMatrixF& W, const detail::ObjectiveWeighting& w, int threads)
{
    if (w.sqrtD) return W * w.sqrtD->asDiagonal();
    if (w.gram) {
        RowMatrixF y(W.rows(), W.cols());
        detail::parallelProduct(W, w.gram->sqrt(), y, threads);
        return y;
    }
    return W;
}

// The target of the objective: W itself under Plain (no copy: at 4096×11008 one is 180 MB), else
// weightedTarget(W) kept in `storage`.
const RowMatrixF& targetOf(const RowMatrixF& W, const detail::ObjectiveWeighting& w, int threads,
                           std::optional<RowMatrixF>& storage)
{
    if (!w.sqrtD && !w.gram) return W;
    return storage.emplace(weightedTarget(W, w, threads));
}

double rms(const auto& x)
{
    return x.size() == 0 ? 0.0 : std::sqrt(static_cast<double>(x.squaredNorm()) / static_cast<double>(x.size()));
}

// Splits the scale evenly across the stored envelopes (the product is unchanged) so that FP16
// rounding sees values of similar magnitude, far from its overflow and subnormal ranges.
void balanceEnvelopes(kernels::FactorPath& p, Method method)
{
    if (method == Method::Dbf) {
        const double ra = rms(p.A), rc = rms(p.Qa), rb = rms(p.B);
        if (ra > 0.0 && rc > 0.0 && rb > 0.0) {
            const double g = std::cbrt(ra * rc * rb);
            p.A *= static_cast<float>(g / ra);
            p.Qa *= static_cast<float>(g / rc);
            p.B *= static_cast<float>(g / rb);
        }
        return;
    }
    for (Eigen::Index j = 0; j < p.A.cols(); ++j) {
        const double ra = rms(p.A.col(j)), rq = rms(p.Qa.col(j));
        if (ra > 0.0 && rq > 0.0) {
            const double alpha = std::sqrt(rq / ra);
            p.A.col(j) *= static_cast<float>(alpha);
            p.Qa.col(j) /= static_cast<float>(alpha);
        }
        const double rb = rms(p.B.col(j)), rqb = rms(p.Qb.col(j));
        if (rb > 0.0 && rqb > 0.0) {
            const double beta = std::sqrt(rqb / rb);
            p.B.col(j) *= static_cast<float>(beta);
            p.Qb.col(j) /= static_cast<float>(beta);
        }
    }
    const double sf = std::sqrt(rms(p.A) * rms(p.Qa));
    const double sg = std::sqrt(rms(p.B) * rms(p.Qb));
    if (sf > 0.0 && sg > 0.0) {
        const float half = static_cast<float>(std::sqrt(sg / sf));
        p.A *= half;
        p.Qa *= half;
        p.B /= half;
        p.Qb /= half;
    }
}

// The deployed form of a float path: objective folded into B, dbf merged, balanced, FP16-rounded.
kernels::FactorPath deploy(kernels::FactorPath p, Method method, const std::optional<VectorF>& sqrtD)
{
    if (sqrtD) p.B = sqrtD->cwiseInverse().asDiagonal() * p.B;
    if (method == Method::Dbf) {
        p.Qa = p.Qa.cwiseProduct(p.Qb);
        p.Qb.setOnes();
    }
    balanceEnvelopes(p, method);
    roundEnvelopesToHalf(p);
    return p;
}

bool envelopesFinite(const std::vector<kernels::FactorPath>& paths)
{
    for (const auto& p : paths)
        if (!p.A.allFinite() || !p.Qa.allFinite() || !p.Qb.allFinite() || !p.B.allFinite()) return false;
    return true;
}

/// The refiner's options for envelope rank `l` (1 under dbf, whatever o.l says).
AdmmOptions refinerOptions(const FactorizerOptions& o, int l)
{
    return {.l = l, .outerIterations = o.outerIterations, .innerIterations = o.innerIterations, .reg = o.reg,
            .powerIterations = o.powerIterations, .oversample = o.oversample, .rhoStart = o.rhoStart,
            .rhoPower = o.rhoPower, .relaxation = o.relaxation, .stallTolerance = o.stallTolerance};
}

bool settled(const std::vector<double>& h, double tolerance)
{
    if (h.size() < 2) return false;
    const std::size_t window = std::min<std::size_t>(5, h.size() - 1);
    double worst = 0.0;
    for (std::size_t i = h.size() - window; i < h.size(); ++i) worst = std::max(worst, std::abs(h[i] - h[i - 1]));
    return worst <= tolerance * h.back();
}

}  // namespace

std::string FactorizerOptions::validate() const
{
    if (l < 1) return "envelope rank l = " + std::to_string(l) + " must be at least 1";
    if (method == Method::Dbf && l != 1) return "method dbf has envelope rank 1 (got l = " + std::to_string(l) + ")";
    if (paths < 1) return "path count P = " + std::to_string(paths) + " must be at least 1";
    if (k < 0) return "middle dimension k = " + std::to_string(k) + " must be ≥ 0 (0 = from the bit budget)";
    if (!(damping >= 0.0) || !std::isfinite(damping)) return "damping must be finite and ≥ 0";
    if (!(convergenceTolerance >= 0.0)) return "convergence tolerance must be ≥ 0";
    if (errorSampleRows < 0) return "error sample of " + std::to_string(errorSampleRows) + " rows must be ≥ 0";
    if (std::string why = polish.validate(); !why.empty()) return why;
    if (polish.sweeps > 0 && objective == Objective::Gram)
        return "the envelope polish works under the plain and diagonal objectives, not gram";
    return refinerOptions(*this, l).validate();
}

Factorizer::Factorizer(FactorizerOptions options) : m_options(std::move(options))
{
    if (std::string why = m_options.validate(); !why.empty()) throw InvalidArgument("factorization options: " + why);
}

BitBudget Factorizer::budget(std::int64_t n, std::int64_t m) const
{
    const int l = m_options.method == Method::Dbf ? 1 : m_options.l;
    if (m_options.k > 0) return bitBudgetForK(n, m, m_options.k, m_options.method, l, m_options.paths);
    return computeBitBudget(n, m, m_options.bpw, m_options.method, l, m_options.paths);
}

namespace {

void requireNonEmpty(const RowMatrixF& W)
{
    if (W.rows() < 1 || W.cols() < 1)
        throw InvalidArgument("cannot factorize an empty " + std::to_string(W.rows()) + "x" + std::to_string(W.cols()) +
                              " matrix");
}

}  // namespace

RowMatrixF Factorizer::target(const RowMatrixF& W) const
{
    requireNonEmpty(W);
    requireFinite(W);
    return weightedTarget(W, makeWeighting(m_options, W.cols()), 0);
}

FactorResult Factorizer::run(const RowMatrixF& W, const RunContext& ctx) const
{
    const auto start = Clock::now();
    budget(W.rows(), W.cols());  // refuse an infeasible budget before the expensive SVD
    requireNonEmpty(W);
    requireFinite(W);
    const detail::ObjectiveWeighting weighting = makeWeighting(m_options, W.cols());
    std::optional<RowMatrixF> weighted;
    const RowMatrixF& Y = targetOf(W, weighting, ctx.threadCount(), weighted);
    auto svd = std::make_shared<const LayerSvd>(LayerSvd::compute(Y, ctx));
    const double svdSeconds = svd->seconds();
    return runWithSvd(W, Y, weighting, std::move(svd), nullptr, ctx, secondsSince(start) - svdSeconds, svdSeconds);
}

namespace {

// A reference that does not own `svd`: the caller keeps it alive for the call.
std::shared_ptr<const LayerSvd> borrowed(const LayerSvd& svd) { return {std::shared_ptr<const void>(), &svd}; }

}  // namespace

FactorResult Factorizer::run(const RowMatrixF& W, const LayerSvd& targetSvd, const RunContext& ctx) const
{
    return runGiven(W, borrowed(targetSvd), nullptr, ctx);
}

FactorResult Factorizer::run(const RowMatrixF& W, std::shared_ptr<const LayerSvd> targetSvd, const RunContext& ctx) const
{
    if (!targetSvd) throw InvalidArgument("factorization: no decomposition given");
    return runGiven(W, std::move(targetSvd), nullptr, ctx);
}

FactorResult Factorizer::refineFrom(const RowMatrixF& W, const LayerSvd& targetSvd, const FactorResult& previous,
                                    const RunContext& ctx) const
{
    if (previous.objective != m_options.objective)
        throw InvalidArgument("warm start: the previous result is under the " +
                              std::string(objectiveName(previous.objective)) + " objective, these options under " +
                              std::string(objectiveName(m_options.objective)));
    if (previous.pathCount != m_options.paths)
        throw InvalidArgument("warm start: the previous result has " + std::to_string(previous.pathCount) +
                              " paths, these options ask for " + std::to_string(m_options.paths));
    return runGiven(W, borrowed(targetSvd), &previous, ctx);
}

FactorResult Factorizer::runGiven(const RowMatrixF& W, std::shared_ptr<const LayerSvd> svd, const FactorResult* previous,
                                  const RunContext& ctx) const
{
    const LayerSvd& targetSvd = *svd;
    const auto start = Clock::now();
    requireNonEmpty(W);
    requireFinite(W);
    const detail::ObjectiveWeighting weighting = makeWeighting(m_options, W.cols());
    std::optional<RowMatrixF> weighted;
    const RowMatrixF& Y = targetOf(W, weighting, ctx.threadCount(), weighted);
    if (targetSvd.rows() != Y.rows() || targetSvd.cols() != Y.cols())
        throw InvalidArgument("the SVD given is of a " + std::to_string(targetSvd.rows()) + "x" +
                              std::to_string(targetSvd.cols()) + " matrix, the layer is " + std::to_string(Y.rows()) +
                              "x" + std::to_string(Y.cols()));
    const double norm = std::sqrt(Y.cast<double>().squaredNorm());
    if (std::abs(norm - targetSvd.frobeniusNorm()) > 1e-3 * std::max(norm, targetSvd.frobeniusNorm()) + 1e-30)
        throw InvalidArgument("the SVD given does not belong to this layer and objective (Frobenius norm " +
                              std::to_string(targetSvd.frobeniusNorm()) + " vs " + std::to_string(norm) + ")");
    return runWithSvd(W, Y, weighting, std::move(svd), previous, ctx, secondsSince(start), 0.0);
}

FactorResult Factorizer::runWithSvd(const RowMatrixF& W, const RowMatrixF& Y, const detail::ObjectiveWeighting& weighting,
                                    std::shared_ptr<const LayerSvd> svd, const FactorResult* previous,
                                    const RunContext& ctx, double startSeconds, double svdSeconds) const
{
    const auto start = Clock::now();
    auto elapsed = [&] { return startSeconds + svdSeconds + secondsSince(start); };
    const FactorizerOptions& o = m_options;
    const BitBudget b = budget(W.rows(), W.cols());
    const int l = o.method == Method::Dbf ? 1 : o.l;
    const auto& sqrtD = weighting.sqrtD;
    const bool weighted = o.objective != Objective::Plain;
    const int threads = ctx.threadCount();
    auto errorOf = [&](const RowMatrixF& approx) { return objectiveError(W, approx, weighting, threads); };
    detail::ThreadScope threadScope(threads);

    FactorResult r{.n = W.rows(), .m = W.cols(), .k = b.k, .l = l, .pathCount = o.paths, .method = o.method,
                   .objective = o.objective, .bpw = b.bpw, .clamped = b.clamped, .unclampedK = b.unclampedK,
                   .svdSeconds = svdSeconds};

    // Closed form (§4) or warm start (§5.7), deployed as it would be shipped.
    // Under Gram the paths are in W's coordinates; otherwise in those of the target Y.
    const InputGram* gram = weighting.gram.get();
    // A preview that a newer request replaces is abandoned while its start is formed (about a
    // second at 7B shapes); every other run completes the start, so that a stop returns it.
    const bool preview = o.outerIterations == 0 && o.errorSampleRows > 0 && o.errorSampleRows < W.rows();
    RunContext startCtx = ctx;
    if (!preview) startCtx.stop = {};
    const std::vector<kernels::FactorPath> start0 =
        previous  ? detail::warmStartPaths(*previous, gram ? W : Y, *svd, sqrtD, gram, b.k, l, startCtx)
        : gram    ? closedFormInitGram(W, *gram, *svd, b.k, l, o.paths, startCtx)
                  : closedFormInit(Y, *svd, b.k, l, o.paths, startCtx);
    svd.reset();  // the start is all that is needed of it from here
    std::vector<kernels::FactorPath> initial;
    for (const auto& p : start0) initial.push_back(deploy(p, o.method, sqrtD));
    if (preview) {
        // A preview: the errors from a stratified sample of rows (each row's error is independent of
        // the others under every objective), at errorSampleRows/n of the cost of forming Ŵ.
        ctx.throwIfStopped();
        std::vector<Eigen::Index> rows(static_cast<std::size_t>(o.errorSampleRows));
        for (std::size_t i = 0; i < rows.size(); ++i)
            rows[i] = static_cast<Eigen::Index>((2 * static_cast<std::int64_t>(i) + 1) * W.rows() / (2 * o.errorSampleRows));
        const RowMatrixF sampleW = W(rows, Eigen::all);
        const RowMatrixF sampleApprox = reconstructRows(initial, rows, threads);
        r.initialError = objectiveError(sampleW, sampleApprox, weighting, threads);
        r.errorSampleRows = o.errorSampleRows;
        r.paths = std::move(initial);
        r.finalError = r.initialError;
        r.finalPlainError = weighted ? relErr(sampleW, sampleApprox, nullptr) : r.initialError;
        r.message = "closed form only (0 iterations): " + r.errorLabel() + " ≈ " + fixed4(r.initialError) +
                    " (estimated from " + std::to_string(o.errorSampleRows) + " of " + std::to_string(W.rows()) +
                    " rows)";
        r.seconds = elapsed();
        return r;
    }
    // Kept only while an early return may need it: refinement's own buffers take its place.
    std::optional<RowMatrixF> initialW(reconstruct(initial, threads));
    r.initialError = errorOf(*initialW);
    const double normY = std::sqrt(Y.cast<double>().squaredNorm());

    auto finish = [&](std::vector<kernels::FactorPath> paths, double error, const RowMatrixF& approx) {
        r.paths = std::move(paths);
        r.finalError = error;
        r.finalPlainError = weighted ? relErr(W, approx, nullptr) : error;
        r.seconds = elapsed();
        return std::move(r);
    };

    if (normY == 0.0) {
        r.termination = Termination::Converged;
        r.message = "all-zero weights: the factorization is exactly zero";
        return finish(initial, r.initialError, *initialW);
    }
    if (o.outerIterations == 0) {
        r.termination = Termination::IterationLimit;
        r.message = "closed form only (0 iterations): " + r.errorLabel() + " " + fixed4(r.initialError);
        return finish(initial, r.initialError, *initialW);
    }
    if (ctx.stopRequested()) {
        r.termination = Termination::Cancelled;
        r.message = "cancelled before refinement; returning the closed form";
        return finish(initial, r.initialError, *initialW);
    }
    initialW.reset();

    // ADMM refinement (§5.5), one path at a time against the residual of the others.
    AdmmOptions admm = refinerOptions(o, l);
    std::vector<MatrixF> Fs, Gs;
    for (const auto& p : start0) {
        Fs.push_back(denseF(p));
        Gs.push_back(denseG(p));
    }
    std::vector<bool> refined(start0.size(), false);
    bool cancelled = false;
    bool failed = false;
    bool stalled = false;
    std::string failure;
    const int total = o.paths * o.outerIterations;
    const RowMatrixF& refineTarget = weighting.gram ? W : Y;
    for (int p = 0; p < o.paths && !cancelled && !failed; ++p) {
        // One path refines against the target itself; more against the residual of the others.
        std::optional<RowMatrixF> othersRemoved;
        if (o.paths > 1) {
            othersRemoved.emplace(refineTarget);
            for (int q = 0; q < o.paths; ++q)
                if (q != p)
                    detail::parallelProduct(Fs[static_cast<std::size_t>(q)], Gs[static_cast<std::size_t>(q)],
                                            *othersRemoved, threads, detail::Combine::Subtract);
        }
        const RowMatrixF& residual = othersRemoved ? *othersRemoved : refineTarget;
        admm.seed = detail::mixSeed(o.seed, static_cast<std::uint64_t>(p), 0x51);
        const int offset = r.iterations;
        RunContext pathCtx = ctx;
        pathCtx.progress = [&ctx, offset, total](const Progress& pr) { ctx.report("refine", offset + pr.done, total); };
        auto callback = [&](int it, double rel) {
            if (o.onIteration) o.onIteration(IterationReport{offset + it, p, rel, elapsed()});
        };
        // The start moves into the refiner (no copy of it outlives the setup); a path left
        // unrefined gets it back from start0 below.
        MatrixF& f0 = Fs[static_cast<std::size_t>(p)];
        MatrixF& g0 = Gs[static_cast<std::size_t>(p)];
        AdmmOutcome out = weighting.gram
                              ? GramRefiner(admm).refine(residual, *weighting.gram, std::move(f0), std::move(g0), normY,
                                                        pathCtx, callback)
                              : AdmmRefiner(admm).refine(residual, std::move(f0), std::move(g0), normY, pathCtx,
                                                         callback);
        r.errorHistory.insert(r.errorHistory.end(), out.history.begin(), out.history.end());
        r.iterations += out.iterations;
        if (out.iterations > 0) {
            Fs[static_cast<std::size_t>(p)] = std::move(out.F);
            Gs[static_cast<std::size_t>(p)] = std::move(out.G);
            refined[static_cast<std::size_t>(p)] = true;
        } else {
            Fs[static_cast<std::size_t>(p)] = denseF(start0[static_cast<std::size_t>(p)]);
            Gs[static_cast<std::size_t>(p)] = denseG(start0[static_cast<std::size_t>(p)]);
        }
        cancelled = out.cancelled;
        failed = out.failed;
        stalled = stalled || out.stalled;
        failure = out.message;
    }

    std::vector<kernels::FactorPath> raws;
    for (std::size_t p = 0; p < start0.size(); ++p)
        raws.push_back(refined[p] ? detail::extractPath(Fs[p], Gs[p], l) : start0[p]);
    // The polish (§10) works on the stored parameters, path by path against the others' residual.
    for (std::size_t p = 0; p < raws.size() && o.polish.sweeps > 0 && !cancelled && !failed; ++p) {
        RowMatrixF residual = Y;
        for (std::size_t q = 0; q < raws.size(); ++q)
            if (q != p)
                detail::parallelProduct(denseF(raws[q]), denseG(raws[q]), residual, threads, detail::Combine::Subtract);
        const PolishOutcome polished = polishPath(residual, raws[p], o.polish, normY, ctx);
        r.polishHistory.insert(r.polishHistory.end(), polished.history.begin(), polished.history.end());
        cancelled = polished.cancelled;
    }
    std::vector<kernels::FactorPath> finalPaths;
    for (const auto& raw : raws) finalPaths.push_back(deploy(raw, o.method, sqrtD));
    const bool usable = envelopesFinite(finalPaths);
    const RowMatrixF finalW = reconstruct(usable ? finalPaths : initial, threads);
    const double finalError = usable ? errorOf(finalW) : std::numeric_limits<double>::infinity();

    const std::string summary = std::to_string(r.iterations) + " of " + std::to_string(total) + " iterations, " +
                                r.errorLabel() + " " + fixed4(r.initialError) + " -> ";
    if (cancelled) {
        r.termination = Termination::Cancelled;
        r.message = "cancelled after " + summary;
    } else if (failed) {
        r.termination = Termination::Failed;
        r.message = failure + "; " + summary;
    } else if (!usable) {
        r.termination = Termination::Failed;
        r.message = "envelope values exceed the FP16 range; " + summary;
    } else {
        r.termination = stalled || settled(r.errorHistory, o.convergenceTolerance) ? Termination::Converged
                                                                                    : Termination::IterationLimit;
        r.message = (stalled ? "error stalled; " : "") + summary;
    }
    if (!(finalError <= r.initialError)) {
        r.message += fixed4(r.initialError) + " (kept the closed form: refinement ended at " + fixed4(finalError) + ")";
        return finish(initial, r.initialError, usable ? reconstruct(initial, threads) : finalW);
    }
    r.message += fixed4(finalError);
    return finish(std::move(finalPaths), finalError, finalW);
}

double relativeError(const RowMatrixF& W, const RowMatrixF& approx, const FactorizerOptions& options)
{
    if (W.rows() != approx.rows() || W.cols() != approx.cols())
        throw InvalidArgument("relative error: shapes " + std::to_string(W.rows()) + "x" + std::to_string(W.cols()) +
                              " and " + std::to_string(approx.rows()) + "x" + std::to_string(approx.cols()) + " differ");
    return objectiveError(W, approx, makeWeighting(options, W.cols()), 0);
}

}  // namespace mdbf::factor
