#pragma once
// Export of the studio's configuration: the HDF5 deployment package (factorized layers from the
// configuration, every other tensor dense, through pipeline::makePackage and io::writePackage) as a
// background job with progress and Cancel, and the quantization config JSON (factor::QuantConfig)
// that reproduces the per-layer settings in use.

#include <cstdint>
#include <memory>

#include <QObject>
#include <QString>

#include "job_runner.h"
#include "model_configuration.h"

namespace mdbf::studio {

class ModelSession;

/// What a finished package export wrote.
struct PackageExportSummary {
    QString path;
    int factorizedLayers = 0;
    int denseTensors = 0;
    double modelBpw = 0.0;
    std::int64_t bytes = 0;  ///< size of the written file
};

/// Runs exports; GUI-thread only. Outcomes arrive as signals.
class ConfigurationExporter : public QObject {
    Q_OBJECT
public:
    explicit ConfigurationExporter(JobRunner* runner, QObject* parent = nullptr);

    /// Starts writing the package of `config` on `session` to `path` (through a temporary file that
    /// is renamed into place only when complete). Returns the job, or null with exportFailed()
    /// emitted when another package export is still running.
    Job* exportPackage(std::shared_ptr<const ModelSession> session, ModelConfiguration config, const QString& path);

    /// Writes quantConfigOf(config) as indented JSON to `path` (atomically). Returns false and emits
    /// exportFailed() on any error (the previous file, if any, is left untouched).
    bool exportConfigJson(const ModelSession& session, const ModelConfiguration& config, const QString& path);

    /// True while a package export runs.
    bool isBusy() const { return m_job != nullptr; }

signals:
    /// The package is complete at summary.path.
    void packageExported(const mdbf::studio::PackageExportSummary& summary);
    /// The package export was cancelled; nothing was written at `path`.
    void packageCancelled(const QString& path);
    /// The configuration JSON is complete at `path`.
    void configExported(const QString& path);
    /// An export failed: a dialog title and the reason (naming the file).
    void exportFailed(const QString& title, const QString& message);

private:
    JobRunner* m_runner;
    QPointer<Job> m_job;
};

}  // namespace mdbf::studio
