#pragma once
// The whole-model quantization configuration (docs/quant-config.md): defaults for every projection,
// an ordered list of pattern rules overriding them, and patterns of layers kept dense.
//
//   {
//     "defaults": {"method": "mdbf", "bpw": 1.5, "l": 2, "paths": 1, "iterations": 260, "objective": "plain"},
//     "rules": [{"pattern": "model.layers.*.mlp.*", "bpw": 2}, {"pattern": "model.layers.0.*", "dense": true}],
//     "dense": ["model.embed_tokens*", "*norm*", "lm_head*"]
//   }
//
// A layer's settings are the defaults, then dense = true if its name matches a "dense" pattern,
// then every matching rule applied in file order (a later rule overrides an earlier one). Method
// dbf always has l = 1.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "mdbf/factor/bit_budget.h"
#include "mdbf/factor/factor_result.h"

namespace mdbf::factor {

/// True when `text` matches the glob `pattern`: `*` matches any run of characters (dots included),
/// `?` any one character, everything else itself. No escapes, no character classes.
bool globMatch(std::string_view pattern, std::string_view text);

/// The settings of one layer after resolution.
/// Ranges of the per-layer settings, the same in a configuration file and on the command line
/// (README, Options): beyond them a run would last for days, or the package could not be read back.
inline constexpr int kMaxEnvelopeRank = 4096;
inline constexpr int kMaxPathCount = 1024;
inline constexpr int kMaxIterations = 100000;

struct LayerQuantSettings {
    Method method = Method::Mdbf;
    Bpw bpw;                     ///< 1 bit per weight unless configured
    int l = 1;                   ///< envelope rank (always 1 for dbf)
    int paths = 1;               ///< P
    int iterations = 260;        ///< ADMM outer iterations per path
    Objective objective = Objective::Plain;
    bool dense = false;          ///< keep the layer at its stored precision
};

/// One rule: a glob over layer names and the fields it overrides (unset fields keep their value).
struct QuantRule {
    std::string pattern;
    std::optional<Method> method;
    std::optional<Bpw> bpw;
    std::optional<int> l;
    std::optional<int> paths;
    std::optional<int> iterations;
    std::optional<Objective> objective;
    std::optional<bool> dense;
};

/// A parsed configuration. Immutable apart from the explicit setters; cheap to copy.
class QuantConfig {
public:
    /// The default dense patterns: embeddings, norms and the output head.
    static std::vector<std::string> defaultDensePatterns();

    /// Defaults of LayerQuantSettings, the default dense patterns, no rules.
    QuantConfig();

    /// The same settings for every projection (the command line's --bpw/--method/--l/--paths).
    /// Throws InvalidArgument for l < 1, paths < 1, iterations < 0 or dbf with l ≠ 1.
    static QuantConfig uniform(const LayerQuantSettings& settings);

    /// Reads a JSON configuration file. Throws IoError if unreadable and FormatError naming the file
    /// and the offending entry for malformed JSON, unknown keys, wrong types or invalid values.
    static QuantConfig fromFile(const std::filesystem::path& path);

    /// Same from parsed JSON; `source` names the file in messages.
    static QuantConfig fromJson(const nlohmann::json& json, const std::string& source);

    /// The configuration as JSON in the file format (all fields explicit); fromJson(toJson()) gives
    /// an equal configuration.
    nlohmann::json toJson() const;

    /// The settings for a layer name (with or without ".weight").
    LayerQuantSettings resolve(std::string_view layerName) const;

    const LayerQuantSettings& defaults() const { return m_defaults; }
    const std::vector<QuantRule>& rules() const { return m_rules; }
    const std::vector<std::string>& densePatterns() const { return m_dense; }

    /// Overrides the outer iteration count everywhere (defaults and rules), as --iters does.
    /// Throws InvalidArgument for a negative count.
    void overrideIterations(int iterations);

    /// Overrides the objective everywhere (defaults and rules), as the command line's --objective does.
    void overrideObjective(Objective objective);

private:
    LayerQuantSettings m_defaults;
    std::vector<QuantRule> m_rules;
    std::vector<std::string> m_dense;
};

}  // namespace mdbf::factor
