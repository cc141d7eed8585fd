#include "session/session_filter.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <type_traits>
#include <vector>

#include "base/log.h"
#include "observe/metrics.h"
#include "session/cookie_chunks.h"
#include "session/cookie_header.h"
#include "session/header_protocol.h"
#include "session/session_plan.h"
#include "store/store_factory.h"

namespace sessiond {

namespace {

// Expiry times are whole Unix seconds counted from the current second, so a
// session lives at most session_expiration_time (up to a second less): the
// setting is a bound.
int64_t NowSeconds() { return static_cast<int64_t>(time(nullptr)); }

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// What a client sees when the upstream's instructions cannot be carried out
// (docs/HEADER-PROTOCOL.md, Malformed instructions): never the reason, which
// goes to the log.
constexpr std::string_view kBadGatewayBody = "Bad Gateway\n";

class SessionFilter final : public ExchangeFilter {
 public:
  SessionFilter(const SessionContext* ctx, const SessionPolicy* policy, CsrfTokenCache* csrf_cache)
      : ctx_(ctx), policy_(policy) {
    edge_state_.csrf_cache = csrf_cache;
  }

  void OnRequestHead(RequestHead& request, FilterDone done) override;
  void OnResponseHead(const RequestHead& request, ResponseHead& response, FilterDone done) override;
  std::string_view LogTag() const override { return ToString(injected_status_); }
  SessionBinding Binding() const override;

  // The client's address, for client_address rate limits and the stored
  // session's metadata (docs/OPERATIONS.md, Sessions API).
  void set_client_ip(std::string_view ip) { client_ip_.assign(ip.data(), ip.size()); }

  // Forgets the exchange, keeping every buffer's capacity for the next one.
  // A store callback of the old exchange that arrives later is ignored.
  void Reset();
  bool has_calls_in_flight() const { return calls_in_flight_ > 0; }

 private:
  const Config& config() const { return *ctx_->config; }
  const CookieCodec& codec() const { return *ctx_->codec; }
  bool has_store() const { return ctx_->store != nullptr; }
  const EdgePolicy* edge() const { return ctx_->edge.get(); }
  EdgeSession edge_session() const { return EdgeSession{facts_.status, session_.id, session_.json}; }
  void Count(std::atomic<uint64_t> Metrics::*counter) {
    if (ctx_->metrics) Inc(ctx_->metrics->*counter);
  }
  void CountStore(int op, const Status& status);
  // Counts what the plan did once it is carried out; `exists` is whether the
  // session exists afterwards.
  void CountOutcome(bool exists);

  // Request side.
  // The cookie, and the session it names (Load for the store managers).
  void ReadSession();
  void ReadCookie(RequestHead& request, int64_t now);
  // An active session past its idle or absolute timeout becomes expired.
  void ExpireByPolicy(int64_t now);
  void Load();
  void OnLoaded(const Status& status, std::optional<StoredSession> stored);
  // The edge policy's checks of the session (Admit), then Admitted.
  void ContinueRequest();
  // session_create: always, then inject and continue.
  void Admitted();
  // Shared rate limits (docs/HTTP.md, Shared rate limits): takes the
  // tokens the edge policy named from the store, then goes on with `then`:
  // a 429 when a bucket is empty; a failure follows redis.on_error.
  enum class SharedStep { kReadSession, kAdmitted };
  void TakeSharedTokens(SharedStep then);
  void OnTokenTaken(const Status& status, const TokenVerdict& verdict);
  void Inject(RequestHead& request);
  // A new id with a fresh lifetime for the current session; its data stays.
  bool MintId(int64_t now);

  // Response side.
  void WriteCookieSession(const ChangeBatch& batch);
  void Touch();
  void OnTouched(const Status& status);
  void Apply(ChangeBatch batch);
  void OnApplied(const Status& status, const ApplyResult& result);
  void SetTokenCookie();
  void AddSetCookie(std::string_view value, int64_t expires_at);
  // Clears the session cookie and every chunk cookie NAME.k the request sent
  // at or above `from_chunk` (docs/COOKIES.md, Chunked cookies).
  void ClearCookie();
  void ClearChunksFrom(size_t from_chunk);
  // The metadata a store keeps with the session after this response.
  SessionMeta BuildMeta();
  // Counts the sessions a revocation ended and lists them in EndedSessions,
  // so that their tunnels close on every worker of this process.
  void NoteRevoked(const std::vector<RevokedSession>& revoked);

  // Answers 502 "Bad Gateway" for instructions that cannot be carried out;
  // `what` ("<header>: <reason>") goes to the error log with the request's
  // path and id.
  void Reject(std::string_view what);
  // A store call failed: 503 under fail_closed (true), otherwise carry on
  // without the store (false).
  bool StoreFailed(const char* what, const Status& status);
  // Hands `result` to the exchange (once).
  void Finish(FilterResult result);

  // The callback of a store call of this exchange: runs Method, unless the
  // call completes after the filter was recycled, when it only counts itself
  // done. It captures two words, which fit std::function's inline storage,
  // so a store call allocates nothing here.
  template <auto Method>
  auto StoreCallback();

  const SessionContext* const ctx_;
  const SessionPolicy* const policy_;

