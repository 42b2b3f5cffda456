#include "mdbf/factor/envelope_spectra.h"

#include <algorithm>
#include <string>

#include "mdbf/base/error.h"
#include "mdbf/factor/closed_form_init.h"
#include "mdbf/factor/low_rank.h"
#include "mdbf/factor/path_products.h"

namespace mdbf::factor {

namespace {

void fillSide(const MatrixF& magnitude, int l, int count, const std::stop_token& stop, VectorF& sigma, double& energy,
              double& share)
{
    sigma = leadingSingularValues(magnitude, std::max(count, l), kEnvelopeFitOptions, stop);
    energy = magnitude.cast<double>().squaredNorm();
    double head = 0.0;
    for (Eigen::Index i = 0; i < std::min<Eigen::Index>(l, sigma.size()); ++i)
        head += static_cast<double>(sigma[i]) * sigma[i];
    // Power-iteration estimates can overshoot the true energy by rounding; a share is at most 1.
    share = energy > 0.0 ? std::min(1.0, head / energy) : 1.0;
}

}  // namespace

EnvelopeSpectra EnvelopeSpectra::ofFactors(const MatrixF& F, const MatrixF& G, int l, int count,
                                           const std::stop_token& stop)
{
    if (l < 1) throw InvalidArgument("envelope spectra: l = " + std::to_string(l) + " must be at least 1");
    if (F.cols() != G.rows())
        throw InvalidArgument("envelope spectra: F has " + std::to_string(F.cols()) + " columns, G has " +
                              std::to_string(G.rows()) + " rows");
    EnvelopeSpectra s;
    s.l = l;
    fillSide(F.cwiseAbs(), l, count, stop, s.sigmaF, s.energyF, s.shareF);
    if (stop.stop_requested()) throw Cancelled();
    fillSide(G.cwiseAbs(), l, count, stop, s.sigmaG, s.energyG, s.shareG);
    return s;
}

EnvelopeSpectra EnvelopeSpectra::ofSvd(const LayerSvd& svd, std::int64_t k, int l, int count,
                                       const std::stop_token& stop)
{
    if (k < 1) throw InvalidArgument("envelope spectra: k = " + std::to_string(k) + " must be at least 1");
    return ofFactors(svd.leftFactor(k), svd.rightFactor(k).transpose(), l, count, stop);
}

EnvelopeSpectra EnvelopeSpectra::ofPath(const kernels::FactorPath& path, int count)
{
    validatePath(path);
    return ofFactors(path.A * path.Qa.transpose(), path.Qb * path.B.transpose(), static_cast<int>(path.l()), count);
}

}  // namespace mdbf::factor
