#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/json_text.h"

namespace sessiond {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};

// The message of one line is cut to this many bytes.
constexpr size_t kMaxMessage = 1024;

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "?";
}

// strerror_r comes in two flavours (GNU returns the text, XSI fills `buf`);
// either way the result is thread-safe, unlike strerror.
[[maybe_unused]] const char* PickErrorText(int rc, const char* buf) { return rc == 0 ? buf : "unknown error"; }
[[maybe_unused]] const char* PickErrorText(const char* text, const char*) { return text; }

const char* ErrorText(int err, char* buf, size_t size) {
  buf[0] = '\0';
  return PickErrorText(strerror_r(err, buf, size), buf);
}

// The request target, cut to kMaxLoggedTarget bytes.
std::string_view CutTarget(std::string_view target, bool* cut) {
  *cut = target.size() > kMaxLoggedTarget;
  return *cut ? target.substr(0, kMaxLoggedTarget) : target;
}

// As the combined access log: '"', '\\' and bytes outside printable ASCII
// become \xHH, so the quoted request line can never end early.
void AppendEscaped(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\') {
      out->append("\\x");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 0xF]);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
}

// "GET /path HTTP/1.1", for JSON (escaped by the JSON encoder afterwards).
std::string RequestLine(const LogDetail& d) {
  bool cut = false;
  std::string_view target = CutTarget(d.target, &cut);
  std::string line;
  line.reserve(d.method.size() + target.size() + 16);
  line.append(d.method).push_back(' ');
  line.append(target);
  if (cut) line.append("...");
  line.append(" HTTP/1.").push_back(static_cast<char>('0' + (d.minor_version == 0 ? 0 : 1)));
  return line;
}

void AppendText(std::string* out, const char* time_text, LogLevel level, std::string_view message,
                const LogDetail& d) {
  out->append(time_text).append(" [").append(LevelName(level)).append("] ");
  const size_t body = out->size();
  if (!d.upstream.empty()) out->append("upstream ").append(d.upstream).append(": ");
  out->append(message);
  if (d.err != 0) {
    char buf[128];
    char num[16];
    snprintf(num, sizeof(num), "%d", d.err);
    out->append(" (").append(num).append(": ").append(ErrorText(d.err, buf, sizeof(buf))).push_back(')');
  }
  if (!d.client.empty()) out->append(", client=").append(d.client);
  if (!d.rid.empty()) out->append(", rid=").append(d.rid);
  // Never let a logged value split the line: control bytes become '?'.
  for (size_t i = body; i < out->size(); ++i) {
    if (static_cast<unsigned char>((*out)[i]) < 0x20) (*out)[i] = '?';
  }
  if (!d.method.empty()) {
    bool cut = false;
    std::string_view target = CutTarget(d.target, &cut);
    out->append(", \"");
    AppendEscaped(out, d.method);
    out->push_back(' ');
    AppendEscaped(out, target);
    if (cut) out->append("...");
    out->append(d.minor_version == 0 ? " HTTP/1.0\"" : " HTTP/1.1\"");
  }
}

void AppendJson(std::string* out, const char* time_text, LogLevel level, std::string_view message,
                const LogDetail& d) {
  out->append("{\"time\":\"").append(time_text).append("\",\"level\":\"").append(LevelName(level));
  out->append("\",\"message\":");
  AppendJsonString(out, message);
  if (!d.upstream.empty()) {
    out->append(",\"upstream\":");
    AppendJsonString(out, d.upstream);
  }
  if (d.err != 0) {
    char buf[128];
    char num[16];
    snprintf(num, sizeof(num), "%d", d.err);
    out->append(",\"errno\":").append(num).append(",\"error\":");
    AppendJsonString(out, ErrorText(d.err, buf, sizeof(buf)));
  }
  if (!d.client.empty()) {
    out->append(",\"client\":");
    AppendJsonString(out, d.client);
  }
  if (!d.rid.empty()) {
    out->append(",\"rid\":");
    AppendJsonString(out, d.rid);
  }
  if (!d.method.empty()) {
    out->append(",\"request\":");
    AppendJsonString(out, RequestLine(d));
  }
  out->push_back('}');
}

void Write(LogLevel level, const LogDetail& detail, const char* fmt, va_list ap) {
  char message[kMaxMessage];
  int m = vsnprintf(message, sizeof(message), fmt, ap);
  size_t len = m < 0 ? 0 : static_cast<size_t>(m);
  if (len >= sizeof(message)) len = sizeof(message) - 1;
  const auto format = static_cast<LogFormat>(g_format.load(std::memory_order_relaxed));
  std::string line = FormatLogLine(level, format, static_cast<int64_t>(time(nullptr)),
                                   std::string_view(message, len), detail);
  // One write() per line keeps lines from different threads whole.
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void SetLogFormat(LogFormat format) { g_format.store(static_cast<int>(format), std::memory_order_relaxed); }

std::string FormatLogLine(LogLevel level, LogFormat format, int64_t unix_time, std::string_view message,
                          const LogDetail& detail) {
  const time_t now = static_cast<time_t>(unix_time);
  struct tm tm;
  gmtime_r(&now, &tm);
  char time_text[32];
  strftime(time_text, sizeof(time_text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string line;
  line.reserve(128 + message.size() + detail.target.size());
  if (format == LogFormat::kJson) {
    AppendJson(&line, time_text, level, message, detail);
  } else {
    AppendText(&line, time_text, level, message, detail);
  }
  line.push_back('\n');
  return line;
}

void LogLine(LogLevel level, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Write(level, LogDetail(), fmt, ap);
  va_end(ap);
}

void LogLineWith(LogLevel level, const LogDetail& detail, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Write(level, detail, fmt, ap);
  va_end(ap);
}

}  // namespace sessiond