  // The exchange being served. A store call captures generation_; Reset
  // bumps it, so a late callback can tell it belongs to an earlier exchange.
  uint64_t generation_ = 0;
  int calls_in_flight_ = 0;  // store calls not yet called back, any generation
  FilterDone done_;
  RequestHead* request_ = nullptr;    // valid until the exchange ends
  ResponseHead* response_ = nullptr;  // during OnResponseHead
  std::chrono::steady_clock::time_point call_start_;
  int64_t response_now_ = 0;

  RequestFacts facts_;                 // what the request had (the plan's input)
  SessionStatus injected_status_ = SessionStatus::kNone;
  SessionPlan plan_;                   // what the response does
  // The current session: raw id, expiry, the secret index its cookie verified
  // under, the data as JSON (the X-Session-Data value) and the public id.
  DecodedCookie session_;
  std::string request_key_;  // store key of the request's session, once computed
  bool applied_exists_ = false;  // the store's answer to Apply: the session exists
  std::string ended_id_;     // public id of the session this response ends (Destroy, Regenerate)
  std::string client_ip_;    // for client_address rate limits and the stored session's metadata
  EdgeState edge_state_;
  // Shared rate limits of this exchange: calls not yet answered, what the
  // answers said so far, and where the request goes on.
  int shared_pending_ = 0;
  int64_t shared_retry_ms_ = 0;  // > 0: a bucket was empty
  Status shared_failure_;
  SharedStep shared_then_ = SharedStep::kReadSession;

