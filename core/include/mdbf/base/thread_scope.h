#pragma once
// The thread count of the calling thread's OpenMP regions and Eigen products.

#include <algorithm>

#include <omp.h>

namespace mdbf {

/// Sets the OpenMP thread count of the calling thread (which Eigen's products follow unless
/// Eigen::setNbThreads was called) to max(1, threads) for the lifetime of the object, then restores
/// it. Other threads are unaffected, so concurrent jobs with different thread counts do not
/// interfere. The count matters for results, not only speed: Eigen chooses its blocking, and so its
/// summation order, by the number of threads.
class ThreadScope {
public:
    explicit ThreadScope(int threads) : m_previous(omp_get_max_threads()) { omp_set_num_threads(std::max(1, threads)); }
    ~ThreadScope() { omp_set_num_threads(m_previous); }
    ThreadScope(const ThreadScope&) = delete;
    ThreadScope& operator=(const ThreadScope&) = delete;

private:
    int m_previous;
};

}  // namespace mdbf
