# Project-wide warning, SIMD and sanitizer settings, applied per target through mdbf_configure_target().

find_package(OpenMP REQUIRED)

add_library(mdbf_build_flags INTERFACE)
target_compile_options(mdbf_build_flags INTERFACE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
# GCC 12 reports false "may be used uninitialized" warnings inside its own AVX-512 intrinsic headers
# when Eigen vectorizes with them; they are not about project code.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(mdbf_build_flags INTERFACE -Wno-maybe-uninitialized)
  # GCC 12 also warns falsely about std::string concatenation (-Wrestrict inside char_traits.h).
  target_compile_options(mdbf_build_flags INTERFACE -Wno-restrict)
endif()
if(MDBF_NATIVE)
  target_compile_options(mdbf_build_flags INTERFACE -march=native)
endif()
if(MDBF_SANITIZE)
  target_compile_options(mdbf_build_flags INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                                                    -fno-sanitize-recover=undefined)
  target_link_options(mdbf_build_flags INTERFACE -fsanitize=address,undefined)
  # With the sanitizers GCC 12 also reports Eigen's AVX-512 transposes as reading the deliberately
  # undefined operands of its own intrinsics, and std::string concatenation as overflowing (the
  # instrumented code defeats its range analysis); the Release build keeps these warnings.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(mdbf_build_flags INTERFACE -Wno-uninitialized -Wno-stringop-overflow -Wno-array-bounds)
  endif()
endif()

if(MDBF_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "MDBF_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  # Coverage feedback for libFuzzer in every library the targets link; the targets add the driver.
  target_compile_options(mdbf_build_flags INTERFACE -fsanitize=fuzzer-no-link,address,undefined
                                                    -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(mdbf_build_flags INTERFACE -fsanitize=address,undefined)
endif()

function(mdbf_configure_target target)
  target_link_libraries(${target} PRIVATE mdbf_build_flags)
  target_compile_features(${target} PUBLIC cxx_std_20)
endfunction()

# A static library `target` (alias mdbf::<alias>) of every src/*.cpp below the calling folder, with
# its public headers in include/ and private ones beside the sources in src/.
function(mdbf_add_module_library target alias)
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/*.cpp)
  file(GLOB_RECURSE headers CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/include/*.h)
  add_library(${target} STATIC ${sources} ${headers})
  add_library(mdbf::${alias} ALIAS ${target})
  mdbf_configure_target(${target})
  target_include_directories(${target} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
endfunction()
