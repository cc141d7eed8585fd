#include "observe/access_log.h"

#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "base/json_text.h"

namespace sessiond {

namespace {

// For the combined format: printable ASCII passes, '"' and '\\' and every
// other byte become \xHH (as nginx does), so a field can never end early.
void AppendEscaped(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  if (s.empty()) {
    out->push_back('-');
    return;
  }
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

void AppendJson(std::string* out, std::string_view s) { AppendJsonString(out, s); }

// A request header's value, or null when the request had none.
void AppendJsonOrNull(std::string* out, std::string_view s) {
  if (s.empty()) {
    out->append("null");
  } else {
    AppendJsonString(out, s);
  }
}

}  // namespace

std::string FormatAccessLog(const AccessLogEntry& e, AccessLogFormat format, int64_t unix_time) {
  std::string line;
  line.reserve(256 + e.target.size() + e.host.size() + e.user_agent.size() + e.referer.size());
  time_t t = static_cast<time_t>(unix_time);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[192];  // the longest snprintf: the JSON numbers, about 110 bytes
  if (format == AccessLogFormat::kJson) {
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    line.append("{\"time\":\"").append(buf).append("\",\"client\":");
    AppendJson(&line, e.client);
    line.append(",\"host\":");
    AppendJsonOrNull(&line, e.host);
    line.append(",\"method\":");
    AppendJson(&line, e.method);
    line.append(",\"path\":");
    AppendJson(&line, e.target);
    snprintf(buf, sizeof(buf),
             ",\"protocol\":\"HTTP/1.%d\",\"status\":%d,\"bytes\":%llu,\"duration\":%.6f,\"upstream_duration\":",
             e.minor_version == 0 ? 0 : 1, e.status, static_cast<unsigned long long>(e.bytes), e.duration);
    line.append(buf);
    if (e.upstream_duration < 0) {
      line.append("null");
    } else {
      snprintf(buf, sizeof(buf), "%.6f", e.upstream_duration);
      line.append(buf);
    }
    line.append(",\"session\":");
    if (e.session.empty()) line.append("null");
    else AppendJson(&line, e.session);
    line.append(",\"request_id\":");
    AppendJson(&line, e.request_id);
    line.append(",\"referer\":");
    AppendJsonOrNull(&line, e.referer);
    line.append(",\"user_agent\":");
    AppendJsonOrNull(&line, e.user_agent);
    line.append("}\n");
    return line;
  }
  line.append(e.client);
  strftime(buf, sizeof(buf), " - - [%d/%b/%Y:%H:%M:%S +0000] \"", &tm);
  line.append(buf);
  AppendEscaped(&line, e.method);
  line.push_back(' ');
  AppendEscaped(&line, e.target);
  snprintf(buf, sizeof(buf), " HTTP/1.%d\" %d %llu \"", e.minor_version, e.status,
           static_cast<unsigned long long>(e.bytes));
  line.append(buf);
  AppendEscaped(&line, e.referer);
  line.append("\" \"");
  AppendEscaped(&line, e.user_agent);
  snprintf(buf, sizeof(buf), "\" rt=%.3f urt=", e.duration);
  line.append(buf);
  if (e.upstream_duration < 0) {
    line.push_back('-');
  } else {
    snprintf(buf, sizeof(buf), "%.3f", e.upstream_duration);
    line.append(buf);
  }
  line.append(" session=");
  AppendEscaped(&line, e.session);
  line.append(" rid=");
  AppendEscaped(&line, e.request_id);
  line.push_back('\n');
  return line;
}

void WriteAccessLog(const AccessLogEntry& entry, AccessLogFormat format) {
  if (format == AccessLogFormat::kOff) return;
  std::string line = FormatAccessLog(entry, format, static_cast<int64_t>(time(nullptr)));
  ssize_t ignored = write(STDOUT_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace sessiond
