#include "calibration_state.h"

#include <QCryptographicHash>
#include <QFileInfo>

#include "mdbf/base/error.h"
#include "mdbf/model/transformer.h"
#include "mdbf/model/architecture.h"

namespace mdbf::studio {

std::shared_ptr<const StudioCalibration> StudioCalibration::make(eval::CalibrationStats stats, const QString& textFile)
{
    auto c = std::make_shared<StudioCalibration>();
    // The tag follows the numbers, not the run: calibrating again on the same text and ctx (or
    // reading the same cache file) gives the same tag, so results cached under it stay valid.
    QCryptographicHash hash(QCryptographicHash::Sha1);
    for (const auto& [name, layer] : stats.layers) {
        hash.addData(QByteArrayView(name.data(), static_cast<qsizetype>(name.size())));
        hash.addData(QByteArrayView(reinterpret_cast<const char*>(layer.secondMoments.data()),
                                    static_cast<qsizetype>(layer.secondMoments.size() * sizeof(double))));
    }
    hash.addData(QByteArrayView(stats.hasGram ? "H" : "d"));
    c->tag = QString::fromLatin1(hash.result().toHex().left(12));
    c->textFile = textFile;
    c->stats = std::make_shared<const eval::CalibrationStats>(std::move(stats));
    return c;
}

QString StudioCalibration::description() const
{
    QString text = QObject::tr("calibrated on %1 · ctx %2 · %3 tokens")
                       .arg(QFileInfo(textFile).fileName())
                       .arg(stats->ctx)
                       .arg(stats->tokens);
    if (!stats->hasGram) text += QObject::tr(" · diag only");
    return text;
}

pipeline::LayerStatistics statisticsFor(factor::Objective objective, const StudioCalibration* calibration,
                                        const std::string& layer)
{
    pipeline::LayerStatistics statistics;
    if (objective == factor::Objective::Plain) return statistics;
    const std::string name(factor::objectiveName(objective));
    if (!calibration) throw InvalidArgument("objective " + name + " needs calibration statistics: calibrate first");
    const eval::LayerCalibration& stats = calibration->stats->layer(layer);
    if (objective == factor::Objective::Gram) {
        if (stats.gram.size() == 0)
            throw InvalidArgument("objective gram: the calibration has no Gram matrix for '" + layer + "'");
        statistics.inputGram = stats.gram;
    } else {
        statistics.channelWeights = stats.channelWeights();
    }
    return statistics;
}

double gramBytes(const io::ModelConfig& config, const io::Checkpoint& checkpoint)
{
    double bytes = 0.0;
    for (const std::string& name : model::projectionNames(config)) {
        const std::string tensor = model::weightTensorOf(name, checkpoint.contains(model::weightName(name)));
        if (!checkpoint.contains(tensor)) continue;
        const auto& shape = checkpoint.info(tensor).shape;
        if (shape.size() != 2) continue;
        const double m = static_cast<double>(shape[1]);
        bytes += m * m * static_cast<double>(sizeof(double));
    }
    return bytes;
}

}  // namespace mdbf::studio
