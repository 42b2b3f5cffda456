#include "mdbf/deploy/package_model.h"

#include <algorithm>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/base/json_text.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/io/model_config.h"
#include "mdbf/model/architecture.h"
#include "mdbf/model/dense_linear.h"
#include "mdbf/model/factorized_linear.h"
#include "mdbf/model/half_dense_linear.h"

namespace mdbf::deploy {

using io::DType;
using io::ModelConfig;
using io::Package;
using io::PackageLayer;
using io::PackageTensor;

namespace {

bool endsWith(const std::string& s, std::string_view suffix)
{
    return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

VectorF toVector(const PackageTensor& t, const std::string& source)
{
    if (t.shape.size() != 1) throw FormatError("'" + source + "': tensor '" + t.name + "' is not a vector");
    VectorF v(t.shape[0]);
    io::convertToFloat(t.dtype, t.data.data(), static_cast<std::size_t>(t.shape[0]), v.data());
    return v;
}

/// A 2-D tensor as a layer at its stored precision.
std::shared_ptr<const model::Linear> denseLayer(const PackageTensor& t, VectorF bias)
{
    const std::int64_t rows = t.shape[0];
    const std::int64_t cols = t.shape[1];
    if (t.dtype == DType::F32) {
        RowMatrixF W(rows, cols);
        std::memcpy(W.data(), t.data.data(), t.data.size());
        return std::make_shared<model::DenseLinear>(std::move(W), std::move(bias));
    }
    std::vector<std::uint16_t> bits(static_cast<std::size_t>(rows * cols));
    std::memcpy(bits.data(), t.data.data(), t.data.size());
    return std::make_shared<model::HalfDenseLinear>(t.dtype, rows, cols, std::move(bits), std::move(bias));
}

model::EmbeddingLookup lookupFor(const std::shared_ptr<const model::Linear>& table)
{
    if (auto half = std::dynamic_pointer_cast<const model::HalfDenseLinear>(table)) {
        return [half](std::int32_t id, std::span<float> out) { half->row(id, out); };
    }
    auto dense = std::dynamic_pointer_cast<const model::DenseLinear>(table);
    return [dense](std::int32_t id, std::span<float> out) {
        const auto row = dense->weight().row(id);
        std::copy(row.data(), row.data() + row.size(), out.begin());
    };
}

/// Whether `config` gives layer `name` a bias.
bool biasExpected(const ModelConfig& config, const std::string& name)
{
    const std::optional<model::LayerIdentity> id = model::identifyLayer(name);
    return id && model::projectionHasBias(config, id->role);
}

}  // namespace

model::Transformer transformerFromPackage(const Package& package, const std::string& source)
{
    model::TransformerParts parts;
    parts.config = io::packageModelConfig(package, source);

    std::map<std::string, VectorF, std::less<>> biases;
    std::map<std::string, const PackageTensor*, std::less<>> matrices;
    for (const PackageTensor& t : package.dense) {
        if (t.data.size() != static_cast<std::uint64_t>(t.elementCount()) * dtypeSize(t.dtype)) {
            throw FormatError("'" + source + "': tensor '" + t.name + "' holds " + std::to_string(t.data.size()) +
                              " bytes, its shape and dtype need " +
                              std::to_string(static_cast<std::uint64_t>(t.elementCount()) * dtypeSize(t.dtype)));
        }
        if (endsWith(t.name, ".bias")) {
            biases[t.name.substr(0, t.name.size() - 5)] = toVector(t, source);
        } else if (t.shape.size() == 1) {
            parts.norms[t.name] = toVector(t, source);
        } else if (t.shape.size() == 2 && endsWith(t.name, ".weight") && t.shape[0] > 0 && t.shape[1] > 0) {
            matrices[t.name.substr(0, t.name.size() - 7)] = &t;
        }
    }
    // The stored config decides which projections carry a bias, as it does for a model folder; a
    // package that disagrees would run a different model than the one it describes.
    for (const auto& [name, bias] : biases) {
        if (!biasExpected(parts.config, name)) {
            throw FormatError(quotedText(source) + ": tensor " + quotedText(name + ".bias") +
                              " is a bias the stored config.json does not give this model");
        }
    }
    auto takeBias = [&](const std::string& name) {
        const auto it = biases.find(name);
        if (it != biases.end()) return it->second;
        if (biasExpected(parts.config, name)) {
            throw FormatError(quotedText(source) + ": the stored config.json gives '" + name +
                              "' a bias, but the package holds no tensor " + quotedText(name + ".bias"));
        }
        return VectorF();
    };

    const std::string embedding = model::embeddingName();
    for (const PackageLayer& layer : package.layers) {
        const std::string kind = factor::layoutText(layer.method, layer.k(), static_cast<int>(layer.l()),
                                                    static_cast<int>(layer.paths.size()));
        try {
            parts.linears[layer.name] = std::make_shared<model::FactorizedLinear>(layer.paths, takeBias(layer.name), kind);
        } catch (const InvalidArgument& e) {
            throw FormatError("'" + source + "': layer '" + layer.name + "': " + e.what());
        }
    }
    for (const auto& [name, tensor] : matrices) {
        if (name == embedding) continue;
        if (parts.linears.count(name) != 0) {
            throw FormatError("'" + source + "': '" + name + "' is stored both factorized and dense");
        }
        parts.linears[name] = denseLayer(*tensor, takeBias(name));
    }

    const auto embeddingTensor = matrices.find(embedding);
    if (embeddingTensor == matrices.end())
        throw FormatError("'" + source + "': missing tensor '" + model::weightName(embedding) + "'");
    const std::shared_ptr<const model::Linear> table = denseLayer(*embeddingTensor->second, {});
    parts.embeddingLookup = lookupFor(table);
    const std::string head = model::headName();
    if (parts.linears.count(head) == 0 && parts.config.tieWordEmbeddings) parts.linears[head] = table;
    if (table->outFeatures() != parts.config.vocabSize || table->inFeatures() != parts.config.hiddenSize) {
        throw FormatError("'" + source + "': tensor '" + model::weightName(embedding) + "' is " +
                          std::to_string(table->outFeatures()) + "x" + std::to_string(table->inFeatures()) +
                          ", config.json implies " + std::to_string(parts.config.vocabSize) + "x" +
                          std::to_string(parts.config.hiddenSize));
    }

    std::vector<std::string> factorized;
    for (const PackageLayer& layer : package.layers) factorized.push_back(layer.name);
    model::Transformer model = model::Transformer::fromParts(std::move(parts), source);
    const std::vector<std::string> known = model.linearNames();
    for (const std::string& name : factorized) {
        if (std::find(known.begin(), known.end(), name) == known.end()) {
            throw FormatError("'" + source + "': layer '" + name + "' is not a projection of this model");
        }
    }
    return model;
}

}  // namespace mdbf::deploy
