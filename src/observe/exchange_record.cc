#include "observe/exchange_record.h"

#include "observe/metrics.h"

namespace sessiond {

void RecordExchange(Metrics* metrics, AccessLogFormat format, const AccessLogEntry& entry, bool refused_head) {
  if (metrics) {
    if (refused_head) metrics->bad_requests.fetch_add(1, std::memory_order_relaxed);
    if (entry.status >= 100 && entry.status < 600) {
      metrics->requests[entry.status][Metrics::MethodIndex(entry.method)].fetch_add(1, std::memory_order_relaxed);
    }
    metrics->request_duration.Observe(entry.duration);
  }
  if (format != AccessLogFormat::kOff) WriteAccessLog(entry, format);
}

}  // namespace sessiond
