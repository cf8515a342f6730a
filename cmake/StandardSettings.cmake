# Every first-party target links `standard_settings` privately: warnings, and the
# optional sanitizers. Warnings are errors in a git checkout (CI and developers), not
# in a release tarball, so a newer compiler's new warnings never break a user's build.
add_library(standard_settings INTERFACE)

if(EXISTS "${PROJECT_SOURCE_DIR}/.git")
  set(_werror_default ON)
else()
  set(_werror_default OFF)
endif()
option(WARNINGS_AS_ERRORS "Treat compiler warnings as errors" ${_werror_default})
option(ENABLE_SANITIZERS "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
# libFuzzer targets (tests/fuzz/): needs clang (CC=clang CXX=clang++, its own build dir).
# All first-party code gets coverage instrumentation plus ASan+UBSan; only the fuzz
# executables link libFuzzer's main.
option(ENABLE_FUZZING "Build the libFuzzer targets in tests/fuzz (clang only)" OFF)
if(ENABLE_FUZZING AND NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "ENABLE_FUZZING needs clang: configure with CC=clang CXX=clang++ in a fresh build directory")
endif()

target_compile_options(standard_settings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused
  -Woverloaded-virtual -Wformat=2)
if(WARNINGS_AS_ERRORS)
  target_compile_options(standard_settings INTERFACE -Werror)
endif()
if(ENABLE_SANITIZERS)
  target_compile_options(standard_settings INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(standard_settings INTERFACE -fsanitize=address,undefined)
endif()
if(ENABLE_FUZZING)
  target_compile_options(standard_settings INTERFACE
    -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(standard_settings INTERFACE -fsanitize=address,undefined)
endif()
target_compile_definitions(standard_settings INTERFACE $<$<CONFIG:Debug>:_GLIBCXX_ASSERTIONS>)
