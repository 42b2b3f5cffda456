#pragma once
// The studio's main window: the Layers dock, the layer inspector in the centre, the perplexity dock
// below, menus, status bar and job area. It only assembles: the document holds the model, the current
// layer, the calibration and the configuration, the factorization service runs the jobs (opening a
// model among them), the panels listen to both and offer their commands as actions, which the
// window puts in its menus. It shows errors, asks before unsaved work would be lost, remembers its
// layout, and owns the job runner: closing it cancels every job and waits.

#include <memory>

#include <QMainWindow>
#include <QPointer>

#include "calibration_state.h"
#include "model_configuration.h"

class QDockWidget;
class QMessageBox;

namespace mdbf::studio {

class ConfigurationExporter;
class ConfigurationFiles;
class FactorizationService;
class StudioDocument;
class GeneratePanel;
class JobRunner;
class LayerBrowserDock;
class LayerInspectorPanel;
class ModelApplyPanel;
class ModelCommands;
class ModelSession;
class PerplexityPanel;
class RecentModelsMenu;
class StudioStatusBar;
struct PackageExportSummary;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    /// Opens the model folder `dir` in the background (after asking Save / Discard / Cancel when the
    /// configuration is unsaved). On success the document holds the new model and modelLoaded() is
    /// emitted; on failure an error dialog (non-modal) names the reason, the previous model (if any)
    /// stays open, and modelLoadFailed() is emitted.
    void openModel(const QString& dir);

    /// The open model (null before the first successful load).
    const std::shared_ptr<const ModelSession>& session() const;

    /// The document: the open model, its layers, the configuration and its undo history.
    StudioDocument* document() const { return m_document; }
    /// The factorization jobs (the inspector's preview, Apply to Model, plans, opening models).
    FactorizationService* factorizationService() const { return m_service; }
    /// Saving and opening configurations, and the unsaved-changes question.
    ConfigurationFiles* configurationFiles() const { return m_files; }
    /// Apply Settings to All / Selected Layers, Plan at Budget, Revert, Export Deployment Package.
    ModelCommands* commands() const { return m_commands; }

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
    QDockWidget* addPanelDock(QWidget* panel, const QString& title, const QString& objectName, const QString& tip);
    void connectReports();
    void createMenus();
    void showError(const QString& title, const QString& message);
    void onModelOpened(const QString& path);
    void onPackageExported(const PackageExportSummary& summary);
    void openFolderDialog();
    void showAbout();

    JobRunner* m_runner;
    StudioDocument* m_document;
    FactorizationService* m_service;
    ConfigurationFiles* m_files = nullptr;
    ModelCommands* m_commands = nullptr;

    LayerBrowserDock* m_browser;
    LayerInspectorPanel* m_inspector;
    PerplexityPanel* m_perplexity;
    ModelApplyPanel* m_applyPanel;
    GeneratePanel* m_generate;
    ConfigurationExporter* m_exporter;
    StudioStatusBar* m_statusBar;
    RecentModelsMenu* m_recentMenu = nullptr;
    QString m_lastError;
    QPointer<QMessageBox> m_errorBox;
    QDockWidget* m_perplexityDock = nullptr;
    QDockWidget* m_modelDock = nullptr;
    QDockWidget* m_generateDock = nullptr;
    bool m_needsDefaultLayout = false;
    bool m_closeConfirmed = false;  ///< the unsaved-changes question was answered for this close
};

}  // namespace mdbf::studio
