#include "studio_document.h"

#include <QUndoCommand>
#include <QUndoStack>

#include "mdbf/widgets/layer_tree_model.h"
#include "model_session.h"

namespace mdbf::studio {

// One undoable change of any number of layers. It is pushed after the change was made (an apply's
// layers arrive while it runs), so the first redo(), which QUndoStack::push calls, does nothing.
namespace {

/// What the Layers tree shows of an applied factorization.
widgets::LayerFactorSummary summaryOf(const LayerFactorization& f)
{
    const factor::FactorResult& r = *f.result;
    widgets::LayerFactorSummary s;
    s.method = r.method == factor::Method::Dbf ? QStringLiteral("DBF") : QStringLiteral("MDBF");
    s.l = r.l;
    s.k = r.k;
    s.bpw = r.bpw;
    s.error = r.finalError;
    s.objective = QString::fromStdString(std::string(factor::objectiveName(r.objective)));
    s.refined = f.refined && f.complete;
    return s;
}

}  // namespace

class SetLayersCommand : public QUndoCommand {
public:
    SetLayersCommand(StudioDocument* doc, StudioDocument::Changes before, StudioDocument::Changes after,
                     const QString& text)
        : QUndoCommand(text), m_doc(doc), m_before(std::move(before)), m_after(std::move(after))
    {
    }
    void undo() override { m_doc->exchange(m_before); }
    void redo() override
    {
        if (m_pushed) m_doc->exchange(m_after);
        m_pushed = true;
    }

private:
    StudioDocument* m_doc;
    StudioDocument::Changes m_before;
    StudioDocument::Changes m_after;
    bool m_pushed = false;
};

StudioDocument::StudioDocument(QObject* parent)
    : QObject(parent), m_layers(new widgets::LayerTreeModel(this)), m_undo(new QUndoStack(this))
{
    connect(m_undo, &QUndoStack::cleanChanged, this, [this](bool clean) { emit modifiedChanged(!clean); });
}

StudioDocument::~StudioDocument() = default;

double StudioDocument::modelBpw() const
{
    if (!m_session) return 0.0;
    return accountConfiguration(m_session->checkpoint(), m_configuration).modelBpw();
}

void StudioDocument::setSession(std::shared_ptr<const ModelSession> session)
{
    m_batch.reset();
    // Views drop the previous model's layer before its entry goes away.
    setCurrentLayer(QString());
    m_session = std::move(session);
    m_layers->clearFactorization(QString());
    m_layers->setGroups(m_session ? widgets::groupLayers(m_session->checkpoint().tensors(),
                                                         m_session->config().tieWordEmbeddings)
                                  : std::vector<widgets::LayerGroup>{});
    m_configuration.clear();
    m_filePath.clear();
    m_undo->clear();  // clean again; QUndoStack emits cleanChanged if it was not
    emit sessionChanged(m_session);
    setCalibration(nullptr);
    emit configurationChanged();
    // The views show something at once: the first projection, once every listener has reset.
    if (m_session) setCurrentLayer(m_layers->defaultLayerKeys().value(0));
}

void StudioDocument::setCurrentLayer(const QString& key)
{
    if (key == m_currentLayer) return;
    m_currentLayer = key;
    emit currentLayerChanged(m_currentLayer);
}

void StudioDocument::setCalibration(std::shared_ptr<const StudioCalibration> calibration)
{
    if (calibration == m_calibration) return;
    m_calibration = std::move(calibration);
    emit calibrationChanged(m_calibration);
}

std::shared_ptr<const LayerFactorization> StudioDocument::applied(const QString& layer) const
{
    auto it = m_configuration.find(layer);
    return it == m_configuration.end() ? nullptr : it->second;
}

StudioDocument::Changes StudioDocument::exchange(const Changes& changes)
{
    Changes before;
    for (const auto& [layer, result] : changes) {
        before[layer] = applied(layer);
        if (result) {
            m_configuration[layer] = result;
            if (result->result) m_layers->setFactorization(layer, summaryOf(*result));
        } else {
            m_configuration.erase(layer);
            m_layers->clearFactorization(layer);
        }
        emit layerChanged(layer, result);
    }
    if (!changes.empty()) emit configurationChanged();
    return before;
}

void StudioDocument::record(const Changes& before, const Changes& after, const QString& text)
{
    if (m_batch) {
        // The batch remembers each layer's value from before its first change only.
        for (const auto& [layer, value] : before) m_batch->before.try_emplace(layer, value);
        return;
    }
    m_undo->push(new SetLayersCommand(this, before, after, text));
}

void StudioDocument::applyLayer(const QString& layer, std::shared_ptr<const LayerFactorization> result,
                                const QString& text)
{
    if (applied(layer) == result) return;
    const Changes after{{layer, std::move(result)}};
    const Changes before = exchange(after);
    record(before, after, text.isEmpty() ? tr("Apply to %1").arg(layer) : text);
}

void StudioDocument::revertLayers(const QStringList& layers)
{
    Changes after;
    if (layers.isEmpty()) {
        for (const auto& [layer, result] : m_configuration) after[layer] = nullptr;
    } else {
        for (const QString& layer : layers)
            if (applied(layer)) after[layer] = nullptr;
    }
    if (after.empty()) return;
    const Changes before = exchange(after);
    record(before, after,
           layers.isEmpty() ? tr("Revert all layers") : layers.size() == 1 ? tr("Revert %1").arg(layers.front())
                                                                             : tr("Revert %n layers", nullptr, int(after.size())));
}

void StudioDocument::beginBatch(const QString& text)
{
    if (m_batch) endBatch();
    m_batch = Batch{text, {}};
}

void StudioDocument::endBatch()
{
    if (!m_batch) return;
    Batch batch = std::move(*m_batch);
    m_batch.reset();
    Changes before, after;
    for (const auto& [layer, value] : batch.before) {
        auto now = applied(layer);
        if (now == value) continue;  // changed and changed back within the batch
        before[layer] = value;
        after[layer] = now;
    }
    if (!after.empty()) m_undo->push(new SetLayersCommand(this, std::move(before), std::move(after), batch.text));
}

bool StudioDocument::isModified() const { return !m_undo->isClean(); }

void StudioDocument::markSaved(const QString& path)
{
    m_filePath = path;
    m_undo->setClean();
}

}  // namespace mdbf::studio
