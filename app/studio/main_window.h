#pragma once
// The studio's main window: the Layers dock, the layer inspector in the centre, the perplexity dock
// below, menus, status bar and job area. It only assembles: the document holds the model, the
// calibration and the configuration, the factorization service runs the factorization jobs, and the
// panels listen to both; the window owns the job runner, and closing it cancels every job and waits.

#include <map>
#include <memory>

#include <QMainWindow>
#include <QPointer>

#include "calibration_state.h"
#include "factor_cache.h"
#include "job_runner.h"
#include "model_configuration.h"

class QAction;
class QDockWidget;
class QLabel;
class QMenu;
class QMessageBox;

namespace mdbf::studio {

class ConfigurationExporter;
class ConfigurationFiles;
class FactorizationService;
class StudioDocument;
class GeneratePanel;
class JobRunner;
class JobStatusWidget;
class LayerBrowserDock;
class LayerInspectorPanel;
class ModelApplyPanel;
class ModelSession;
class PerplexityPanel;
struct PackageExportSummary;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    /// Starts loading the model folder `dir` in the background. On success the layer tree is filled
    /// and modelLoaded() emitted; on failure an error dialog (non-modal) names the reason, the
    /// previous model (if any) stays open, and modelLoadFailed() is emitted.
    void openModel(const QString& dir);

    /// The open model (null before the first successful load).
    const std::shared_ptr<const ModelSession>& session() const;

    /// The document: the open model, the configuration and its undo history.
    StudioDocument* document() const { return m_document; }
    /// The factorization jobs (the inspector's preview, Apply to Model) and their result cache.
    FactorizationService* factorizationService() const { return m_service; }
    /// Saving and opening configurations, and the unsaved-changes question.
    ConfigurationFiles* configurationFiles() const { return m_files; }

    /// The runner of every background job.
    JobRunner* jobRunner() const { return m_runner; }
    /// The Layers dock.
    LayerBrowserDock* layerBrowser() const { return m_browser; }
    /// The layer inspector (the central widget).
    LayerInspectorPanel* inspector() const { return m_inspector; }
    /// The Perplexity dock's panel.
    PerplexityPanel* perplexityPanel() const { return m_perplexity; }
    /// The Model dock's panel.
    ModelApplyPanel* applyPanel() const { return m_applyPanel; }
    /// The Generate dock's panel.
    GeneratePanel* generatePanel() const { return m_generate; }
    /// Writes packages and configuration files as jobs.
    ConfigurationExporter* exporter() const { return m_exporter; }

    /// The calibration statistics of the open model (the document's; null until calibrated).
    std::shared_ptr<const StudioCalibration> calibration() const;

    /// The factorized layers of the current configuration (everything else is dense).
    const ModelConfiguration& configuration() const;

    /// Applies the inspector's current settings to the factorizable layers among `layers` in the
    /// background (Model panel: progress, ETA, Cancel). Returns false, with the reason in the status
    /// bar, when nothing was started (no model, an apply already running, no factorizable layer).
    bool applySettingsToLayers(const QStringList& layers);
    /// Same for every layer the default configuration factorizes: the projections, not the head (no
    /// confirmation; the menu asks first).
    bool applySettingsToAllLayers();
    /// Same for the layers selected in the Layers panel.
    bool applySettingsToSelectedLayers();

    /// Starts writing the deployment package of the configuration to `path` (HDF5) as a job; the
    /// outcome arrives as packageExported() or an error dialog. Returns the job (null if none started).
    Job* exportPackage(const QString& path);

    /// Saves the configuration to `path` as a quantization config (JSON); the document is then
    /// unmodified. Returns false after showing an error dialog on failure.
    bool exportConfigurationJson(const QString& path);

    /// The last error reported to the user (title and message), empty if none.
    const QString& lastError() const { return m_lastError; }

    /// Bits per weight of the whole model with the current factorizations (stored bpw when none).
    double modelBpw() const;

    /// The status bar's model summary text.
    QString modelSummaryText() const;

signals:
    void modelLoaded(const QString& name);
    void modelLoadFailed(const QString& message);
    /// Emitted whenever an error is shown to the user.
    void errorReported(const QString& title, const QString& message);
    /// A deployment package was written completely to `path`.
    void packageExported(const QString& path);
    /// A configuration JSON was written to `path`.
    void configurationExported(const QString& path);

protected:
    void closeEvent(QCloseEvent* event) override;
    void showEvent(QShowEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void createMenus();
    void showError(const QString& title, const QString& message);
    void adoptSession(std::shared_ptr<const ModelSession> session);
    void onLayerSelected(const QString& key);
    void startLoading(const QString& dir);
    void onLayerChanged(const QString& layer, std::shared_ptr<const LayerFactorization> f);
    void revertSelectedLayers();
    void confirmApplyToAll();
    void planDialog();
    void exportPackageDialog();
    void onPackageExported(const PackageExportSummary& summary);
    void updateModelSummary();
    void rebuildRecentMenu();
    void openFolderDialog();
    void showAbout();

    JobRunner* m_runner;
    StudioDocument* m_document;
    FactorizationService* m_service;
    ConfigurationFiles* m_files = nullptr;

    LayerBrowserDock* m_browser;
    LayerInspectorPanel* m_inspector;
    PerplexityPanel* m_perplexity;
    ModelApplyPanel* m_applyPanel;
    GeneratePanel* m_generate;
    ConfigurationExporter* m_exporter;
    JobStatusWidget* m_jobStatus;
    QLabel* m_modelLabel;
    QLabel* m_bpwLabel;
    QMenu* m_recentMenu = nullptr;
    QString m_lastError;
    QPointer<QMessageBox> m_errorBox;
    QDockWidget* m_perplexityDock = nullptr;
    QDockWidget* m_modelDock = nullptr;
    QDockWidget* m_generateDock = nullptr;
    bool m_needsDefaultLayout = false;
    bool m_closeConfirmed = false;  ///< the unsaved-changes question was answered for this close
};

}  // namespace mdbf::studio
