#pragma once
// Test-side safetensors writing and decoding, written independently of the reader under test.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "error_expect.h"
#include "test_fixtures.h"

namespace mdbf::test {

/// IEEE binary16 decoded arithmetically from its fields: (-1)^s · 2^(e-15) · (1 + m/1024), or
/// 2^-14 · m/1024 for subnormals. Not for inf/NaN patterns.
inline float decodeF16Reference(std::uint16_t bits)
{
    const int sign = bits >> 15;
    const int exponent = (bits >> 10) & 0x1f;
    const int mantissa = bits & 0x3ff;
    const double magnitude = exponent == 0 ? std::ldexp(mantissa / 1024.0, -14)
                                           : std::ldexp(1.0 + mantissa / 1024.0, exponent - 15);
    return static_cast<float>(sign ? -magnitude : magnitude);
}

/// bfloat16 is the top half of a float32.
inline float decodeBf16Reference(std::uint16_t bits)
{
    const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &wide, sizeof f);
    return f;
}

/// Decodes little-endian stored bytes of dtype "F32", "F16" or "BF16".
inline std::vector<float> decodeReference(const std::string& dtype, const std::string& bytes)
{
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    std::vector<float> out;
    if (dtype == "F32") {
        for (std::size_t i = 0; i + 4 <= bytes.size(); i += 4) {
            const std::uint32_t u = p[i] | (p[i + 1] << 8) | (p[i + 2] << 16) | (static_cast<std::uint32_t>(p[i + 3]) << 24);
            float f;
            std::memcpy(&f, &u, sizeof f);
            out.push_back(f);
        }
    } else {
        for (std::size_t i = 0; i + 2 <= bytes.size(); i += 2) {
            const auto u = static_cast<std::uint16_t>(p[i] | (p[i + 1] << 8));
            out.push_back(dtype == "F16" ? decodeF16Reference(u) : decodeBf16Reference(u));
        }
    }
    return out;
}

/// A safetensors file read with plain file I/O: the parsed header and the data region.
struct SafetensorsReference {
    nlohmann::json header;
    std::string data;

    /// The stored bytes of one tensor.
    std::string bytes(const std::string& name) const
    {
        const auto& offsets = header.at(name).at("data_offsets");
        const auto begin = offsets[0].get<std::size_t>();
        const auto end = offsets[1].get<std::size_t>();
        return data.substr(begin, end - begin);
    }

    std::vector<float> values(const std::string& name) const
    {
        return decodeReference(header.at(name).at("dtype").get<std::string>(), bytes(name));
    }
};

inline std::string readWholeFile(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    std::string bytes(static_cast<std::size_t>(in.tellg()), '\0');
    in.seekg(0);
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return bytes;
}

inline SafetensorsReference readSafetensorsReference(const std::filesystem::path& path)
{
    const std::string all = readWholeFile(path);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(all[static_cast<std::size_t>(i)]);
    SafetensorsReference ref;
    ref.header = nlohmann::json::parse(all.substr(8, n));
    ref.data = all.substr(8 + n);
    return ref;
}

/// Writes `8-byte little-endian length + header + data` verbatim (for corrupt files too).
inline void writeRawSafetensors(const std::filesystem::path& path, const std::string& header, const std::string& data,
                                std::uint64_t headerLength)
{
    std::string out;
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((headerLength >> (8 * i)) & 0xff));
    out += header;
    out += data;
    std::ofstream(path, std::ios::binary).write(out.data(), static_cast<std::streamsize>(out.size()));
}

inline void writeRawSafetensors(const std::filesystem::path& path, const std::string& header, const std::string& data)
{
    writeRawSafetensors(path, header, data, header.size());
}

/// One tensor for SafetensorsBuilder: dtype string, shape and stored bytes.
struct TensorSpec {
    std::string name;
    std::string dtype;
    std::vector<std::int64_t> shape;
    std::string bytes;
};

/// Lays out valid tensors back to back, optionally padding the header to an odd length so that
/// the data is misaligned.
inline void writeSafetensors(const std::filesystem::path& path, const std::vector<TensorSpec>& tensors,
                             std::size_t headerPadding = 0)
{
    nlohmann::json header = nlohmann::json::object();
    header["__metadata__"] = {{"format", "pt"}};
    std::string data;
    for (const TensorSpec& t : tensors) {
        header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
        data += t.bytes;
    }
    std::string text = header.dump();
    text.append(headerPadding, ' ');
    writeRawSafetensors(path, text, data);
}

inline std::string u16Bytes(const std::vector<std::uint16_t>& values)
{
    std::string s;
    for (const std::uint16_t v : values) {
        s.push_back(static_cast<char>(v & 0xff));
        s.push_back(static_cast<char>(v >> 8));
    }
    return s;
}

inline std::string f32Bytes(const std::vector<float>& values)
{
    std::string s;
    for (const float f : values) {
        std::uint32_t u;
        std::memcpy(&u, &f, sizeof u);
        for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
    }
    return s;
}

}  // namespace mdbf::test
