#include "study_points.h"

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/base/json_text.h"
#include "mdbf/base/text_file.h"

namespace mdbf::studio {

namespace {

using nlohmann::json;

/// Field access that names the file and the place of a problem, instead of nlohmann's messages.
class Reader {
public:
    explicit Reader(std::string file) : m_file(std::move(file)) {}

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

    const json& array(const json& object, const std::string& where, const char* name) const
    {
        const json& v = field(object, where, name);
        if (!v.is_array()) fail(where.empty() ? name : where + "." + name, "expected an array");
        return v;
    }

private:
    std::string m_file;
};

QString q(const std::string& s) { return QString::fromStdString(s); }

}  // namespace

StudyFileContents readStudyFile(const QString& path, const QString& modelName)
{
    const std::string file = path.toStdString();
    const Reader r(file);
    const json study = parseJsonText(readUtf8File(file), file);
    if (!study.is_object() || study.value("format", json()) != "mdbf-study")
        r.fail("", "not a study file (expected \"format\": \"mdbf-study\", as written by mdbf study)");

    StudyFileContents contents;
    const json& models = r.array(study, "", "models");
    for (std::size_t i = 0; i < models.size(); ++i) {
        const std::string where = "models[" + std::to_string(i) + "]";
        const json& m = models[i];
        const QString name = q(r.string(m, where, "model"));
        contents.models << name;
        if (name != modelName || contents.match) continue;
        StudyModelPoints entry;
        entry.model = name;
        entry.evalText = q(r.string(m, where, "eval_text"));
        const double ctx = r.number(m, where, "ctx");
        entry.ctx = std::isfinite(ctx) ? static_cast<int>(ctx) : 0;
        const json& points = r.array(m, where, "points");
        for (std::size_t j = 0; j < points.size(); ++j) {
            const std::string at = where + ".points[" + std::to_string(j) + "]";
            const json& p = points[j];
            widgets::PerplexityPoint point;
            point.label = q(r.string(p, at, "label"));
            point.modelBpw = r.number(p, at, "model_bpw");
            point.ppl = r.number(p, at, "ppl");
            if (!std::isfinite(point.modelBpw) || !std::isfinite(point.ppl)) {
                ++entry.skipped;
                continue;
            }
            entry.points.push_back(std::move(point));
        }
        contents.match = std::move(entry);
    }
    return contents;
}

}  // namespace mdbf::studio
