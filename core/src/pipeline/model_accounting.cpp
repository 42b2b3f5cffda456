#include "mdbf/pipeline/model_accounting.h"

#include <set>

#include "mdbf/model/architecture.h"

namespace mdbf::pipeline {

double ModelBits::modelBpw() const
{
    return totalWeights > 0 ? static_cast<double>(totalBits) / static_cast<double>(totalWeights) : 0.0;
}

double ModelBits::factorizedBpw() const
{
    return factorizedWeights > 0 ? static_cast<double>(factorizedBits) / static_cast<double>(factorizedWeights) : 0.0;
}

std::int64_t storedBitsPerElement(io::DType dtype) { return static_cast<std::int64_t>(8 * io::dtypeSize(dtype)); }

ModelBits accountModel(const io::Checkpoint& checkpoint, std::span<const FactorizedShape> factorized)
{
    ModelBits bits;
    std::set<std::string, std::less<>> replaced;
    for (const FactorizedShape& f : factorized) {
        bits.factorizedWeights += f.n * f.m;
        bits.factorizedBits += factor::storageBits(f.n, f.m, f.k, f.l, f.paths, f.method);
        replaced.insert(model::weightName(f.name));
    }
    for (const io::TensorInfo& t : checkpoint.tensors()) {
        bits.totalWeights += t.elementCount();
        if (replaced.count(t.name) == 0) bits.totalBits += t.elementCount() * storedBitsPerElement(t.dtype);
    }
    bits.totalBits += bits.factorizedBits;
    return bits;
}

}  // namespace mdbf::pipeline
