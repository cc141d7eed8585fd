// RecordExchange: the one place an exchange is counted and logged, however it
// ended: answered by the upstream, answered locally, cut, or refused at the
// head (docs/CONFIGURATION.md, "log"; the metrics are listed in README).
#pragma once

#include "config/config.h"
#include "observe/access_log.h"

namespace sessiond {

struct Metrics;

// Counts the response by status and method (statuses outside 100..599, e.g.
// 0 for a client that vanished, are not counted; a method outside
// Metrics::RequestMethod, or "-" for a refused head, counts as "other"),
// observes the duration, counts a refused head as a bad request, and writes
// the access log line unless the format is off. `metrics` may be null (tests).
void RecordExchange(Metrics* metrics, AccessLogFormat format, const AccessLogEntry& entry, bool refused_head);

}  // namespace sessiond
