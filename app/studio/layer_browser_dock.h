#pragma once
// The "Layers" dock: a filterable, sortable tree of the model's weight matrices.

#include <QDockWidget>

class QAction;
class QLineEdit;
class QTreeView;
class QLabel;

namespace mdbf::widgets {
class LayerTreeModel;
class LayerSortProxy;
}  // namespace mdbf::widgets

namespace mdbf::studio {

/// Owns the LayerTreeModel of the open model; emits layerSelected when the current layer changes.
class LayerBrowserDock : public QDockWidget {
    Q_OBJECT
public:
    explicit LayerBrowserDock(QWidget* parent = nullptr);

    widgets::LayerTreeModel* model() const { return m_model; }
    widgets::LayerSortProxy* proxy() const { return m_proxy; }
    QTreeView* view() const { return m_view; }

    /// The selected layer's key (empty for none or a group row).
    QString currentLayer() const;

    /// The factorizable layers selected in the tree, in model order: selected layer rows, and every
    /// visible layer of a selected group row (so a filter plus a group selects, e.g., its MLPs).
    QStringList selectedLayers() const;

    /// Selects layer `key` (expanding its group). Returns false if it is not in the tree.
    bool selectLayer(const QString& key);

    /// Moves the selection to the next (+1) or previous (−1) factorizable layer in view order.
    void stepLayer(int delta);

    /// Expands every group and sizes the columns to their contents.
    void expandAll();

    /// Adds `action` to the tree's right-click menu (the dock does not take ownership).
    void addContextAction(QAction* action);

    /// The narrowest the dock's content may get: every visible column but the name at its width,
    /// plus room for a short name, so the dock is never squeezed into hiding columns.
    int minimumContentWidth() const;

signals:
    /// The current layer changed (key as in LayerEntry::key; empty when a group is selected).
    void layerSelected(const QString& key);

private:
    void updateMinimumWidth();

    QWidget* m_box;
    widgets::LayerTreeModel* m_model;
    widgets::LayerSortProxy* m_proxy;
    QTreeView* m_view;
    QLineEdit* m_filter;
};

}  // namespace mdbf::studio
