#include "mdbf/pipeline/study_file.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "mdbf/base/error.h"
#include "mdbf/base/json_text.h"
#include "mdbf/base/text_file.h"

namespace mdbf::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string csvNumber(double v)
{
    if (!std::isfinite(v)) return "";
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.9g", v);
    return buffer;
}

nlohmann::json numberOrNull(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

/// Field access that names the file and the place of a problem, instead of nlohmann's messages.
class FieldReader {
public:
    explicit FieldReader(std::string file) : m_file(std::move(file)) {}

    [[noreturn]] void fail(const std::string& where, const std::string& problem) const
    {
        throw FormatError("'" + m_file + "': " + (where.empty() ? "" : where + ": ") + problem);
    }

    const json& field(const json& object, const std::string& where, const char* name) const
    {
        if (!object.is_object()) fail(where, "expected an object");
        const auto it = object.find(name);
        if (it == object.end()) fail(where, std::string("missing field \"") + name + "\"");
        return *it;
    }

    std::string string(const json& object, const std::string& where, const char* name) const
    {
        const json& v = field(object, where, name);
        if (!v.is_string()) fail(where + "." + name, "expected a string");
        return v.get<std::string>();
    }

    /// A number, or NaN for null (the study writes null for values it could not compute).
    double number(const json& object, const std::string& where, const char* name) const
    {
        const json& v = field(object, where, name);
        if (v.is_null()) return std::nan("");
        if (!v.is_number()) fail(where + "." + name, "expected a number");
        return v.get<double>();
    }

    /// A whole number (integral JSON number).
    std::int64_t integer(const json& object, const std::string& where, const char* name) const
    {
        const json& v = field(object, where, name);
        if (!v.is_number_integer()) fail(where + "." + name, "expected an integer");
        return v.get<std::int64_t>();
    }

    bool boolean(const json& object, const std::string& where, const char* name) const
    {
        const json& v = field(object, where, name);
        if (!v.is_boolean()) fail(where + "." + name, "expected true or false");
        return v.get<bool>();
    }

    const json& array(const json& object, const std::string& where, const char* name) const
    {
        const json& v = field(object, where, name);
        if (!v.is_array()) fail(where.empty() ? name : where + "." + name, "expected an array");
        return v;
    }

    /// A field parsed by `parse` (e.g. factor::parseMethod); its InvalidArgument becomes a FormatError.
    template <typename Parse>
    auto parsed(const json& object, const std::string& where, const char* name, Parse parse) const
    {
        const std::string text = string(object, where, name);
        try {
            return parse(text);
        } catch (const Error& e) {
            fail(where + "." + name, e.what());
        }
    }

private:
    std::string m_file;
};

LayerViewCell cellFromJson(const FieldReader& r, const json& c, const std::string& where)
{
    LayerViewCell cell;
    cell.layer = r.string(c, where, "layer");
    cell.n = r.integer(c, where, "n");
    cell.m = r.integer(c, where, "m");
    cell.bpw = r.parsed(c, where, "bpw_requested", [](const std::string& t) { return factor::Bpw::parse(t); });
    cell.method = r.parsed(c, where, "method", [](const std::string& t) { return factor::parseMethod(t); });
    cell.l = static_cast<int>(r.integer(c, where, "l"));
    cell.k = r.integer(c, where, "k");
    cell.achievedBpw = r.number(c, where, "bpw");
    cell.relError = r.number(c, where, "rel_error");
    return cell;
}

/// The method column of a point: "plan" for a planned point, whose layers carry their own methods.
std::string pointMethodText(const StudyPoint& point)
{
    return point.planned ? std::string(kPlannedMethod) : std::string(factor::methodName(point.method));
}

/// The l column: 0 for a planned point, 1 for dbf.
int pointEnvelopeRank(const StudyPoint& point)
{
    if (point.planned) return 0;
    return point.method == factor::Method::Dbf ? 1 : point.l;
}

}  // namespace

