#include "mdbf/widgets/layer_tree_model.h"

#include <algorithm>
#include <array>
#include <map>

#include <QBrush>
#include <QColor>
#include <QFont>
#include <QIcon>
#include <QPainter>
#include <QPixmap>

#include "mdbf/model/architecture.h"

namespace mdbf::widgets {

namespace {

LayerEntry makeEntry(const io::TensorInfo& t, const std::string& key, const QString& label,
                     const std::optional<model::LayerIdentity>& id)
{
    LayerEntry e;
    e.key = QString::fromStdString(key);
    e.tensor = QString::fromStdString(t.name);
    e.label = label;
    e.rows = t.shape[0];
    e.cols = t.shape[1];
    e.dtype = QString::fromLatin1(io::dtypeName(t.dtype).data(), static_cast<int>(io::dtypeName(t.dtype).size()));
    e.factorizable = id && id->factorizable();
    e.factorizedByDefault = e.factorizable && model::factorizedByDefault(id->role);
    return e;
}

QIcon statusIcon(const QColor& fill, bool hollow)
{
    QPixmap pm(12, 12);
    pm.fill(Qt::transparent);
    QPainter p(&pm);
    p.setRenderHint(QPainter::Antialiasing);
    p.setPen(QPen(fill.darker(130), 1.2));
    p.setBrush(hollow ? QBrush(Qt::white) : QBrush(fill));
    p.drawEllipse(QRectF(2, 2, 8, 8));
    return QIcon(pm);
}

}  // namespace

QString compactCount(std::int64_t n)
{
    const double v = static_cast<double>(n);
    if (n < 1000) return QString::number(n);
    if (n < 1000000) return QStringLiteral("%1 K").arg(v / 1e3, 0, 'g', 3);
    if (n < 1000000000) return QStringLiteral("%1 M").arg(v / 1e6, 0, 'g', 3);
    return QStringLiteral("%1 G").arg(v / 1e9, 0, 'g', 3);
}

std::vector<LayerGroup> groupLayers(const std::vector<io::TensorInfo>& tensors, bool tiedEmbeddings)
{
    LayerGroup embeddings{QStringLiteral("embeddings"), {}};
    LayerGroup head{QStringLiteral("head"), {}};
    LayerGroup other{QStringLiteral("other"), {}};
    std::map<int, std::vector<std::pair<std::size_t, LayerEntry>>> blocks;  // (position in the block, entry)
    const io::TensorInfo* embedTensor = nullptr;
    bool haveHead = false;

    for (const auto& t : tensors) {
        if (t.shape.size() != 2) continue;
        const std::string key = model::stripWeightSuffix(t.name);
        const std::optional<model::LayerIdentity> id = model::identifyLayer(t.name);
        const auto label = [&] { return QString::fromUtf8(id->label.data(), static_cast<qsizetype>(id->label.size())); };
        if (id && id->block >= 0) {
            blocks[id->block].emplace_back(id->projection, makeEntry(t, key, label(), id));
        } else if (id && id->role == model::TensorRole::Embedding) {
            embedTensor = &t;
            embeddings.layers.push_back(makeEntry(t, key, label(), id));
        } else if (id && id->role == model::TensorRole::Head) {
            haveHead = true;
            head.layers.push_back(makeEntry(t, key, label(), id));
        } else {
            other.layers.push_back(makeEntry(t, key, QString::fromStdString(key), std::nullopt));
        }
    }
    if (!haveHead && tiedEmbeddings && embedTensor) {
        const std::string name = model::headName();
        head.layers.push_back(makeEntry(*embedTensor, name, QString::fromStdString(name) + QStringLiteral(" (tied)"),
                                        model::identifyLayer(name)));
    }

    std::vector<LayerGroup> groups;
    if (!embeddings.layers.empty()) groups.push_back(std::move(embeddings));
    for (auto& [index, entries] : blocks) {
        std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
            return a.first != b.first ? a.first < b.first : a.second.key < b.second.key;
        });
        LayerGroup g{QStringLiteral("block %1").arg(index), {}};
        for (auto& e : entries) g.layers.push_back(std::move(e.second));
        groups.push_back(std::move(g));
    }
    if (!head.layers.empty()) groups.push_back(std::move(head));
    if (!other.layers.empty()) groups.push_back(std::move(other));
    return groups;
}

