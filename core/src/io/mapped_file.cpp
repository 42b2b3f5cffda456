#include "io/mapped_file.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mdbf/base/error.h"
#include "mdbf/io/mapped_pages.h"

namespace mdbf::io {

namespace {

[[noreturn]] void throwIo(const std::filesystem::path& path, const std::string& what, int err)
{
    throw IoError("'" + path.string() + "': " + what + ": " + std::strerror(err));
}

/// Closes a descriptor on every exit path; the mapping stays valid after close().
class FdGuard {
public:
    explicit FdGuard(int fd) : m_fd(fd) {}
    ~FdGuard() { ::close(m_fd); }
    FdGuard(const FdGuard&) = delete;
    FdGuard& operator=(const FdGuard&) = delete;
    int get() const { return m_fd; }

private:
    int m_fd;
};

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) : m_path(path)
{
    int fd;
    do {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) throwIo(path, "cannot open file", errno);
    const FdGuard guard(fd);

    struct stat st {};
    if (::fstat(fd, &st) != 0) throwIo(path, "cannot stat file", errno);
    if (S_ISDIR(st.st_mode)) throw IoError("'" + path.string() + "': is a directory, expected a file");
    if (!S_ISREG(st.st_mode)) throw IoError("'" + path.string() + "': not a regular file");
    if (st.st_size < 0) throw IoError("'" + path.string() + "': negative file size");

    m_size = static_cast<std::size_t>(st.st_size);
    // mmap rejects a zero length; an empty file is reported by the caller as a format problem.
    if (m_size == 0) return;

    void* p = ::mmap(nullptr, m_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) throwIo(path, "cannot memory-map file", errno);
    m_data = static_cast<const std::byte*>(p);
}

MappedFile::~MappedFile()
{
    if (m_data != nullptr) ::munmap(const_cast<std::byte*>(m_data), m_size);
}

void releaseMappedPages(std::span<const std::byte> bytes)
{
    // Whole pages: the mapping is private and never written, so a dropped page shared with a
    // neighbouring tensor is simply read from the file again.
    static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = reinterpret_cast<std::uintptr_t>(bytes.data()) / page * page;
    const auto end = reinterpret_cast<std::uintptr_t>(bytes.data() + bytes.size());
    if (!bytes.empty() && end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

}  // namespace mdbf::io