nlohmann::json studyPointToJson(const StudyPointResult& p)
{
    nlohmann::json layers = nlohmann::json::array();
    for (const StudyLayer& l : p.layers) {
        nlohmann::json layer = {{"name", l.name}, {"n", l.n}, {"m", l.m}, {"k", l.k}, {"l", l.l}, {"bpw", l.bpw},
                                {"rel_error", l.relError}, {"plain_error", l.plainError}, {"kept_dense", l.keptDense}};
        // Null: this layer of a warm-start point found nothing to start from and started cold.
        if (p.warmStart) layer["warm_start_k"] = l.warmStartK > 0 ? nlohmann::json(l.warmStartK) : nlohmann::json();
        layers.push_back(std::move(layer));
    }
    return {{"label", p.point.label()},
            {"warm_start", p.warmStart},
            {"method", pointMethodText(p.point)},
            {"l", pointEnvelopeRank(p.point)},
            {"bpw_requested", p.point.bpw.text()},
            {"objective", std::string(factor::objectiveName(p.point.objective))},
            {"sequential", p.point.sequential},
            {"iterations", p.point.iterations},
            {"ppl", p.ppl},
            {"model_bpw", p.modelBpw},
            {"factorized_bpw", p.factorizedBpw},
            {"seconds", p.seconds},
            {"cached_layers", p.cachedLayers},
            {"from_cache", p.fromCache},
            {"layers", layers}};
}

nlohmann::json layerViewCellToJson(const LayerViewCell& c)
{
    return {{"layer", c.layer}, {"n", c.n}, {"m", c.m}, {"bpw_requested", c.bpw.text()},
            {"method", std::string(factor::methodName(c.method))}, {"l", c.l}, {"k", c.k},
            {"bpw", c.achievedBpw}, {"rel_error", numberOrNull(c.relError)}};
}

StudyPointResult studyPointFromJson(const json& j, const std::string& file, const std::string& where)
{
    const FieldReader r(file);
    StudyPointResult p;
    p.point.planned = r.string(j, where, "method") == kPlannedMethod;
    if (!p.point.planned) {
        p.point.method = r.parsed(j, where, "method", [](const std::string& t) { return factor::parseMethod(t); });
        p.point.l = static_cast<int>(r.integer(j, where, "l"));
    }
    p.point.bpw = r.parsed(j, where, "bpw_requested", [](const std::string& t) { return factor::Bpw::parse(t); });
    p.point.objective = r.parsed(j, where, "objective", [](const std::string& t) { return factor::parseObjective(t); });
    p.point.sequential = r.boolean(j, where, "sequential");
    p.point.iterations = static_cast<int>(r.integer(j, where, "iterations"));
    p.ppl = r.number(j, where, "ppl");
    p.modelBpw = r.number(j, where, "model_bpw");
    p.factorizedBpw = r.number(j, where, "factorized_bpw");
    p.seconds = r.number(j, where, "seconds");
    p.cachedLayers = static_cast<int>(r.integer(j, where, "cached_layers"));
    p.fromCache = r.boolean(j, where, "from_cache");
    p.warmStart = j.contains("warm_start") && r.boolean(j, where, "warm_start");  // absent before warm starts
    const json& layers = r.array(j, where, "layers");
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const std::string at = where + ".layers[" + std::to_string(i) + "]";
        const json& l = layers[i];
        p.layers.push_back({r.string(l, at, "name"), r.integer(l, at, "n"), r.integer(l, at, "m"),
                            r.integer(l, at, "k"), static_cast<int>(r.integer(l, at, "l")), r.number(l, at, "bpw"),
                            r.number(l, at, "rel_error"), r.number(l, at, "plain_error"),
                            r.boolean(l, at, "kept_dense"), false});
        if (l.contains("warm_start_k") && !l.at("warm_start_k").is_null())
            p.layers.back().warmStartK = r.integer(l, at, "warm_start_k");
    }
    return p;
}

