#pragma once
// Read-only POSIX memory mapping of a whole file (private to the io module).

#include <cstddef>
#include <filesystem>

namespace mdbf::io {

/// Maps a regular file read-only for the lifetime of the object. The bytes are shared with the
/// page cache and only read from disk when touched, so mapping a multi-gigabyte checkpoint costs
/// no RAM up front. Not copyable or movable (hold it through a shared_ptr); concurrent reads are
/// safe. If another process truncates the file while it is mapped, reading past the new end
/// raises SIGBUS: the operating system gives no portable way to guard against that.
class MappedFile {
public:
    /// Maps `path`. Throws IoError naming the file if it does not exist, is not a regular file,
    /// cannot be opened or cannot be mapped. An empty file gives size() == 0 and data() == nullptr.
    explicit MappedFile(const std::filesystem::path& path);
    ~MappedFile();

    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    /// First byte of the file, or nullptr for an empty file.
    const std::byte* data() const { return m_data; }

    /// File size in bytes.
    std::size_t size() const { return m_size; }

    /// The path the file was opened from.
    const std::filesystem::path& path() const { return m_path; }

private:
    std::filesystem::path m_path;
    const std::byte* m_data = nullptr;
    std::size_t m_size = 0;
};

}  // namespace mdbf::io
