#pragma once
// The "Layers" dock: a filterable, sortable tree of the document's layers. Its current row and the
// document's current layer follow each other.

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

class StudioDocument;

/// Shows StudioDocument::layers(); selecting a row makes it the document's current layer.
class LayerBrowserDock : public QDockWidget {
    Q_OBJECT
public:
    /// `document` must outlive the dock.
    explicit LayerBrowserDock(StudioDocument* document, QWidget* parent = nullptr);

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

private:
    void updateMinimumWidth();

    StudioDocument* m_document;
    QWidget* m_box;
    widgets::LayerTreeModel* m_model;
    widgets::LayerSortProxy* m_proxy;
    QTreeView* m_view;
    QLineEdit* m_filter;
};

}  // namespace mdbf::studio