  // Reused buffers.
  CookieScratch scratch_;
  SessionCookieViews cookies_;
  std::string forwarded_cookies_;
  std::string merged_json_;
  std::string cookie_value_;
  std::string set_cookie_;
};

template <auto Method>
auto SessionFilter::StoreCallback() {
  ++calls_in_flight_;
  call_start_ = std::chrono::steady_clock::now();
  auto callback = [this, generation = generation_](auto&&... args) {
    --calls_in_flight_;
    if (generation != generation_) return;
    (this->*Method)(std::forward<decltype(args)>(args)...);
  };
  // What libstdc++ (and libc++) keep inside a std::function without a heap block.
  static_assert(sizeof(callback) <= 2 * sizeof(void*) && std::is_trivially_copyable_v<decltype(callback)>,
                "a store callback must fit std::function's inline storage");
  return callback;
}

void SessionFilter::Reset() {
  ++generation_;
  done_ = nullptr;
  request_ = nullptr;
  response_ = nullptr;
  facts_ = RequestFacts();
  injected_status_ = SessionStatus::kNone;
  plan_ = SessionPlan();
  session_.Clear();
  request_key_.clear();
  applied_exists_ = false;
  ended_id_.clear();
  edge_state_.Reset();
  cookies_.Clear();  // a request without Cookie must not see the last one's chunks
  shared_pending_ = 0;
  shared_retry_ms_ = 0;
  shared_failure_ = Status::OK();
}

void SessionFilter::CountStore(int op, const Status& status) {
  // A session over its size limit is the upstream's doing, not the store's.
  const bool failed = !status.ok() && status.code() != Status::Code::kTooLarge;
  // Readiness follows the store at once (docs/OPERATIONS.md, Readiness):
  // reported before the request is answered, so that its 503 is never
  // followed by a /readyz 200.
  if (ctx_->store_health) ctx_->store_health(!failed);
  if (!ctx_->metrics) return;
  ctx_->metrics->store_duration[op].Observe(Since(call_start_));
  if (failed) Inc(ctx_->metrics->store_errors[op]);
}

void SessionFilter::CountOutcome(bool exists) {
  if (plan_.destroys) Count(&Metrics::sessions_destroyed);
  if (exists && plan_.creates) Count(&Metrics::sessions_created);
  // Its tunnels close (the entry can go once the session would have expired).
  if (!ended_id_.empty() && ctx_->ended) ctx_->ended->Add(ended_id_, facts_.expires_at, response_now_);
}

SessionBinding SessionFilter::Binding() const {
  SessionBinding b;
  const bool exists = has_store() && plan_.store == StoreOp::kApply ? applied_exists_ : plan_.exists;
  if (plan_.skips || !exists || session_.id.empty()) return b;
  if (!session_.public_id.empty()) {
    b.id = session_.public_id;
  } else if (Result<std::string> pid = codec().PublicId(session_.id); pid.ok()) {
    b.id = std::move(*pid);
  } else {
    return b;
  }
  if (has_store()) {
    // Where the session lives now: a new id or a re-keyed one under the
    // current secret, otherwise where the request found it.
    if (plan_.mint || plan_.move || request_key_.empty()) {
      Result<std::string> key = codec().StoreKey(session_.id, plan_.mint || plan_.move ? 0 : facts_.key_index);
      if (key.ok()) b.store_key = std::move(*key);
    } else {
      b.store_key = request_key_;
    }
  }
  // A sliding lifetime in a store: the store's own expiry decides.
  b.expires_at = has_store() && policy_->refresh_each_request ? 0 : plan_.expires_at;
  return b;
}

void SessionFilter::Finish(FilterResult result) {
  FilterDone done = std::move(done_);
  done_ = nullptr;
  done(std::move(result));
}

// ---------------------------------------------------------------------------
// Request side
// ---------------------------------------------------------------------------

void SessionFilter::OnRequestHead(RequestHead& request, FilterDone done) {
  done_ = std::move(done);
  request_ = &request;
  request.headers.Remove(HeaderId::kSessionAny);
  if (edge()) {
    if (std::optional<FilterResult> refused = edge()->OnRequest(request, client_ip_, &edge_state_)) {
      Finish(std::move(*refused));
      return;
    }
    if (edge_state_.shared_count > 0) {
      TakeSharedTokens(SharedStep::kReadSession);
      return;
    }
  }
  ReadSession();
}

void SessionFilter::ReadSession() {
  ReadCookie(*request_, NowSeconds());
  if (facts_.status == SessionStatus::kActive && has_store()) {
    Load();
    return;
  }
  ContinueRequest();
}

void SessionFilter::ReadCookie(RequestHead& request, int64_t now) {
  if (request.headers.Count(HeaderId::kCookie) == 0) return;
  cookies_.Clear();
  forwarded_cookies_.clear();
  for (const Header& h : request.headers.fields()) {
    if (h.id == HeaderId::kCookie) SplitCookieHeader(h.value, codec().cookie_name(), &cookies_, &forwarded_cookies_);
  }
  // The session values are views into the request's raw head, which removing
  // the fields does not touch.
  request.headers.Remove(HeaderId::kCookie);
  if (!forwarded_cookies_.empty()) request.headers.AppendValueCopy(kFieldCookie, forwarded_cookies_);
  facts_.sent_cookie = cookies_.count > 0 || cookies_.ignored > 0 || cookies_.has_chunks();
  if (!facts_.sent_cookie) return;

  bool expired = false;
  for (size_t i = 0; i < cookies_.count; ++i) {
    std::string_view value = cookies_.values[i];
    switch (AssembleChunks(value, cookies_, &scratch_.assembled)) {
      case ChunkAssembly::kSingle: break;
      case ChunkAssembly::kAssembled: value = scratch_.assembled; break;
      case ChunkAssembly::kInvalid: continue;
    }
    codec().Verify(value, now, &scratch_, &session_);
    if (session_.verdict == CookieVerdict::kValid) {
      facts_.status = SessionStatus::kActive;
      facts_.key_index = session_.key_index;
      facts_.expires_at = session_.expires_at;
      facts_.created_at = session_.created_at;    // 0 for store tokens: the store has them
      facts_.refreshed_at = session_.refreshed_at;
      if (!has_store()) ExpireByPolicy(now);
      return;
    }
    expired = expired || session_.verdict == CookieVerdict::kExpired;
  }
  session_.Clear();
  facts_.status = expired ? SessionStatus::kExpired : SessionStatus::kInvalid;
  if (expired) {
    Count(&Metrics::cookies_expired);
  } else {
    Count(&Metrics::cookies_invalid);
    LOG_DEBUG("invalid session cookie from a client");  // never the value
  }
}

void SessionFilter::ExpireByPolicy(int64_t now) {
  if (!ExpiredOnRequest(facts_, *policy_, now)) return;
  // docs/HEADER-PROTOCOL.md, Session lifetime: idle or absolute timeout.
  facts_.status = SessionStatus::kExpired;
  facts_.stored = false;
  session_.Clear();
  Count(&Metrics::cookies_expired);
}

void SessionFilter::Load() {
  Result<std::string> key = codec().StoreKey(session_.id, facts_.key_index);
  if (!key.ok()) {  // cannot happen for a verified id; treat as no session
    facts_.status = SessionStatus::kNone;
    ContinueRequest();
    return;
  }
  request_key_ = std::move(*key);
  ctx_->store->LoadSession(request_key_, StoreCallback<&SessionFilter::OnLoaded>());
}

void SessionFilter::OnLoaded(const Status& status, std::optional<StoredSession> stored) {
  CountStore(Metrics::kLoad, status);
  if (!status.ok()) {
    facts_.status = SessionStatus::kNone;
    facts_.store_failed = true;  // fail_open: the session may be fine; keep its cookie
    if (StoreFailed("load", status)) return;
  } else if (stored) {
    facts_.stored = true;
    session_.json.clear();
    AppendSession(&session_.json, stored->data);
    // A store entry without times (written before they were kept) started
    // its lifetime when its token's lifetime did.
    facts_.created_at = stored->meta.created_at;
    facts_.refreshed_at = stored->meta.refreshed_at;
    if (!stored->meta.public_id.empty()) session_.public_id = std::move(stored->meta.public_id);
    ExpireByPolicy(NowSeconds());
  } else {
    facts_.status = SessionStatus::kNone;  // verified cookie, but the session is gone
  }
  ContinueRequest();
}

void SessionFilter::ContinueRequest() {
  if (edge()) {
    if (std::optional<FilterResult> refused = edge()->Admit(*request_, edge_session(), &edge_state_)) {
      Finish(std::move(*refused));
      return;
    }
    if (edge_state_.shared_count > 0) {
      TakeSharedTokens(SharedStep::kAdmitted);
      return;
    }
  }
  Admitted();
}

void SessionFilter::Admitted() {
  if (StartsSessionOnRequest(facts_, *policy_)) {
    if (!MintId(NowSeconds())) {
      Finish(FilterResult::Reply(503, "session id generator unavailable\n"));
      return;
    }
    session_.json.clear();
    facts_.status = SessionStatus::kNew;
    facts_.key_index = 0;
    facts_.stored = false;
    facts_.expires_at = session_.expires_at;
    facts_.created_at = facts_.refreshed_at = NowSeconds();
  }
  Inject(*request_);
  if (edge()) edge()->AddHeaders(*request_, edge_session(), NowSeconds(), &edge_state_);
  Finish(FilterResult::Continue());
}

void SessionFilter::TakeSharedTokens(SharedStep then) {
  const size_t count = edge_state_.shared_count;
  edge_state_.shared_count = 0;  // taken now; Admit may name more later
  shared_then_ = then;
  shared_retry_ms_ = 0;
  shared_failure_ = Status::OK();
  // Not with a valid configuration: shared needs the redis manager
  // (docs/CONFIGURATION.md, rate_limits), whose store keeps buckets.
  if (!ctx_->buckets) {
    shared_pending_ = 1;
    OnTokenTaken(Status::Unavailable("the session store keeps no rate-limit buckets"), TokenVerdict{});
    return;
  }
  shared_pending_ = static_cast<int>(count);
  // The store's calls are pipelined; the request goes on once all answered.
  // (A callback never runs inside TakeToken, so the loop ends first.)
  for (size_t i = 0; i < count; ++i) {
    const EdgeState::SharedTake& take = edge_state_.shared[i];
    ctx_->buckets->TakeToken(take.bucket, edge()->SharedSpec(take.rule),
                             StoreCallback<&SessionFilter::OnTokenTaken>());
  }
}

void SessionFilter::OnTokenTaken(const Status& status, const TokenVerdict& verdict) {
  CountStore(Metrics::kRateLimit, status);
  if (!status.ok()) {
    if (shared_failure_.ok()) shared_failure_ = status;
  } else if (!verdict.allowed) {
    shared_retry_ms_ = std::max<int64_t>(shared_retry_ms_, std::max<int64_t>(verdict.retry_after_ms, 1));
  }
  if (--shared_pending_ > 0) return;
  if (shared_retry_ms_ > 0) {  // an empty bucket decides, whatever another call said
    Finish(EdgePolicy::TooManyRequests(*request_, (shared_retry_ms_ + 999) / 1000));
    return;
  }
  // fail_open: the request passes unlimited (counted as a store error).
  if (!shared_failure_.ok() && StoreFailed("rate limit", shared_failure_)) return;
  if (shared_then_ == SharedStep::kReadSession) {
    ReadSession();
  } else {
    Admitted();
  }
}

bool SessionFilter::MintId(int64_t now) {
  Result<std::string> id = codec().NewSessionId();
  if (!id.ok()) {
    LOG_ERROR("cannot mint a session id: %s", id.status().ToString().c_str());
    return false;
  }
  session_.id = std::move(*id);
  session_.public_id.clear();
  session_.key_index = 0;
  session_.expires_at = policy_->ExpiresAt(now);
  return true;
}

void SessionFilter::Inject(RequestHead& request) {
  injected_status_ = facts_.status;
  InjectedSession session;
  const bool live = facts_.has_session();
  if (live) {
    if (session_.public_id.empty()) {  // the cookie manager's cookie carries it already
      Result<std::string> pid = codec().PublicId(session_.id);
      if (pid.ok()) session_.public_id = std::move(*pid);
    }
    session.public_id = session_.public_id;
    session.expires_at = session_.expires_at;
    session.data_json = session_.json;  // empty: "{}"
  }
  // Names are static strings, all X-Session-* (kSessionAny); the values are
  // copied into the list's arena.
  EmitRequestHeaders(facts_.status, live ? &session : nullptr, [&](std::string_view name, std::string_view value) {
    request.headers.AppendValueCopy(KnownField{name, HeaderId::kSessionAny}, value);
  });
}

// ---------------------------------------------------------------------------
// Response side
// ---------------------------------------------------------------------------

void SessionFilter::OnResponseHead(const RequestHead&, ResponseHead& response, FilterDone done) {
  done_ = std::move(done);
  response_ = &response;
  InstructionParser parser;
  for (const Header& h : response.headers.fields()) {
    if (h.id == HeaderId::kSessionAny) parser.Add(h.name, h.value);
  }
  response.headers.Remove(HeaderId::kSessionAny);
  Result<ChangeBatch> batch = parser.Finish();
  if (!batch.ok()) {
    Count(&Metrics::instructions_malformed);
    Reject(batch.status().message());
    return;
  }
  if (batch->revoke != RevokeScope::kNone && !policy_->indexes_subjects) {
    // docs/HEADER-PROTOCOL.md, Subjects: a revocation that cannot be carried
    // out must not pass for one.
    Count(&Metrics::instructions_malformed);
    Reject(std::string(kHeaderRevoke) + ": needs session.subject_key (a store manager)");
    return;
  }
  response_now_ = NowSeconds();
  plan_ = PlanResponse(facts_, *batch, *policy_, response_now_);
  if (plan_.refresh_skipped) Count(&Metrics::session_refreshes_skipped);
  if (plan_.skips) {
    if (plan_.drops_changes) LOG_WARN("session store unavailable (fail_open): session changes dropped");
    Finish(FilterResult::Continue());
    return;
  }
  if (plan_.store == StoreOp::kApply && plan_.from_request_key && request_key_.empty()) {
    // A "new" session was never loaded, so its key is computed now, before
    // a mint replaces the id.
    Result<std::string> key = codec().StoreKey(session_.id, facts_.key_index);
    if (!key.ok()) {
      Finish(FilterResult::Reply(500, "Internal Server Error\n"));
      return;
    }
    request_key_ = std::move(*key);
  }
  // The request's session ends with Destroy, with Regenerate (its id stops
  // working) and with X-Session-Revoke: all: noted before a mint replaces
  // the id.
  if (plan_.destroys || (plan_.mint && facts_.has_session()) || plan_.revoke == RevokeScope::kAll) {
    if (session_.public_id.empty() && !session_.id.empty()) {
      if (Result<std::string> pid = codec().PublicId(session_.id); pid.ok()) session_.public_id = std::move(*pid);
    }
    ended_id_ = session_.public_id;
  }
  if (plan_.mint && !MintId(response_now_)) {
    Finish(FilterResult::Reply(503, "session id generator unavailable\n"));
    return;
  }
  if (!has_store()) {
    WriteCookieSession(*batch);
    return;
  }
  switch (plan_.store) {
    case StoreOp::kApply:
      Apply(std::move(*batch));
      return;
    case StoreOp::kTouch:
      Touch();
      return;
    case StoreOp::kNone:
      break;
  }
  if (plan_.cookie == CookieAction::kClear) ClearCookie();
  Finish(FilterResult::Continue());
}

void SessionFilter::WriteCookieSession(const ChangeBatch& batch) {
  if (!plan_.exists) {
    if (plan_.cookie == CookieAction::kClear) ClearCookie();
    CountOutcome(false);
    Finish(FilterResult::Continue());
    return;
  }
  // The session's JSON after the batch: the request's JSON unless the batch
  // changes keys (a Destroy's clear without keys leaves "{}").
  std::string_view json = session_.json;
  if (batch.destroy || batch.changes_keys()) {
    if (!MergeSessionJson(session_.json, batch.destroy, batch.deletes, batch.sets, &merged_json_)) {
      // Authenticated, so our own JSON: cannot happen. Start from no keys.
      (void)MergeSessionJson({}, batch.destroy, batch.deletes, batch.sets, &merged_json_);
    }
    json = merged_json_;
  }
  if (json.empty()) json = "{}";
  if (Status size = CheckSessionSize(json.size(), config().session.max_session_bytes); !size.ok()) {
    Count(&Metrics::sessions_too_large);
    Reject(std::string(kHeaderSet) + ": " + size.message());
    return;
  }
  if (plan_.cookie == CookieAction::kSet) {
    // The public id sealed in a cookie of the current secret can be sealed
    // again; otherwise Seal computes it.
    const std::string_view public_id = session_.key_index == 0 ? std::string_view(session_.public_id) : "";
    const SealTimes times{plan_.expires_at, plan_.created_at, plan_.refreshed_at};
    Status sealed = codec().Seal(session_.id, times, json, public_id, &scratch_, &cookie_value_);
    if (!sealed.ok()) {
      if (sealed.code() == Status::Code::kTooLarge) Count(&Metrics::sessions_too_large);
      Reject(std::string(kHeaderSet) + ": " + sealed.message());
      return;
    }
    // docs/COOKIES.md, Chunked cookies: NAME alone or NAME, NAME.1, ...; the
    // chunks of a larger cookie the request had are cleared.
    const size_t used = codec().EmitSetCookies(cookie_value_, plan_.expires_at, response_now_, &set_cookie_,
                                               [this](std::string_view line) {
                                                 response_->headers.AppendValueCopy(kFieldSetCookie, line);
                                               });
    ClearChunksFrom(used > 0 ? used : 1);
    if (plan_.refreshes) Count(&Metrics::session_refreshes);
  }
  CountOutcome(true);
  Finish(FilterResult::Continue());
}

void SessionFilter::Touch() {
  const std::chrono::seconds ttl(plan_.expires_at - response_now_);
  if (policy_->keeps_meta()) {
    ctx_->store->TouchSession(request_key_, ttl, BuildMeta(), StoreCallback<&SessionFilter::OnTouched>());
  } else {
    ctx_->store->Touch(request_key_, ttl, StoreCallback<&SessionFilter::OnTouched>());
  }
}

void SessionFilter::OnTouched(const Status& status) {
  CountStore(Metrics::kTouch, status);
  if (!status.ok()) {
    if (StoreFailed("touch", status)) return;
  } else {
    SetTokenCookie();
    if (plan_.refreshes) Count(&Metrics::session_refreshes);
  }
  Finish(FilterResult::Continue());
}

SessionMeta SessionFilter::BuildMeta() {
  SessionMeta meta;
  meta.created_at = plan_.created_at;
  meta.refreshed_at = plan_.refreshed_at;
  meta.expires_at = plan_.expires_at;
  if (session_.public_id.empty()) {
    if (Result<std::string> pid = codec().PublicId(session_.id); pid.ok()) session_.public_id = std::move(*pid);
  }
  meta.public_id = session_.public_id;
  meta.client = client_ip_;
  if (request_) {
    if (std::optional<std::string_view> ua = request_->headers.Get(HeaderId::kUserAgent)) {
      meta.user_agent.assign(ua->substr(0, kMaxUserAgentBytes));
    }
  }
  return meta;
}

void SessionFilter::NoteRevoked(const std::vector<RevokedSession>& revoked) {
  if (revoked.empty()) return;
  if (ctx_->metrics) {
    ctx_->metrics->sessions_revoked.fetch_add(revoked.size(), std::memory_order_relaxed);
  }
  if (ctx_->ended) ctx_->ended->AddRevoked(revoked, EndedSessions::KeepSeconds(config()), response_now_);
}

void SessionFilter::Apply(ChangeBatch batch) {
  ApplyRequest request;
  if (!plan_.from_request_key || plan_.move) {  // the current secret's key of the (possibly new) id
    Result<std::string> key = codec().StoreKey(session_.id, 0);
    if (!key.ok()) {
      Finish(FilterResult::Reply(500, "Internal Server Error\n"));
      return;
    }
    if (!plan_.from_request_key) request.key = std::move(*key);
    else if (plan_.move) request.new_key = std::move(*key);
  }
  if (plan_.from_request_key) request.key = request_key_;
  request.clear = plan_.clear;
  request.deletes = std::move(batch.deletes);
  request.sets = std::move(batch.sets);
  request.must_exist = plan_.must_exist;
  request.ttl = std::chrono::seconds(plan_.ttl_seconds(response_now_));
  request.max_bytes = config().session.max_session_bytes;
  if (plan_.must_exist && plan_.from_request_key && !plan_.move && facts_.stored) {
    // The store may start from what this request loaded (store.h).
    request.loaded = std::string_view(session_.json);
    request.keeps_expiry = plan_.expires_at == facts_.expires_at;
  }
  // docs/HEADER-PROTOCOL.md, Subjects, and Session lifetime: what the store
  // keeps besides the data, only when something reads it.
  if (plan_.exists && policy_->keeps_meta()) request.meta = BuildMeta();
  request.subject_key = config().session.subject_key;
  request.max_per_subject = config().session.max_sessions_per_subject;
  request.revoke = plan_.revoke;
  ctx_->store->Apply(request, StoreCallback<&SessionFilter::OnApplied>());
}

void SessionFilter::OnApplied(const Status& status, const ApplyResult& result) {
  const bool exists = result.exists;
  applied_exists_ = status.ok() && exists;
  CountStore(Metrics::kApply, status);
  if (!status.ok()) {
    if (status.code() == Status::Code::kTooLarge) {
      Count(&Metrics::sessions_too_large);
      Reject(std::string(kHeaderSet) + ": " + status.message());
      return;
    }
    if (StoreFailed("apply", status)) return;
    Finish(FilterResult::Continue());  // fail_open: the change is dropped
    return;
  }
  CountOutcome(exists);
  NoteRevoked(result.revoked);
  if (exists && plan_.refreshes) Count(&Metrics::session_refreshes);
  switch (exists ? plan_.cookie : plan_.cookie_if_gone) {
    case CookieAction::kSet: SetTokenCookie(); break;
    case CookieAction::kClear: ClearCookie(); break;
    case CookieAction::kNone: break;
  }
  Finish(FilterResult::Continue());
}

void SessionFilter::SetTokenCookie() {
  if (Result<std::string> token = codec().EncodeToken(session_.id, plan_.expires_at); token.ok()) {
    AddSetCookie(*token, plan_.expires_at);
  }
}

void SessionFilter::AddSetCookie(std::string_view value, int64_t expires_at) {
  set_cookie_.clear();
  codec().AppendSetCookie(&set_cookie_, value, expires_at, response_now_);
  response_->headers.AppendValueCopy(kFieldSetCookie, set_cookie_);
}

void SessionFilter::ClearCookie() {
  response_->headers.AppendValueCopy(kFieldSetCookie, codec().ClearCookie());
  ClearChunksFrom(1);
}

void SessionFilter::ClearChunksFrom(size_t from_chunk) {
  for (size_t k = std::max<size_t>(from_chunk, 1); k < kMaxCookieChunks; ++k) {
    if (cookies_.chunk_counts[k] == 0) continue;
    set_cookie_.clear();
    codec().AppendClearChunk(&set_cookie_, k);
    response_->headers.AppendValueCopy(kFieldSetCookie, set_cookie_);
  }
}

void SessionFilter::Reject(std::string_view what) {
  std::string_view target = request_ ? request_->target : std::string_view();
  const bool cut = target.size() > kMaxLoggedTarget;
  if (cut) target = target.substr(0, kMaxLoggedTarget);
  std::string_view request_id = "-";
  if (request_) {
    if (std::optional<std::string_view> id = request_->headers.Get(HeaderId::kXRequestId)) request_id = *id;
  }
  LOG_WARN("rejected session instructions from the upstream: %.*s (path %.*s%s, request id %.*s)",
           static_cast<int>(what.size()), what.data(), static_cast<int>(target.size()), target.data(),
           cut ? "..." : "", static_cast<int>(request_id.size()), request_id.data());
  Finish(FilterResult::Reply(502, std::string(kBadGatewayBody)));
}

bool SessionFilter::StoreFailed(const char* what, const Status& status) {
  if (LogEnabled(LogLevel::kWarn)) {  // docs/OPERATIONS.md, Error log: which request saw the failure
    LogDetail d;
    if (request_) {
      if (std::optional<std::string_view> id = request_->headers.Get(HeaderId::kXRequestId)) d.rid = *id;
      d.method = request_->method;
      d.target = request_->target;
      d.minor_version = request_->minor_version;
    }
    LogLineWith(LogLevel::kWarn, d, "session store %s failed: %s", what, status.ToString().c_str());
  }
  if (!policy_->fail_open) {
    Finish(FilterResult::Reply(503, "session store unavailable\n"));
    return true;
  }
  return false;  // fail_open: carry on without the store
}

// Stands in when a worker's session step cannot be built (e.g. a reload
// whose store cannot be created): every request gets 503 rather than reach
// the backend without its spoofed X-Session-* headers stripped.
class UnavailableFilter : public ExchangeFilter {
 public:
  void OnRequestHead(RequestHead&, FilterDone done) override {
    done(FilterResult::Reply(503, "session store unavailable\n"));
  }
  void OnResponseHead(const RequestHead&, ResponseHead&, FilterDone done) override {
    done(FilterResult::Reply(503, "session store unavailable\n"));
  }
};

class UnavailableFilterFactory : public ExchangeFilterFactory {
 public:
  ExchangeFilter* Acquire(const ExchangeInfo&) override { return &filter_; }
  void Recycle(ExchangeFilter*) override {}

