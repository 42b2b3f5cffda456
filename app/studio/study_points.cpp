#include "study_points.h"

#include <cmath>

#include "mdbf/pipeline/study_file.h"

namespace mdbf::studio {

StudyFileContents readStudyFile(const QString& path, const QString& modelName)
{
    const std::vector<pipeline::StudyResult> study = pipeline::readStudyFile(path.toStdString());
    StudyFileContents contents;
    for (const pipeline::StudyResult& model : study) {
        const QString name = QString::fromStdString(model.model);
        contents.models << name;
        if (name != modelName || contents.match) continue;
        StudyModelPoints entry;
        entry.model = name;
        entry.evalText = QString::fromStdString(model.evalText);
        entry.ctx = model.ctx;
        for (const pipeline::StudyPointResult& p : model.points) {
            if (!std::isfinite(p.modelBpw) || !std::isfinite(p.ppl)) {
                ++entry.skipped;
                continue;
            }
            entry.points.push_back({p.modelBpw, p.ppl, QString::fromStdString(p.point.label())});
        }
        contents.match = std::move(entry);
    }
    return contents;
}

}  // namespace mdbf::studio
