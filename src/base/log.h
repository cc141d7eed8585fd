// The error log: leveled, thread-safe, one line per call, to stderr
// (docs/OPERATIONS.md, Error log).
//
// Two formats (log.format), process-wide like the level:
//   text: 2026-11-26T12:00:00Z [warn] upstream 127.0.0.1:3000: connect failed (111: Connection refused),
//         client=203.0.113.7, rid=5c6f..., "GET /cart HTTP/1.1"
//   json: {"time":"2026-11-26T12:00:00Z","level":"warn","message":"connect failed",
//          "upstream":"127.0.0.1:3000","errno":111,"error":"Connection refused",
//          "client":"203.0.113.7","rid":"5c6f...","request":"GET /cart HTTP/1.1"}
// A line's LogDetail supplies the structured fields; every one is optional.
//
// Callers must never pass secrets, cookie values or session data. The level
// and the format may change on reload; checking the level is a relaxed atomic
// load, so a disabled debug line costs one comparison (use the LOG_* macros so
// the arguments are not even formatted when the level is off).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace sessiond {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

// Bytes of a request target that a log line quotes; a longer one is cut
// and marked with "...".
inline constexpr size_t kMaxLoggedTarget = 256;

// What a line is about, beyond its message. Views only: the caller's data
// must live for the call.
struct LogDetail {
  std::string_view upstream;  // the upstream's address ("127.0.0.1:3000")
  int err = 0;                // the errno of the failure; 0: none
  std::string_view client;    // the client's address
  std::string_view rid;       // the request id
  // The client's request line; none when method is empty. The target is cut
  // to kMaxLoggedTarget bytes, and in text '"', '\\' and every byte outside
  // printable ASCII become \xHH (as in the combined access log).
  std::string_view method;
  std::string_view target;
  int minor_version = 1;
};

void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void SetLogFormat(LogFormat format);

// One line (with its newline) as `format` writes it: text after "[level] "
// holds no control byte, JSON is one valid object. `unix_time` in seconds.
std::string FormatLogLine(LogLevel level, LogFormat format, int64_t unix_time, std::string_view message,
                          const LogDetail& detail);

void LogLine(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void LogLineWith(LogLevel level, const LogDetail& detail, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

}  // namespace sessiond

#define LOG_AT(level, ...) \
  do { if (::sessiond::LogEnabled(level)) ::sessiond::LogLine(level, __VA_ARGS__); } while (0)
#define LOG_DEBUG(...) LOG_AT(::sessiond::LogLevel::kDebug, __VA_ARGS__)
#define LOG_INFO(...) LOG_AT(::sessiond::LogLevel::kInfo, __VA_ARGS__)
#define LOG_WARN(...) LOG_AT(::sessiond::LogLevel::kWarn, __VA_ARGS__)
#define LOG_ERROR(...) LOG_AT(::sessiond::LogLevel::kError, __VA_ARGS__)

// The same with a LogDetail (evaluated only when the level is on).
#define LOG_AT_WITH(level, detail, ...) \
  do { if (::sessiond::LogEnabled(level)) ::sessiond::LogLineWith(level, detail, __VA_ARGS__); } while (0)
#define LOG_DEBUG_WITH(detail, ...) LOG_AT_WITH(::sessiond::LogLevel::kDebug, detail, __VA_ARGS__)
#define LOG_WARN_WITH(detail, ...) LOG_AT_WITH(::sessiond::LogLevel::kWarn, detail, __VA_ARGS__)