LayerTreeModel::LayerTreeModel(QObject* parent) : QAbstractItemModel(parent) {}

void LayerTreeModel::setGroups(std::vector<LayerGroup> groups)
{
    beginResetModel();
    m_groups = std::move(groups);
    m_position.clear();
    m_norms.clear();
    m_factor.clear();
    for (int g = 0; g < static_cast<int>(m_groups.size()); ++g)
        for (int r = 0; r < static_cast<int>(m_groups[static_cast<std::size_t>(g)].layers.size()); ++r)
            m_position.insert(m_groups[static_cast<std::size_t>(g)].layers[static_cast<std::size_t>(r)].key, {g, r});
    endResetModel();
}

int LayerTreeModel::layerCount() const
{
    int n = 0;
    for (const auto& g : m_groups) n += static_cast<int>(g.layers.size());
    return n;
}

int LayerTreeModel::factorizableCount() const
{
    int n = 0;
    for (const auto& g : m_groups)
        for (const auto& e : g.layers) n += e.factorizable ? 1 : 0;
    return n;
}

const LayerEntry* LayerTreeModel::layer(const QString& key) const
{
    auto it = m_position.find(key);
    if (it == m_position.end()) return nullptr;
    return &m_groups[static_cast<std::size_t>(it->first)].layers[static_cast<std::size_t>(it->second)];
}

std::optional<LayerFactorSummary> LayerTreeModel::factorization(const QString& key) const
{
    auto it = m_factor.find(key);
    if (it == m_factor.end()) return std::nullopt;
    return *it;
}

std::optional<double> LayerTreeModel::norm(const QString& key) const
{
    const LayerEntry* e = layer(key);
    if (!e) return std::nullopt;
    auto it = m_norms.find(e->tensor);
    if (it == m_norms.end()) return std::nullopt;
    return *it;
}

QModelIndex LayerTreeModel::indexOfLayer(const QString& key, int column) const
{
    auto it = m_position.find(key);
    if (it == m_position.end()) return {};
    return createIndex(it->second, column, static_cast<quintptr>(it->first + 1));
}

QStringList LayerTreeModel::layerKeys() const
{
    QStringList keys;
    for (const auto& g : m_groups)
        for (const auto& e : g.layers) keys << e.key;
    return keys;
}

QStringList LayerTreeModel::defaultLayerKeys() const
{
    QStringList keys;
    for (const auto& g : m_groups)
        for (const auto& e : g.layers)
            if (e.factorizedByDefault) keys << e.key;
    return keys;
}

QStringList LayerTreeModel::tensorsWithoutNorm() const
{
    QStringList out;
    for (const auto& g : m_groups)
        for (const auto& e : g.layers)
            if (!m_norms.contains(e.tensor) && !out.contains(e.tensor)) out << e.tensor;
    return out;
}

void LayerTreeModel::emitRowChanged(const QString& key)
{
    const QModelIndex first = indexOfLayer(key, 0);
    if (first.isValid()) emit dataChanged(first, indexOfLayer(key, ColCount - 1));
}

void LayerTreeModel::setNorm(const QString& tensor, double norm)
{
    m_norms.insert(tensor, norm);
    for (const auto& g : m_groups)
        for (const auto& e : g.layers)
            if (e.tensor == tensor) emitRowChanged(e.key);
}

void LayerTreeModel::setFactorization(const QString& key, const LayerFactorSummary& summary)
{
    if (!m_position.contains(key)) return;
    m_factor.insert(key, summary);
    emitRowChanged(key);
}

void LayerTreeModel::clearFactorization(const QString& key)
{
    if (key.isEmpty()) {
        const QStringList keys = m_factor.keys();
        m_factor.clear();
        for (const QString& k : keys) emitRowChanged(k);
        return;
    }
    if (m_factor.remove(key) > 0) emitRowChanged(key);
}

QModelIndex LayerTreeModel::index(int row, int column, const QModelIndex& parent) const
{
    if (column < 0 || column >= ColCount || row < 0) return {};
    if (!parent.isValid()) {
        if (row >= static_cast<int>(m_groups.size())) return {};
        return createIndex(row, column, quintptr{0});
    }
    if (parent.internalId() != 0) return {};
    const int g = parent.row();
    if (g >= static_cast<int>(m_groups.size()) || row >= static_cast<int>(m_groups[static_cast<std::size_t>(g)].layers.size()))
        return {};
    return createIndex(row, column, static_cast<quintptr>(g + 1));
}

