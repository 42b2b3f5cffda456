// A libFuzzer target; MDBF_FUZZ_TARGET names which entry point of fuzz_entry_points.h it drives,
// so every target is this one file compiled once per name.

#include <cstddef>
#include <cstdint>

#include "fuzz_entry_points.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    (void)mdbf::fuzz::runFuzzInput(MDBF_FUZZ_TARGET, {data, size});
    return 0;
}
