#pragma once
// A small expected<T, Error> (std::expected is C++23; g++ 12 in C++20 mode lacks it).
// Low-level code returns these; the CLI's single top-level handler prints them.

#include <string>
#include <utility>
#include <variant>

namespace bi {

// Exit codes are part of the documented interface (README "Exit codes").
enum class ExitCode : int {
  ok = 0,
  build_failed = 1,
  bad_input = 2,
  host_missing = 3,
};

// An error names the object it concerns (a file, an image, a command) and what went wrong.
struct Error {
  std::string object;
  std::string detail;
  ExitCode code = ExitCode::build_failed;

  std::string to_string() const { return object.empty() ? detail : object + ": " + detail; }
};

inline Error make_error(std::string object, std::string detail, ExitCode code = ExitCode::build_failed) {
  return Error{std::move(object), std::move(detail), code};
}

struct Unexpected {
  Error error;
};
inline Unexpected fail(Error e) { return Unexpected{std::move(e)}; }
inline Unexpected fail(std::string object, std::string detail, ExitCode code = ExitCode::build_failed) {
  return Unexpected{make_error(std::move(object), std::move(detail), code)};
}

template <typename T> class [[nodiscard]] Expected {
public:
  Expected(T value) : m_value(std::in_place_index<0>, std::move(value)) {}
  Expected(Unexpected u) : m_value(std::in_place_index<1>, std::move(u.error)) {}

  bool has_value() const { return m_value.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() { return std::get<0>(m_value); }
  const T& value() const { return std::get<0>(m_value); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(m_value); }

private:
  std::variant<T, Error> m_value;
};

struct Ok {};

template <> class [[nodiscard]] Expected<void> {
public:
  Expected() = default;
  Expected(Ok) {}
  Expected(Unexpected u) : m_error(std::move(u.error)), m_failed(true) {}
  bool has_value() const { return !m_failed; }
  explicit operator bool() const { return has_value(); }
  const Error& error() const { return m_error; }

private:
  Error m_error;
  bool m_failed = false;
};

} // namespace bi

// Propagate an error from an Expected expression to the caller.
#define BI_CONCAT_INNER(a, b) a##b
#define BI_CONCAT(a, b) BI_CONCAT_INNER(a, b)
#define BI_TRY(expr) BI_TRY_IMPL(BI_CONCAT(bi_try_result_, __COUNTER__), expr)
#define BI_TRY_IMPL(tmp, expr)                                                                                         \
  do {                                                                                                                 \
    auto tmp = (expr);                                                                                                 \
    if (!tmp) {                                                                                                        \
      return ::bi::Unexpected{tmp.error()};                                                                            \
    }                                                                                                                  \
  } while (false)
#define BI_TRY_ASSIGN(var, expr) BI_TRY_ASSIGN_IMPL(BI_CONCAT(bi_try_tmp_, __COUNTER__), var, expr)
#define BI_TRY_ASSIGN_IMPL(tmp, var, expr)                                                                             \
  auto tmp = (expr);                                                                                                   \
  if (!tmp) {                                                                                                          \
    return ::bi::Unexpected{tmp.error()};                                                                              \
  }                                                                                                                    \
  var = std::move(*tmp)