QModelIndex LayerTreeModel::parent(const QModelIndex& child) const
{
    if (!child.isValid() || child.internalId() == 0) return {};
    return createIndex(static_cast<int>(child.internalId() - 1), 0, quintptr{0});
}

int LayerTreeModel::rowCount(const QModelIndex& parent) const
{
    if (!parent.isValid()) return static_cast<int>(m_groups.size());
    if (parent.internalId() != 0 || parent.column() != 0) return 0;
    return static_cast<int>(m_groups[static_cast<std::size_t>(parent.row())].layers.size());
}

int LayerTreeModel::columnCount(const QModelIndex& /*parent*/) const { return ColCount; }

QVariant LayerTreeModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal) return {};
    static const std::array<const char*, ColCount> names = {"Layer", "Shape", "DType", "Params", "‖W‖F",
                                                             "Method", "bpw", "l", "k", "Error"};
    static const std::array<const char*, ColCount> tips = {
        "Layer name; green dot: refined factorization, hollow: closed-form only",
        "n × m: output features × input features (Hugging Face layout)",
        "Element type stored in the checkpoint",
        "Number of weights",
        "Frobenius norm of the stored weights (computed in the background)",
        "Factorization method of the layer's current result",
        "Exact bits per weight of the chosen k, envelopes included",
        "Envelope rank l",
        "Middle dimension k of the sign bases",
        "Relative error ‖W − Ŵ‖F / ‖W‖F of the current result (its objective is in the tooltip)"};
    if (section < 0 || section >= ColCount) return {};
    if (role == Qt::DisplayRole) return QString::fromUtf8(names[static_cast<std::size_t>(section)]);
    if (role == Qt::ToolTipRole) return QString::fromUtf8(tips[static_cast<std::size_t>(section)]);
    if (role == Qt::TextAlignmentRole && section >= ColParams)
        return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
    return {};
}

QVariant LayerTreeModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid()) return {};
    if (index.internalId() == 0) return groupData(index.row(), index.column(), role);
    const auto& g = m_groups[index.internalId() - 1];
    return layerData(g.layers[static_cast<std::size_t>(index.row())], index.column(), role);
}

QVariant LayerTreeModel::groupData(int group, int column, int role) const
{
    const LayerGroup& g = m_groups[static_cast<std::size_t>(group)];
    if (role == GroupOrderRole) return group;
    if (role == KeyRole) return QString();
    if (role == FactorizableRole) return false;
    std::int64_t params = 0;
    int done = 0;
    for (const auto& e : g.layers) {
        params += e.rows * e.cols;
        done += m_factor.contains(e.key) ? 1 : 0;
    }
    if (role == Qt::DisplayRole) {
        switch (column) {
        case ColName: return g.label;
        case ColShape: return QStringLiteral("%1 layer%2").arg(g.layers.size()).arg(g.layers.size() == 1 ? "" : "s");
        case ColParams: return compactCount(params);
        case ColMethod: return done > 0 ? QStringLiteral("%1/%2").arg(done).arg(g.layers.size()) : QVariant();
        default: return {};
        }
    }
    if (role == SortRole) return group;
    if (role == Qt::FontRole && column == ColName) {
        QFont f;
        f.setBold(true);
        return f;
    }
    if (role == Qt::TextAlignmentRole && column >= ColParams) return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::ToolTipRole && column == ColMethod && done > 0)
        return tr("%1 of %2 layers in this group factorized").arg(done).arg(g.layers.size());
    return {};
}

