#include "configuration_exporter.h"

#include <filesystem>
#include <system_error>

#include <QFileInfo>
#include <QSaveFile>

#include <nlohmann/json.hpp>

#include "mdbf/base/output_path.h"
#include "mdbf/pipeline/quantize.h"
#include "mdbf/io/package.h"
#include "model_session.h"

namespace mdbf::studio {

ConfigurationExporter::ConfigurationExporter(JobRunner* runner, QObject* parent) : QObject(parent), m_runner(runner) {}

Job* ConfigurationExporter::exportPackage(std::shared_ptr<const ModelSession> session, ModelConfiguration config,
                                          const QString& path)
{
    const QString title = tr("Could not export the deployment package");
    if (!session) {
        emit exportFailed(title, tr("No model is open."));
        return nullptr;
    }
    if (m_job) {
        emit exportFailed(title, tr("Another package export is still running."));
        return nullptr;
    }
    const std::filesystem::path destination = path.toStdString();
    auto work = [session, config = std::move(config), destination](const RunContext& ctx, Job*) -> PackageExportSummary {
        requireDistinctOutput(destination, OutputKind::File, {session->directory()}, "the package");
        // Assembling the layers is quick next to writing: its progress is not shown.
        RunContext quiet;
        quiet.stop = ctx.stop;
        quiet.threads = ctx.threads;
        const pipeline::QuantizeResult result = quantizeResultOf(session->config(), session->checkpoint(), config, quiet);
        const factor::QuantConfig quantConfig = quantConfigOf(session->config(), config);
        const io::Package package = pipeline::makePackage(session->directory(), session->checkpoint(), result, quantConfig);
        ctx.throwIfStopped();
        io::writePackage(package, destination, ctx);
        PackageExportSummary summary;
        summary.path = QString::fromStdString(destination.string());
        summary.factorizedLayers = static_cast<int>(package.layers.size());
        summary.denseTensors = static_cast<int>(package.dense.size());
        summary.modelBpw = package.modelBpw;
        std::error_code ec;
        const auto bytes = std::filesystem::file_size(destination, ec);
        summary.bytes = ec ? 0 : static_cast<std::int64_t>(bytes);
        return summary;
    };
    QPointer<ConfigurationExporter> self(this);
    Job* job = m_runner->start<PackageExportSummary>(tr("Exporting %1").arg(QFileInfo(path).fileName()), work,
                                                     [self](PackageExportSummary&& summary) {
                                                         if (self) emit self->packageExported(summary);
                                                     });
    m_job = job;
    connect(job, &Job::failed, this, [this, title, path](const QString& message) {
        emit exportFailed(title, tr("%1\n\n%2").arg(path, message));
    });
    connect(job, &Job::cancelled, this, [this, path] { emit packageCancelled(path); });
    connect(job, &Job::ended, this, [this, job] {
        if (m_job == job) m_job = nullptr;
    });
    return job;
}

bool ConfigurationExporter::exportConfigJson(const ModelSession& session, const ModelConfiguration& config,
                                             const QString& path)
{
    const QString title = tr("Could not export the configuration");
    QByteArray text;
    try {
        text = QByteArray::fromStdString(quantConfigOf(session.config(), config).toJson().dump(2) + "\n");
    } catch (const std::exception& e) {
        emit exportFailed(title, QString::fromUtf8(e.what()));
        return false;
    }
    // QSaveFile writes a temporary file and renames it on commit(): a failure leaves no partial file.
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly) || file.write(text) != text.size() || !file.commit()) {
        emit exportFailed(title, tr("%1\n\n%2").arg(path, file.errorString()));
        return false;
    }
    emit configExported(path);
    return true;
}

}  // namespace mdbf::studio
