// The access log: one line per finished exchange, to stdout, in the
// "combined" format or as one JSON object per line (log.access).
//
// combined: the Apache/nginx combined format, followed by key=value fields
// nginx users commonly add:
//   127.0.0.1 - - [26/Nov/2026:12:00:00 +0000] "GET /p HTTP/1.1" 200 42 "-" "curl/8" rt=0.001 urt=0.001 session=active rid=ab12...
// json: {"time":"2026-11-26T12:00:00Z","client":"127.0.0.1","host":"app.example","method":"GET","path":"/p",
//        "protocol":"HTTP/1.1","status":200,"bytes":42,"duration":0.001,"upstream_duration":0.001,
//        "session":"active","request_id":"ab12...","referer":null,"user_agent":"curl/8"}
//       (host, referer and user_agent are null when the request had none)
//
// Only request metadata is logged: never cookies, session data or any
// X-Session-* value. Client-controlled text (path, referer, user agent) is
// escaped so that it cannot split or forge a line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"

namespace sessiond {

struct AccessLogEntry {
  std::string_view client;
  std::string_view method;
  std::string_view target;
  std::string_view host;        // Host, or the authority of an absolute-form target; empty: none
  int minor_version = 1;
  int status = 0;
  uint64_t bytes = 0;           // response body bytes sent
  double duration = 0;          // seconds, head received -> response complete
  double upstream_duration = -1;  // seconds, request sent -> response head; < 0: no upstream answer
  std::string_view session;     // X-Session-Status as sent upstream, or empty
  std::string_view request_id;
  std::string_view referer;
  std::string_view user_agent;
};

// Formats one line (with the trailing newline).
std::string FormatAccessLog(const AccessLogEntry& entry, AccessLogFormat format, int64_t unix_time);

// Formats and writes one line to stdout with a single write(2), so lines from
// several workers never interleave.
void WriteAccessLog(const AccessLogEntry& entry, AccessLogFormat format);

}  // namespace sessiond
