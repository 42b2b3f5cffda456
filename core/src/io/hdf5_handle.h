#pragma once
// RAII ownership of HDF5 identifiers (private to core/io). Every hid_t the package code obtains is
// wrapped at once, so an exception anywhere closes files, groups, datasets, dataspaces, datatypes,
// attributes and property lists in reverse order.

#include <hdf5.h>

#include <utility>

namespace mdbf::io::h5 {

/// Owns one HDF5 identifier and closes it with the matching H5?close function. Move-only.
class Handle {
public:
    using Closer = herr_t (*)(hid_t);

    Handle() = default;
    /// Takes ownership of `id` (a negative id means "none" and is never closed).
    Handle(hid_t id, Closer closer) : m_id(id), m_closer(closer) {}
    ~Handle() { reset(); }

    Handle(Handle&& other) noexcept : m_id(std::exchange(other.m_id, H5I_INVALID_HID)), m_closer(other.m_closer) {}
    Handle& operator=(Handle&& other) noexcept
    {
        if (this != &other) {
            reset();
            m_id = std::exchange(other.m_id, H5I_INVALID_HID);
            m_closer = other.m_closer;
        }
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

    hid_t get() const { return m_id; }
    bool valid() const { return m_id >= 0; }

    /// Closes now; returns false when the close itself failed (e.g. a file whose last flush failed).
    bool close()
    {
        if (m_id < 0) return true;
        const herr_t status = m_closer(m_id);
        m_id = H5I_INVALID_HID;
        return status >= 0;
    }

private:
    void reset()
    {
        if (m_id >= 0) m_closer(m_id);
        m_id = H5I_INVALID_HID;
    }

    hid_t m_id = H5I_INVALID_HID;
    Closer m_closer = nullptr;
};

inline Handle fileHandle(hid_t id) { return {id, H5Fclose}; }
inline Handle groupHandle(hid_t id) { return {id, H5Gclose}; }
inline Handle datasetHandle(hid_t id) { return {id, H5Dclose}; }
inline Handle dataspaceHandle(hid_t id) { return {id, H5Sclose}; }
inline Handle datatypeHandle(hid_t id) { return {id, H5Tclose}; }
inline Handle attributeHandle(hid_t id) { return {id, H5Aclose}; }
inline Handle plistHandle(hid_t id) { return {id, H5Pclose}; }

}  // namespace mdbf::io::h5
