#include "layer_browser_dock.h"

#include <memory>

#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QScrollBar>
#include <QSet>
#include <QTreeView>
#include <QVBoxLayout>

#include "mdbf/widgets/layer_tree_model.h"
#include "studio_document.h"

namespace mdbf::studio {

using widgets::LayerTreeModel;

namespace {

// The tree's own size hint (256 px) hides most columns; the dock starts wide enough for them.
class BrowserBox : public QWidget {
public:
    using QWidget::QWidget;
    QSize sizeHint() const override { return {540, 600}; }
};

}  // namespace

LayerBrowserDock::LayerBrowserDock(StudioDocument* document, QWidget* parent)
    : QDockWidget(tr("Layers"), parent), m_document(document)
{
    setObjectName(QStringLiteral("layerBrowserDock"));
    setToolTip(tr("The model's weight matrices; select one to inspect and factorize it"));
    m_model = document->layers();
    m_proxy = new widgets::LayerSortProxy(this);
    m_proxy->setSourceModel(m_model);

    auto* box = new BrowserBox(this);
    m_box = box;
    auto* layout = new QVBoxLayout(box);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->setSpacing(4);
    m_filter = new QLineEdit(box);
    m_filter->setPlaceholderText(tr("Filter layers (e.g. mlp, q_proj, layers.3)"));
    m_filter->setClearButtonEnabled(true);
    m_filter->setToolTip(tr("Show only layers whose name contains this text"));
    layout->addWidget(m_filter);

    m_view = new QTreeView(box);
    m_view->setModel(m_proxy);
    m_view->setSortingEnabled(true);
    m_view->sortByColumn(-1, Qt::AscendingOrder);  // model order until a header is clicked
    m_view->setUniformRowHeights(true);
    m_view->setAlternatingRowColors(true);
    // Several layers (or whole groups) can be selected for Model ▸ Apply Settings to Selected Layers;
    // the current row is the one the inspector shows.
    m_view->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_view->setContextMenuPolicy(Qt::ActionsContextMenu);
    m_view->setToolTip(tr("Click a layer to inspect it; Ctrl/Shift-click to select several for Apply to Model; "
                          "click a column header to sort within each group"));
    m_view->header()->setStretchLastSection(false);
    // Numbers fit their columns whatever they hold (the error column was cut off); the name takes
    // the width that is left.
    m_view->header()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_view->header()->setSectionResizeMode(LayerTreeModel::ColName, QHeaderView::Stretch);
    m_view->header()->setSectionsMovable(true);
    m_view->header()->setToolTip(tr("Click to sort; drag to reorder columns; right-click to choose columns"));
    layout->addWidget(m_view);
    // What the markers beside the names mean; the configuration changes only by applying.
    // The colours are the row icons' (LayerTreeModel): green filled, orange hollow.
    auto* legend = new QLabel(tr("<span style='color:#009e73'>●</span> applied, refined · "
                                 "<span style='color:#e69f00'>○</span> applied, closed form · no marker: dense"),
                              box);
    legend->setObjectName(QStringLiteral("markerLegend"));
    legend->setToolTip(tr("Layers change only through Apply to Layer (Enter) or Model ▸ Apply Settings; browsing previews"));
    legend->setStyleSheet(QStringLiteral("color: #555;"));
    layout->addWidget(legend);
    setWidget(box);

    // DType and Method are also in the tooltip, the status bar and the row icon: hidden until asked for.
    m_view->header()->setSectionHidden(LayerTreeModel::ColDType, true);
    m_view->header()->setSectionHidden(LayerTreeModel::ColMethod, true);
    m_view->header()->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(m_view->header(), &QHeaderView::customContextMenuRequested, this, [this](const QPoint& pos) {
        QMenu menu(this);
        menu.setToolTipsVisible(true);
        for (int c = 1; c < LayerTreeModel::ColCount; ++c) {
            QAction* a = menu.addAction(m_model->headerData(c, Qt::Horizontal).toString());
            a->setCheckable(true);
            a->setChecked(!m_view->header()->isSectionHidden(c));
            a->setToolTip(m_model->headerData(c, Qt::Horizontal, Qt::ToolTipRole).toString());
            connect(a, &QAction::toggled, this, [this, c](bool on) {
                m_view->header()->setSectionHidden(c, !on);
                if (on) m_view->resizeColumnToContents(c);
            });
        }
        menu.exec(m_view->header()->mapToGlobal(pos));
    });

    // Columns fitted to their contents widen as values arrive (norms, errors); the dock's minimum
    // follows, so the main window takes the room from the centre rather than hide a column.
    connect(m_view->header(), &QHeaderView::sectionResized, this, &LayerBrowserDock::updateMinimumWidth);
    connect(m_filter, &QLineEdit::textChanged, this, [this](const QString& text) {
        m_proxy->setFilterFixedString(text);
        if (!text.isEmpty()) m_view->expandAll();
    });
    connect(m_view->selectionModel(), &QItemSelectionModel::currentChanged, this,
            [this](const QModelIndex& current) {
                m_document->setCurrentLayer(current.data(LayerTreeModel::KeyRole).toString());
            });
    connect(m_document, &StudioDocument::currentLayerChanged, this, [this](const QString& key) {
        if (!key.isEmpty() && key != currentLayer()) selectLayer(key);
    });
    connect(m_model, &QAbstractItemModel::modelReset, this, &LayerBrowserDock::expandAll);
    // Sorting re-lays the proxy out, and the view forgets which groups were open: keep them open.
    auto expanded = std::make_shared<QSet<QString>>();
    connect(m_proxy, &QAbstractItemModel::layoutAboutToBeChanged, this, [this, expanded] {
        expanded->clear();
        for (int r = 0; r < m_proxy->rowCount(); ++r) {
            const QModelIndex group = m_proxy->index(r, 0);
            if (m_view->isExpanded(group)) expanded->insert(group.data(Qt::DisplayRole).toString());
        }
    });
    connect(m_proxy, &QAbstractItemModel::layoutChanged, this, [this, expanded] {
        for (int r = 0; r < m_proxy->rowCount(); ++r) {
            const QModelIndex group = m_proxy->index(r, 0);
            if (expanded->contains(group.data(Qt::DisplayRole).toString())) m_view->expand(group);
        }
    });
}

QString LayerBrowserDock::currentLayer() const
{
    return m_view->currentIndex().data(LayerTreeModel::KeyRole).toString();
}

QStringList LayerBrowserDock::selectedLayers() const
{
    QSet<QString> chosen;
    for (const QModelIndex& index : m_view->selectionModel()->selectedRows(LayerTreeModel::ColName)) {
        const QString key = index.data(LayerTreeModel::KeyRole).toString();
        if (!key.isEmpty()) {
            if (index.data(LayerTreeModel::FactorizableRole).toBool()) chosen.insert(key);
            continue;
        }
        for (int r = 0; r < m_proxy->rowCount(index); ++r) {
            const QModelIndex child = m_proxy->index(r, LayerTreeModel::ColName, index);
            if (child.data(LayerTreeModel::FactorizableRole).toBool())
                chosen.insert(child.data(LayerTreeModel::KeyRole).toString());
        }
    }
    QStringList ordered;
    for (const QString& key : m_model->layerKeys())
        if (chosen.contains(key)) ordered << key;
    return ordered;
}

void LayerBrowserDock::addContextAction(QAction* action) { m_view->addAction(action); }

bool LayerBrowserDock::selectLayer(const QString& key)
{
    const QModelIndex source = m_model->indexOfLayer(key);
    const QModelIndex index = m_proxy->mapFromSource(source);
    if (!index.isValid()) return false;
    m_view->expand(index.parent());
    m_view->setCurrentIndex(index);
    m_view->scrollTo(index);
    return true;
}

void LayerBrowserDock::stepLayer(int delta)
{
    // Walks the visible order (sorting and filtering applied) and skips non-factorizable rows.
    QList<QModelIndex> rows;
    for (int g = 0; g < m_proxy->rowCount(); ++g) {
        const QModelIndex group = m_proxy->index(g, 0);
        for (int r = 0; r < m_proxy->rowCount(group); ++r) {
            const QModelIndex idx = m_proxy->index(r, 0, group);
            if (idx.data(LayerTreeModel::FactorizableRole).toBool()) rows << idx;
        }
    }
    if (rows.isEmpty()) return;
    const QString current = currentLayer();
    int pos = -1;
    for (int i = 0; i < rows.size(); ++i)
        if (rows[i].data(LayerTreeModel::KeyRole).toString() == current) pos = i;
    const int next = pos < 0 ? 0 : std::clamp(pos + delta, 0, static_cast<int>(rows.size()) - 1);
    m_view->expand(rows[next].parent());
    m_view->setCurrentIndex(rows[next]);
    m_view->scrollTo(rows[next]);
}

int LayerBrowserDock::minimumContentWidth() const
{
    constexpr int kShortName = 120;  // "3·q_proj" and its marker
    int width = kShortName;
    for (int c = 0; c < LayerTreeModel::ColCount; ++c)
        if (c != LayerTreeModel::ColName && !m_view->header()->isSectionHidden(c)) width += m_view->columnWidth(c);
    const QMargins margins = m_box->layout()->contentsMargins();
    return width + 2 * m_view->frameWidth() + m_view->verticalScrollBar()->sizeHint().width() + margins.left() +
           margins.right();
}

void LayerBrowserDock::updateMinimumWidth()
{
    const int width = minimumContentWidth();
    if (width != m_box->minimumWidth()) m_box->setMinimumWidth(width);
}

void LayerBrowserDock::expandAll()
{
    m_view->expandAll();
    for (int c = 0; c < LayerTreeModel::ColCount; ++c) m_view->resizeColumnToContents(c);
    m_view->setColumnWidth(LayerTreeModel::ColName, m_view->columnWidth(LayerTreeModel::ColName) + 16);
    // Values arrive later (norms, factorizations): leave them room now.
    for (int c : {int(LayerTreeModel::ColNorm), int(LayerTreeModel::ColBpw), int(LayerTreeModel::ColError)})
        m_view->setColumnWidth(c, std::max(m_view->columnWidth(c), 56));
    m_view->setColumnWidth(LayerTreeModel::ColL, std::max(m_view->columnWidth(LayerTreeModel::ColL), 26));
    m_view->setColumnWidth(LayerTreeModel::ColK, std::max(m_view->columnWidth(LayerTreeModel::ColK), 40));
}

}  // namespace mdbf::studio
