// The error log: leveled, thread-safe, one line per call, to stderr.
//
// Lines look like "2026-11-26T12:00:00Z [warn] upstream: connect refused".
// Callers must never pass secrets, cookie values or session data. The level is
// process-wide and may change on reload; checking it is a relaxed atomic load,
// so a disabled debug line costs one comparison (use the LOG_* macros so the
// arguments are not even formatted when the level is off).
#pragma once

#include <atomic>

namespace sessiond {

enum class LogLevel { kDebug, kInfo, kWarn, kError };


void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace sessiond

#define LOG_AT(level, ...) \
  do { if (::sessiond::LogEnabled(level)) ::sessiond::LogLine(level, __VA_ARGS__); } while (0)
#define LOG_DEBUG(...) LOG_AT(::sessiond::LogLevel::kDebug, __VA_ARGS__)
#define LOG_INFO(...) LOG_AT(::sessiond::LogLevel::kInfo, __VA_ARGS__)
#define LOG_WARN(...) LOG_AT(::sessiond::LogLevel::kWarn, __VA_ARGS__)
#define LOG_ERROR(...) LOG_AT(::sessiond::LogLevel::kError, __VA_ARGS__)
