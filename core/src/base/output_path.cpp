#include "mdbf/base/output_path.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mdbf/base/error.h"

namespace mdbf {

namespace fs = std::filesystem;

namespace {

bool sameObject(const fs::path& a, const fs::path& b)
{
    std::error_code ec;
    return fs::equivalent(a, b, ec) && !ec;
}

/// The input itself and, for a directory, the files directly inside it.
std::vector<fs::path> expandInput(const fs::path& input)
{
    std::vector<fs::path> out{input};
    std::error_code ec;
    if (!fs::is_directory(input, ec)) return out;
    for (fs::directory_iterator it(input, ec), end; !ec && it != end; it.increment(ec)) out.push_back(it->path());
    return out;
}

[[noreturn]] void refuse(const std::string& option, const fs::path& output, const fs::path& input)
{
    throw InvalidArgument(option + " " + quotedText(output.string()) + " would overwrite the input " +
                          quotedText(input.string()) + "; choose another path");
}

}  // namespace

fs::path temporarySibling(const fs::path& target, const std::string& suffix)
{
    // Built piecewise: GCC 12 reports a bogus -Wstringop-overflow for "." + std::string.
    std::string name = target.filename().string();
    name.insert(0, 1, '.');
    name += ".tmp-";
    name += suffix;
    return target.parent_path() / name;
}

int removeTemporarySiblings(const fs::path& target)
{
    const std::string prefix = temporarySibling(target, "").filename().string();
    const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    int removed = 0;
    std::error_code ec;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
        if (entry.path().filename().string().rfind(prefix, 0) == 0 && fs::remove(entry.path(), ec)) ++removed;
    }
    return removed;
}

FileLock::FileLock(const fs::path& path, const std::string& holder)
{
    m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (m_fd < 0) throw IoError("'" + path.string() + "': cannot create the lock file: " + std::strerror(errno));
    if (::flock(m_fd, LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        ::close(m_fd);
        m_fd = -1;
        if (error == EWOULDBLOCK) throw IoError("'" + path.string() + "' is locked: " + holder + " is using it");
        throw IoError("'" + path.string() + "': cannot lock: " + std::strerror(error));
    }
}

FileLock::~FileLock()
{
    if (m_fd >= 0) ::close(m_fd);  // closing releases the lock
}

void requireDistinctOutput(const fs::path& output, OutputKind kind, const std::vector<fs::path>& inputs,
                           const std::string& option)
{
    if (output.empty()) throw InvalidArgument(option + " is an empty path");
    for (const fs::path& input : inputs) {
        if (input.empty()) continue;
        for (const fs::path& file : expandInput(input)) {
            if (sameObject(output, file)) refuse(option, output, file);
        }
        if (kind == OutputKind::Directory) {
            // The files written into the directory would replace inputs of the same names.
            std::error_code ec;
            const fs::path folder = fs::is_directory(input, ec) ? input : input.parent_path();
            if (sameObject(output, folder.empty() ? fs::path(".") : folder)) refuse(option, output, input);
            for (const fs::path& file : expandInput(input)) {
                if (sameObject(output / file.filename(), file)) refuse(option, output / file.filename(), file);
            }
        }
    }
}

}  // namespace mdbf
