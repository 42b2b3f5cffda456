#include "factor_settings.h"

#include <cmath>

namespace mdbf::studio {

FactorSettings FactorSettings::fromQuant(const factor::LayerQuantSettings& s, const QString& calibration)
{
    FactorSettings f;
    f.method = s.method;
    f.l = s.method == factor::Method::Dbf ? 1 : s.l;
    f.bpw = s.bpw;
    f.paths = s.paths;
    f.iterations = s.iterations;
    f.objective = s.objective;
    if (s.objective != factor::Objective::Plain) f.calibration = calibration;
    return f;
}

pipeline::LayerJob FactorSettings::job(pipeline::LayerStatistics statistics) const
{
    pipeline::LayerJob job;
    job.settings.method = method;
    job.settings.l = effectiveL();
    job.settings.paths = paths;
    job.settings.bpw = bpw;
    job.settings.iterations = iterations;
    job.settings.objective = objective;
    job.statistics = std::move(statistics);
    return job;
}

QString FactorSettings::closedFormKey() const
{
    return QStringLiteral("%1|l%2|%3|p%4|%5")
        .arg(methodLabel())
        .arg(effectiveL())
        .arg(QString::fromStdString(bpw.text()))
        .arg(paths)
        .arg(svdKey());
}

QString FactorSettings::svdKey() const
{
    if (objective == factor::Objective::Plain) return objectiveLabel();
    return objectiveLabel() + QLatin1Char('@') + calibration;
}

QString FactorSettings::refinedKey() const { return closedFormKey() + QStringLiteral("|t%1").arg(iterations); }

QString FactorSettings::methodLabel() const
{
    return method == factor::Method::Dbf ? QStringLiteral("DBF") : QStringLiteral("MDBF");
}

QString FactorSettings::objectiveLabel() const
{
    const auto name = factor::objectiveName(objective);
    return QString::fromLatin1(name.data(), static_cast<qsizetype>(name.size()));
}

factor::Bpw budgetOfSpinValue(double value, int decimals)
{
    const double scale = std::pow(10.0, decimals);
    return factor::Bpw::fromDouble(std::round(value * scale) / scale);
}

}  // namespace mdbf::studio
