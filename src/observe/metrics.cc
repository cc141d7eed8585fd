#include "observe/metrics.h"

#include <cinttypes>
#include <cstdio>

namespace sessiond {

const double Histogram::kBounds[Histogram::kBuckets] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                        0.1,    0.25,  0.5,    1,     2.5,   5,     10};

void Histogram::Observe(double seconds) {
  int i = 0;
  while (i < kBuckets && seconds > kBounds[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Histogram::Render(std::string* out, const char* name, const std::string& labels) const {
  char line[256];
  uint64_t cumulative = 0;
  const std::string sep = labels.empty() ? "" : ",";
  for (int i = 0; i <= kBuckets; ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    if (i < kBuckets) {
      snprintf(line, sizeof(line), "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels.c_str(), sep.c_str(),
               kBounds[i], cumulative);
    } else {
      snprintf(line, sizeof(line), "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels.c_str(), sep.c_str(),
               cumulative);
    }
    out->append(line);
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  snprintf(line, sizeof(line), "%s_sum%s %.6f\n", name, braces.c_str(),
           static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6);
  out->append(line);
  snprintf(line, sizeof(line), "%s_count%s %" PRIu64 "\n", name, braces.c_str(), cumulative);
  out->append(line);
}

namespace {
const char* const kMethodNames[Metrics::kMethods] = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                                     "CONNECT", "OPTIONS", "TRACE", "PATCH", "other"};
}  // namespace

int Metrics::MethodIndex(std::string_view method) {
  for (int i = 0; i < kOtherMethod; ++i) {
    if (method == kMethodNames[i]) return i;
  }
  return kOtherMethod;
}

const char* Metrics::MethodName(int index) {
  return index >= 0 && index < kMethods ? kMethodNames[index] : kMethodNames[kOtherMethod];
}

const char* RedisMetrics::LinkStateName(int state) {
  switch (state) {
    case kConnecting: return "connecting";
    case kReady: return "ready";
    case kDown: return "down";
  }
  return "?";
}

void RedisMetrics::MoveLink(const std::string& node, const char* role, int from, int to) {
  if (from == to) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_pair(node, std::string(role));
  auto& counts = links_[key];
  if (from >= 0 && from < kLinkStates) --counts[from];
  if (to >= 0 && to < kLinkStates) ++counts[to];
  bool any = false;
  for (int64_t n : counts) any = any || n != 0;
  if (!any) links_.erase(key);
}

namespace {

// A Prometheus label value: backslash and double quote escaped.
std::string LabelValue(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

void RedisMetrics::Render(std::string* out) const {
  char line[768];
  out->append("# HELP sessiond_redis_connections Connections of the redis store to each Redis node (one per "
              "worker), by state.\n"
              "# TYPE sessiond_redis_connections gauge\n");
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, counts] : links_) {
      for (int s = 0; s < kLinkStates; ++s) {
        snprintf(line, sizeof(line), "sessiond_redis_connections{node=\"%s\",role=\"%s\",state=\"%s\"} %" PRId64 "\n",
                 LabelValue(key.first).c_str(), key.second.c_str(), LinkStateName(s), counts[s]);
        out->append(line);
      }
    }
  }
  auto counter = [&](const char* name, const char* help, const char* label, const std::atomic<uint64_t>* const* values,
                     const char* const* label_values, int n) {
    snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    out->append(line);
    for (int i = 0; i < n; ++i) {
      if (label) {
        snprintf(line, sizeof(line), "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, label_values[i],
                 values[i]->load(std::memory_order_relaxed));
      } else {
        snprintf(line, sizeof(line), "%s %" PRIu64 "\n", name, values[i]->load(std::memory_order_relaxed));
      }
      out->append(line);
    }
  };
  const std::atomic<uint64_t>* redirects[] = {&redirects_moved, &redirects_ask};
  const char* redirect_kinds[] = {"moved", "ask"};
  counter("sessiond_redis_redirects_total", "Redis Cluster redirects followed, by kind.", "kind", redirects,
          redirect_kinds, 2);
  const std::atomic<uint64_t>* retries[] = {&retries_tryagain, &retries_clusterdown, &retries_readonly};
  const char* retry_reasons[] = {"tryagain", "clusterdown", "readonly"};
  counter("sessiond_redis_retries_total", "Redis commands sent again because the node did not run them, by reason.",
          "reason", retries, retry_reasons, 3);
  const std::atomic<uint64_t>* refreshes[] = {&slot_map_refreshes};
  counter("sessiond_redis_slot_map_refreshes_total", "Redis Cluster slot maps loaded (CLUSTER SLOTS).", nullptr,
          refreshes, nullptr, 1);
  const std::atomic<uint64_t>* failover[] = {&failovers};
  counter("sessiond_redis_failovers_total", "Redis masters seen replaced by another node (Sentinel or Cluster).",
          nullptr, failover, nullptr, 1);
  const std::atomic<uint64_t>* mismatch[] = {&cluster_url_mismatch};
  counter("sessiond_redis_cluster_url_mismatch_total",
          "Connections refused because redis.url alone points at a Redis Cluster node.", nullptr, mismatch, nullptr,
          1);
  const std::atomic<uint64_t>* shortfalls[] = {&wait_shortfalls};
  counter("sessiond_redis_wait_shortfalls_total",
          "Writes failed because WAIT confirmed fewer than redis.wait_replicas replicas.", nullptr, shortfalls,
          nullptr, 1);
  const std::atomic<uint64_t>* tls[] = {&tls_full, &tls_resumed, &tls_failed};
  const char* tls_outcomes[] = {"full", "resumed", "failed"};
  counter("sessiond_redis_tls_connections_total",
          "Redis connections over TLS (redis.tls) by how their TLS began: full handshake, resumed session, or "
          "failed.",
          "outcome", tls, tls_outcomes, 3);
}

const char* Metrics::StoreOpName(int op) {
  switch (op) {
    case kLoad: return "load";
    case kApply: return "apply";
    case kTouch: return "touch";
    case kPing: return "ping";
    case kRateLimit: return "rate_limit";
  }
  return "?";
}

const char* Metrics::TlsFailureName(int kind) {
  switch (kind) {
    case kTlsProtocol: return "protocol";
    case kTlsClosed: return "closed";
    case kTlsTimeout: return "timeout";
    case kTlsPlainHttp: return "plain_http";
  }
  return "?";
}

}  // namespace sessiond
