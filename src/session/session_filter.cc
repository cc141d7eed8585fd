#include "session/session_filter.h"

#include <time.h>

#include <chrono>
#include <mutex>

#include "observe/metrics.h"
#include "session/cookie_header.h"
#include "session/header_protocol.h"
#include "store/store_factory.h"
#include "base/log.h"

namespace sessiond {

namespace {

// Expiry times are whole Unix seconds counted from the current second, so a
// session lives at most session_expiration_time (up to a second less): the
// setting is a bound.
int64_t NowSeconds() { return static_cast<int64_t>(time(nullptr)); }

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

bool HasNonNullSet(const ChangeBatch& batch) {
  for (const auto& [key, value] : batch.sets) {
    if (value) return true;
  }
  return false;
}

class SessionFilter : public ExchangeFilter {
 public:
  explicit SessionFilter(std::shared_ptr<SessionContext> ctx) : ctx_(std::move(ctx)) {}

  void OnRequestHead(RequestHead& request, FilterDone done) override;
  void OnResponseHead(const RequestHead& request, ResponseHead& response, FilterDone done) override;
  std::string_view LogTag() const override { return ToString(injected_status_); }

 private:
  const Config& config() const { return *ctx_->config; }
  const CookieCodec& codec() const { return *ctx_->codec; }
  bool has_session() const { return status_ == SessionStatus::kActive || status_ == SessionStatus::kNew; }
  void Count(std::atomic<uint64_t> Metrics::*counter) {
    if (ctx_->metrics) Inc(ctx_->metrics->*counter);
  }
  void CountStore(int op, const Status& status, std::chrono::steady_clock::time_point start);

  // Takes the session cookie out of the request and verifies it.
  void ReadCookie(RequestHead& request, int64_t now);
  // Loads the verified session from the store, then injects and continues.
  void LoadFromStore(RequestHead& request, FilterDone done);
  // Mints a new id with a fresh lifetime (status "new"); keeps data_.
  bool StartNewSession(int64_t now);
  // codec().StoreKey(id_, key_index), remembered for the last (id, key index)
  // asked: the load and the apply step of one request both need it, and it
  // costs an HMAC.
  Result<std::string> StoreKey(size_t key_index);
  void Inject(RequestHead& request);
  // A store call failed: 503 under fail_closed, otherwise carry on without it.
  bool StoreFailed(const char* what, const Status& status, const FilterDone& done);

  void ApplyToCookie(const ChangeBatch& batch, ResponseHead& response, int64_t now, FilterDone done);
  void ApplyToStore(const ChangeBatch& batch, ResponseHead& response, int64_t now, FilterDone done);
  void SetCookie(ResponseHead& response, const std::string& value, int64_t expires_at, int64_t now);
  void ClearCookie(ResponseHead& response);

  std::shared_ptr<SessionContext> ctx_;
  // Set while this filter is alive; store callbacks hold a weak reference and
  // do nothing once the exchange (and this filter) is gone.
  std::shared_ptr<char> alive_;

