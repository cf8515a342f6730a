# Reliability tests of issue 7 (included from the top-level CMakeLists.txt). The fuzz
# targets are in tests/fuzz/ (ENABLE_FUZZING=ON, clang).
set(_bi_test_cache ${CMAKE_BINARY_DIR}/test-cache)

# Starved host: an unreachable mirror, qemu missing, the output on a full filesystem and
# libvirtd failing each give `build-image: error: <object>: <detail>`, exit 3 and nothing
# half-written. Seconds per case; the build cases use the fixture's layer cache. Root.
add_test(NAME starved_host COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/cli/test_starved_host.py)
set_tests_properties(starved_host PROPERTIES FIXTURES_REQUIRED images LABELS "cli" TIMEOUT 600
  ENVIRONMENT "BI_BINARY=$<TARGET_FILE:build-image>;BI_SOURCE_DIR=${PROJECT_SOURCE_DIR};BUILD_IMAGE_CACHE=${_bi_test_cache}")

# SIGINT/SIGTERM: a build interrupted while building layers exits 130 and leaves no process,
# staging directory or half image; boot-test interrupted removes its libvirt domain. Seconds.
add_test(NAME signals COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/cli/test_signals.py)
# PROCESSORS 2 (see tests/CMakeLists.txt, scheduling): it builds layers and starts a guest.
set_tests_properties(signals PROPERTIES FIXTURES_REQUIRED images LABELS "cli" TIMEOUT 900 PROCESSORS 2
  ENVIRONMENT "BI_BINARY=$<TARGET_FILE:build-image>;BI_SOURCE_DIR=${PROJECT_SOURCE_DIR};BUILD_IMAGE_CACHE=${_bi_test_cache};BI_TEST_IMAGES=${CMAKE_BINARY_DIR}/test-images")
