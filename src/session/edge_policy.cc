#include "session/edge_policy.h"

#include <arpa/inet.h>

#include <chrono>
#include <cstring>

#include "base/json_text.h"
#include "base/log.h"
#include "store/session_data.h"

namespace sessiond {

namespace {

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool WantsJson(const RequestHead& request) {
  std::optional<std::string_view> accept = request.headers.Get("Accept");
  return accept && AcceptsJson(*accept);
}

// The plain-text or JSON body of one of the policy's refusals.
FilterResult Refusal(int status, std::string_view text, std::string_view json_error, bool json) {
  FilterResult r;
  r.status = status;
  if (json) {
    r.body = "{\"error\":\"";
    r.body += json_error;
    r.body += "\"}\n";
    r.content_type = "application/json";
  } else {
    r.body = text;
  }
  return r;
}

// The bucket key of a client address: "4" and the IPv4 text, or "6" and
// the first 8 bytes of an IPv6 address: an IPv6 client is keyed by its /64,
// the block one host is usually given, or one machine could draw a fresh
// bucket per address. IPv4-mapped IPv6 addresses count as IPv4.
std::string_view AddressKey(std::string_view ip, char (&buf)[INET6_ADDRSTRLEN + 2]) {
  buf[0] = '4';
  if (ip.size() >= INET6_ADDRSTRLEN) return ip;  // not an address sessiond formats; keyed as it is
  if (ip.find(':') != std::string_view::npos) {
    char text[INET6_ADDRSTRLEN];
    memcpy(text, ip.data(), ip.size());
    text[ip.size()] = '\0';
    unsigned char addr[16];
    static const unsigned char kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (inet_pton(AF_INET6, text, addr) == 1 && memcmp(addr, kMappedPrefix, sizeof(kMappedPrefix)) != 0) {
      buf[0] = '6';
      memcpy(buf + 1, addr, 8);
      return std::string_view(buf, 9);
    }
  }
  memcpy(buf + 1, ip.data(), ip.size());
  return std::string_view(buf, ip.size() + 1);
}

// A session's bucket key: 8 bytes of its id, which is CSPRNG output a client
// cannot choose (and sessiond keeps only in memory), so it needs no hash.
// An id of another size (never minted by sessiond) goes through the hash.
uint64_t SessionBucketKey(std::string_view id, const RateLimiter& limiter) {
  if (id.size() < sizeof(uint64_t)) return limiter.Hash(id);
  uint64_t key;
  memcpy(&key, id.data(), sizeof(key));
  return key;
}

}  // namespace

Result<std::shared_ptr<const EdgePolicy>> EdgePolicy::Create(const Config& config) {
  const PolicyConfig& p = config.policy;
  if (!p.any()) return std::shared_ptr<const EdgePolicy>();
  std::shared_ptr<EdgePolicy> edge(new EdgePolicy());
  edge->normalise_ = p.matches_paths();
  Result<RouteTable> routes = RouteTable::Build(p.routes);
  if (!routes.ok()) return routes.status();
  edge->routes_ = std::move(*routes);
  if (p.csrf.enabled) {
    Result<std::unique_ptr<CsrfGuard>> guard = CsrfGuard::Create(config);
    if (!guard.ok()) return guard.status();
    edge->csrf_ = std::move(*guard);
  }
  if (!p.rate_limits.empty()) {
    Result<std::unique_ptr<RateLimiter>> limiter = RateLimiter::Create(p.rate_limits);
    if (!limiter.ok()) return limiter.status();
    edge->limiter_ = std::move(*limiter);
    for (const RateLimitRule& rule : p.rate_limits) {
      if (!rule.shared) continue;
      Result<std::unique_ptr<SharedBucketNames>> names = SharedBucketNames::Create(config);
      if (!names.ok()) return names.status();
      edge->shared_names_ = std::move(*names);
      break;
    }
    for (size_t i = 0; i < p.rate_limits.size(); ++i) {
      const RateLimitRule& rule = p.rate_limits[i];
      if (rule.key == RateLimitKey::kSubject && config.session.subject_key.empty()) {
        return Status::Invalid("rate_limits[" + std::to_string(i) + "]: key subject needs session.subject_key");
      }
      Limit limit;
      limit.rule = i;
      limit.key = rule.key;
      limit.shared = rule.shared;
      for (const std::string& path : rule.paths) limit.paths.emplace_back(path, /*exact=*/false);
      edge->has_address_limits_ |= rule.key == RateLimitKey::kClientAddress;
      edge->has_session_limits_ |= rule.key == RateLimitKey::kSession;
      edge->has_subject_limits_ |= rule.key == RateLimitKey::kSubject;
      edge->limits_.push_back(std::move(limit));
    }
  }
  if (edge->has_subject_limits_) AppendJsonString(&edge->subject_field_, config.session.subject_key);
  if (!p.upstream_signature.key.empty()) {
    Result<std::unique_ptr<UpstreamSigner>> signer = UpstreamSigner::Create(p.upstream_signature.key);
    if (!signer.ok()) return signer.status();
    edge->signer_ = std::move(*signer);
  }
  return std::shared_ptr<const EdgePolicy>(std::move(edge));
}

std::optional<FilterResult> EdgePolicy::OnRequest(RequestHead& request, std::string_view client_ip,
                                                  EdgeState* state) const {
  state->Reset();
  if (normalise_) {
    const char* reason = "";
    switch (NormalizeTarget(request.target, &state->path, &reason)) {
      case PathResult::kRefused:
        LOG_DEBUG("client %.*s: 400 %s", static_cast<int>(client_ip.size()), client_ip.data(), reason);
        return FilterResult::Reply(400, "Bad Request\n");
      case PathResult::kNotAPath:
        break;
      case PathResult::kOk:
        state->has_path = true;
        // The backend receives exactly the path the rules were matched against.
        request.target = state->path.target;
        state->route = routes_.Match(request.method, state->path.match_key);
        break;
    }
  }
  if (has_address_limits_) {
    char buf[INET6_ADDRSTRLEN + 2];
    const std::string_view address = AddressKey(client_ip, buf);
    return TakeLimits(RateLimitKey::kClientAddress, limiter_->Hash(address), address, state, request);
  }
  return std::nullopt;
}

std::optional<FilterResult> EdgePolicy::Admit(const RequestHead& request, const EdgeSession& session,
                                              EdgeState* state) const {
  const bool has_session = session.status == SessionStatus::kActive;
  if (state->route && !SatisfiesRoute(*state->route, has_session, session.json)) {
    return DenyRoute(*state->route, request.target, WantsJson(request));
  }
  if (csrf_ && has_session && CsrfGuard::IsUnsafeMethod(request.method) &&
      !(state->has_path && csrf_->Exempt(state->path.match_key)) &&
      !csrf_->Passes(request, session.id, &state->scratch)) {
    LOG_DEBUG("CSRF check failed: %.*s", static_cast<int>(request.method.size()), request.method.data());
    return Refusal(403, "Forbidden\n", "csrf", WantsJson(request));
  }
  if (has_session_limits_ && has_session) {
    std::optional<FilterResult> refused =
        TakeLimits(RateLimitKey::kSession, SessionBucketKey(session.id, *limiter_), session.id, state, request);
    if (refused) return refused;
  }
  if (has_subject_limits_ && has_session) {
    // docs/HTTP.md, Rate limits: one bucket per subject (the user), shared
    // by all of its sessions; a session without the key is not limited here.
    std::string_view value;
    ForEachSessionMember(session.json, [&](std::string_view key, std::string_view v) {
      if (key == subject_field_) value = v;
    });
    const std::string subject = SubjectOfValue(value);
    if (!subject.empty()) return TakeLimits(RateLimitKey::kSubject, limiter_->Hash(subject), subject, state, request);
  }
  return std::nullopt;
}

void EdgePolicy::AddHeaders(RequestHead& request, const EdgeSession& session, int64_t now, EdgeState* state) const {
  const bool live = session.status == SessionStatus::kActive || session.status == SessionStatus::kNew;
  if (csrf_ && live && !session.id.empty()) {
    const bool ok = state->csrf_cache ? state->csrf_cache->Token(*csrf_, session.id, &state->value)
                                      : csrf_->Token(session.id, &state->value);
    if (ok) request.headers.AppendValueCopy(kHeaderCsrf, state->value);
  }
  if (signer_ && signer_->Sign(now, request.method, request.target, request.headers, &state->scratch, &state->value)) {
    request.headers.AppendValueCopy(kHeaderSignature, state->value);
  }
}

std::optional<FilterResult> EdgePolicy::TakeLimits(RateLimitKey key, uint64_t hash, std::string_view raw_key,
                                                   EdgeState* state, const RequestHead& request) const {
  int64_t now = 0;
  for (const Limit& limit : limits_) {
    if (limit.key != key) continue;
    if (!limit.paths.empty() && !(state->has_path && AnyMatches(limit.paths, state->path.match_key))) continue;
    if (limit.shared) {
      if (state->shared.size() <= state->shared_count) state->shared.emplace_back();
      EdgeState::SharedTake& take = state->shared[state->shared_count];
      if (!shared_names_->Name(limit.rule, raw_key, &take.bucket)) {
        return FilterResult::Reply(500, "Internal Server Error\n");  // a keyed hash that cannot be computed
      }
      take.rule = limit.rule;
      ++state->shared_count;
      continue;
    }
    if (now == 0) now = SteadyNanos();
    const RateDecision d = limiter_->TakeHashed(limit.rule, hash, now);
    if (d.allowed) continue;
    return TooManyRequests(request, d.retry_after_seconds);
  }
  return std::nullopt;
}

FilterResult EdgePolicy::TooManyRequests(const RequestHead& request, int64_t retry_after_seconds) {
  FilterResult r = Refusal(429, "Too Many Requests\n", "rate_limited", WantsJson(request));
  r.headers = "Retry-After: " + std::to_string(retry_after_seconds) + "\r\n";
  return r;
}

}  // namespace sessiond
