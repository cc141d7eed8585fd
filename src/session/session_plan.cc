#include "session/session_plan.h"

#include <algorithm>
#include <chrono>

namespace sessiond {

SessionPolicy SessionPolicy::From(const Config& config) {
  SessionPolicy policy;
  policy.data_in_cookie = config.session.manager == StoreKind::kCookie;
  policy.refresh_each_request = config.session.refresh_each_request;
  policy.create_always = config.session.create == SessionCreate::kAlways;
  const int64_t seconds = std::chrono::duration_cast<std::chrono::seconds>(config.session.expiration).count();
  policy.lifetime_seconds = seconds > 0 ? seconds : 1;
  policy.fail_open =
      (config.session.manager == StoreKind::kRedis && config.redis.on_error == OnStoreError::kFailOpen) ||
      (config.session.manager == StoreKind::kHttp && config.http_store.on_error == OnStoreError::kFailOpen);
  const auto whole_seconds = [](Millis d) {
    const int64_t s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
    return d.count() > 0 && s < 1 ? int64_t{1} : s;
  };
  policy.idle_seconds = whole_seconds(config.session.idle_timeout);
  policy.absolute_seconds = whole_seconds(config.session.absolute_timeout);
  policy.refresh_threshold_seconds = whole_seconds(config.session.refresh_threshold);
  policy.indexes_subjects = !config.session.subject_key.empty();
  return policy;
}

int64_t SessionPolicy::ExpiryFor(int64_t created, int64_t now) const {
  int64_t expiry = (refresh_each_request ? now : created) + lifetime_seconds;
  if (idle_seconds > 0) expiry = std::min(expiry, now + idle_seconds);
  if (absolute_seconds > 0) expiry = std::min(expiry, created + absolute_seconds);
  return expiry;
}

namespace {

// A session without recorded times (0) started its lifetime at its expiry
// minus the lifetime: SessionPolicy::LegacyStart.
int64_t CreatedOf(const RequestFacts& facts, const SessionPolicy& policy) {
  return facts.created_at > 0 ? facts.created_at : policy.LegacyStart(facts.expires_at);
}
int64_t RefreshedOf(const RequestFacts& facts, const SessionPolicy& policy) {
  return facts.refreshed_at > 0 ? facts.refreshed_at : CreatedOf(facts, policy);
}

}  // namespace

bool ExpiredOnRequest(const RequestFacts& facts, const SessionPolicy& policy, int64_t now) {
  if (facts.status != SessionStatus::kActive) return false;
  if (policy.idle_seconds > 0 && RefreshedOf(facts, policy) + policy.idle_seconds <= now) return true;
  if (policy.absolute_seconds > 0 && CreatedOf(facts, policy) + policy.absolute_seconds <= now) return true;
  return false;
}

bool StartsSessionOnRequest(const RequestFacts& facts, const SessionPolicy& policy) {
  return policy.create_always && !facts.has_session();
}

SessionPlan PlanResponse(const RequestFacts& facts, const ChangeBatch& batch, const SessionPolicy& policy,
                         int64_t now) {
  SessionPlan plan;
  if (!policy.data_in_cookie && facts.store_failed) {
    // fail_open and the store already failed this request: go on without it
    // rather than make the client wait for a second timeout.
    plan.skips = true;
    plan.drops_changes = !batch.empty();
    return plan;
  }

  const bool had = facts.has_session();
  // A "new" session (session_create: always) that no store holds yet.
  const bool unsaved_new = facts.status == SessionStatus::kNew && !facts.stored;
  // Verified under a fallback secret: re-issue, and re-key the store entry.
  const bool rekey = had && facts.key_index > 0;
  // docs/CONFIGURATION.md, session.session_refresh_threshold: a sliding
  // refresh at most once per threshold. A "new" session was just made.
  const int64_t created = CreatedOf(facts, policy);
  const bool due = policy.refresh_threshold_seconds <= 0 ||
                   now - RefreshedOf(facts, policy) >= policy.refresh_threshold_seconds;
  const bool refresh = had && policy.sliding() && (facts.status == SessionStatus::kNew || due);
  plan.refresh_skipped = had && policy.sliding() && !refresh;

  plan.mint = batch.regenerate || (batch.sets_a_value() && (batch.destroy || !had));
  plan.destroys = batch.destroy && had;
  plan.exists = plan.mint || (had && !batch.destroy);
  // Regenerate of a session that goes on is the same session under a new id.
  const bool same_session_new_id = batch.regenerate && had && !batch.destroy;
  plan.creates = (plan.mint && !same_session_new_id) || unsaved_new;
  plan.clear = batch.destroy;
  plan.revoke = policy.indexes_subjects && (had || plan.mint) ? batch.revoke : RevokeScope::kNone;
  plan.created_at = plan.mint ? now : created;
  plan.refreshed_at = (plan.mint || refresh) ? now : RefreshedOf(facts, policy);
  plan.refreshes = refresh && !plan.mint && plan.exists;
  if (plan.refresh_skipped && !plan.exists) plan.refresh_skipped = false;
  const int64_t expires_at =
      plan.mint ? policy.ExpiresAt(now) : refresh ? policy.ExpiryFor(created, now) : facts.expires_at;
  const bool reissue = plan.mint || unsaved_new || rekey || refresh;

  if (policy.data_in_cookie) {
    // The cookie is the session: any change re-seals it.
    if (plan.exists) {
      plan.expires_at = expires_at;
      plan.cookie = reissue || !batch.empty() ? CookieAction::kSet : CookieAction::kNone;
    } else if (facts.sent_cookie) {
      plan.cookie = CookieAction::kClear;
    }
    return plan;
  }

  const bool changes_store = plan.mint || plan.destroys || rekey || unsaved_new ||
                             (had && batch.changes_keys()) || plan.revoke != RevokeScope::kNone;
  if (!changes_store) {
    if (refresh && facts.stored) {
      plan.store = StoreOp::kTouch;
      plan.expires_at = expires_at;
      plan.cookie = CookieAction::kSet;
    } else if (had) {
      plan.expires_at = expires_at;
    } else if (facts.sent_cookie) {
      plan.cookie = CookieAction::kClear;
    }
    return plan;
  }

  plan.store = StoreOp::kApply;
  plan.from_request_key = had;
  // A Destroy without a new id deletes the entry where it is.
  plan.move = had && (plan.mint || (rekey && !batch.destroy));
  // Changing (or moving) the session this request loaded: if a concurrent
  // request destroyed or regenerated it meanwhile, the change is dropped
  // rather than bringing the old id back.
  plan.must_exist = facts.stored && !batch.destroy;
  plan.expires_at = expires_at > now ? expires_at : now + 1;
  if (plan.exists) {
    plan.cookie = reissue ? CookieAction::kSet : CookieAction::kNone;
    // A session this request meant to keep is gone (must_exist lost a race):
    // its cookie is cleared like any cookie whose session no longer exists.
    plan.cookie_if_gone = CookieAction::kClear;
  } else {
    plan.cookie = plan.cookie_if_gone = facts.sent_cookie ? CookieAction::kClear : CookieAction::kNone;
  }
  return plan;
}

}  // namespace sessiond