 private:
  UnavailableFilter filter_;  // stateless: one serves every exchange
};

class SessionFilterFactory : public ExchangeFilterFactory {
 public:
  explicit SessionFilterFactory(std::shared_ptr<SessionContext> ctx)
      : ctx_(std::move(ctx)), policy_(SessionPolicy::From(*ctx_->config)) {
    pool_.reserve(kMaxPooledSessionFilters);
    if (ctx_->edge && ctx_->edge->has_csrf()) csrf_cache_ = std::make_unique<CsrfTokenCache>();
  }
  // Every filter is back (exchanges hold the factory until they recycle
  // theirs). Pooled filters go first: the store, which goes with ctx_ after
  // them, drops their pending callbacks without running them.
  ~SessionFilterFactory() override {
    for (SessionFilter* filter : pool_) delete filter;
  }

  ExchangeFilter* Acquire(const ExchangeInfo& info) override {
    SessionFilter* filter;
    if (pool_.empty()) {
      filter = new SessionFilter(ctx_.get(), &policy_, csrf_cache_.get());
    } else {
      filter = pool_.back();
      pool_.pop_back();
    }
    if (ctx_->edge || policy_.keeps_meta()) filter->set_client_ip(info.client_ip);
    return filter;
  }

  void Recycle(ExchangeFilter* filter) override {
    auto* session_filter = static_cast<SessionFilter*>(filter);
    session_filter->Reset();
    // One with a store call in flight must stay alive for its callback.
    if (pool_.size() < kMaxPooledSessionFilters || session_filter->has_calls_in_flight()) {
      pool_.push_back(session_filter);
    } else {
      delete session_filter;
    }
  }

