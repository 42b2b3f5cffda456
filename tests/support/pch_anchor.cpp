// The one source of mdbf_test_pch, the target that owns the test executables' shared precompiled
// header (tests/CMakeLists.txt); it has nothing to compile of its own.
