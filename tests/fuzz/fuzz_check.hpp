#pragma once
// Property checks inside fuzz targets: a broken invariant is a crash libFuzzer reports and
// saves, like a sanitizer finding.

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                                               \
  do {                                                                                                                 \
    if (!(cond)) {                                                                                                     \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond);                               \
      std::abort();                                                                                                    \
    }                                                                                                                  \
  } while (false)
