// The request policy of sessiond at the edge, in front of the backend:
// path normalisation, access rules, CSRF, rate limits and the signature of
// the session headers (docs/HTTP.md, Path normalisation; Access rules; Rate
// limits; docs/HEADER-PROTOCOL.md, CSRF token; Signed session headers).
//
// Built once per configuration and shared by every worker (the rate
// limiter's buckets are per process). The session filter calls it at three
// points of the request side, each a no-op for what is not configured:
//
//   OnRequest   before the cookie is read: normalises the path (400 when it
//               cannot) and forwards the normalised target; finds the access
//               rule; takes the client_address rate limits (429) - all
//               before any store round trip;
//   Admit       once the session is known: the access rule (401 or a
//               redirect), CSRF (403), the session and subject rate limits
//               (429);
//   AddHeaders  after the X-Session-* headers are injected: X-Session-Csrf,
//               then X-Session-Signature over everything forwarded.
//
// Shared rate limits (docs/HTTP.md, Shared rate limits) cannot be decided
// here: OnRequest and Admit name their buckets in EdgeState::shared, and the
// filter takes those tokens from the store before it goes on (a refusal is
// then TooManyRequests).
//
// A request refused at any point gets sessiond's own answer and never
// reaches the backend. Thread-safe; the per-exchange state lives in an
// EdgeState that the filter owns and reuses.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/path_normalize.h"
#include "base/status.h"
#include "config/config.h"
#include "http/exchange_filter.h"
#include "http/message.h"
#include "session/csrf.h"
#include "session/header_protocol.h"
#include "session/rate_limit.h"
#include "session/routes.h"
#include "session/shared_rate_limit.h"
#include "session/upstream_signature.h"

namespace sessiond {

// What one exchange found out; reused from exchange to exchange.
struct EdgeState {
  NormalizedPath path;
  bool has_path = false;         // path holds the normalised path (matching is on)
  const Route* route = nullptr;  // the access rule that applies, if any
  std::string scratch;
  std::string value;
  // The worker's CSRF tokens (set by the filter's factory; may be null).
  CsrfTokenCache* csrf_cache = nullptr;
  // Tokens of shared rate limits that the filter must take from the store
  // before the request goes on: the first shared_count entries (kept, with
  // their strings' capacity, from exchange to exchange).
  struct SharedTake {
    size_t rule = 0;
    std::string bucket;  // SharedBucketNames::Name
  };
  std::vector<SharedTake> shared;
  size_t shared_count = 0;

  void Reset() {
    has_path = false;
    route = nullptr;
    shared_count = 0;
  }
};

// The session as the policy sees it.
struct EdgeSession {
  SessionStatus status = SessionStatus::kNone;
  std::string_view id;    // raw session id (active or new)
  std::string_view json;  // X-Session-Data as it will be forwarded ("" = {})
};

class EdgePolicy {
 public:
  // Null (and OK) when the configuration sets none of the policy keys.
  static Result<std::shared_ptr<const EdgePolicy>> Create(const Config& config);

  std::optional<FilterResult> OnRequest(RequestHead& request, std::string_view client_ip, EdgeState* state) const;
  std::optional<FilterResult> Admit(const RequestHead& request, const EdgeSession& session, EdgeState* state) const;
  void AddHeaders(RequestHead& request, const EdgeSession& session, int64_t now, EdgeState* state) const;

  bool has_csrf() const { return csrf_ != nullptr; }
  bool has_shared_limits() const { return shared_names_ != nullptr; }
  // The bucket of a shared limit (rule: EdgeState::SharedTake::rule).
  const TokenBucketSpec& SharedSpec(size_t rule) const { return shared_names_->spec(rule); }

  // The 429 of a rate limit (docs/HTTP.md, Rate limits).
  static FilterResult TooManyRequests(const RequestHead& request, int64_t retry_after_seconds);

 private:
  struct Limit {
    size_t rule = 0;                 // index in the limiter
    RateLimitKey key = RateLimitKey::kClientAddress;
    std::vector<PathPattern> paths;  // empty: every path
    bool shared = false;             // in the store: named in EdgeState::shared
  };

  EdgePolicy() = default;
  // Takes the limits keyed by `key` (whose bucket key is `hash`, or
  // `raw_key` for a shared limit's bucket name) that apply to the request;
  // the first one without a token answers 429. Shared limits are only
  // named in state->shared.
  std::optional<FilterResult> TakeLimits(RateLimitKey key, uint64_t hash, std::string_view raw_key,
                                         EdgeState* state, const RequestHead& request) const;

  bool normalise_ = false;
  RouteTable routes_;
  std::unique_ptr<CsrfGuard> csrf_;
  std::unique_ptr<RateLimiter> limiter_;
  std::unique_ptr<SharedBucketNames> shared_names_;  // when a limit is shared
  std::vector<Limit> limits_;
  bool has_address_limits_ = false;
  bool has_session_limits_ = false;
  bool has_subject_limits_ = false;
  // session.subject_key as a member name of the session JSON (its JSON
  // string literal), for the subject rate limits.
  std::string subject_field_;
  std::unique_ptr<UpstreamSigner> signer_;
};

}  // namespace sessiond