QVariant LayerTreeModel::layerData(const LayerEntry& e, int column, int role) const
{
    const auto normIt = m_norms.find(e.tensor);
    const auto factorIt = m_factor.find(e.key);
    const bool factorized = factorIt != m_factor.end();
    switch (role) {
    case KeyRole: return e.key;
    case FactorizableRole: return e.factorizable;
    case Qt::DisplayRole:
        switch (column) {
        case ColName: return e.label;
        case ColShape: return QStringLiteral("%1 × %2").arg(e.rows).arg(e.cols);
        case ColDType: return e.dtype;
        case ColParams: return compactCount(e.rows * e.cols);
        case ColNorm: return normIt == m_norms.end() ? QStringLiteral("…") : QString::number(*normIt, 'f', 3);
        case ColMethod: return factorized ? factorIt->method : QVariant();
        case ColBpw: return factorized ? QString::number(factorIt->bpw, 'f', 3) : QVariant();
        case ColL: return factorized ? QVariant(factorIt->l) : QVariant();
        case ColK: return factorized ? QVariant(static_cast<qlonglong>(factorIt->k)) : QVariant();
        case ColError: return factorized ? QString::number(factorIt->error, 'f', 4) : QVariant();
        default: return {};
        }
    case SortRole:
        switch (column) {
        case ColName: return e.key;
        case ColShape: return static_cast<double>(e.rows) * 1e9 + static_cast<double>(e.cols);
        case ColDType: return e.dtype;
        case ColParams: return static_cast<double>(e.rows * e.cols);
        case ColNorm: return normIt == m_norms.end() ? QVariant() : QVariant(*normIt);
        case ColMethod: return factorized ? QVariant(factorIt->method) : QVariant();
        case ColBpw: return factorized ? QVariant(factorIt->bpw) : QVariant();
        case ColL: return factorized ? QVariant(static_cast<double>(factorIt->l)) : QVariant();
        case ColK: return factorized ? QVariant(static_cast<double>(factorIt->k)) : QVariant();
        case ColError: return factorized ? QVariant(factorIt->error) : QVariant();
        default: return {};
        }
    case Qt::ToolTipRole: {
        QString tip = QStringLiteral("<b>%1</b><br>tensor %2<br>%3 × %4 %5")
                          .arg(e.key, e.tensor)
                          .arg(e.rows)
                          .arg(e.cols)
                          .arg(e.dtype);
        if (!e.factorizable) tip += tr("<br>lookup table: stays at stored precision");
        if (factorized) {
            tip += tr("<br>%1 l=%2 k=%3 · %4 bpw · error %5 (%6, %7)")
                       .arg(factorIt->method)
                       .arg(factorIt->l)
                       .arg(factorIt->k)
                       .arg(factorIt->bpw, 0, 'f', 4)
                       .arg(factorIt->error, 0, 'f', 4)
                       .arg(factorIt->objective, factorIt->refined ? tr("refined") : tr("closed form"));
        }
        return tip;
    }
    case Qt::DecorationRole:
        if (column == ColName && factorized) {
            static const QIcon refined = statusIcon(QColor(0, 158, 115), false);
            static const QIcon initial = statusIcon(QColor(230, 159, 0), true);
            return factorIt->refined ? refined : initial;
        }
        return {};
    case Qt::ForegroundRole:
        if (!e.factorizable) return QBrush(QColor(120, 120, 120));
        if (column == ColNorm && normIt == m_norms.end()) return QBrush(QColor(150, 150, 150));
        return {};
    case Qt::TextAlignmentRole:
        if (column >= ColParams) return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    default: return {};
    }
}

LayerSortProxy::LayerSortProxy(QObject* parent) : QSortFilterProxyModel(parent)
{
    setSortRole(LayerTreeModel::SortRole);
    setRecursiveFilteringEnabled(true);
    setFilterCaseSensitivity(Qt::CaseInsensitive);
    setFilterKeyColumn(LayerTreeModel::ColName);
    setFilterRole(LayerTreeModel::KeyRole);
}

bool LayerSortProxy::lessThan(const QModelIndex& left, const QModelIndex& right) const
{
    const bool descending = sortOrder() == Qt::DescendingOrder;
    if (!left.parent().isValid() && !right.parent().isValid()) {
        // Groups keep their model order whichever way the layers are sorted.
        const int a = left.data(LayerTreeModel::GroupOrderRole).toInt();
        const int b = right.data(LayerTreeModel::GroupOrderRole).toInt();
        return descending ? a > b : a < b;
    }
    const QVariant a = left.data(LayerTreeModel::SortRole);
    const QVariant b = right.data(LayerTreeModel::SortRole);
    if (!a.isValid() || !b.isValid()) {
        if (a.isValid() == b.isValid()) return false;
        // Missing values last in both directions (Qt inverts the result for descending order).
        return descending ? !a.isValid() : a.isValid();
    }
    if (a.userType() == QMetaType::Double || b.userType() == QMetaType::Double) return a.toDouble() < b.toDouble();
    return QString::compare(a.toString(), b.toString(), Qt::CaseInsensitive) < 0;
}

}  // namespace mdbf::widgets