std::vector<StudyResult> readStudyFile(const fs::path& path)
{
    const std::string file = path.string();
    const FieldReader r(file);
    const json study = parseJsonText(readUtf8File(path), file);
    if (!study.is_object() || study.value("format", json()) != "mdbf-study")
        r.fail("", "not a study file (expected \"format\": \"mdbf-study\", as written by mdbf study)");
    std::vector<StudyResult> results;
    const json& models = r.array(study, "", "models");
    for (std::size_t i = 0; i < models.size(); ++i) {
        const std::string where = "models[" + std::to_string(i) + "]";
        const json& m = models[i];
        StudyResult s;
        s.model = r.string(m, where, "model");
        s.evalText = r.string(m, where, "eval_text");
        s.ctx = static_cast<int>(r.integer(m, where, "ctx"));
        s.evalTokens = r.integer(m, where, "eval_tokens");
        s.originalPpl = r.number(m, where, "original_ppl");
        s.originalBpw = r.number(m, where, "original_bpw");
        s.cancelled = r.boolean(m, where, "cancelled");
        const json& points = r.array(m, where, "points");
        for (std::size_t j = 0; j < points.size(); ++j)
            s.points.push_back(studyPointFromJson(points[j], file, where + ".points[" + std::to_string(j) + "]"));
        const json& view = r.array(m, where, "layer_view");
        for (std::size_t j = 0; j < view.size(); ++j)
            s.layerView.push_back(cellFromJson(r, view[j], where + ".layer_view[" + std::to_string(j) + "]"));
        results.push_back(std::move(s));
    }
    return results;
}

nlohmann::json studyToJson(const std::vector<StudyResult>& results)
{
    nlohmann::json models = nlohmann::json::array();
    for (const StudyResult& s : results) {
        nlohmann::json points = nlohmann::json::array();
        for (const StudyPointResult& p : s.points) points.push_back(studyPointToJson(p));
        nlohmann::json view = nlohmann::json::array();
        for (const LayerViewCell& c : s.layerView) view.push_back(layerViewCellToJson(c));
        models.push_back({{"model", s.model},
                          {"eval_text", s.evalText},
                          {"ctx", s.ctx},
                          {"eval_tokens", s.evalTokens},
                          {"original_ppl", s.originalPpl},
                          {"original_bpw", s.originalBpw},
                          {"cancelled", s.cancelled},
                          {"points", points},
                          {"layer_view", view}});
    }
    return {{"format", "mdbf-study"}, {"version", 1}, {"models", models}};
}

void writeStudyFiles(const std::vector<StudyResult>& results, const fs::path& directory)
{
    std::error_code ec;
    fs::create_directories(directory, ec);
    if (ec) throw IoError("'" + directory.string() + "': cannot create directory: " + ec.message());
    writeFileAtomically(directory / "study.json", studyToJson(results).dump(2) + "\n");

    std::ostringstream points;
    points << "model,method,l,bpw_requested,objective,sequential,iterations,model_bpw,factorized_bpw,ppl,original_ppl,"
              "seconds\n";
    std::ostringstream view;
    view << "model,layer,n,m,bpw_requested,method,l,k,bpw,rel_error\n";
    for (const StudyResult& s : results) {
        for (const StudyPointResult& p : s.points) {
            points << s.model << ',' << pointMethodText(p.point) << ',' << pointEnvelopeRank(p.point) << ','
                   << p.point.bpw.text() << ','
                   << factor::objectiveName(p.point.objective) << ',' << (p.point.sequential ? 1 : 0) << ','
                   << p.point.iterations << ',' << csvNumber(p.modelBpw) << ',' << csvNumber(p.factorizedBpw) << ','
                   << csvNumber(p.ppl) << ',' << csvNumber(s.originalPpl) << ',' << csvNumber(p.seconds) << '\n';
        }
        for (const LayerViewCell& c : s.layerView) {
            view << s.model << ',' << c.layer << ',' << c.n << ',' << c.m << ',' << c.bpw.text() << ','
                 << factor::methodName(c.method) << ',' << c.l << ',' << c.k << ',' << csvNumber(c.achievedBpw) << ','
                 << csvNumber(c.relError) << '\n';
        }
    }
    writeFileAtomically(directory / "points.csv", points.str());
    writeFileAtomically(directory / "layer_view.csv", view.str());
}

}  // namespace mdbf::pipeline
