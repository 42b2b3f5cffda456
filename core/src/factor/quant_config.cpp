#include "mdbf/factor/quant_config.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/base/json_text.h"
#include "mdbf/base/text_file.h"

namespace mdbf::factor {

namespace {

constexpr std::string_view kFormatName = "mdbf-quant-config";
constexpr int kFormatVersion = 1;

std::string stripWeight(std::string_view name)
{
    constexpr std::string_view suffix = ".weight";
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
        name.remove_suffix(suffix.size());
    }
    return std::string(name);
}

// Reads the override fields of one JSON object ("defaults" or a rule). `where` names the object in
// messages; keys other than the settings and `extraKeys` are errors, to catch typos.
class FieldReader {
public:
    FieldReader(const std::string& source, std::string where) : m_source(source), m_where(std::move(where)) {}

    [[noreturn]] void fail(const std::string& key, const std::string& problem) const
    {
        const std::string at = m_where.empty() ? key : (key.empty() ? m_where : m_where + "." + key);
        throw FormatError(quotedText(m_source, kMaxMessageBytes / 2) + ": " + (at.empty() ? "" : messageText(at) + ": ") +
                          problem);
    }

    QuantRule read(const nlohmann::json& object, std::initializer_list<std::string_view> extraKeys) const
    {
        if (!object.is_object()) fail("", "expected an object");
        QuantRule rule;
        for (const auto& [key, value] : object.items()) {
            if (key == "method") {
                rule.method = parseWith<Method>(key, value, [](std::string_view t) { return parseMethod(t); });
            } else if (key == "objective") {
                rule.objective =
                    parseWith<Objective>(key, value, [](std::string_view t) { return parseObjective(t); });
            } else if (key == "bpw") {
                rule.bpw = readBpw(key, value);
            } else if (key == "l") {
                rule.l = readInt(key, value, 1, kMaxEnvelopeRank);
            } else if (key == "paths") {
                rule.paths = readInt(key, value, 1, kMaxPathCount);
            } else if (key == "iterations") {
                rule.iterations = readInt(key, value, 0, kMaxIterations);
            } else if (key == "dense") {
                if (!value.is_boolean()) fail(key, "expected true or false");
                rule.dense = value.get<bool>();
            } else if (std::find(extraKeys.begin(), extraKeys.end(), key) == extraKeys.end()) {
                fail("", "unknown key " + quotedText(key));
            }
        }
        if (rule.method == Method::Dbf && rule.l && *rule.l != 1) fail("l", "method dbf requires l = 1");
        return rule;
    }

private:
    template <typename T, typename Parse>
    T parseWith(const std::string& key, const nlohmann::json& value, Parse parse) const
    {
        if (!value.is_string()) fail(key, "expected a string");
        try {
            return parse(value.get<std::string>());
        } catch (const Error& e) {
            fail(key, e.what());
        }
    }

    int readInt(const std::string& key, const nlohmann::json& value, int minimum, int maximum) const
    {
        const auto outOfRange = [&] {
            fail(key, messageText(value.dump()) + " is out of range (" + std::to_string(minimum) + " to " +
                          std::to_string(maximum) + ")");
        };
        if (!value.is_number_integer()) fail(key, "expected an integer");
        if (value.is_number_unsigned() && value.get<std::uint64_t>() > static_cast<std::uint64_t>(maximum)) outOfRange();
        const std::int64_t v = value.get<std::int64_t>();
        if (v < minimum || v > maximum) outOfRange();
        return static_cast<int>(v);
    }

    Bpw readBpw(const std::string& key, const nlohmann::json& value) const
    {
        try {
            if (value.is_string()) return Bpw::parse(value.get<std::string>());
            if (value.is_number()) return Bpw::fromDouble(value.get<double>());
        } catch (const Error& e) {
            fail(key, e.what());
        }
        fail(key, "expected a number");
    }

    const std::string& m_source;
    std::string m_where;
};

void apply(LayerQuantSettings& s, const QuantRule& r)
{
    if (r.method) s.method = *r.method;
    if (r.bpw) s.bpw = *r.bpw;
    if (r.l) s.l = *r.l;
    if (r.paths) s.paths = *r.paths;
    if (r.iterations) s.iterations = *r.iterations;
    if (r.objective) s.objective = *r.objective;
    if (r.dense) s.dense = *r.dense;
}

nlohmann::json ruleFieldsJson(const QuantRule& r)
{
    nlohmann::json j = nlohmann::json::object();
    if (r.method) j["method"] = std::string(methodName(*r.method));
    if (r.bpw) j["bpw"] = r.bpw->value();
    if (r.l) j["l"] = *r.l;
    if (r.paths) j["paths"] = *r.paths;
    if (r.iterations) j["iterations"] = *r.iterations;
    if (r.objective) j["objective"] = std::string(objectiveName(*r.objective));
    if (r.dense) j["dense"] = *r.dense;
    return j;
}

}  // namespace

