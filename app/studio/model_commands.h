#pragma once
// The commands that act on the whole configuration, as actions for the Model and File menus and the
// Layers panel's context menu: Apply Settings to All Layers (after a confirmation naming method,
// budget, iterations and objective) or to the selected layers, Plan at Budget (its dialog, then the
// service's plan), Cancel Plan, Revert Layer / Revert All, and Export Deployment Package (a save
// dialog, then the exporter's job). The settings applied are the inspector's; the work is the
// service's and the exporter's. Dialogs are window-modal and opened without a nested event loop.

#include <QKeySequence>
#include <QObject>
#include <QString>
#include <QStringList>

class QAction;
class QWidget;

namespace mdbf::studio {

class ConfigurationExporter;
class ConfigurationFiles;
class FactorizationService;
class Job;
class LayerBrowserDock;
class LayerInspectorPanel;
class StudioDocument;
struct PackageExportSummary;

class ModelCommands : public QObject {
    Q_OBJECT
public:
    /// What the commands act on and with; every pointer must outlive this object. `window` parents
    /// the dialogs.
    struct Parts {
        QWidget* window = nullptr;
        StudioDocument* document = nullptr;
        FactorizationService* service = nullptr;
        LayerBrowserDock* browser = nullptr;
        LayerInspectorPanel* inspector = nullptr;
        ConfigurationExporter* exporter = nullptr;
        ConfigurationFiles* files = nullptr;
    };
    explicit ModelCommands(const Parts& parts, QObject* parent = nullptr);

    /// Applies the inspector's current settings to the factorizable layers among `layers` in the
    /// background (Model panel: progress, ETA, Cancel). Returns false, with the reason as
    /// statusMessage(), when nothing was started (no model, an apply already running, no
    /// factorizable layer).
    bool applySettingsToLayers(const QStringList& layers);
    /// Same for every layer the default configuration factorizes: the projections, not the head (no
    /// confirmation; the action asks first).
    bool applySettingsToAllLayers();
    /// Same for the layers selected in the Layers panel.
    bool applySettingsToSelectedLayers();

    /// Starts writing the deployment package of the configuration to `path` (HDF5) as a job; the
    /// outcome arrives through the exporter's signals. Returns the job (null if none started).
    Job* exportPackage(const QString& path);

    /// Apply Settings to All Layers… (Ctrl+Shift+Return): asks, then applySettingsToAllLayers().
    QAction* applyAllAction() const { return m_applyAll; }
    /// Apply Settings to Selected Layers (Ctrl+Return).
    QAction* applySelectedAction() const { return m_applySelected; }
    /// Plan at Budget…: the plan dialog, then FactorizationService::planAtBudget.
    QAction* planAction() const { return m_plan; }
    /// Cancel Plan: enabled only while a plan runs.
    QAction* cancelPlanAction() const { return m_cancelPlan; }
    /// Revert Layer to Dense (Ctrl+Backspace): the selected layers, or the current one.
    QAction* revertSelectedAction() const { return m_revertSelected; }
    /// Revert All Layers.
    QAction* revertAllAction() const { return m_revertAll; }
    /// Export Deployment Package… (Ctrl+E).
    QAction* exportPackageAction() const { return m_exportPackage; }

signals:
    /// A short note for the status bar (why nothing started, what runs, what was written).
    void statusMessage(const QString& message, int timeoutMs);

private:
    QAction* makeAction(const QString& text, const QKeySequence& key, const QString& tip);
    bool requireModel();
    void confirmApplyToAll();
    void planDialog();
    void exportPackageDialog();
    void revertSelectedLayers();

    Parts m_parts;
    QAction* m_applyAll;
    QAction* m_applySelected;
    QAction* m_plan;
    QAction* m_cancelPlan;
    QAction* m_revertSelected;
    QAction* m_revertAll;
    QAction* m_exportPackage;
};

}  // namespace mdbf::studio