  void CheckReady(std::function<void(bool)> done) override {
    if (!ctx_->store) {
      done(true);
      return;
    }
    auto start = std::chrono::steady_clock::now();
    Metrics* metrics = ctx_->metrics;
    ctx_->store->Ping([done = std::move(done), start, metrics](Status s) {
      if (metrics) {
        metrics->store_duration[Metrics::kPing].Observe(Since(start));
        if (!s.ok()) Inc(metrics->store_errors[Metrics::kPing]);
      }
      done(s.ok());
    });
  }

  void Tick(int worker_index) override {
    // One sweeper per process is enough; once a minute.
    if (worker_index == 0 && ctx_->store && ++ticks_ % 60 == 0) ctx_->store->SweepExpired();
  }

  void CheckBindings(const std::vector<SessionBinding>& bindings, BindingsChecked done) override {
    std::vector<bool> ended(bindings.size(), false);
    const int64_t now = NowSeconds();
    for (size_t i = 0; i < bindings.size(); ++i) {
      if (bindings[i].expires_at != 0 && bindings[i].expires_at <= now) ended[i] = true;
    }
    if (ctx_->ended) ctx_->ended->Mark(bindings, &ended);
    // The store: one Load per session (several tunnels may share one).
    struct Check {
      std::vector<bool> ended;
      BindingsChecked done;
      size_t pending = 0;
    };
    std::map<std::string, std::vector<size_t>> by_key;
    if (ctx_->store) {
      for (size_t i = 0; i < bindings.size(); ++i) {
        if (!ended[i] && !bindings[i].store_key.empty()) by_key[bindings[i].store_key].push_back(i);
      }
    }
    if (by_key.empty()) {
      done(std::move(ended));
      return;
    }
    auto check = std::make_shared<Check>();
    check->ended = std::move(ended);
    check->done = std::move(done);
    check->pending = by_key.size() + 1;  // + 1 until every call is made (a Load may answer at once)
    auto finish_one = [check] {
      if (--check->pending == 0) check->done(std::move(check->ended));
    };
    for (auto& [key, indexes] : by_key) {
      ctx_->store->Load(key, [check, finish_one, indexes = std::move(indexes)](Status s, std::optional<SessionData> d) {
        // Gone from the store: destroyed, regenerated, revoked or expired.
        // A store that does not answer says nothing either way.
        if (s.ok() && !d) {
          for (size_t i : indexes) check->ended[i] = true;
        }
        finish_one();
      });
    }
    finish_one();
  }