  SessionStatus status_ = SessionStatus::kNone;
  SessionStatus injected_status_ = SessionStatus::kNone;  // what the backend was told
  std::string id_;          // raw session id when has_session()
  int64_t expires_at_ = 0;  // of the current session
  size_t key_index_ = 0;    // the secret the cookie verified under
  SessionData data_;
  // Cookie manager: the session as sealed in the cookie; data_ is parsed from
  // it only when a response changes the session (EnsureData).
  std::string data_json_;
  bool data_parsed_ = true;
  void EnsureData() {
    if (data_parsed_) return;
    data_parsed_ = true;
    if (!ParseSessionJson(data_json_, &data_)) data_.clear();  // authenticated: cannot happen
  }
  bool sent_cookie_ = false;     // the client sent some session cookie
  bool persisted_ = false;       // the session exists in the store
  bool store_failed_ = false;    // the load failed (fail_open): the cookie is left alone
  std::string public_id_;
  std::string store_key_;     // StoreKey(store_key_index_) of store_key_id_
  std::string store_key_id_;  // empty: nothing cached
  size_t store_key_index_ = 0;
};

Result<std::string> SessionFilter::StoreKey(size_t key_index) {
  if (store_key_id_.empty() || store_key_id_ != id_ || store_key_index_ != key_index) {
    Result<std::string> key = codec().StoreKey(id_, key_index);
    if (!key.ok()) return key;
    store_key_ = std::move(*key);
    store_key_id_ = id_;
    store_key_index_ = key_index;
  }
  return store_key_;
}

void SessionFilter::CountStore(int op, const Status& status, std::chrono::steady_clock::time_point start) {
  if (!ctx_->metrics) return;
  ctx_->metrics->store_duration[op].Observe(Since(start));
  if (!status.ok() && status.code() != Status::Code::kTooLarge) Inc(ctx_->metrics->store_errors[op]);
}

void SessionFilter::OnRequestHead(RequestHead& request, FilterDone done) {
  request.headers.Remove(HeaderId::kSessionAny);
  const int64_t now = NowSeconds();
  ReadCookie(request, now);
  if (status_ == SessionStatus::kActive && ctx_->store) {
    LoadFromStore(request, std::move(done));
    return;
  }
  if (!has_session() && config().session.create == SessionCreate::kAlways && !StartNewSession(now)) {
    done(FilterResult::Reply(503, "session id generator unavailable\n"));
    return;
  }
  Inject(request);
  done(FilterResult::Continue());
}

void SessionFilter::ReadCookie(RequestHead& request, int64_t now) {
  if (request.headers.Count(HeaderId::kCookie) == 0) return;
  CookieSplitter splitter(codec().cookie_name());
  for (const Header& h : request.headers.fields()) {
    if (h.id == HeaderId::kCookie) splitter.Add(h.value);
  }
  CookieSplit split = splitter.Finish();
  request.headers.Remove(HeaderId::kCookie);
  if (!split.forwarded.empty()) request.headers.AppendValueCopy("Cookie", split.forwarded);
  sent_cookie_ = !split.session_values.empty() || split.ignored_session_cookies > 0;
  if (!sent_cookie_) return;

  bool expired = false;
  for (const std::string& value : split.session_values) {
    // The cookie manager's data stays JSON until a response changes it.
    DecodedCookie decoded = codec().Verify(value, now, /*decode_data=*/false);
    if (decoded.verdict == CookieVerdict::kValid) {
      status_ = SessionStatus::kActive;
      id_ = std::move(decoded.id);
      expires_at_ = decoded.expires_at;
      key_index_ = decoded.key_index;
      if (!decoded.json.empty()) {
        data_json_ = std::move(decoded.json);
        data_parsed_ = false;
      }
      public_id_ = std::move(decoded.public_id);
      return;
    }
    expired = expired || decoded.verdict == CookieVerdict::kExpired;
  }
  status_ = expired ? SessionStatus::kExpired : SessionStatus::kInvalid;
  if (expired) {
    Count(&Metrics::cookies_expired);
  } else {
    Count(&Metrics::cookies_invalid);
    LOG_DEBUG("invalid session cookie from a client");  // never the value
  }
}

void SessionFilter::LoadFromStore(RequestHead& request, FilterDone done) {
  Result<std::string> key = StoreKey(key_index_);
  if (!key.ok()) {  // cannot happen for a verified id; treat as no session
    status_ = SessionStatus::kNone;
    Inject(request);
    done(FilterResult::Continue());
    return;
  }
  alive_ = std::make_shared<char>();
  std::weak_ptr<char> alive = alive_;
  auto start = std::chrono::steady_clock::now();
  RequestHead* req = &request;  // alive as long as the exchange, hence as this filter
  ctx_->store->Load(*key, [this, alive, start, req, done = std::move(done)](Status s,
                                                                            std::optional<SessionData> data) {
    if (alive.expired()) return;
    CountStore(Metrics::kLoad, s, start);
    if (!s.ok()) {
      status_ = SessionStatus::kNone;
      id_.clear();
      store_failed_ = true;  // fail_open: the session may be fine; keep its cookie
      if (StoreFailed("load", s, done)) return;
    } else if (data) {
      data_ = std::move(*data);
      persisted_ = true;
    } else {
      // Verified cookie, but the session is gone (destroyed elsewhere).
      status_ = SessionStatus::kNone;
      id_.clear();
    }
    if (!has_session() && config().session.create == SessionCreate::kAlways && !StartNewSession(NowSeconds())) {
      done(FilterResult::Reply(503, "session id generator unavailable\n"));
      return;
    }
    Inject(*req);
    done(FilterResult::Continue());
  });
}

bool SessionFilter::StoreFailed(const char* what, const Status& status, const FilterDone& done) {
  LOG_WARN("session store %s failed: %s", what, status.ToString().c_str());
  if (config().redis.on_error == OnStoreError::kFailClosed || config().session.manager != StoreKind::kRedis) {
    done(FilterResult::Reply(503, "session store unavailable\n"));
    return true;
  }
  return false;  // fail_open: carry on without the store
}

bool SessionFilter::StartNewSession(int64_t now) {
  Result<std::string> id = codec().NewSessionId();
  if (!id.ok()) {
    LOG_ERROR("cannot mint a session id: %s", id.status().ToString().c_str());
    return false;
  }
  id_ = std::move(*id);
  public_id_.clear();
  key_index_ = 0;
  expires_at_ = codec().ExpiresAt(now);
  persisted_ = false;
  status_ = SessionStatus::kNew;
  return true;
}

void SessionFilter::Inject(RequestHead& request) {
  injected_status_ = status_;
  InjectedSession session;
  if (has_session()) {
    if (public_id_.empty()) {  // the cookie manager's cookie carries it already
      Result<std::string> pid = codec().PublicId(id_);
      if (pid.ok()) public_id_ = std::move(*pid);
    }
    session.public_id = public_id_;
    session.data = &data_;
    session.expires_at = expires_at_;
  }
  if (!data_parsed_) session.data_json = data_json_;
  // Names are static strings; only the values are copied.
  EmitRequestHeaders(status_, has_session() ? &session : nullptr,
                     [&](std::string_view name, std::string_view value) {
                       request.headers.AppendValueCopy(name, value);
                     });
}

void SessionFilter::OnResponseHead(const RequestHead&, ResponseHead& response, FilterDone done) {
  InstructionParser parser;
  for (const Header& h : response.headers.fields()) {
    if (h.id == HeaderId::kSessionAny) parser.Add(h.name, h.value);
  }
  response.headers.Remove(HeaderId::kSessionAny);
  Result<ChangeBatch> batch = parser.Finish();
  if (!batch.ok()) {
    Count(&Metrics::instructions_malformed);
    LOG_WARN("rejected session instructions from the upstream: %s", batch.status().message().c_str());
    done(FilterResult::Reply(502, batch.status().message() + "\n"));
    return;
  }
  const int64_t now = NowSeconds();
  if (ctx_->store && store_failed_) {
    // fail_open and the store already failed this request: go on without
    // it rather than make the client wait for a second timeout.
    if (!batch->empty()) LOG_WARN("session store unavailable (fail_open): session changes dropped");
    done(FilterResult::Continue());
    return;
  }
  if (ctx_->store) {
    ApplyToStore(*batch, response, now, std::move(done));
  } else {
    ApplyToCookie(*batch, response, now, std::move(done));
  }
}

void SessionFilter::ApplyToCookie(const ChangeBatch& batch, ResponseHead& response, int64_t now,
                                  FilterDone done) {
  EnsureData();
  const bool had = has_session();
  bool exists = had;
  bool reissue = status_ == SessionStatus::kNew || key_index_ > 0 || config().session.refresh_each_request;
  bool created = status_ == SessionStatus::kNew;
  bool mint = false;
  if (batch.destroy && exists) {
    Count(&Metrics::sessions_destroyed);
    exists = false;
    data_.clear();
  }
  if (batch.destroy && HasNonNullSet(batch)) mint = true;  // a fresh session with only the new keys
  if (batch.regenerate) mint = true;
  if (!exists && !batch.destroy && HasNonNullSet(batch)) mint = true;
  if (mint && !exists) data_.clear();
  if (!batch.empty()) reissue = true;

  if (mint) {
    if (!StartNewSession(now)) {
      done(FilterResult::Reply(503, "session id generator unavailable\n"));
      return;
    }
    created = !(batch.regenerate && had && !batch.destroy);
    exists = true;
  }
  if (!exists) {
    if (sent_cookie_) ClearCookie(response);
    done(FilterResult::Continue());
    return;
  }
  SessionData next = data_;
  ApplyChanges(&next, false, batch.deletes, batch.sets);
  if (Status s = CheckSessionSize(next, config().session.max_session_bytes); !s.ok()) {
    Count(&Metrics::sessions_too_large);
    LOG_WARN("rejected session instructions from the upstream: %s", s.message().c_str());
    done(FilterResult::Reply(502, s.message() + "\n"));
    return;
  }
  if (!reissue) {
    done(FilterResult::Continue());
    return;
  }
  int64_t expires_at = config().session.refresh_each_request ? codec().ExpiresAt(now) : expires_at_;
  Result<std::string> sealed = codec().Seal(id_, expires_at, next);
  if (!sealed.ok()) {
    if (sealed.status().code() == Status::Code::kTooLarge) Count(&Metrics::sessions_too_large);
    LOG_WARN("cannot issue the session cookie: %s", sealed.status().message().c_str());
    done(FilterResult::Reply(502, "X-Session-Set: " + sealed.status().message() + "\n"));
    return;
  }
  if (created) Count(&Metrics::sessions_created);
  SetCookie(response, *sealed, expires_at, now);
  done(FilterResult::Continue());
}

void SessionFilter::ApplyToStore(const ChangeBatch& batch, ResponseHead& response, int64_t now,
                                 FilterDone done) {
  const bool had = has_session();
  std::string current_key;
  if (had) {
    Result<std::string> key = StoreKey(key_index_);
    if (key.ok()) current_key = std::move(*key);
  }

  ApplyRequest req;
  req.deletes = batch.deletes;
  req.sets = batch.sets;
  req.max_bytes = config().session.max_session_bytes;
  bool mint = batch.regenerate || (batch.destroy && HasNonNullSet(batch)) || (!had && HasNonNullSet(batch));
  bool destroying = batch.destroy && had;
  // Nothing in the store to change, and nothing to create: only the cookie.
  const bool migrate = had && key_index_ > 0;
  const bool create_empty = status_ == SessionStatus::kNew && !persisted_;
  const bool refresh = had && config().session.refresh_each_request;
  if (!mint && !destroying && !migrate && !create_empty && (!had || (batch.deletes.empty() && batch.sets.empty()))) {
    if (refresh && persisted_) {
      int64_t expires_at = codec().ExpiresAt(now);
      alive_ = alive_ ? alive_ : std::make_shared<char>();
      std::weak_ptr<char> alive = alive_;
      auto start = std::chrono::steady_clock::now();
      ResponseHead* resp = &response;
      ctx_->store->Touch(current_key, std::chrono::seconds(expires_at - now),
                         [this, alive, start, resp, expires_at, now, done = std::move(done)](Status s) {
                           if (alive.expired()) return;
                           CountStore(Metrics::kTouch, s, start);
                           if (!s.ok()) {
                             if (StoreFailed("touch", s, done)) return;
                           } else if (Result<std::string> t = codec().EncodeToken(id_, expires_at); t.ok()) {
                             SetCookie(*resp, *t, expires_at, now);
                           }
                           done(FilterResult::Continue());
                         });
      return;
    }
    if (!had && sent_cookie_ && !store_failed_) ClearCookie(response);
    done(FilterResult::Continue());
    return;
  }

  const bool loaded = persisted_;  // StartNewSession below resets it
  if (mint) {
    if (!StartNewSession(now)) {
      done(FilterResult::Reply(503, "session id generator unavailable\n"));
      return;
    }
  }
  Result<std::string> final_key = StoreKey(0);  // under the current secret
  if (!final_key.ok()) {
    done(FilterResult::Reply(500, "Internal Server Error\n"));
    return;
  }
  if (had) {
    req.key = current_key;
    // A Destroy without new keys deletes the session where it is.
    if (*final_key != current_key && (mint || !destroying)) req.new_key = *final_key;
  } else {
    req.key = *final_key;
  }
  req.clear = batch.destroy;
  // Changing (or moving, for Regenerate) the session this request loaded:
  // if a concurrent request has destroyed or regenerated it meanwhile, the
  // change is dropped rather than bringing the old id back.
  req.must_exist = loaded && !batch.destroy;
  // Minted sessions start a fresh lifetime (so does every request with
  // sliding expiry); other writes keep the session's expiry.
  int64_t expires_at = (mint || refresh) ? codec().ExpiresAt(now) : expires_at_;
  if (expires_at <= now) expires_at = now + 1;
  req.ttl = std::chrono::seconds(expires_at - now);
  const bool new_cookie = mint || migrate || refresh || create_empty;

  alive_ = alive_ ? alive_ : std::make_shared<char>();
  std::weak_ptr<char> alive = alive_;
  auto start = std::chrono::steady_clock::now();
  ResponseHead* resp = &response;
  const bool created = (mint && !(batch.regenerate && had && !batch.destroy)) || create_empty;
  ctx_->store->Apply(req, [this, alive, start, resp, expires_at, now, new_cookie, destroying, created,
                           done = std::move(done)](Status s, ApplyResult result) {
    if (alive.expired()) return;
    CountStore(Metrics::kApply, s, start);
    if (!s.ok()) {
      if (s.code() == Status::Code::kTooLarge) {
        Count(&Metrics::sessions_too_large);
        LOG_WARN("rejected session instructions from the upstream: X-Session-Set: %s", s.message().c_str());
        done(FilterResult::Reply(502, "X-Session-Set: " + s.message() + "\n"));
        return;
      }
      if (StoreFailed("apply", s, done)) return;
      done(FilterResult::Continue());  // fail_open: the change is dropped
      return;
    }
    if (destroying) Count(&Metrics::sessions_destroyed);
    if (!result.exists) {
      ClearCookie(*resp);
    } else {
      if (created) Count(&Metrics::sessions_created);
      if (new_cookie) {
        if (Result<std::string> t = codec().EncodeToken(id_, expires_at); t.ok()) {
          SetCookie(*resp, *t, expires_at, now);
        }
      }
    }
    done(FilterResult::Continue());
  });
}

void SessionFilter::SetCookie(ResponseHead& response, const std::string& value, int64_t expires_at, int64_t now) {
  response.headers.AppendCopy("Set-Cookie", codec().SetCookie(value, expires_at, now));
}

void SessionFilter::ClearCookie(ResponseHead& response) {
  response.headers.AppendCopy("Set-Cookie", codec().ClearCookie());
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
  explicit SessionFilterFactory(std::shared_ptr<SessionContext> ctx) : ctx_(std::move(ctx)) {}
  ExchangeFilter* Acquire(const ExchangeInfo&) override { return NewSessionFilter(ctx_).release(); }
  void Recycle(ExchangeFilter* filter) override { delete filter; }

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

 private:
  std::shared_ptr<SessionContext> ctx_;
  uint64_t ticks_ = 0;
};

}  // namespace

std::unique_ptr<ExchangeFilter> NewSessionFilter(std::shared_ptr<SessionContext> context) {
  return std::make_unique<SessionFilter>(std::move(context));
}

Result<FilterFactoryMaker> SessionFilterFactoryMaker(const std::shared_ptr<const Config>& config) {
  // Built once per process and kept across reloads; rebuilt only when a
  // reload switches to a manager whose shared state is missing.
  struct ProcessState {
    std::mutex mu;
    std::shared_ptr<SharedStoreState> stores;
    StoreKind kind;
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

  FilterFactoryMaker maker = [process](const std::shared_ptr<const Config>& cfg, const LoopEnv& loop,
                                       Metrics* metrics) -> std::unique_ptr<ExchangeFilterFactory> {
    auto ctx = std::make_shared<SessionContext>();
    ctx->config = cfg;
    ctx->metrics = metrics;
    Result<std::shared_ptr<const CookieCodec>> codec = CookieCodec::Create(*cfg);
    if (!codec.ok()) {
      LOG_ERROR("session setup failed: %s", codec.status().message().c_str());
      return std::make_unique<UnavailableFilterFactory>();
    }
    ctx->codec = *codec;
    std::shared_ptr<SharedStoreState> stores;
    {
      std::lock_guard<std::mutex> lock(process->mu);
      if (process->kind != cfg->session.manager) {
        Result<std::shared_ptr<SharedStoreState>> next = CreateSharedStoreState(*cfg);
        if (next.ok()) {
          process->stores = *next;
          process->kind = cfg->session.manager;
        }
      }
      stores = process->stores;
    }
    Result<std::unique_ptr<SessionStore>> store = CreateStore(*cfg, loop.base, loop.post, stores);
    if (!store.ok()) {
      LOG_ERROR("session store setup failed: %s", store.status().message().c_str());
      return std::make_unique<UnavailableFilterFactory>();
    }
    ctx->store = std::shared_ptr<SessionStore>(std::move(*store));
    return std::make_unique<SessionFilterFactory>(std::move(ctx));
  };
  return maker;
}

}  // namespace sessiond
