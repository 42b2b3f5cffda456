#pragma once
// The layers of a checkpoint as a two-level tree: groups (embeddings, block 0..N−1, head, other)
// holding the 2-D weight tensors, with columns for shape, dtype, parameters, Frobenius norm (filled
// in lazily) and, once a layer is factorized, method, bpw, l, k and error.

#include <cstdint>
#include <optional>
#include <vector>

#include <QAbstractItemModel>
#include <QHash>
#include <QSortFilterProxyModel>

#include "mdbf/io/checkpoint.h"

namespace mdbf::widgets {

/// One weight matrix shown in the tree.
struct LayerEntry {
    QString key;            ///< layer name as the model uses it ("model.layers.0.self_attn.q_proj", "lm_head")
    QString tensor;         ///< checkpoint tensor holding the weights ("….q_proj.weight")
    QString label;          ///< short name shown in the tree ("q_proj")
    std::int64_t rows = 0;  ///< n (out features)
    std::int64_t cols = 0;  ///< m (in features)
    QString dtype;          ///< stored dtype ("BF16")
    bool factorizable = false;  ///< a projection or the head (model::LayerIdentity::factorizable)
    bool factorizedByDefault = false;  ///< included by "Apply to all layers" (model::factorizedByDefault)
};

/// A top-level row and its layers.
struct LayerGroup {
    QString label;  ///< "embeddings", "block 3", "head", "other"
    std::vector<LayerEntry> layers;
};

/// What the tree shows for a factorized layer.
struct LayerFactorSummary {
    QString method;          ///< "DBF" or "MDBF"
    int l = 1;
    std::int64_t k = 0;
    double bpw = 0.0;        ///< exact bits per weight of k
    double error = 0.0;      ///< relative error ‖W−Ŵ‖/‖W‖
    QString objective;       ///< "plain", …
    bool refined = false;    ///< false while only the closed-form result exists
};

/// Groups the 2-D tensors of a checkpoint as model/architecture.h names them: the embedding, then
/// block i's projections in model order, then the head (a tied head is listed as its own layer
/// reading the embedding tensor), then any other 2-D tensors (not factorizable). 1-D tensors (norms, biases) are left out.
std::vector<LayerGroup> groupLayers(const std::vector<io::TensorInfo>& tensors, bool tiedEmbeddings);

/// Item model over groupLayers(); GUI-thread only.
class LayerTreeModel : public QAbstractItemModel {
    Q_OBJECT
public:
    enum Column { ColName, ColShape, ColDType, ColParams, ColNorm, ColMethod, ColBpw, ColL, ColK, ColError, ColCount };
    enum Role {
        SortRole = Qt::UserRole + 1,  ///< numeric key for sorting (double), or the name
        KeyRole,                      ///< LayerEntry::key of a layer row (empty for groups)
        FactorizableRole,             ///< bool
        GroupOrderRole,               ///< int position of the group (groups only)
    };

    explicit LayerTreeModel(QObject* parent = nullptr);

    /// Replaces the whole tree.
    void setGroups(std::vector<LayerGroup> groups);

    /// Sets the Frobenius norm of every layer reading `tensor`.
    void setNorm(const QString& tensor, double norm);

    /// Shows (or replaces) the factorization of layer `key`.
    void setFactorization(const QString& key, const LayerFactorSummary& summary);

    /// Forgets the factorization of `key` (or of every layer when `key` is empty).
    void clearFactorization(const QString& key = {});

    /// The entry of layer `key`, if it exists.
    const LayerEntry* layer(const QString& key) const;

    /// The factorization shown for `key`, if any.
    std::optional<LayerFactorSummary> factorization(const QString& key) const;

    /// The norm of layer `key`, if computed.
    std::optional<double> norm(const QString& key) const;

    /// Index of layer `key` in `column` (invalid when unknown).
    QModelIndex indexOfLayer(const QString& key, int column = ColName) const;

    /// Every layer key in tree order.
    QStringList layerKeys() const;

    /// The keys of the layers the default configuration factorizes (every projection, not the
    /// head), in tree order: what "Apply to all layers" covers.
    QStringList defaultLayerKeys() const;

    /// Distinct tensors whose norms are still unknown, in tree order.
    QStringList tensorsWithoutNorm() const;

    const std::vector<LayerGroup>& groups() const { return m_groups; }
    int layerCount() const;
    int factorizableCount() const;
    int factorizedCount() const { return static_cast<int>(m_factor.size()); }

    QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
    QModelIndex parent(const QModelIndex& child) const override;
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    QVariant groupData(int group, int column, int role) const;
    QVariant layerData(const LayerEntry& e, int column, int role) const;
    void emitRowChanged(const QString& key);

    std::vector<LayerGroup> m_groups;
    QHash<QString, std::pair<int, int>> m_position;  ///< key → (group, row)
    QHash<QString, double> m_norms;                  ///< tensor → norm
    QHash<QString, LayerFactorSummary> m_factor;     ///< key → summary
};

/// Sorts the layers inside each group by the clicked column while groups keep their natural
/// order; layers without a value sort last in either direction. Filters on the layer name with
/// the groups of matching layers kept.
class LayerSortProxy : public QSortFilterProxyModel {
    Q_OBJECT
public:
    explicit LayerSortProxy(QObject* parent = nullptr);

protected:
    bool lessThan(const QModelIndex& left, const QModelIndex& right) const override;
};

/// "45.1 K", "1.05 M", "6.74 G" (three significant digits), or the plain number below 1000.
QString compactCount(std::int64_t n);

}  // namespace mdbf::widgets
