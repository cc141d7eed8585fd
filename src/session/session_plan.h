// The session plan: the one place where session policy is decided.
//
// Given what a request had (its session status, whether the store holds the
// session, the key its cookie verified under, whether the client sent a
// cookie, whether the store failed), the response's instruction batch and
// the session settings, it says what happens: mint a new id or not, destroy,
// count a creation, which store operation (none, Touch, one Apply and its
// flags), the session's expiry afterwards, and what to do with the cookie.
// SessionFilter only carries the plan out (one store call or one seal, then
// the cookie header).
//
// Pure: no I/O, no clock (`now` is passed), no crypto, no allocation.
// docs/HEADER-PROTOCOL.md and docs/COOKIES.md state the rules for operators;
// tests/unit/session_plan_test.cc pins every row of the table below.
//
// Response side, the rules (had = the request had a session: status active
// or new):
//   mint     = Regenerate, or a Set that gives a key a value while there is
//              no session to put it in (none, or Destroyed in this batch).
//              A new id never adopts one a client sent.
//   destroy  = Destroy and had. Counted (sessions_destroyed) once done.
//   creates  = mint, except Regenerate of a session that goes on (it keeps
//              its data: the same session under a new id); or a "new"
//              session (session_create: always) not yet in the store.
//   exists   = mint, or had and not Destroyed.
//   expiry   = ExpiryFor(now, now) on mint (created = refreshed = now);
//              ExpiryFor(created, now) on a refresh (refreshed = now);
//              otherwise the session's own expiry. ExpiryFor is the
//              earliest of created + session_expiration_time (now + it with
//              session_refresh_each_request), now + session_idle_timeout and
//              created + session_absolute_timeout (each when set).
//   refresh  = sliding (session_refresh_each_request or an idle timeout), an
//              active session, and session_refresh_threshold elapsed since
//              its last refresh (0: every request). A sliding session whose
//              refresh is not due yet counts one skipped refresh.
//   revoke   = X-Session-Revoke with subject_key set (the filter refuses it
//              otherwise, before planning): store managers Apply it with the
//              batch (the store revokes the subject's other sessions, or all
//              of them, this one included).
//   cookie   = set (re-issued) when the session goes on and the cookie must
//              change: minted, a "new" session, verified under a fallback
//              key, a refresh, or (cookie manager) its data changed;
//              cleared when no session results and the client sent a
//              session cookie, or when the store finds gone a session the
//              request meant to keep; otherwise left alone.
// Store managers, additionally:
//   Apply when the store must change: mint, destroy, a fallback key (move
//     the entry to the current key), a "new" session not yet stored, or a
//     Delete/Set on an existing session. One Apply does it all atomically:
//     clear = Destroy; from the request's key (had) or the new id's key;
//     moved to the current key of the (new) id on mint or re-keying, except
//     a Destroy without mint deletes in place; must_exist when the request
//     loaded the session and does not Destroy it (a concurrent Destroy or
//     Regenerate wins). A store entry gone after Apply clears the cookie.
//   Touch when nothing changes but the expiry slides (stored sessions).
// Request side: an active session past session_idle_timeout since its last
//   refresh, or past session_absolute_timeout since its creation, is
//   expired (ExpiredOnRequest), whatever its cookie says: a shorter timeout
//   set by a reload holds at once.
//   Nothing at all when the load failed under fail_open.
//   A store entry's ttl is at least one second.
#pragma once

#include <cstddef>
#include <cstdint>

#include "config/config.h"
#include "session/header_protocol.h"
#include "store/session_data.h"

namespace sessiond {

// The session settings the plan reads, taken from a Config once.
struct SessionPolicy {
  bool data_in_cookie = true;         // session.manager: cookie (no store)
  bool refresh_each_request = false;  // session_refresh_each_request
  bool create_always = false;         // session_create: always
  int64_t lifetime_seconds = 1;       // session_expiration_time, at least 1
  bool fail_open = false;             // on_error: fail_open (redis and http managers only)
  int64_t idle_seconds = 0;           // session_idle_timeout, 0 = off
  int64_t absolute_seconds = 0;       // session_absolute_timeout, 0 = off
  int64_t refresh_threshold_seconds = 0;  // session_refresh_threshold, 0 = every request
  bool indexes_subjects = false;      // subject_key is set

