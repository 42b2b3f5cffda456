#pragma once
// The studio's document: the open model, its list of layers (the item model the Layers tree shows),
// the layer being inspected, the calibration, the configuration built on the model (which layers are
// factorized and with which result) and its undo history. Views read it and listen to its signals; only
// explicit user actions change it (applying settings to a layer or to the model, reverting, loading
// a configuration), each as one undoable step. Browsing never does. Saved state follows the undo
// stack's clean index, so undoing back to the saved configuration makes the document unmodified
// again. GUI-thread only; no widgets, so it is tested without a window. Listeners are called in the
// order they connected: the factorization service, made right after the document, drops the
// previous model's jobs before any view reacts to a new one, and every listener has reset for a new
// model before its first layer becomes current.

#include <map>
#include <memory>
#include <optional>

#include <QObject>
#include <QString>
#include <QStringList>

#include "calibration_state.h"
#include "model_configuration.h"

class QUndoStack;

namespace mdbf::widgets {
class LayerTreeModel;
}

namespace mdbf::studio {

class ModelSession;

class StudioDocument : public QObject {
    Q_OBJECT
public:
    explicit StudioDocument(QObject* parent = nullptr);
    ~StudioDocument() override;

    /// The open model (null before the first one).
    const std::shared_ptr<const ModelSession>& session() const { return m_session; }

    /// Switches to `session` (or none): the layer list becomes the model's, the configuration empties,
    /// the undo history and the calibration are dropped and the document is unmodified. Emits
    /// currentLayerChanged("") when a layer was current, sessionChanged, calibrationChanged when one was
    /// set, configurationChanged, then currentLayerChanged with the model's first projection.
    void setSession(std::shared_ptr<const ModelSession> session);

    /// The open model's layers grouped by block, with shapes, norms (once computed) and the summary of
    /// each applied factorization, which follows the configuration. Owned by the document.
    widgets::LayerTreeModel* layers() const { return m_layers; }

    /// The layer the views inspect (a key of layers(); empty for none or a group). Browsing: never a
    /// change of the configuration, and not undoable.
    const QString& currentLayer() const { return m_currentLayer; }
    /// Makes `key` the inspected layer; emits currentLayerChanged when it differs.
    void setCurrentLayer(const QString& key);

    /// The calibration statistics of the open model that diag and gram settings use (null: none).
    const std::shared_ptr<const StudioCalibration>& calibration() const { return m_calibration; }
    /// Replaces the calibration (null: none); emits calibrationChanged when it differs. Opening a
    /// model clears it. Not an undoable step: it changes what can be computed, not the configuration.
    void setCalibration(std::shared_ptr<const StudioCalibration> calibration);
    /// The tag of the calibration (empty without one), as FactorSettings::calibration holds it.
    QString calibrationTag() const { return m_calibration ? m_calibration->tag : QString(); }

    /// The factorized layers (every other layer is dense).
    const ModelConfiguration& configuration() const { return m_configuration; }
    /// Bits per weight of the whole model under the configuration, counted as pipeline::quantizeCheckpoint
    /// counts them (so the figure matches `mdbf quantize` and the package); 0 without a model.
    double modelBpw() const;

    /// The applied result of `layer`, or null when it is dense.
    std::shared_ptr<const LayerFactorization> applied(const QString& layer) const;

    /// Makes `result` the applied factorization of `layer` as one undoable step named `text`
    /// (inside a batch: part of the batch's step). A null result reverts the layer to dense. A change
    /// that changes nothing (the same result already applied) adds no step.
    void applyLayer(const QString& layer, std::shared_ptr<const LayerFactorization> result, const QString& text = {});

    /// Reverts `layers` to dense as one undoable step; an empty list reverts every factorized layer.
    void revertLayers(const QStringList& layers);

    /// Groups the changes made until endBatch() into one undoable step named `text` (e.g. one Apply to
    /// Model, whose layers arrive one by one while it runs). Batches do not nest: a second begin ends
    /// the first.
    void beginBatch(const QString& text);
    /// Ends the batch; it becomes one step if it changed anything.
    void endBatch();
    /// True between beginBatch() and endBatch().
    bool inBatch() const { return m_batch.has_value(); }

    /// The undo history (for the Edit menu's actions).
    QUndoStack* undoStack() const { return m_undo; }

    /// True when the configuration differs from the one last saved (or, never saved, from empty).
    bool isModified() const;
    /// Declares the current configuration saved to `path` (it becomes unmodified).
    void markSaved(const QString& path);
    /// The configuration file last saved or loaded (empty when none).
    const QString& filePath() const { return m_filePath; }
    /// Sets the file the configuration was loaded from, once its layers are applied.
    void setFilePath(const QString& path) { m_filePath = path; }

signals:
    /// The inspected layer changed (empty: none).
    void currentLayerChanged(const QString& key);
    /// A new model (or none) is open.
    void sessionChanged(std::shared_ptr<const mdbf::studio::ModelSession> session);
    /// The calibration in use changed (null: none).
    void calibrationChanged(std::shared_ptr<const mdbf::studio::StudioCalibration> calibration);
    /// `layer` now has `result` applied (null: dense again).
    void layerChanged(const QString& layer, std::shared_ptr<const mdbf::studio::LayerFactorization> result);
    /// The configuration changed (after one or more layerChanged).
    void configurationChanged();
    /// The modified state changed.
    void modifiedChanged(bool modified);

private:
    friend class SetLayersCommand;
    using Changes = std::map<QString, std::shared_ptr<const LayerFactorization>>;
    /// Applies `changes` (null = dense) and emits the signals; returns the previous values.
    Changes exchange(const Changes& changes);
    void record(const Changes& before, const Changes& after, const QString& text);

    struct Batch {
        QString text;
        Changes before;  ///< the value each touched layer had when the batch began
    };

    std::shared_ptr<const ModelSession> m_session;
    widgets::LayerTreeModel* m_layers;
    QString m_currentLayer;
    std::shared_ptr<const StudioCalibration> m_calibration;
    ModelConfiguration m_configuration;
    QUndoStack* m_undo;
    std::optional<Batch> m_batch;
    QString m_filePath;
};

}  // namespace mdbf::studio
