// The process_* metrics every Prometheus client library exports (the
// "process collector"), and sessiond_build_info, rendered from /proc on each
// scrape: nothing is sampled in between, so a scrape sees the present.
#pragma once

#include <string>

namespace sessiond {

// Appends, in Prometheus text format: process_cpu_seconds_total,
// process_resident_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds and sessiond_build_info{version,commit}. A
// value /proc cannot give (not Linux, /proc not mounted) is left out rather
// than reported as 0.
void RenderProcessMetrics(std::string* out);

// `text` as a Prometheus label value: backslash, double quote and newline
// escaped.
std::string EscapeLabelValue(const std::string& text);

}  // namespace sessiond
