#include "mdbf/model/kv_cache.h"

namespace mdbf::model {

KvCache::KvCache(const io::ModelConfig& config, int capacity) : m_capacity(capacity), m_rope(config, capacity)
{
    const Eigen::Index kvDim = static_cast<Eigen::Index>(config.numKvHeads) * config.headDim;
    m_keys.assign(static_cast<std::size_t>(config.numLayers), RowMatrixF(capacity, kvDim));
    m_values.assign(static_cast<std::size_t>(config.numLayers), RowMatrixF(capacity, kvDim));
}

KvCache::KvCache(KvCache&&) noexcept = default;
KvCache& KvCache::operator=(KvCache&&) noexcept = default;
KvCache::~KvCache() = default;

std::int64_t KvCache::bytes() const
{
    std::int64_t total = 0;
    for (const RowMatrixF& k : m_keys) total += static_cast<std::int64_t>(k.size()) * 2 * sizeof(float);
    return total;
}

}  // namespace mdbf::model
