#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

namespace sessiond {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "?";
}
}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void LogLine(LogLevel level, const char* fmt, ...) {
  char line[1024];
  time_t now = time(nullptr);
  struct tm tm;
  gmtime_r(&now, &tm);
  int n = static_cast<int>(strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ", &tm));
  n += snprintf(line + n, sizeof(line) - n, " [%s] ", LevelName(level));
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof(line) - 2) len = sizeof(line) - 2;
  // Never let a logged value split the line: control bytes become '?'.
  for (size_t i = static_cast<size_t>(n); i < len; ++i) {
    if (static_cast<unsigned char>(line[i]) < 0x20) line[i] = '?';
  }
  line[len++] = '\n';
  // One write() per line keeps lines from different threads whole.
  ssize_t ignored = write(STDERR_FILENO, line, len);
  (void)ignored;
}

}  // namespace sessiond
