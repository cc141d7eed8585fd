// Metrics: process-wide counters and histograms, updated lock-free from every
// worker (relaxed atomics) and rendered in Prometheus text format by the
// admin listener.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

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

// The redis store's view of its nodes (docs/OPERATIONS.md, Metrics): how
// many connections (one per worker and node) are in each state, and what the
// topology made it do. Updated by every worker's store; state changes are
// rare (connects, failures), so a lock suffices for the node table.
class RedisMetrics {
 public:
  enum LinkState { kConnecting = 0, kReady, kDown, kLinkStates };
  static const char* LinkStateName(int state);

  // Moves one connection of `node` (host:port) with `role` ("master",
  // "sentinel") from state `from` to `to`; -1 for none (a new connection, or
  // one that is gone). A node with no connection left disappears.
  void MoveLink(const std::string& node, const char* role, int from, int to);

  // Appends the Prometheus text of everything below.
  void Render(std::string* out) const;

  std::atomic<uint64_t> redirects_moved{0};      // -MOVED answers followed
  std::atomic<uint64_t> redirects_ask{0};        // -ASK answers followed
  std::atomic<uint64_t> retries_tryagain{0};     // -TRYAGAIN answers retried
  std::atomic<uint64_t> retries_clusterdown{0};  // -CLUSTERDOWN answers retried
  std::atomic<uint64_t> retries_readonly{0};     // -READONLY answers (a demoted master) retried
  std::atomic<uint64_t> slot_map_refreshes{0};   // CLUSTER SLOTS loaded
  std::atomic<uint64_t> failovers{0};            // a master replaced (sentinel or cluster)
  std::atomic<uint64_t> cluster_url_mismatch{0};  // redis.url alone pointing at a cluster node
  std::atomic<uint64_t> wait_shortfalls{0};      // writes WAIT confirmed on too few replicas
  // Connections over TLS (redis.tls), by how their TLS began: counted once
  // each, when the connection is ready or when a TLS failure ends it first.
  std::atomic<uint64_t> tls_full{0};     // a full handshake
  std::atomic<uint64_t> tls_resumed{0};  // a resumed session
  std::atomic<uint64_t> tls_failed{0};   // a TLS failure (verification, refused certificate, ...)

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::array<int64_t, kLinkStates>> links_;
};

struct Metrics {
  // The method label of sessiond_requests_total (docs/OPERATIONS.md,
  // Metrics): the methods of RFC 9110 and PATCH by name, every other one
  // (and any head refused while it was read: its method was never accepted)
  // as "other", so that clients cannot grow the label set.
  enum RequestMethod { kGet = 0, kHead, kPost, kPut, kDelete, kConnect, kOptions, kTrace, kPatch, kOtherMethod,
                       kMethods };
  // Exact and case-sensitive, as methods are (RFC 9110 section 9.1).
  static int MethodIndex(std::string_view method);
  static const char* MethodName(int index);

  // Requests answered, by status code (100..599) and method.
  std::atomic<uint64_t> requests[600][kMethods] = {};
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

  // TLS (docs/OPERATIONS.md, Metrics). Handshakes completed on the listener
  // and to the upstream: [0] full, [1] resumed from a ticket or session.
  std::atomic<uint64_t> tls_handshakes[2] = {};
  std::atomic<uint64_t> upstream_tls_handshakes[2] = {};
  // Listener handshakes that failed, by reason.
  enum TlsFailure { kTlsProtocol = 0, kTlsClosed, kTlsTimeout, kTlsPlainHttp, kTlsFailureKinds };
  static const char* TlsFailureName(int kind);
  std::atomic<uint64_t> tls_handshake_failures[kTlsFailureKinds] = {};

  // Upgraded connections (docs/HTTP.md, Upgrades and WebSockets).
  std::atomic<int64_t> tunnels_active{0};
  std::atomic<uint64_t> tunnels_opened{0};
  std::atomic<uint64_t> tunnels_session_ended{0};  // ended because their session ended
  std::atomic<uint64_t> tunnel_bytes_upstream{0};  // client -> upstream
  std::atomic<uint64_t> tunnel_bytes_client{0};    // upstream -> client
  std::atomic<uint64_t> upgrades_refused_origin{0};  // cross-origin handshakes answered 403
  std::atomic<uint64_t> loops_detected{0};           // requests answered 508

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
  // Store calls that failed (unavailable, timeout, I/O), by operation;
  // kRateLimit: a token of a shared rate limit (docs/HTTP.md, Shared rate
  // limits).
  enum StoreOp { kLoad = 0, kApply, kTouch, kPing, kRateLimit, kStoreOps };
  static const char* StoreOpName(int op);
  std::atomic<uint64_t> store_errors[kStoreOps] = {};
  Histogram store_duration[kStoreOps];
  RedisMetrics redis;

  // Configuration loads (docs/OPERATIONS.md, Metrics): whether the
  // last SIGHUP reload applied (1) or was refused (0), and the Unix time of
  // the last load that applied. The load at start-up counts as one, as in
  // Prometheus's own prometheus_config_last_reload_* metrics.
  std::atomic<int> config_last_reload_successful{1};
  std::atomic<int64_t> config_last_reload_success_unix{0};
};

inline void Inc(std::atomic<uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }

}  // namespace sessiond
