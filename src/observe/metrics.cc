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

const char* Metrics::StoreOpName(int op) {
  switch (op) {
    case kLoad: return "load";
    case kApply: return "apply";
    case kTouch: return "touch";
    case kPing: return "ping";
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
