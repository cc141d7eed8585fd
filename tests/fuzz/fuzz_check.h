// Invariant checks shared by the libFuzzer targets (tests/fuzz/*_fuzz.cc) and
// the regression unit test that replays their corpora
// (tests/unit/fuzz_regressions_test.cc).
//
// Every target's logic lives in a header-only Check<Target>(input) function
// that returns false at the first violated invariant. The violation goes to
// the current handler: by default it prints the condition and aborts, which
// is what libFuzzer needs to record a crash with its input; the unit test
// installs a handler that records the message instead, so one bad seed fails
// one test case rather than killing the test binary.
//
// Everything here must compile warning-free with g++ and clang++ under
// -Wall -Wextra -Werror and must not depend on libFuzzer headers: the unit
// test builds these headers with the project's normal toolchain.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace sessiond {
namespace fuzz {

using ViolationHandler = void (*)(const char* file, int line, const char* what);

inline void AbortOnViolation(const char* file, int line, const char* what) {
  std::fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n", file, line, what);
  std::abort();
}

inline ViolationHandler& CurrentViolationHandler() {
  static ViolationHandler handler = &AbortOnViolation;
  return handler;
}

// Reports a violation and returns false, so FUZZ_CHECK can `return` it.
inline bool Violation(const char* file, int line, const char* what) {
  CurrentViolationHandler()(file, line, what);
  return false;
}

// Splits `s` at every `sep` (empty pieces kept; "" gives one empty piece).
inline std::vector<std::string_view> SplitOn(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

inline bool HasCrLfOrNul(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return true;
  }
  return false;
}

// Printable ASCII only (0x20..0x7E): safe in a log line and an error body.
inline bool IsPrintableAscii(std::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7E) return false;
  }
  return true;
}

}  // namespace fuzz
}  // namespace sessiond

// Returns false from the enclosing function (which must return bool) when
// `cond` does not hold, after reporting it.
#define FUZZ_CHECK(cond)                                                 \
  do {                                                                   \
    if (!(cond)) return ::sessiond::fuzz::Violation(__FILE__, __LINE__, #cond); \
  } while (0)

// Propagates a nested check's failure (the nested call already reported it).
#define FUZZ_TRY(call)        \
  do {                        \
    if (!(call)) return false; \
  } while (0)