bool globMatch(std::string_view pattern, std::string_view text)
{
    // Greedy matching with backtracking to the last '*': linear in practice, never exponential.
    std::size_t p = 0, t = 0;
    std::size_t starP = std::string_view::npos, starT = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || (pattern[p] != '*' && pattern[p] == text[t]))) {
            ++p;
            ++t;
        } else if (p < pattern.size() && pattern[p] == '*') {
            starP = p++;
            starT = t;
        } else if (starP != std::string_view::npos) {
            p = starP + 1;
            t = ++starT;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

std::vector<std::string> QuantConfig::defaultDensePatterns()
{
    return {"model.embed_tokens*", "*norm*", "lm_head*"};
}

QuantConfig::QuantConfig() : m_dense(defaultDensePatterns()) {}

QuantConfig QuantConfig::uniform(const LayerQuantSettings& settings)
{
    if (settings.l < 1) throw InvalidArgument("envelope rank l must be at least 1, got " + std::to_string(settings.l));
    if (settings.paths < 1) throw InvalidArgument("paths must be at least 1, got " + std::to_string(settings.paths));
    if (settings.iterations < 0) {
        throw InvalidArgument("iterations must not be negative, got " + std::to_string(settings.iterations));
    }
    if (settings.method == Method::Dbf && settings.l != 1) throw InvalidArgument("method dbf requires l = 1");
    QuantConfig config;
    config.m_defaults = settings;
    config.m_defaults.dense = false;
    return config;
}

QuantConfig QuantConfig::fromFile(const std::filesystem::path& path)
{
    return fromJson(parseJsonText(readUtf8File(path), path.string()), path.string());
}

QuantConfig QuantConfig::fromJson(const nlohmann::json& json, const std::string& source)
{
    const FieldReader top(source, "");
    if (!json.is_object()) top.fail("", "the configuration must be a JSON object");
    QuantConfig config;
    for (const auto& [key, value] : json.items()) {
        if (key == "format") {
            if (!value.is_string() || value.get<std::string>() != kFormatName) {
                top.fail(key, "expected \"" + std::string(kFormatName) + "\"");
            }
        } else if (key == "version") {
            if (!value.is_number_integer() || value.get<std::int64_t>() != kFormatVersion) {
                top.fail(key, "unsupported version " + messageText(value.dump()) + " (this build reads version " +
                                  std::to_string(kFormatVersion) + ")");
            }
        } else if (key == "defaults") {
            const QuantRule d = FieldReader(source, "defaults").read(value, {});
            apply(config.m_defaults, d);
        } else if (key == "rules") {
            if (!value.is_array()) top.fail(key, "expected an array of rule objects");
            for (std::size_t i = 0; i < value.size(); ++i) {
                const FieldReader reader(source, "rules[" + std::to_string(i) + "]");
                QuantRule rule = reader.read(value[i], {"pattern"});
                const auto it = value[i].find("pattern");
                if (it == value[i].end()) reader.fail("", "missing key 'pattern'");
                if (!it->is_string() || it->get<std::string>().empty()) reader.fail("pattern", "expected a non-empty string");
                rule.pattern = it->get<std::string>();
                config.m_rules.push_back(std::move(rule));
            }
        } else if (key == "dense") {
            if (!value.is_array()) top.fail(key, "expected an array of patterns");
            config.m_dense.clear();
            for (std::size_t i = 0; i < value.size(); ++i) {
                if (!value[i].is_string() || value[i].get<std::string>().empty()) {
                    top.fail("dense[" + std::to_string(i) + "]", "expected a non-empty string");
                }
                config.m_dense.push_back(value[i].get<std::string>());
            }
        } else {
            top.fail("", "unknown key '" + key + "'");
        }
    }
    return config;
}

nlohmann::json QuantConfig::toJson() const
{
    nlohmann::json rules = nlohmann::json::array();
    for (const QuantRule& r : m_rules) {
        nlohmann::json j = ruleFieldsJson(r);
        j["pattern"] = r.pattern;
        rules.push_back(std::move(j));
    }
    QuantRule d;
    d.method = m_defaults.method;
    d.bpw = m_defaults.bpw;
    d.l = m_defaults.l;
    d.paths = m_defaults.paths;
    d.iterations = m_defaults.iterations;
    d.objective = m_defaults.objective;
    nlohmann::json defaults = ruleFieldsJson(d);
    if (m_defaults.dense) defaults["dense"] = true;
    return {{"format", kFormatName},
            {"version", kFormatVersion},
            {"defaults", std::move(defaults)},
            {"rules", std::move(rules)},
            {"dense", m_dense}};
}

LayerQuantSettings QuantConfig::resolve(std::string_view layerName) const
{
    const std::string name = stripWeight(layerName);
    LayerQuantSettings s = m_defaults;
    for (const std::string& pattern : m_dense) {
        if (globMatch(pattern, name)) s.dense = true;
    }
    for (const QuantRule& rule : m_rules) {
        if (globMatch(rule.pattern, name)) apply(s, rule);
    }
    if (s.method == Method::Dbf) s.l = 1;
    return s;
}

void QuantConfig::overrideIterations(int iterations)
{
    if (iterations < 0) throw InvalidArgument("iterations must not be negative, got " + std::to_string(iterations));
    m_defaults.iterations = iterations;
    for (QuantRule& rule : m_rules) {
        if (rule.iterations) rule.iterations = iterations;
    }
}

void QuantConfig::overrideObjective(Objective objective)
{
    m_defaults.objective = objective;
    for (QuantRule& rule : m_rules) {
        if (rule.objective) rule.objective = objective;
    }
}

}  // namespace mdbf::factor