 private:
  std::shared_ptr<SessionContext> ctx_;
  const SessionPolicy policy_;
  std::unique_ptr<CsrfTokenCache> csrf_cache_;  // this worker's, when CSRF is on
  std::vector<SessionFilter*> pool_;
  uint64_t ticks_ = 0;
};

}  // namespace

std::unique_ptr<ExchangeFilterFactory> NewSessionFilterFactory(std::shared_ptr<SessionContext> context) {
  return std::make_unique<SessionFilterFactory>(std::move(context));
}

Result<SessionRuntime> MakeSessionRuntime(const std::shared_ptr<const Config>& config) {
  // Built once per process and kept across reloads; rebuilt only when a
  // reload switches to a manager whose shared state is missing.
  struct ProcessState {
    std::mutex mu;
    std::shared_ptr<SharedStoreState> stores;
    StoreKind kind;
    // The shared state for `cfg`, rebuilt when its manager changed.
    std::shared_ptr<SharedStoreState> For(const Config& cfg) {
      std::lock_guard<std::mutex> lock(mu);
      if (kind != cfg.session.manager) {
        Result<std::shared_ptr<SharedStoreState>> next = CreateSharedStoreState(cfg);
        if (next.ok()) {
          stores = *next;
          kind = cfg.session.manager;
        }
      }
      return stores;
    }
    std::shared_ptr<EndedSessions> ended = std::make_shared<EndedSessions>();
    // The request policy of the latest configuration, shared by every
    // worker (one rate limiter per process), rebuilt when a reload brings a
    // new configuration.
    std::shared_ptr<const Config> edge_config;
    std::shared_ptr<const EdgePolicy> edge;
  };
  auto process = std::make_shared<ProcessState>();
  Result<std::shared_ptr<SharedStoreState>> shared = CreateSharedStoreState(*config);
  if (!shared.ok()) return shared.status();
  process->stores = *shared;
  process->kind = config->session.manager;
  // Fail at startup, not on the first request, when a store cannot be built.
  Result<std::unique_ptr<SessionStore>> probe =
      config->session.manager == StoreKind::kFile ? CreateStore(*config, nullptr, nullptr, process->stores)
                                                  : Result<std::unique_ptr<SessionStore>>(nullptr);
  if (!probe.ok()) return probe.status();
  if (Result<std::shared_ptr<const CookieCodec>> codec = CookieCodec::Create(*config); !codec.ok()) {
    return codec.status();
  }
  Result<std::shared_ptr<const EdgePolicy>> edge = EdgePolicy::Create(*config);
  if (!edge.ok()) return edge.status();
  process->edge_config = config;
  process->edge = *edge;

  SessionRuntime runtime;
  runtime.ended = process->ended;
  runtime.make_filters = [process](const std::shared_ptr<const Config>& cfg, const LoopEnv& loop,
                                           Metrics* metrics) -> std::unique_ptr<ExchangeFilterFactory> {
    auto ctx = std::make_shared<SessionContext>();
    ctx->config = cfg;
    ctx->metrics = metrics;
    ctx->store_health = loop.store_health;
    ctx->ended = process->ended;
    Result<std::shared_ptr<const CookieCodec>> codec = CookieCodec::Create(*cfg);
    if (!codec.ok()) {
      LOG_ERROR("session setup failed: %s", codec.status().message().c_str());
      return std::make_unique<UnavailableFilterFactory>();
    }
    ctx->codec = *codec;
    {
      std::lock_guard<std::mutex> lock(process->mu);
      if (process->edge_config != cfg) {
        Result<std::shared_ptr<const EdgePolicy>> next = EdgePolicy::Create(*cfg);
        if (!next.ok()) {
          LOG_ERROR("request policy setup failed: %s", next.status().message().c_str());
          return std::make_unique<UnavailableFilterFactory>();
        }
        process->edge_config = cfg;
        process->edge = *next;
      }
      ctx->edge = process->edge;
    }
    Result<std::unique_ptr<SessionStore>> store =
        CreateStore(*cfg, loop.base, loop.post, process->For(*cfg), metrics);
    if (!store.ok()) {
      LOG_ERROR("session store setup failed: %s", store.status().message().c_str());
      return std::make_unique<UnavailableFilterFactory>();
    }
    ctx->store = std::shared_ptr<SessionStore>(std::move(*store));
    ctx->buckets = dynamic_cast<SharedTokenBuckets*>(ctx->store.get());
    return std::make_unique<SessionFilterFactory>(std::move(ctx));
  };
  runtime.make_store = [process](const std::shared_ptr<const Config>& cfg,
                                 const LoopEnv& loop) -> Result<std::shared_ptr<SessionStore>> {
    Result<std::unique_ptr<SessionStore>> store =
        CreateStore(*cfg, loop.base, loop.post, process->For(*cfg), nullptr);
    if (!store.ok()) return store.status();
    return std::shared_ptr<SessionStore>(std::move(*store));
  };
  return runtime;
}

Result<FilterFactoryMaker> SessionFilterFactoryMaker(const std::shared_ptr<const Config>& config) {
  Result<SessionRuntime> runtime = MakeSessionRuntime(config);
  if (!runtime.ok()) return runtime.status();
  return runtime->make_filters;
}

}  // namespace sessiond
