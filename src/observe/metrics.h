// Metrics: process-wide counters and histograms, updated lock-free from every
// worker (relaxed atomics) and rendered in Prometheus text format by the
// admin listener.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace sessiond {

// A fixed-bucket histogram of durations in seconds.
class Histogram {
 public:
  static constexpr int kBuckets = 14;
  static const double kBounds[kBuckets];  // upper bounds, seconds

  void Observe(double seconds);
  // Appends the Prometheus text lines for this histogram under `name` with
  // an optional label set like `op="load"` (without braces).
  void Render(std::string* out, const char* name, const std::string& labels) const;

 private:
  std::atomic<uint64_t> counts_[kBuckets + 1] = {};  // last: +Inf
  std::atomic<uint64_t> sum_micros_{0};
};

struct Metrics {
  // Requests answered, by status class index: code 100..599.
  std::atomic<uint64_t> requests_by_code[600] = {};
  Histogram request_duration;
  std::atomic<int64_t> connections_active{0};
  // Highest connections_active since the main thread last trimmed the heap.
  std::atomic<int64_t> connections_peak{0};
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> upstream_errors{0};
  std::atomic<uint64_t> upstream_connections_opened{0};  // connects started to the upstream
  std::atomic<uint64_t> timeouts_client_header{0};
  std::atomic<uint64_t> timeouts_client_body{0};
  std::atomic<uint64_t> timeouts_upstream_connect{0};
  std::atomic<uint64_t> timeouts_upstream_response{0};
  std::atomic<uint64_t> bad_requests{0};  // framing errors answered by sessiond

  // Sessions.
  std::atomic<uint64_t> sessions_created{0};
  std::atomic<uint64_t> sessions_destroyed{0};
  std::atomic<uint64_t> cookies_invalid{0};
  std::atomic<uint64_t> cookies_expired{0};
  std::atomic<uint64_t> instructions_malformed{0};
  std::atomic<uint64_t> sessions_too_large{0};
  // Sessions ended by X-Session-Revoke, max_sessions_per_subject or the
  // admin API (docs/HEADER-PROTOCOL.md, Subjects).
  std::atomic<uint64_t> sessions_revoked{0};
  // Sliding refreshes carried out, and those session_refresh_threshold
  // skipped (docs/CONFIGURATION.md, session.session_refresh_threshold).
  std::atomic<uint64_t> session_refreshes{0};
  std::atomic<uint64_t> session_refreshes_skipped{0};
  // Store calls that failed (unavailable, timeout, I/O), by operation.
  enum StoreOp { kLoad = 0, kApply, kTouch, kPing, kStoreOps };
  static const char* StoreOpName(int op);
  std::atomic<uint64_t> store_errors[kStoreOps] = {};
  Histogram store_duration[kStoreOps];

  // Configuration loads (docs/OPERATIONS.md, Metrics): whether the
  // last SIGHUP reload applied (1) or was refused (0), and the Unix time of
  // the last load that applied. The load at start-up counts as one, as in
  // Prometheus's own prometheus_config_last_reload_* metrics.
  std::atomic<int> config_last_reload_successful{1};
  std::atomic<int64_t> config_last_reload_success_unix{0};
};

inline void Inc(std::atomic<uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }

}  // namespace sessiond