  static SessionPolicy From(const Config& config);
  // Whether a store keeps SessionMeta with each session: only when
  // something reads it (the timeouts, the refresh threshold, the subject
  // index and its listing). Otherwise writes carry no metadata, so the
  // store's write path costs what it did before sessions had any.
  bool keeps_meta() const {
    return idle_seconds > 0 || absolute_seconds > 0 || refresh_threshold_seconds > 0 || indexes_subjects;
  }
  // Requests slide the expiry (docs/HEADER-PROTOCOL.md, Session lifetime).
  bool sliding() const { return refresh_each_request || idle_seconds > 0; }
  // The expiry of a session created at `created` and minted or refreshed at
  // `now` (see the rules above).
  int64_t ExpiryFor(int64_t created, int64_t now) const;
  // The expiry of a session minted at `now`.
  int64_t ExpiresAt(int64_t now) const { return ExpiryFor(now, now); }
  // For a session that carries no creation time (a format-2 sealed cookie, a
  // store entry written before sessions had times): when its lifetime began.
  int64_t LegacyStart(int64_t expires_at) const {
    return expires_at > lifetime_seconds ? expires_at - lifetime_seconds : 0;
  }
};

// What the request side found out, filled in by the filter as it goes.
struct RequestFacts {
  SessionStatus status = SessionStatus::kNone;  // as told to the backend
  bool sent_cookie = false;   // the client sent a session cookie (valid or not)
  size_t key_index = 0;       // the secret it verified under; > 0 is a fallback
  bool stored = false;        // store managers: the store holds the session (loaded)
  bool store_failed = false;  // the load failed and fail_open carried on
  int64_t expires_at = 0;     // the session's expiry (Unix seconds) when it has one
  int64_t created_at = 0;     // its creation or last Regenerate (Unix seconds)
  int64_t refreshed_at = 0;   // its last refresh (or creation)

  bool has_session() const { return status == SessionStatus::kActive || status == SessionStatus::kNew; }
};

// ---- Request side ---------------------------------------------------------------

// Whether a request without a session starts one ("new") before it goes
// upstream: session_create: always, whatever the cookie was (none, expired,
// invalid, gone from the store, or the store failed under fail_open).
bool StartsSessionOnRequest(const RequestFacts& facts, const SessionPolicy& policy);

// Whether an active session is past its idle or absolute timeout at `now`
// (it is then reported expired and its cookie cleared).
bool ExpiredOnRequest(const RequestFacts& facts, const SessionPolicy& policy, int64_t now);

// ---- Response side --------------------------------------------------------------

enum class CookieAction { kNone, kSet, kClear };
enum class StoreOp { kNone, kTouch, kApply };

struct SessionPlan {
  // The request's session is replaced by a new id with a fresh lifetime.
  bool mint = false;
  // The request's session ends (counts sessions_destroyed once carried out).
  bool destroys = false;
  // The resulting session counts as created (sessions_created) once it exists.
  bool creates = false;
  // A session exists after the response (the store may still report it gone).
  bool exists = false;
  // Its expiry, creation and last refresh (Unix seconds) when it exists.
  int64_t expires_at = 0;
  int64_t created_at = 0;
  int64_t refreshed_at = 0;
  // A refresh is carried out (the store touched or the cookie re-issued
  // with a later expiry), or one was due by the rules but the threshold
  // says not yet (counted).
  bool refreshes = false;
  bool refresh_skipped = false;
  // X-Session-Revoke, for the store's Apply.
  RevokeScope revoke = RevokeScope::kNone;
  // The load failed under fail_open: nothing is written and the cookie is
  // left alone; `drops_changes` when the batch asked for something.
  bool skips = false;
  bool drops_changes = false;

  // Store managers.
  StoreOp store = StoreOp::kNone;
  bool clear = false;             // Apply: drop every key first (Destroy)
  bool from_request_key = false;  // Apply: the request's key (else the new id's key)
  bool move = false;              // Apply: to the current-secret key of the (new) id
  bool must_exist = false;        // Apply: change nothing if the session is gone

  // The cookie, when the plan is carried out as planned.
  CookieAction cookie = CookieAction::kNone;
  // The cookie when the store finds the session gone (Apply: exists false).
  CookieAction cookie_if_gone = CookieAction::kNone;

  // The store entry's lifetime from `now` (at least 1 s).
  int64_t ttl_seconds(int64_t now) const { return expires_at > now ? expires_at - now : 1; }
};

// The plan for one response. `batch` is the validated instruction batch (a
// malformed one never gets here: the filter answers 502 first).
SessionPlan PlanResponse(const RequestFacts& facts, const ChangeBatch& batch, const SessionPolicy& policy,
                         int64_t now);

}  // namespace sessiond
