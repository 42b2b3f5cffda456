#include "mdbf/base/text_file.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <unistd.h>

#include "mdbf/base/error.h"
#include "mdbf/base/output_path.h"

namespace mdbf {

std::string readBinaryFile(const std::filesystem::path& path)
{
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        throw IoError(quotedText(path.string()) + ": is a directory, expected a file");
    }
    // POSIX reads, because a stream turns a failing read (EIO, a /proc file that refuses) into a
    // silent end of file and the caller would see an empty or cut text.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw IoError(quotedText(path.string()) + ": cannot open file: " + std::strerror(errno));
    std::string bytes;
    char buffer[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int error = errno;
            ::close(fd);
            throw IoError(quotedText(path.string()) + ": read error after " + std::to_string(bytes.size()) +
                          " bytes: " + std::strerror(error));
        }
        if (n == 0) break;
        bytes.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return bytes;
}

void writeFileAtomically(const std::filesystem::path& path, std::string_view bytes)
{
    namespace fs = std::filesystem;
    const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw IoError("'" + path.string() + "': directory '" + dir.string() + "' does not exist");
    if (fs::is_directory(path, ec)) throw IoError("'" + path.string() + "': is a directory");
    // Hidden and unique per process and call, so concurrent writers of the same file (other
    // processes or other threads) do not collide.
    static std::atomic<unsigned> counter{0};
    const fs::path temp =
        dir / temporarySibling(path, std::to_string(::getpid()) + "-" + std::to_string(counter++)).filename();
    {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        out.close();
        if (!out) {
            fs::remove(temp, ec);
            throw IoError("'" + path.string() + "': cannot write file");
        }
    }
    fs::rename(temp, path, ec);
    if (ec) {
        const std::string reason = ec.message();
        fs::remove(temp, ec);
        throw IoError("'" + path.string() + "': cannot rename into place: " + reason);
    }
}

std::size_t findInvalidUtf8(const std::string& text)
{
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = s[i];
        std::size_t len;
        std::uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (i + len > n) return i;
        for (std::size_t j = 1; j < len; ++j) {
            if ((s[i + j] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        // Reject overlong forms, surrogates and values past U+10FFFF.
        const bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
        if (overlong || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return i;
        i += len;
    }
    return std::string::npos;
}

std::string readUtf8File(const std::filesystem::path& path)
{
    std::string text = readBinaryFile(path);
    const std::size_t bad = findInvalidUtf8(text);
    if (bad != std::string::npos) {
        throw FormatError("'" + path.string() + "': invalid UTF-8 at byte offset " + std::to_string(bad));
    }
    return text;
}

std::uint64_t fnv1a(std::string_view bytes)
{
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const char c : bytes) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ull;
    }
    return h;
}

std::string hex64(std::uint64_t value)
{
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i, value >>= 4) out[static_cast<std::size_t>(i)] = kDigits[value & 0xf];
    return out;
}

}  // namespace mdbf
