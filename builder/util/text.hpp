#pragma once
// Small string helpers.

#include <string>
#include <string_view>

namespace bi {

// Appends `piece` to a `sep`-separated list. Also keeps GCC 12 at -O3 quiet: its false
// -Wrestrict on `(cond ? "" : sep) + std::string` stops Release builds with -Werror.
inline void append_separated(std::string& list, std::string_view sep, std::string_view piece) {
  if (!list.empty()) {
    list += sep;
  }
  list += piece;
}

} // namespace bi
