#include "model_session.h"

#include <map>

#include "mdbf/base/error.h"

namespace mdbf::studio {

std::shared_ptr<ModelSession> ModelSession::load(const std::filesystem::path& dir, const RunContext& ctx)
{
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
        throw InvalidArgument("'" + dir.string() + "' is not a model folder (not a directory)");
    if (!std::filesystem::exists(dir / "config.json", ec))
        throw InvalidArgument("'" + dir.string() +
                              "' is not a model folder: it has no config.json (a Hugging Face model folder holds "
                              "config.json, the weights as *.safetensors, and tokenizer.json)");
    constexpr int kSteps = 3;
    ctx.report("opening model", 0, kSteps);
    auto session = std::shared_ptr<ModelSession>(new ModelSession());
    session->m_dir = dir;
    session->m_config = io::ModelConfig::fromFile(dir / "config.json");
    ctx.throwIfStopped();
    ctx.report("opening model", 1, kSteps);
    session->m_checkpoint = std::make_shared<const io::Checkpoint>(io::Checkpoint::open(dir));
    ctx.throwIfStopped();
    ctx.report("opening model", 2, kSteps);
    try {
        session->m_tokenizer.emplace(Tokenizer::fromModelDir(dir));
    } catch (const Error& e) {
        session->m_tokenizerError = QString::fromUtf8(e.what());
    }
    ctx.report("opening model", kSteps, kSteps);

    std::map<io::DType, std::int64_t> perDtype;
    std::int64_t bits = 0;
    for (const auto& t : session->m_checkpoint->tensors()) {
        const std::int64_t n = t.elementCount();
        session->m_params += n;
        perDtype[t.dtype] += n;
        bits += n * static_cast<std::int64_t>(io::dtypeSize(t.dtype)) * 8;
    }
    if (session->m_params > 0) session->m_storedBpw = static_cast<double>(bits) / static_cast<double>(session->m_params);
    std::int64_t best = -1;
    for (const auto& [dtype, n] : perDtype) {
        if (n > best) {
            best = n;
            const auto name = io::dtypeName(dtype);
            session->m_dtype = QString::fromLatin1(name.data(), static_cast<qsizetype>(name.size()));
        }
    }
    return session;
}

QString ModelSession::name() const
{
    const auto dir = m_dir.has_filename() ? m_dir : m_dir.parent_path();
    return QString::fromStdString(dir.filename().string());
}

std::shared_ptr<const model::Transformer> ModelSession::transformer(const RunContext& ctx) const
{
    std::lock_guard lock(m_transformerMutex);
    if (!m_transformer) {
        m_transformer = std::make_shared<const model::Transformer>(
            model::Transformer::fromCheckpoint(m_config, *m_checkpoint, ctx));
    }
    return m_transformer;
}

}  // namespace mdbf::studio
