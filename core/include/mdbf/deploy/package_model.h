#pragma once
// A runnable model from a deployment package alone (docs/package-format.md): the step from the
// file format (io) to the inference engine (model), kept apart so that neither depends on the other.

#include <string>

#include "mdbf/io/package.h"
#include "mdbf/model/transformer.h"

namespace mdbf::deploy {

/// Builds a runnable model from a package alone: factorized layers become
/// model::FactorizedLinear, 16-bit dense projections, the embedding table and the output head stay
/// at stored precision (model::HalfDenseLinear; a tied head shares the embedding's table), F32
/// tensors become float32 layers, norms and biases are converted to float32. `source` names the
/// package in messages. Throws FormatError for an invalid config.json, a missing or mis-shaped
/// tensor or layer, or biases that disagree with the stored config (one it implies is missing, or
/// one is stored that it does not use).
model::Transformer transformerFromPackage(const io::Package& package, const std::string& source);

}  // namespace mdbf::deploy
