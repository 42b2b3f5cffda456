#pragma once
// The document's file habits: saving the configuration as the quantization-config JSON that
// `mdbf quantize --config` takes, opening one (its layers are factorized by the factorization
// service's apply, as one undoable step), and asking Save / Discard / Cancel before unsaved work would be lost. The
// questions are window-modal dialogs opened without a nested event loop, so a caller hands over what
// to do next instead of waiting for an answer.

#include <functional>

#include <QObject>
#include <QPointer>
#include <QString>

class QMessageBox;
class QWidget;

namespace mdbf::widgets {
class LayerTreeModel;
}

namespace mdbf::studio {

class ConfigurationExporter;
class FactorizationService;
class StudioDocument;

class ConfigurationFiles : public QObject {
    Q_OBJECT
public:
    /// `window` parents the dialogs; every pointer must outlive this object.
    ConfigurationFiles(QWidget* window, StudioDocument* document, ConfigurationExporter* exporter,
                       FactorizationService* service);

    /// Writes the configuration to `path` (atomically) and marks the document saved there. Returns
    /// false after errorReported() when it could not be written.
    bool saveTo(const QString& path);
    /// Saves to the document's file, or asks for one (Save As) when it has none. False if not saved.
    bool save();
    /// Asks for a file and saves there. False if cancelled or not saved.
    bool saveAs();

    /// Reads the quantization config at `path` and applies it to the open model: layers it keeps dense
    /// revert, the others are factorized with their settings by the service (one undoable step;
    /// the document counts as saved to `path` once every layer is in). diag and gram layers use the
    /// document's calibration. Returns false after errorReported() for an unreadable or invalid file,
    /// no open model, or an apply that could not start.
    bool load(const QString& path);
    /// Asks for a configuration file (after the unsaved-changes question) and loads it.
    void openDialog();

    /// Runs `proceed` now if the document is unmodified; otherwise asks whether to save the changes
    /// before `action` ("opening another model"): Save (then proceed if saved), Discard (proceed) or
    /// Cancel (nothing happens). The dialog is named "unsavedDialog".
    void whenDiscardable(const QString& action, std::function<void()> proceed);

    /// A save-file dialog starting in the last export folder with `baseName`.`suffix` proposed;
    /// returns the chosen path (suffix added if missing) or an empty string.
    QString askSavePath(const QString& title, const QString& baseName, const QString& suffix, const QString& filter);

signals:
    /// Something failed: a dialog title and the reason naming the file.
    void errorReported(const QString& title, const QString& message);
    /// A short note for the status bar.
    void statusMessage(const QString& message);

private:
    void onApplyEnded(bool cancelled);

    QWidget* m_window;
    StudioDocument* m_document;
    ConfigurationExporter* m_exporter;
    FactorizationService* m_service;
    const widgets::LayerTreeModel* m_layers;
    QString m_loadingPath;  ///< the configuration whose layers the running apply computes
    QPointer<QMessageBox> m_question;
};

}  // namespace mdbf::studio
