// The session plan's decision table (src/session/session_plan.h), one case
// per row: what a response does to the session for every kind of request
// session, instruction batch and setting that changes the outcome. Each case
// names the docs section it pins.
#include "session/session_plan.h"

#include <doctest/doctest.h>

namespace sessiond {
namespace {

constexpr int64_t kNow = 1700000000;
constexpr int64_t kLifetime = 3600;
constexpr int64_t kOldExpiry = kNow + 600;  // the request's session, verified earlier

SessionPolicy CookiePolicy() {
  SessionPolicy p;
  p.data_in_cookie = true;
  p.lifetime_seconds = kLifetime;
  return p;
}

SessionPolicy StorePolicy() {
  SessionPolicy p = CookiePolicy();
  p.data_in_cookie = false;
  return p;
}

// An active session from a valid cookie (loaded from the store when `stored`).
RequestFacts Active(bool stored, size_t key_index = 0) {
  RequestFacts f;
  f.status = SessionStatus::kActive;
  f.sent_cookie = true;
  f.key_index = key_index;
  f.stored = stored;
  f.expires_at = kOldExpiry;
  return f;
}

// session_create: always made one for this request; no store holds it yet.
RequestFacts New(bool sent_cookie = false) {
  RequestFacts f;
  f.status = SessionStatus::kNew;
  f.sent_cookie = sent_cookie;
  f.expires_at = kNow + kLifetime;
  return f;
}

RequestFacts NoSession(SessionStatus status = SessionStatus::kNone, bool sent_cookie = false) {
  RequestFacts f;
  f.status = status;
  f.sent_cookie = sent_cookie;
  return f;
}

ChangeBatch Empty() { return ChangeBatch(); }
ChangeBatch Set() {
  ChangeBatch b;
  b.sets["user"] = "\"ada\"";
  return b;
}
ChangeBatch NullSet() {
  ChangeBatch b;
  b.sets["user"] = std::nullopt;
  return b;
}
ChangeBatch Delete() {
  ChangeBatch b;
  b.deletes = {"cart"};
  return b;
}
ChangeBatch Destroy() {
  ChangeBatch b;
  b.destroy = true;
  return b;
}
ChangeBatch DestroySet() {
  ChangeBatch b = Set();
  b.destroy = true;
  return b;
}
ChangeBatch Regenerate() {
  ChangeBatch b;
  b.regenerate = true;
  return b;
}
ChangeBatch RegenerateSet() {
  ChangeBatch b = Set();
  b.regenerate = true;
  return b;
}
ChangeBatch RegenerateDestroy() {
  ChangeBatch b = Regenerate();
  b.destroy = true;
  return b;
}

// The plan under both managers.
struct Both {
  SessionPlan cookie;
  SessionPlan store;
};
Both Plan(const RequestFacts& cookie_facts, const RequestFacts& store_facts, const ChangeBatch& batch,
          bool refresh = false) {
  SessionPolicy c = CookiePolicy(), s = StorePolicy();
  c.refresh_each_request = s.refresh_each_request = refresh;
  return {PlanResponse(cookie_facts, batch, c, kNow), PlanResponse(store_facts, batch, s, kNow)};
}

void CheckNothingHappens(const SessionPlan& p) {
  CHECK_FALSE(p.mint);
  CHECK_FALSE(p.destroys);
  CHECK(p.store == StoreOp::kNone);
}

// ---- request side -----------------------------------------------------------------

TEST_CASE("request: session_create lazy never starts a session; always starts one for any request without") {
  // docs/CONFIGURATION.md, session.session_create; docs/HEADER-PROTOCOL.md, Session status
  SessionPolicy lazy = StorePolicy();
  SessionPolicy always = StorePolicy();
  always.create_always = true;
  for (SessionStatus status : {SessionStatus::kNone, SessionStatus::kExpired, SessionStatus::kInvalid}) {
    CAPTURE(ToString(status));
    CHECK_FALSE(StartsSessionOnRequest(NoSession(status, true), lazy));
    CHECK(StartsSessionOnRequest(NoSession(status, true), always));
  }
  RequestFacts failed = NoSession();
  failed.store_failed = true;  // fail_open: forwarded as none, and always still makes one
  CHECK(StartsSessionOnRequest(failed, always));
  CHECK_FALSE(StartsSessionOnRequest(Active(true), always));
  CHECK_FALSE(StartsSessionOnRequest(New(), always));
}

TEST_CASE("policy: taken from the config once") {
  // docs/CONFIGURATION.md, session.session_expiration_time; docs/HEADER-PROTOCOL.md, Store failures
  Config config;
  config.session.manager = StoreKind::kRedis;
  config.session.refresh_each_request = true;
  config.session.create = SessionCreate::kAlways;
  config.session.expiration = std::chrono::minutes(2);
  config.redis.on_error = OnStoreError::kFailOpen;
  SessionPolicy p = SessionPolicy::From(config);
  CHECK_FALSE(p.data_in_cookie);
  CHECK(p.refresh_each_request);
  CHECK(p.create_always);
  CHECK(p.lifetime_seconds == 120);
  CHECK(p.fail_open);
  CHECK(p.ExpiresAt(kNow) == kNow + 120);
  config.session.manager = StoreKind::kFile;  // only redis may fail open
  CHECK_FALSE(SessionPolicy::From(config).fail_open);
  config.session.manager = StoreKind::kCookie;
  config.session.expiration = std::chrono::milliseconds(10);  // under a second: a bound of 1 s
  CHECK(SessionPolicy::From(config).data_in_cookie);
  CHECK(SessionPolicy::From(config).lifetime_seconds == 1);
}

// ---- no session -----------------------------------------------------------------

TEST_CASE("row: no session, no cookie, no instructions: nothing at all") {
  // docs/COOKIES.md, When the cookie is set, re-issued or cleared ("anything else")
  Both p = Plan(NoSession(), NoSession(), Empty());
  for (const SessionPlan& plan : {p.cookie, p.store}) {
    CheckNothingHappens(plan);
    CHECK_FALSE(plan.exists);
    CHECK(plan.cookie == CookieAction::kNone);
  }
}

TEST_CASE("row: an expired or invalid cookie, no instructions: the cookie is cleared") {
  // docs/HEADER-PROTOCOL.md, Session status; docs/COOKIES.md, When the cookie is set, re-issued or cleared
  for (SessionStatus status : {SessionStatus::kExpired, SessionStatus::kInvalid, SessionStatus::kNone}) {
    CAPTURE(ToString(status));  // none with a cookie: its session is gone from the store
    Both p = Plan(NoSession(status, true), NoSession(status, true), Empty());
    for (const SessionPlan& plan : {p.cookie, p.store}) {
      CheckNothingHappens(plan);
      CHECK(plan.cookie == CookieAction::kClear);
    }
  }
}

TEST_CASE("row: no session, Set: a new id, created, stored under the new id's key, cookie set") {
  // docs/HEADER-PROTOCOL.md, Instructions ("A Set or a Regenerate when the request had no session creates one")
  Both p = Plan(NoSession(SessionStatus::kInvalid, true), NoSession(SessionStatus::kInvalid, true), Set());
  for (const SessionPlan& plan : {p.cookie, p.store}) {
    CHECK(plan.mint);
    CHECK(plan.creates);
    CHECK(plan.exists);
    CHECK_FALSE(plan.destroys);
    CHECK(plan.expires_at == kNow + kLifetime);
    CHECK(plan.cookie == CookieAction::kSet);
  }
  CHECK(p.cookie.store == StoreOp::kNone);
  CHECK(p.store.store == StoreOp::kApply);
  CHECK_FALSE(p.store.from_request_key);
  CHECK_FALSE(p.store.move);
  CHECK_FALSE(p.store.must_exist);
  CHECK_FALSE(p.store.clear);
}

TEST_CASE("row: no session, only null Sets or Deletes: no session is created") {
  // docs/HEADER-PROTOCOL.md, Instructions ("A Set whose every value is null does not create a session")
  for (const ChangeBatch& batch : {NullSet(), Delete()}) {
    Both p = Plan(NoSession(), NoSession(), batch);
    for (const SessionPlan& plan : {p.cookie, p.store}) {
      CheckNothingHappens(plan);
      CHECK_FALSE(plan.exists);
      CHECK(plan.cookie == CookieAction::kNone);
    }
    Both sent = Plan(NoSession(SessionStatus::kExpired, true), NoSession(SessionStatus::kExpired, true), batch);
    CHECK(sent.cookie.cookie == CookieAction::kClear);
    CHECK(sent.store.cookie == CookieAction::kClear);
  }
}

TEST_CASE("row: no session, Destroy: nothing to destroy") {
  // docs/HEADER-PROTOCOL.md, Instructions ("A Delete or Destroy without a session does nothing")
  Both p = Plan(NoSession(SessionStatus::kInvalid, true), NoSession(SessionStatus::kInvalid, true), Destroy());
  for (const SessionPlan& plan : {p.cookie, p.store}) {
    CheckNothingHappens(plan);
    CHECK_FALSE(plan.exists);
    CHECK(plan.cookie == CookieAction::kClear);  // the invalid cookie the client sent
  }
}

TEST_CASE("row: no session, Destroy + Set or Regenerate: a new session") {
  // docs/HEADER-PROTOCOL.md, Order of application
  for (const ChangeBatch& batch : {DestroySet(), Regenerate(), RegenerateSet()}) {
    Both p = Plan(NoSession(), NoSession(), batch);
    for (const SessionPlan& plan : {p.cookie, p.store}) {
      CHECK(plan.mint);
      CHECK(plan.creates);
      CHECK(plan.exists);
      CHECK_FALSE(plan.destroys);
      CHECK(plan.cookie == CookieAction::kSet);
    }
    CHECK(p.store.store == StoreOp::kApply);
    CHECK_FALSE(p.store.from_request_key);
    CHECK(p.store.clear == batch.destroy);
  }
}

// ---- an active session ------------------------------------------------------------

TEST_CASE("row: active, no instructions: nothing changes and no cookie is sent") {
  // docs/COOKIES.md, When the cookie is set, re-issued or cleared ("a read")
  Both p = Plan(Active(false), Active(true), Empty());
  for (const SessionPlan& plan : {p.cookie, p.store}) {
    CheckNothingHappens(plan);
    CHECK(plan.exists);
    CHECK(plan.expires_at == kOldExpiry);
    CHECK(plan.cookie == CookieAction::kNone);
  }
}

TEST_CASE("row: active, Set or Delete: changed in place, same expiry; only the cookie manager re-issues") {
  // docs/COOKIES.md, When the cookie is set, re-issued or cleared ("any other instruction that leaves a session")
  for (const ChangeBatch& batch : {Set(), Delete(), NullSet()}) {
    Both p = Plan(Active(false), Active(true), batch);
    for (const SessionPlan& plan : {p.cookie, p.store}) {
      CHECK_FALSE(plan.mint);
      CHECK_FALSE(plan.creates);
      CHECK(plan.exists);
      CHECK(plan.expires_at == kOldExpiry);
    }
    CHECK(p.cookie.cookie == CookieAction::kSet);
    CHECK(p.store.cookie == CookieAction::kNone);
    CHECK(p.store.store == StoreOp::kApply);
    CHECK(p.store.from_request_key);
    CHECK_FALSE(p.store.move);
    CHECK(p.store.must_exist);  // docs/HEADER-PROTOCOL.md, Concurrency
    CHECK(p.store.cookie_if_gone == CookieAction::kClear);
  }
}

TEST_CASE("row: active, Destroy: deleted where it is, counted, cookie cleared") {
  // docs/HEADER-PROTOCOL.md, Order of application; docs/COOKIES.md, When the cookie is set, re-issued or cleared
  Both p = Plan(Active(false), Active(true), Destroy());
  for (const SessionPlan& plan : {p.cookie, p.store}) {
    CHECK(plan.destroys);
    CHECK_FALSE(plan.mint);
    CHECK_FALSE(plan.exists);
    CHECK(plan.cookie == CookieAction::kClear);
  }
  CHECK(p.store.store == StoreOp::kApply);
  CHECK(p.store.clear);
  CHECK(p.store.from_request_key);
  CHECK_FALSE(p.store.move);
  CHECK_FALSE(p.store.must_exist);  // a Destroy need not find the session
}

TEST_CASE("row: active, Destroy + Set: the old session ends and a new one holds only the Set") {
  // docs/HEADER-PROTOCOL.md, Order of application ("Destroy followed by Set yields a fresh session")
  Both p = Plan(Active(false), Active(true), DestroySet());
  for (const SessionPlan& plan : {p.cookie, p.store}) {
    CHECK(plan.destroys);
    CHECK(plan.mint);
    CHECK(plan.creates);
    CHECK(plan.exists);
    CHECK(plan.clear);
    CHECK(plan.expires_at == kNow + kLifetime);
    CHECK(plan.cookie == CookieAction::kSet);
  }
  CHECK(p.store.from_request_key);
  CHECK(p.store.move);
  CHECK_FALSE(p.store.must_exist);
}

TEST_CASE("row: active, Regenerate: the same session under a new id, not counted as created") {
  // docs/HEADER-PROTOCOL.md, Order of application; docs/HEADER-PROTOCOL.md, Session lifetime
  for (const ChangeBatch& batch : {Regenerate(), RegenerateSet()}) {
    Both p = Plan(Active(false), Active(true), batch);
    for (const SessionPlan& plan : {p.cookie, p.store}) {
      CHECK(plan.mint);
      CHECK_FALSE(plan.creates);
      CHECK_FALSE(plan.destroys);
      CHECK(plan.exists);
      CHECK_FALSE(plan.clear);
      CHECK(plan.expires_at == kNow + kLifetime);  // a fresh lifetime
      CHECK(plan.cookie == CookieAction::kSet);
    }
    CHECK(p.store.from_request_key);
    CHECK(p.store.move);
    CHECK(p.store.must_exist);  // a concurrent Destroy wins: docs/HEADER-PROTOCOL.md, Concurrency
    CHECK(p.store.cookie_if_gone == CookieAction::kClear);
  }
}

TEST_CASE("row: active, Regenerate + Destroy: a fresh empty session, counted destroyed and created") {
  // docs/HEADER-PROTOCOL.md, Order of application ("Destroy with Regenerate yields a fresh, empty session")
  Both p = Plan(Active(false), Active(true), RegenerateDestroy());
  for (const SessionPlan& plan : {p.cookie, p.store}) {
    CHECK(plan.mint);
    CHECK(plan.destroys);
    CHECK(plan.creates);
    CHECK(plan.exists);
    CHECK(plan.clear);
  }
  CHECK(p.store.move);
  CHECK_FALSE(p.store.must_exist);
}

// ---- key rotation -----------------------------------------------------------------

TEST_CASE("row: verified under a fallback secret: re-issued, and the store entry moved to the current key") {
  // docs/COOKIES.md, Key rotation
  Both p = Plan(Active(false, 1), Active(true, 1), Empty());
  for (const SessionPlan& plan : {p.cookie, p.store}) {
    CHECK_FALSE(plan.mint);
    CHECK_FALSE(plan.creates);
    CHECK(plan.exists);
    CHECK(plan.expires_at == kOldExpiry);  // re-keying does not extend the session
    CHECK(plan.cookie == CookieAction::kSet);
  }
  CHECK(p.store.store == StoreOp::kApply);
  CHECK(p.store.from_request_key);
  CHECK(p.store.move);
  CHECK(p.store.must_exist);
}

TEST_CASE("row: verified under a fallback secret and destroyed: deleted at the old key, nothing moved") {
  // docs/COOKIES.md, Key rotation; docs/HEADER-PROTOCOL.md, Order of application
  SessionPlan p = PlanResponse(Active(true, 2), Destroy(), StorePolicy(), kNow);
  CHECK(p.store == StoreOp::kApply);
  CHECK(p.from_request_key);
  CHECK_FALSE(p.move);
  CHECK(p.destroys);
  CHECK(p.cookie == CookieAction::kClear);
}

// ---- sliding expiry -----------------------------------------------------------------

TEST_CASE("row: refresh_each_request, no instructions: expiry slides, the store is touched, cookie re-issued") {
  // docs/HEADER-PROTOCOL.md, Session lifetime; docs/CONFIGURATION.md, session.session_refresh_each_request
  Both p = Plan(Active(false), Active(true), Empty(), /*refresh=*/true);
  for (const SessionPlan& plan : {p.cookie, p.store}) {
    CHECK_FALSE(plan.mint);
    CHECK(plan.exists);
    CHECK(plan.expires_at == kNow + kLifetime);
    CHECK(plan.cookie == CookieAction::kSet);
  }
  CHECK(p.cookie.store == StoreOp::kNone);
  CHECK(p.store.store == StoreOp::kTouch);
}

TEST_CASE("row: refresh_each_request with a Set: one Apply with the new expiry") {
  // docs/HEADER-PROTOCOL.md, Session lifetime; docs/HEADER-PROTOCOL.md, Atomicity
  SessionPolicy policy = StorePolicy();
  policy.refresh_each_request = true;
  SessionPlan p = PlanResponse(Active(true), Set(), policy, kNow);
  CHECK(p.store == StoreOp::kApply);
  CHECK(p.expires_at == kNow + kLifetime);
  CHECK(p.ttl_seconds(kNow) == kLifetime);
  CHECK(p.cookie == CookieAction::kSet);
  CHECK_FALSE(p.move);
}

TEST_CASE("row: refresh_each_request without a session: nothing to refresh") {
  // docs/HEADER-PROTOCOL.md, Session lifetime ("every request that has a session")
  Both p = Plan(NoSession(), NoSession(), Empty(), /*refresh=*/true);
  for (const SessionPlan& plan : {p.cookie, p.store}) {
    CheckNothingHappens(plan);
    CHECK(plan.cookie == CookieAction::kNone);
  }
}

// ---- session_create: always ---------------------------------------------------------

TEST_CASE("row: a new session (session_create: always), no instructions: stored empty, created, cookie set") {
  // docs/HEADER-PROTOCOL.md, Session lifetime ("it is stored, and its cookie set, when the response passes")
  Both p = Plan(New(), New(), Empty());
  for (const SessionPlan& plan : {p.cookie, p.store}) {
    CHECK_FALSE(plan.mint);  // minted on the request side already
    CHECK(plan.creates);
    CHECK(plan.exists);
    CHECK(plan.expires_at == kNow + kLifetime);
    CHECK(plan.cookie == CookieAction::kSet);
  }
  CHECK(p.store.store == StoreOp::kApply);
  CHECK(p.store.from_request_key);
  CHECK_FALSE(p.store.move);
  CHECK_FALSE(p.store.must_exist);
}

TEST_CASE("row: a new session regenerated at once is counted created once") {
  // docs/HEADER-PROTOCOL.md, Order of application
  Both p = Plan(New(), New(), Regenerate());
  for (const SessionPlan& plan : {p.cookie, p.store}) {
    CHECK(plan.mint);
    CHECK(plan.creates);
    CHECK(plan.cookie == CookieAction::kSet);
  }
  CHECK(p.store.move);
  CHECK_FALSE(p.store.must_exist);
}

TEST_CASE("row: a new session destroyed at once: no session; a cookie is cleared only if one was sent") {
  // docs/COOKIES.md, When the cookie is set, re-issued or cleared
  for (bool sent : {false, true}) {
    CAPTURE(sent);
    Both p = Plan(New(sent), New(sent), Destroy());
    const CookieAction want = sent ? CookieAction::kClear : CookieAction::kNone;
    for (const SessionPlan& plan : {p.cookie, p.store}) {
      CHECK(plan.destroys);
      CHECK_FALSE(plan.exists);
      CHECK(plan.cookie == want);
    }
    CHECK(p.store.store == StoreOp::kApply);
    CHECK(p.store.cookie_if_gone == want);
  }
}

// ---- store failures and edges --------------------------------------------------------

TEST_CASE("row: the load failed under fail_open: nothing is written and the cookie is left alone") {
  // docs/HEADER-PROTOCOL.md, Store failures
  RequestFacts failed = NoSession(SessionStatus::kNone, true);
  failed.store_failed = true;
  SessionPlan p = PlanResponse(failed, Set(), StorePolicy(), kNow);
  CHECK(p.skips);
  CHECK(p.drops_changes);
  CHECK(p.store == StoreOp::kNone);
  CHECK(p.cookie == CookieAction::kNone);
  CHECK_FALSE(p.mint);
  CHECK_FALSE(PlanResponse(failed, Empty(), StorePolicy(), kNow).drops_changes);

  RequestFacts failed_new = New(true);  // session_create: always made one after the failure
  failed_new.store_failed = true;
  SessionPlan q = PlanResponse(failed_new, Empty(), StorePolicy(), kNow);
  CHECK(q.skips);
  CHECK(q.cookie == CookieAction::kNone);
}

TEST_CASE("row: a store entry's ttl is at least a second, even for a session expiring now") {
  // docs/HEADER-PROTOCOL.md, Session lifetime ("whole Unix seconds")
  RequestFacts ending = Active(true);
  ending.expires_at = kNow;  // valid when the request came, due as the response goes
  SessionPlan store = PlanResponse(ending, Set(), StorePolicy(), kNow);
  CHECK(store.expires_at == kNow + 1);
  CHECK(store.ttl_seconds(kNow) == 1);
  SessionPlan cookie = PlanResponse(ending, Set(), CookiePolicy(), kNow);
  CHECK(cookie.expires_at == kNow);  // a sealed cookie carries the bound as it is
}

TEST_CASE("row: the plan does not depend on the order Set keys arrived in, only on their values") {
  // docs/HEADER-PROTOCOL.md, Instructions ("a null value deletes the key")
  ChangeBatch mixed;
  mixed.sets["a"] = std::nullopt;
  mixed.sets["b"] = "1";
  Both p = Plan(NoSession(), NoSession(), mixed);
  CHECK(p.cookie.mint);
  CHECK(p.store.mint);
}

// ---- timeouts (docs/CONFIGURATION.md, session.session_idle_timeout and the keys after it) ----

RequestFacts ActiveSince(int64_t created, int64_t refreshed, int64_t expires) {
  RequestFacts f = Active(true);
  f.created_at = created;
  f.refreshed_at = refreshed;
  f.expires_at = expires;
  return f;
}

TEST_CASE("policy: timeouts and the threshold are taken from the config in whole seconds") {
  // docs/CONFIGURATION.md, session.session_idle_timeout
  Config config;
  config.session.idle_timeout = std::chrono::minutes(15);
  config.session.absolute_timeout = std::chrono::hours(8);
  config.session.refresh_threshold = std::chrono::milliseconds(60500);
  config.session.subject_key = "user_id";
  SessionPolicy p = SessionPolicy::From(config);
  CHECK(p.idle_seconds == 900);
  CHECK(p.absolute_seconds == 28800);
  CHECK(p.refresh_threshold_seconds == 60);
  CHECK(p.indexes_subjects);
  CHECK(p.sliding());  // an idle timeout slides even without session_refresh_each_request
  config.session.idle_timeout = std::chrono::milliseconds(300);  // under a second: one second, not off
  CHECK(SessionPolicy::From(config).idle_seconds == 1);
  CHECK_FALSE(SessionPolicy::From(Config()).sliding());
  config.session.manager = StoreKind::kHttp;
  config.http_store.on_error = OnStoreError::kFailOpen;
  CHECK(SessionPolicy::From(config).fail_open);  // docs/HEADER-PROTOCOL.md, Store failures
}

TEST_CASE("ExpiryFor: the earliest of the lifetime, the idle timeout and the absolute timeout") {
  // docs/HEADER-PROTOCOL.md, Session lifetime
  SessionPolicy p = StorePolicy();  // lifetime 3600
  CHECK(p.ExpiryFor(kNow - 100, kNow) == kNow - 100 + kLifetime);  // from creation, not extended
  p.refresh_each_request = true;
  CHECK(p.ExpiryFor(kNow - 100, kNow) == kNow + kLifetime);  // sliding
  p.idle_seconds = 600;
  CHECK(p.ExpiryFor(kNow - 100, kNow) == kNow + 600);
  p.absolute_seconds = 400;
  CHECK(p.ExpiryFor(kNow - 100, kNow) == kNow + 300);  // never past creation + absolute
  CHECK(p.ExpiresAt(kNow) == kNow + 400);
  p.refresh_each_request = false;
  p.absolute_seconds = 0;
  CHECK(p.ExpiryFor(kNow - 3500, kNow) == kNow + 100);  // lifetime from creation caps the idle window
}

TEST_CASE("request: past the idle or the absolute timeout an active session is expired, whatever its cookie says") {
  // docs/HEADER-PROTOCOL.md, Session lifetime
  SessionPolicy p = StorePolicy();
  p.idle_seconds = 600;
  p.absolute_seconds = 3000;
  CHECK_FALSE(ExpiredOnRequest(ActiveSince(kNow - 1000, kNow - 599, kNow + 1), p, kNow));
  CHECK(ExpiredOnRequest(ActiveSince(kNow - 1000, kNow - 600, kNow + 1), p, kNow));  // idle
  CHECK_FALSE(ExpiredOnRequest(ActiveSince(kNow - 2999, kNow - 10, kNow + 1), p, kNow));
  CHECK(ExpiredOnRequest(ActiveSince(kNow - 3000, kNow - 10, kNow + 1), p, kNow));  // absolute
  // No times recorded (a format-2 cookie, an old store entry): the lifetime
  // is taken to have begun at expiry - lifetime.
  CHECK(ExpiredOnRequest(ActiveSince(0, 0, kNow + kLifetime - 600), p, kNow));
  CHECK_FALSE(ExpiredOnRequest(ActiveSince(0, 0, kNow + kLifetime - 599), p, kNow));
  // Only active sessions: a "new" one was made this second.
  RequestFacts fresh = New();
  CHECK_FALSE(ExpiredOnRequest(fresh, p, kNow));
  CHECK_FALSE(ExpiredOnRequest(ActiveSince(kNow - 1000, kNow - 600, kNow + 1), StorePolicy(), kNow));
}

TEST_CASE("row: idle timeout, a request within the threshold: no refresh, counted as skipped, nothing written") {
  // docs/CONFIGURATION.md, session.session_refresh_threshold
  SessionPolicy s = StorePolicy(), c = CookiePolicy();
  s.idle_seconds = c.idle_seconds = 900;
  s.refresh_threshold_seconds = c.refresh_threshold_seconds = 60;
  const RequestFacts facts = ActiveSince(kNow - 500, kNow - 59, kNow - 59 + 900);
  for (const SessionPlan& plan : {PlanResponse(facts, Empty(), s, kNow), PlanResponse(facts, Empty(), c, kNow)}) {
    CHECK(plan.refresh_skipped);
    CHECK_FALSE(plan.refreshes);
    CHECK(plan.store == StoreOp::kNone);
    CHECK(plan.cookie == CookieAction::kNone);
    CHECK(plan.expires_at == kNow - 59 + 900);
    CHECK(plan.refreshed_at == kNow - 59);
  }
}

TEST_CASE("row: idle timeout, the threshold elapsed: refreshed, the store touched, the cookie re-issued") {
  // docs/CONFIGURATION.md, session.session_refresh_threshold; docs/HEADER-PROTOCOL.md, Session lifetime
  SessionPolicy s = StorePolicy(), c = CookiePolicy();
  s.idle_seconds = c.idle_seconds = 900;
  s.refresh_threshold_seconds = c.refresh_threshold_seconds = 60;
  const RequestFacts facts = ActiveSince(kNow - 500, kNow - 60, kNow - 60 + 900);
  SessionPlan store = PlanResponse(facts, Empty(), s, kNow);
  SessionPlan cookie = PlanResponse(facts, Empty(), c, kNow);
  for (const SessionPlan& plan : {store, cookie}) {
    CHECK(plan.refreshes);
    CHECK_FALSE(plan.refresh_skipped);
    CHECK(plan.cookie == CookieAction::kSet);
    CHECK(plan.expires_at == kNow + 900);
    CHECK(plan.refreshed_at == kNow);
    CHECK(plan.created_at == kNow - 500);  // a refresh never moves the creation
  }
  CHECK(store.store == StoreOp::kTouch);
}

TEST_CASE("row: the absolute timeout caps every refresh and Regenerate starts it over") {
  // docs/CONFIGURATION.md, session.session_absolute_timeout
  SessionPolicy p = StorePolicy();
  p.refresh_each_request = true;
  p.absolute_seconds = 1000;
  const RequestFacts facts = ActiveSince(kNow - 900, kNow - 10, kNow + 100);
  SessionPlan refresh = PlanResponse(facts, Empty(), p, kNow);
  CHECK(refresh.refreshes);
  CHECK(refresh.expires_at == kNow + 100);  // creation + 1000, not now + lifetime
  SessionPlan regen = PlanResponse(facts, Regenerate(), p, kNow);
  CHECK(regen.mint);
  CHECK(regen.created_at == kNow);
  CHECK(regen.expires_at == kNow + 1000);
  SessionPlan write = PlanResponse(facts, Set(), p, kNow);
  CHECK(write.created_at == kNow - 900);  // a write is no Regenerate
  CHECK(write.expires_at == kNow + 100);
}

TEST_CASE("row: threshold 0 keeps today's refresh on every request") {
  // docs/CONFIGURATION.md, session.session_refresh_each_request
  SessionPolicy p = StorePolicy();
  p.refresh_each_request = true;
  SessionPlan plan = PlanResponse(ActiveSince(kNow - 5, kNow - 1, kNow + 3599), Empty(), p, kNow);
  CHECK(plan.refreshes);
  CHECK(plan.store == StoreOp::kTouch);
  CHECK_FALSE(plan.refresh_skipped);
}

TEST_CASE("row: a new session is neither refreshed twice nor counted as a skipped refresh") {
  // docs/CONFIGURATION.md, session.session_refresh_threshold
  SessionPolicy p = StorePolicy();
  p.idle_seconds = 900;
  p.refresh_threshold_seconds = 60;
  RequestFacts fresh = New();
  fresh.created_at = fresh.refreshed_at = kNow;
  SessionPlan plan = PlanResponse(fresh, Empty(), p, kNow);
  CHECK_FALSE(plan.refresh_skipped);
  CHECK(plan.store == StoreOp::kApply);
  CHECK(plan.expires_at == kNow + 900);
}

// ---- revocation (docs/HEADER-PROTOCOL.md, Subjects) ----------------------------------

ChangeBatch Revoke(RevokeScope scope) {
  ChangeBatch b;
  b.revoke = scope;
  return b;
}

TEST_CASE("row: X-Session-Revoke on a session with a subject index: one Apply carries it") {
  // docs/HEADER-PROTOCOL.md, Subjects
  SessionPolicy p = StorePolicy();
  p.indexes_subjects = true;
  for (RevokeScope scope : {RevokeScope::kOthers, RevokeScope::kAll}) {
    SessionPlan plan = PlanResponse(Active(true), Revoke(scope), p, kNow);
    CHECK(plan.store == StoreOp::kApply);
    CHECK(plan.revoke == scope);
    CHECK(plan.from_request_key);
    CHECK(plan.must_exist);
    CHECK(plan.cookie == CookieAction::kNone);
    CHECK(plan.cookie_if_gone == CookieAction::kClear);  // all: the store reports it gone
  }
  // With Destroy the revocation still goes with the one Apply.
  ChangeBatch destroy = Destroy();
  destroy.revoke = RevokeScope::kOthers;
  SessionPlan plan = PlanResponse(Active(true), destroy, p, kNow);
  CHECK(plan.revoke == RevokeScope::kOthers);
  CHECK(plan.destroys);
  CHECK(plan.store == StoreOp::kApply);
}

TEST_CASE("row: X-Session-Revoke without a session, or without a subject index, revokes nothing") {
  // docs/HEADER-PROTOCOL.md, Subjects
  SessionPolicy p = StorePolicy();
  p.indexes_subjects = true;
  SessionPlan none = PlanResponse(NoSession(), Revoke(RevokeScope::kAll), p, kNow);
  CHECK(none.revoke == RevokeScope::kNone);
  CHECK(none.store == StoreOp::kNone);
  SessionPlan unindexed = PlanResponse(Active(true), Revoke(RevokeScope::kAll), StorePolicy(), kNow);
  CHECK(unindexed.revoke == RevokeScope::kNone);
  // A Set that creates the session with the revocation carries it.
  ChangeBatch login = Set();
  login.revoke = RevokeScope::kOthers;
  SessionPlan created = PlanResponse(NoSession(), login, p, kNow);
  CHECK(created.mint);
  CHECK(created.revoke == RevokeScope::kOthers);
}

}  // namespace
}  // namespace sessiond
