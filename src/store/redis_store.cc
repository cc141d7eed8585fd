#include "store/redis_store.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "base/json_text.h"
#include "store/session_meta_json.h"
#include "store/session_data.h"
#include "base/log.h"

namespace sessiond {

namespace {

// See redis_store.h for the layout. KEYS[1] is the session, KEYS[2] where
// it ends up (KEYS[1] unless re-keyed). ARGV[1] ttl ms, ARGV[2] max bytes,
// ARGV[3] flags (m: must exist, c: clear first, d: return the data),
// ARGV[4] the metadata for field m ("" leaves m as it is), ARGV[5] n, then
// n name/value pairs to set, then names to delete; every name once (the
// store merges the batch). The size is computed and checked
// before the first write, so TOOLARGE leaves everything as it was. Returns
// 1, or 0 when a must-exist session is gone, or with d {1, name, value...}.
// Arguments go to redis.call in pieces of at most B (Lua's unpack limit).
constexpr char kApplyScript[] = R"lua(
local k, dst, flags = KEYS[1], KEYS[2], ARGV[3]
local d0 = 6 + 2 * tonumber(ARGV[5])
local n = #ARGV
local B = 4000
local clear = string.find(flags, 'c', 1, true)
local s = 0
if clear then
  if string.find(flags, 'm', 1, true) and redis.call('EXISTS', k) == 0 then return 0 end
  for i = 6, d0 - 1, 2 do s = s + #ARGV[i] + #ARGV[i + 1] + 2 end
else
  local q = {'v', 's'}
  for i = 6, d0 - 1, 2 do q[#q + 1] = ARGV[i] end
  for i = d0, n do q[#q + 1] = ARGV[i] end
  local got
  if #q <= B then
    got = redis.call('HMGET', k, unpack(q))
  else
    got = {}
    for i = 1, #q, B do
      local part = redis.call('HMGET', k, unpack(q, i, math.min(#q, i + B - 1)))
      for x = 1, #part do got[#got + 1] = part[x] end
    end
  end
  if got[1] == '2' and got[2] then
    s = tonumber(got[2])
  elseif redis.call('EXISTS', k) == 1 then
    local all = redis.call('HGETALL', k)
    for i = 1, #all, 2 do
      if string.byte(all[i], 1) == 34 then s = s + #all[i] + #all[i + 1] + 2 end
    end
  elseif string.find(flags, 'm', 1, true) then
    return 0
  end
  local o = 3
  for i = 6, d0 - 1, 2 do
    if got[o] then s = s - #ARGV[i] - #got[o] - 2 end
    s = s + #ARGV[i] + #ARGV[i + 1] + 2
    o = o + 1
  end
  for i = d0, n do
    if got[o] then s = s - #ARGV[i] - #got[o] - 2 end
    o = o + 1
  end
end
local size = 2
if s > 0 then size = s + 1 end
if size > tonumber(ARGV[2]) then return redis.error_reply(string.format('TOOLARGE %d', size)) end
if clear then
  redis.call('DEL', k)
else
  for i = d0, n, B do redis.call('HDEL', k, unpack(ARGV, i, math.min(n, i + B - 1))) end
end
if d0 - 6 <= B then
  redis.call('HSET', k, 'v', '2', 's', s, unpack(ARGV, 6, d0 - 1))
else
  redis.call('HSET', k, 'v', '2', 's', s)
  for i = 6, d0 - 1, B do redis.call('HSET', k, unpack(ARGV, i, math.min(d0 - 1, i + B - 1))) end
end
if ARGV[4] ~= '' then redis.call('HSET', k, 'm', ARGV[4]) end
if dst ~= k then redis.call('RENAME', k, dst) end
redis.call('PEXPIRE', dst, ARGV[1])
if string.find(flags, 'd', 1, true) then
  local all = redis.call('HGETALL', dst)
  local out = {1}
  for i = 1, #all, 2 do
    if string.byte(all[i], 1) == 34 then
      out[#out + 1] = all[i]
      out[#out + 1] = all[i + 1]
    end
  end
  return out
end
return 1
)lua";

// The first step of a re-key on a cluster (see redis_store.h). KEYS[1] is
// the session. ARGV[1] max bytes, ARGV[2] flags (m, c), ARGV[3] n, then n
// name/value pairs to set, then names to delete. Returns {0} when a
// must-exist session is gone, else {1, name, value, ...}: the session after
// the batch, deleted here, with its bookkeeping fields m, u and p (when it
// has them) among the pairs.
constexpr char kTakeScript[] = R"lua(
local k, flags = KEYS[1], ARGV[2]
local d0 = 4 + 2 * tonumber(ARGV[3])
local all = redis.call('HGETALL', k)
if #all == 0 and string.find(flags, 'm', 1, true) then return {0} end
local view = {}
if not string.find(flags, 'c', 1, true) then
  for i = 1, #all, 2 do
    if string.byte(all[i], 1) == 34 then view[all[i]] = all[i + 1] end
  end
  for i = d0, #ARGV do view[ARGV[i]] = nil end
end
for i = 4, d0 - 1, 2 do view[ARGV[i]] = ARGV[i + 1] end
local s, out = 0, {1}
for f, v in pairs(view) do
  s = s + #f + #v + 2
  out[#out + 1] = f
  out[#out + 1] = v
end
for i = 1, #all, 2 do
  local f = all[i]
  if f == 'm' or f == 'u' or f == 'p' then
    out[#out + 1] = f
    out[#out + 1] = all[i + 1]
  end
end
local size = 2
if s > 0 then size = s + 1 end
if size > tonumber(ARGV[1]) then return redis.error_reply(string.format('TOOLARGE %d', size)) end
redis.call('DEL', k)
return out
)lua";

// The fast path's check after a concurrent write (see redis_store.h): the
// exact size now. KEYS[1] is the session. ARGV[1] max bytes, then triples
// name, our value ("" when we deleted it), its value before ("" when it
// had none). Returns 1 when the session is within the limit (s is set
// exact), 0 when it is gone (the fast path's write only made an invisible
// fragment: deleted); over the limit, undoes our changes that nobody has
// overwritten since and answers TOOLARGE.
constexpr char kVerifyScript[] = R"lua(
local k = KEYS[1]
local all = redis.call('HGETALL', k)
local cur, s, v = {}, 0, false
for i = 1, #all, 2 do
  local f = all[i]
  if string.byte(f, 1) == 34 then
    cur[f] = all[i + 1]
    s = s + #f + #all[i + 1] + 2
  elseif f == 'v' then
    v = true
  end
end
if not v then
  redis.call('DEL', k)
  return 0
end
local size = 2
if s > 0 then size = s + 1 end
if size > tonumber(ARGV[1]) then
  for i = 2, #ARGV, 3 do
    local f, ours, old = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    local now = cur[f]
    if (ours == '' and not now) or (ours ~= '' and now == ours) then
      if now then s = s - #f - #now - 2 end
      if old == '' then
        if now then redis.call('HDEL', k, f) end
      else
        redis.call('HSET', k, f, old)
        s = s + #f + #old + 2
      end
    end
  end
end
redis.call('HSET', k, 'v', '2', 's', s)
if size > tonumber(ARGV[1]) then return redis.error_reply(string.format('TOOLARGE %d', size)) end
return 1
)lua";

std::string Sha1Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha1(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xF]);
  }
  return hex;
}

const std::string& ApplySha() {
  static const std::string sha = Sha1Hex(kApplyScript);
  return sha;
}

const std::string& VerifySha() {
  static const std::string sha = Sha1Hex(kVerifyScript);
  return sha;
}

const std::string& TakeSha() {
  static const std::string sha = Sha1Hex(kTakeScript);
  return sha;
}

Status ErrorReplyStatus(const redisReply* r) { return Status::Unavailable("redis: " + ReplyText(r)); }

Status Unexpected() { return Status::Unavailable("redis: unexpected reply"); }

// Data fields of a flat name/value array starting at element `first`.
Result<SessionData> DecodeFields(const redisReply* r, size_t first) {
  SessionData data;
  if (r->elements < first || (r->elements - first) % 2 != 0) return Unexpected();
  for (size_t i = first; i + 1 < r->elements; i += 2) {
    const redisReply* f = r->element[i];
    const redisReply* v = r->element[i + 1];
    if (!IsStringReply(f) || !IsStringReply(v)) return Unexpected();
    if (f->len == 0 || f->str[0] != '"') continue;  // bookkeeping field
    const auto key = nlohmann::json::parse(f->str, f->str + f->len, nullptr, /*allow_exceptions=*/false);
    if (!key.is_string()) return Status::IOError("redis: corrupt session field");
    data[key.get<std::string>()] = std::string(v->str, v->len);
  }
  return data;
}

// The m field (redis_store.h): a SessionMeta without its subject (u) and
// public id (p, kept for indexed sessions only).
std::string MetaJson(const SessionMeta& m) {
  std::string out = "{\"created\":" + std::to_string(m.created_at) + ",\"refreshed\":" +
                    std::to_string(m.refreshed_at) + ",\"expires\":" + std::to_string(m.expires_at);
  out += ",\"client\":";
  AppendJsonString(&out, m.client);
  out += ",\"user_agent\":";
  AppendJsonString(&out, m.user_agent);
  out += "}";
  return out;
}

// MetaJson's output as a SessionMeta (session_meta_json.h); the public id
// is not in it (it is the hash's field p).
SessionMeta ParseMetaJson(std::string_view text) {
  SessionMeta m;
  ReadSessionMetaText(text, &m);
  return m;
}

std::string_view Text(const redisReply* r) {
  return IsStringReply(r) ? std::string_view(r->str, r->len) : std::string_view();
}

// The value of bookkeeping field `name` in a flat name/value array from
// element `first`; nullopt when absent.
std::optional<std::string> BookkeepingField(const redisReply* r, size_t first, std::string_view name) {
  for (size_t i = first; i + 1 < r->elements; i += 2) {
    if (IsStringReply(r->element[i]) && Text(r->element[i]) == name && IsStringReply(r->element[i + 1])) {
      return std::string(Text(r->element[i + 1]));
    }
  }
  return std::nullopt;
}

// A session exists when its hash has the layout field v: a hash without it
// is a fragment that a write racing a Destroy left behind (the fast path
// deletes it right away), never a session.
bool HasLayoutField(const redisReply* r) {
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    const redisReply* f = r->element[i];
    if (IsStringReply(f) && f->len == 1 && f->str[0] == 'v') return true;
  }
  return false;
}

// What a TOOLARGE error or another error reply of a script means.
Status ScriptErrorStatus(const redisReply* r, uint64_t max_bytes) {
  if (r->str && r->len > 9 && strncmp(r->str, "TOOLARGE ", 9) == 0) {
    Status st = CheckSessionSize(std::strtoull(r->str + 9, nullptr, 10), max_bytes);
    return st.ok() ? Unexpected() : st;  // TOOLARGE within the limit: not ours
  }
  return ErrorReplyStatus(r);
}

// kTakeScript's reply (the first step of a two-step rekey): the session's
// fields, or nullopt with *outcome set: the failure, or OK when the session
// was gone (nothing was taken, so nothing is written anywhere).
std::optional<SessionData> TakenFields(const Status& failure, const redisReply* r, uint64_t max_bytes,
                                       Status* outcome) {
  *outcome = Status::OK();
  if (!failure.ok()) {
    *outcome = failure;
  } else if (IsErrorReply(r)) {
    *outcome = ScriptErrorStatus(r, max_bytes);
  } else if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER) {
    *outcome = Unexpected();
  } else if (r->element[0]->integer == 1) {
    Result<SessionData> data = DecodeFields(r, 1);
    if (data.ok()) return std::move(*data);
    *outcome = data.status();
  }
  return std::nullopt;
}

// The batch as the scripts take it: every name once, JSON-escaped; a name
// both deleted and set is only set (deletes come first).
struct ScriptBatch {
  std::vector<std::string> set_names;
  std::vector<std::string> set_values;
  std::vector<std::string> delete_names;

  explicit ScriptBatch(const ApplyRequest& request) {
    std::set<std::string_view> deleted;
    for (const auto& [key, value] : request.sets) {
      if (value) {
        set_names.emplace_back();
        AppendJsonString(&set_names.back(), key);
        set_values.push_back(*value);
      } else if (deleted.insert(key).second) {
        delete_names.emplace_back();
        AppendJsonString(&delete_names.back(), key);
      }
    }
    for (const std::string& key : request.deletes) {
      auto set = request.sets.find(key);
      if (set != request.sets.end()) continue;  // set (or deleted) above
      if (!deleted.insert(key).second) continue;
      delete_names.emplace_back();
      AppendJsonString(&delete_names.back(), key);
    }
  }

  // Appends n, the pairs and the names to delete.
  void AppendTo(std::vector<std::string_view>* argv, std::string* count) const {
    *count = std::to_string(set_names.size());
    argv->push_back(*count);
    for (size_t i = 0; i < set_names.size(); ++i) {
      argv->push_back(set_names[i]);
      argv->push_back(set_values[i]);
    }
    for (const std::string& name : delete_names) argv->push_back(name);
  }
};

}  // namespace

Result<std::shared_ptr<RedisTls>> NewRedisTls(const RedisConfig& config) {
  if (!config.tls) return Status::Invalid("redis: TLS is not configured");
  // The host the first connection verifies, unless redis.tls.server_name
  // names one for all.
  std::string host = config.host;
  if (config.cluster && !config.cluster->seeds.empty()) host = config.cluster->seeds.front().host;
  if (config.sentinel && !config.sentinel->addresses.empty()) host = config.sentinel->addresses.front().host;
  return RedisTls::Create(*config.tls, host);
}

RedisStore::RedisStore(const RedisConfig& config, event_base* base, RedisMetrics* metrics,
                       std::shared_ptr<RedisTls> tls)
    : config_(config), cluster_(config.cluster.has_value()) {
  RedisEnv env;
  env.base = base;
  env.pool = &pool_;
  env.metrics = metrics;
  // Never plain where TLS is configured: a TLS that cannot be set up fails
  // each connection, with the reason.
  if (config.tls) env.tls = tls ? std::move(tls) : RedisTls::New(*config.tls);
  router_ = RedisRouter::Create(config_, env);
}

RedisStore::~RedisStore() {
  // The router's connections drop their callbacks (store.h: calls in flight
  // are dropped when the store is destroyed).
  router_.reset();
}

std::string RedisStore::RedisKey(const StoreKey& key) const {
  if (cluster_) return config_.key_prefix + "{" + key + "}";
  return config_.key_prefix + key;
}

void RedisStore::RunScript(const std::string& key, std::string_view script, RedisCommand evalsha, uint32_t flags,
                           RedisRouter::Callback cb) {
  RedisCommand again = evalsha;  // shares the bytes
  router_->Execute(key, std::move(evalsha), flags,
                   [this, key, script, again = std::move(again), flags, cb = std::move(cb)](
                       const Status& st, redisReply* r) mutable {
                     if (!st.ok() || !ErrorIs(r, "NOSCRIPT")) {
                       cb(st, r);
                       return;
                     }
                     // EVAL runs the script and caches it on that node.
                     RedisCommand eval = again.WithScript(script);
                     if (eval.empty()) {
                       cb(Unexpected(), nullptr);
                       return;
                     }
                     router_->Execute(key, std::move(eval), flags, std::move(cb));
                   });
}

// ------------------------------------------------------------ operations

void RedisStore::Load(const StoreKey& key, LoadCallback cb) {
  const std::string redis_key = RedisKey(key);
  router_->Execute(redis_key, RedisCommand::Format({"HGETALL", redis_key}), RedisRouter::kIdempotent,
                   [cb = std::move(cb)](const Status& failure, redisReply* r) {
                     Status st = failure;
                     std::optional<SessionData> data;
                     if (!st.ok()) {
                       // the router says why
                     } else if (IsErrorReply(r)) {
                       st = ErrorReplyStatus(r);
                     } else if (r->type != REDIS_REPLY_ARRAY) {
                       st = Unexpected();
                     } else if (HasLayoutField(r)) {
                       Result<SessionData> decoded = DecodeFields(r, 0);
                       if (decoded.ok()) {
                         data = std::move(*decoded);
                       } else {
                         st = decoded.status();
                       }
                     }
                     cb(st, std::move(data));
                   });
}

void RedisStore::Apply(const ApplyRequest& request, ApplyCallback cb) {
  if (!request.subject_key.empty() || request.revoke != RevokeScope::kNone) {
    ApplySubject(request, std::move(cb));
    return;
  }
  const std::string key = RedisKey(request.key);
  if (request.clear && request.sets.empty() && !request.new_key) {
    // Destroy: nothing to read, nothing to size.
    router_->Execute(key, RedisCommand::Format({"DEL", key}), RedisRouter::kIdempotent | RedisRouter::kWrite,
                     [cb = std::move(cb)](const Status& failure, redisReply* r) {
                       Status st = failure;
                       if (st.ok() && IsErrorReply(r)) st = ErrorReplyStatus(r);
                       cb(st, ApplyResult{});
                     });
    return;
  }
  if (request.new_key && cluster_ && *request.new_key != request.key) {
    ApplyRekeyInTwoSteps(request, std::move(cb));
    return;
  }
  if (request.loaded && request.must_exist && !request.clear && !request.new_key && !request.want_data) {
    ApplyFast(request, key, std::move(cb));
    return;
  }
  ApplyScript(request, key, request.new_key ? RedisKey(*request.new_key) : key, std::move(cb));
}

// The size of one member in the running size s.
static int64_t MemberSize(size_t name, size_t value) { return static_cast<int64_t>(name + value + 2); }

void RedisStore::ApplyFast(const ApplyRequest& request, const std::string& key, ApplyCallback cb) {
  auto batch = std::make_shared<ScriptBatch>(request);
  // The presumed state: the session as this request loaded it.
  int64_t loaded_s = 0;
  std::unordered_map<std::string_view, size_t> touched;  // our names -> presumed old value length (npos: absent)
  for (const std::string& n : batch->set_names) touched.emplace(n, std::string::npos);
  for (const std::string& n : batch->delete_names) touched.emplace(n, std::string::npos);
  const bool parsed = ForEachSessionMember(*request.loaded, [&](std::string_view name, std::string_view value) {
    loaded_s += MemberSize(name.size(), value.size());
    auto it = touched.find(name);
    if (it != touched.end()) it->second = value.size();
  });
  int64_t delta = 0;
  for (size_t i = 0; i < batch->set_names.size(); ++i) {
    delta += MemberSize(batch->set_names[i].size(), batch->set_values[i].size());
  }
  for (const auto& [name, old] : touched) {
    if (old != std::string::npos) delta -= MemberSize(name.size(), old);
  }
  const int64_t after = loaded_s + delta;
  if (!parsed || (after > 0 ? after + 1 : 2) > static_cast<int64_t>(request.max_bytes)) {
    // Unreadable, or over the limit as loaded: the script decides exactly
    // (the session may have shrunk since).
    ApplyScript(request, key, key, std::move(cb));
    return;
  }
  // One transaction: read what the check needs, write, count. Its reply
  // tells whether the presumption held.
  std::vector<std::string_view> hmget = {"HMGET", key, "v", "s"};
  for (const std::string& n : batch->set_names) hmget.push_back(n);
  for (const std::string& n : batch->delete_names) hmget.push_back(n);
  std::vector<RedisCommand> commands;
  commands.push_back(RedisCommand::Format(hmget));
  if (!batch->delete_names.empty()) {
    std::vector<std::string_view> hdel = {"HDEL", key};
    for (const std::string& n : batch->delete_names) hdel.push_back(n);
    commands.push_back(RedisCommand::Format(hdel));
  }
  // The metadata rides in the HSET (a command of its own only for a batch
  // that sets nothing).
  const std::string meta = request.meta ? MetaJson(*request.meta) : std::string();
  if (!batch->set_names.empty() || request.meta) {
    std::vector<std::string_view> hset = {"HSET", key};
    for (size_t i = 0; i < batch->set_names.size(); ++i) {
      hset.push_back(batch->set_names[i]);
      hset.push_back(batch->set_values[i]);
    }
    if (request.meta) {
      hset.push_back("m");
      hset.push_back(meta);
    }
    commands.push_back(RedisCommand::Format(hset));
  }
  commands.push_back(RedisCommand::Format({"HINCRBY", key, "s", std::to_string(delta)}));
  if (!request.keeps_expiry) {
    commands.push_back(RedisCommand::Format({"PEXPIRE", key, std::to_string(request.ttl.count())}));
  }
  // Presumed old lengths in HMGET order (after v and s).
  std::vector<size_t> presumed;
  presumed.reserve(touched.size());
  for (const std::string& n : batch->set_names) presumed.push_back(touched[n]);
  for (const std::string& n : batch->delete_names) presumed.push_back(touched[n]);
  ApplyRequest fallback = request;  // for the script, should the transaction not run
  fallback.loaded.reset();
  router_->Execute(
      key, RedisCommand::Transaction(commands), RedisRouter::kIdempotent | RedisRouter::kWrite,
      [this, key, batch, presumed = std::move(presumed), loaded_s, fallback = std::move(fallback),
       cb = std::move(cb)](const Status& failure, redisReply* r) mutable {
        if (!failure.ok()) {
          cb(failure, ApplyResult{});
          return;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_ARRAY ||
            r->element[0]->elements != presumed.size() + 2) {
          // EXECABORT (a redirect, a demoted master: the script's route
          // follows it) or anything unexpected: nothing ran; the script
          // does it all.
          ApplyScript(fallback, key, key, std::move(cb));
          return;
        }
        const redisReply* got = r->element[0];
        if (got->element[0]->type == REDIS_REPLY_NIL) {
          // Gone before we wrote (Destroy, Regenerate, expiry): our write
          // made a fragment without v, invisible to Load; delete it.
          router_->Execute(key, RedisCommand::Format({"DEL", key}), RedisRouter::kIdempotent,
                           [](const Status&, redisReply*) {});
          cb(Status::OK(), ApplyResult{});
          return;
        }
        bool held = IsStringReply(got->element[1]) &&
                    std::string_view(got->element[1]->str, got->element[1]->len) == std::to_string(loaded_s);
        for (size_t i = 0; held && i < presumed.size(); ++i) {
          const redisReply* old = got->element[2 + i];
          held = presumed[i] == std::string::npos ? old->type == REDIS_REPLY_NIL
                                                  : IsStringReply(old) && old->len == presumed[i];
        }
        ApplyResult result;
        result.exists = true;
        if (held) {
          cb(Status::OK(), result);  // the size checked before writing was exact
          return;
        }
        // A concurrent write changed the session since it was loaded:
        // check the size now, exactly, and undo ours if together they are
        // over the limit.
        std::vector<std::string> args;
        std::vector<std::string_view> argv = {"EVALSHA", VerifySha(), "1", key};
        const std::string max = std::to_string(fallback.max_bytes);
        argv.push_back(max);
        args.reserve(presumed.size());
        for (size_t i = 0; i < presumed.size(); ++i) {
          const redisReply* old = got->element[2 + i];
          const bool is_set = i < batch->set_names.size();
          argv.push_back(is_set ? batch->set_names[i] : batch->delete_names[i - batch->set_names.size()]);
          argv.push_back(is_set ? batch->set_values[i] : std::string_view());
          argv.push_back(IsStringReply(old) ? std::string_view(old->str, old->len) : std::string_view());
        }
        const uint64_t max_bytes = fallback.max_bytes;
        RunScript(key, kVerifyScript, RedisCommand::Format(argv), RedisRouter::kIdempotent | RedisRouter::kWrite,
                  [cb = std::move(cb), max_bytes](const Status& st, redisReply* v) {
                    ApplyResult verified;
                    if (!st.ok()) {
                      cb(st, verified);
                    } else if (IsErrorReply(v)) {
                      cb(ScriptErrorStatus(v, max_bytes), verified);
                    } else if (v->type != REDIS_REPLY_INTEGER) {
                      cb(Unexpected(), verified);
                    } else {
                      verified.exists = v->integer == 1;
                      cb(Status::OK(), verified);
                    }
                  });
      });
}

void RedisStore::ApplyScript(const ApplyRequest& request, const std::string& key, const std::string& target,
                             ApplyCallback cb) {
  const ScriptBatch batch(request);
  std::string flags;
  if (request.must_exist) flags += 'm';
  if (request.clear) flags += 'c';
  if (request.want_data) flags += 'd';
  const std::string ttl = std::to_string(request.ttl.count());
  const std::string max = std::to_string(request.max_bytes);
  std::string count;
  const std::string meta = request.meta ? MetaJson(*request.meta) : std::string();
  std::vector<std::string_view> argv = {"EVALSHA", ApplySha(), "2", key, target, ttl, max, flags, meta};
  argv.reserve(argv.size() + 1 + 2 * batch.set_names.size() + batch.delete_names.size());
  batch.AppendTo(&argv, &count);
  // A re-key is not idempotent: sent twice, the second finds the old key
  // gone. Everything else writes the same result again.
  const uint32_t route = RedisRouter::kWrite | (target == key ? RedisRouter::kIdempotent : 0);
  const uint64_t max_bytes = request.max_bytes;
  RunScript(key, kApplyScript, RedisCommand::Format(argv), route,
            [cb = std::move(cb), max_bytes](const Status& failure, redisReply* r) {
              Status st = failure;
              ApplyResult result;
              if (!st.ok()) {
                // the router says why
              } else if (IsErrorReply(r)) {
                st = ScriptErrorStatus(r, max_bytes);
              } else if (r->type == REDIS_REPLY_INTEGER) {
                result.exists = r->integer == 1;
              } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                         r->element[0]->type == REDIS_REPLY_INTEGER) {
                result.exists = r->element[0]->integer == 1;
                Result<SessionData> decoded = DecodeFields(r, 1);
                if (decoded.ok()) {
                  result.data = std::move(*decoded);
                } else {
                  st = decoded.status();
                }
              } else {
                st = Unexpected();
              }
              cb(st, std::move(result));
            });
}

void RedisStore::ApplyRekeyInTwoSteps(const ApplyRequest& request, ApplyCallback cb) {
  const std::string key = RedisKey(request.key);
  const ScriptBatch batch(request);
  std::string flags;
  if (request.must_exist) flags += 'm';
  if (request.clear) flags += 'c';
  const std::string max = std::to_string(request.max_bytes);
  std::string count;
  std::vector<std::string_view> argv = {"EVALSHA", TakeSha(), "1", key, max, flags};
  batch.AppendTo(&argv, &count);
  // The second step: the session as the first returned it, under the new key.
  ApplyRequest put;
  put.key = *request.new_key;
  put.clear = true;
  put.ttl = request.ttl;
  put.max_bytes = request.max_bytes;
  put.want_data = request.want_data;
  put.meta = request.meta;
  const uint64_t max_bytes = request.max_bytes;
  RunScript(key, kTakeScript, RedisCommand::Format(argv), RedisRouter::kWrite,
            [this, put = std::move(put), cb = std::move(cb), max_bytes](const Status& failure,
                                                                         redisReply* r) mutable {
              Status outcome;
              std::optional<SessionData> fields = TakenFields(failure, r, max_bytes, &outcome);
              if (!fields) {
                cb(outcome, ApplyResult{});
                return;
              }
              for (auto& [name, value] : *fields) put.sets[name] = std::move(value);
              if (!put.meta) {  // the session keeps its metadata
                if (std::optional<std::string> m = BookkeepingField(r, 1, "m")) put.meta = ParseMetaJson(*m);
              }
              const std::string target = RedisKey(put.key);
              ApplyScript(put, target, target, [cb = std::move(cb)](Status st, ApplyResult result) {
                if (!st.ok()) {
                  LOG_WARN("redis: a session moved to a new key was lost between the two steps of the move: %s",
                           st.message().c_str());
                }
                cb(st, std::move(result));
              });
            });
}

void RedisStore::Touch(const StoreKey& key, std::chrono::milliseconds ttl, DoneCallback cb) {
  const std::string redis_key = RedisKey(key);
  router_->Execute(redis_key, RedisCommand::Format({"PEXPIRE", redis_key, std::to_string(ttl.count())}),
                   RedisRouter::kIdempotent, [cb = std::move(cb)](const Status& failure, redisReply* r) {
                     Status st = failure;
                     if (st.ok() && IsErrorReply(r)) st = ErrorReplyStatus(r);
                     cb(st);
                   });
}

void RedisStore::Ping(DoneCallback cb) { router_->PingAll(std::move(cb)); }

// ------------------------------------------------------------ subjects

namespace {

// An Apply with a subject_key (see redis_store.h). KEYS[1] is the session,
// KEYS[2] where it ends up (KEYS[1] unless re-keyed, which only one Redis
// does in here). ARGV[1] ttl ms, ARGV[2] max bytes, ARGV[3] flags (c: clear
// first, D: delete the session (Destroy), m: must exist, d: return the
// data, x: the session only: a cluster, whose index keys sessiond updates
// itself), ARGV[4] the subject key as a field name, ARGV[5] the metadata
// ("" keeps it), ARGV[6] the creation time for the index (0 keeps the
// index's), ARGV[7] the public id, ARGV[8] revoke (0 none, 1 others, 2
// all), ARGV[9] the per-subject limit (0 none), ARGV[10] the key prefix,
// ARGV[11] n, then n names to delete, then name/value pairs to set.
// The result is computed and sized before the first write, so TOOLARGE
// leaves everything as it was. Returns {exists, subject, old subject, old
// public id, public id, r, then r store key/public id pairs revoked, then
// (flag d) the data's name/value pairs}; the old ones are those the
// session had before (empty when nothing was changed).
constexpr char kSubjectApplyScript[] = R"lua(
local k, dst, flags = KEYS[1], KEYS[2], ARGV[3]
local function has(c) return string.find(flags, c, 1, true) ~= nil end
local only = has('x')
local ndel = tonumber(ARGV[11])
local first = 12
local prefix = ARGV[10]
local ttl = tonumber(ARGV[1])
local B = 4000
local revoked = {}
local new_pid = false
local function member_of(key) return string.sub(key, #prefix + 1) end
local function subject_key(s) return prefix .. 'subject:' .. s end
local function unpid(pid, member)
  if pid and pid ~= '' and redis.call('GET', prefix .. 'pid:' .. pid) == member then
    redis.call('DEL', prefix .. 'pid:' .. pid)
  end
end
local function revoke_one(member, subject)
  local sk = prefix .. member
  if redis.call('HGET', sk, 'u') == subject then
    local pid = redis.call('HGET', sk, 'p') or ''
    redis.call('DEL', sk)
    unpid(pid, member)
    revoked[#revoked + 1] = member
    revoked[#revoked + 1] = pid
  end
  redis.call('ZREM', subject_key(subject), member)
end
local function revoke_subject(subject, keep)
  for _, m in ipairs(redis.call('ZRANGE', subject_key(subject), 0, -1)) do
    if m ~= keep then revoke_one(m, subject) end
  end
end
local function subject_of(v)
  if not v then return nil end
  if string.byte(v, 1) == 34 then
    local ok, s = pcall(cjson.decode, v)
    if not ok or type(s) ~= 'string' or #s == 0 or #s > 256 or string.find(s, '[%c\127]') then return nil end
    return s
  end
  if #v <= 20 and string.find(v, '^%-?%d+$') then return v end
  return nil
end
local old_subject = redis.call('HGET', k, 'u')
local old_pid = redis.call('HGET', k, 'p')
local function reply(exists, subject, changed, fields)
  local out = {exists, subject or '', '', '', new_pid or '', #revoked / 2}
  if changed then
    out[3] = old_subject or ''
    out[4] = old_pid or ''
  end
  for _, v in ipairs(revoked) do out[#out + 1] = v end
  if fields and has('d') then for _, v in ipairs(fields) do out[#out + 1] = v end end
  return out
end

if has('D') then
  redis.call('DEL', k)
  if old_subject and not only then
    redis.call('ZREM', subject_key(old_subject), member_of(k))
    unpid(old_pid, member_of(k))
    if ARGV[8] ~= '0' then revoke_subject(old_subject, nil) end
  end
  return reply(0, nil, true, nil)
end
if has('m') and redis.call('HEXISTS', k, 'v') == 0 then return reply(0, nil, false, nil) end
local view = {}
local old_meta = false
if not has('c') then
  local cur = redis.call('HGETALL', k)
  for i = 1, #cur, 2 do
    local f = cur[i]
    if string.byte(f, 1) == 34 then view[f] = cur[i + 1] elseif f == 'm' then old_meta = cur[i + 1] end
  end
end
for i = first, first - 1 + ndel do view[ARGV[i]] = nil end
for i = first + ndel, #ARGV, 2 do view[ARGV[i]] = ARGV[i + 1] end
local s, out = 0, {}
for f, v in pairs(view) do
  s = s + #f + #v + 2
  out[#out + 1] = f
  out[#out + 1] = v
end
local size = 2
if s > 0 then size = s + 1 end
if size > tonumber(ARGV[2]) then return redis.error_reply(string.format('TOOLARGE %d', size)) end
local new_subject = nil
if ARGV[4] ~= '' then new_subject = subject_of(view[ARGV[4]]) end
if new_subject then
  if ARGV[7] ~= '' then new_pid = ARGV[7] elseif not has('c') and old_pid then new_pid = old_pid end
end
local old_score = nil
if old_subject and not only then old_score = redis.call('ZSCORE', subject_key(old_subject), member_of(k)) end
local meta = old_meta
if ARGV[5] ~= '' then meta = ARGV[5] end
redis.call('DEL', k)
local head = {'v', '2', 's', s}
if meta then head[#head + 1] = 'm'; head[#head + 1] = meta end
if new_subject then head[#head + 1] = 'u'; head[#head + 1] = new_subject end
if new_pid then head[#head + 1] = 'p'; head[#head + 1] = new_pid end
redis.call('HSET', k, unpack(head))
for i = 1, #out, B do redis.call('HSET', k, unpack(out, i, math.min(#out, i + B - 1))) end
local rekey = dst ~= k
if rekey then redis.call('RENAME', k, dst) end
redis.call('PEXPIRE', dst, ttl)
local was, me = member_of(k), member_of(dst)
if not only then
  if old_subject and (old_subject ~= new_subject or rekey) then
    redis.call('ZREM', subject_key(old_subject), was)
  end
  if old_pid and (old_pid ~= new_pid or rekey or not new_subject) then unpid(old_pid, was) end
  if new_subject then
    local score = tonumber(ARGV[6])
    if score == 0 and old_score then score = tonumber(old_score) end
    local idx = subject_key(new_subject)
    redis.call('ZADD', idx, score, me)
    if redis.call('PTTL', idx) < ttl then redis.call('PEXPIRE', idx, ttl) end
    if new_pid then redis.call('SET', prefix .. 'pid:' .. new_pid, me, 'PX', ttl) end
  end
end
local exists = 1
if new_subject and ARGV[8] ~= '0' then
  if not only then revoke_subject(new_subject, me) end
  if ARGV[8] == '2' then
    redis.call('DEL', dst)
    if not only then
      redis.call('ZREM', subject_key(new_subject), me)
      unpid(new_pid, me)
    end
    exists = 0
  end
end
local max = tonumber(ARGV[9])
if not only and exists == 1 and new_subject and max > 0 and new_subject ~= old_subject then
  local live = {}
  local idx = subject_key(new_subject)
  for _, m in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
    if redis.call('HGET', prefix .. m, 'u') == new_subject then
      live[#live + 1] = m
    else
      redis.call('ZREM', idx, m)
    end
  end
  local excess = #live - max
  for _, m in ipairs(live) do
    if excess <= 0 then break end
    if m ~= me then
      revoke_one(m, new_subject)
      excess = excess - 1
    end
  end
end
return reply(exists, new_subject, true, out)
)lua";

// The other subject calls on one Redis, one mode each (ARGV[1]); ARGV[2]
// is the key prefix.
//   touch KEYS[1]  ttl, meta   PEXPIRE and the new metadata if it exists, and
//                              the index keys' TTL: {1} or {0}
//   list           subject     the live members, pruning stale ones: {key, meta, public id, ...}
//   revoke         subject     deletes every member: {key, public id, ...}
//   revoke_pid     public id   deletes the indexed session: {key, public id} or {}
constexpr char kSubjectScript[] = R"lua(
local prefix = ARGV[2]
local function unpid(pid, member)
  if pid and pid ~= '' and redis.call('GET', prefix .. 'pid:' .. pid) == member then
    redis.call('DEL', prefix .. 'pid:' .. pid)
  end
end
if ARGV[1] == 'touch' then
  if redis.call('HEXISTS', KEYS[1], 'v') == 0 then return {0} end
  local ttl = tonumber(ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('HSET', KEYS[1], 'm', ARGV[4])
  local s = redis.call('HGET', KEYS[1], 'u')
  local pid = redis.call('HGET', KEYS[1], 'p')
  local me = string.sub(KEYS[1], #prefix + 1)
  if s then
    local idx = prefix .. 'subject:' .. s
    if redis.call('PTTL', idx) < ttl then redis.call('PEXPIRE', idx, ttl) end
    if pid and redis.call('GET', prefix .. 'pid:' .. pid) == me then
      redis.call('PEXPIRE', prefix .. 'pid:' .. pid, ttl)
    end
  end
  return {1}
end
if ARGV[1] == 'revoke_pid' then
  local pid = ARGV[3]
  local m = redis.call('GET', prefix .. 'pid:' .. pid)
  if not m then return {} end
  local k = prefix .. m
  if redis.call('HGET', k, 'p') ~= pid then return {} end
  local s = redis.call('HGET', k, 'u')
  redis.call('DEL', k)
  unpid(pid, m)
  if s then redis.call('ZREM', prefix .. 'subject:' .. s, m) end
  return {m, pid}
end
local subject = ARGV[3]
local idx = prefix .. 'subject:' .. subject
local out = {}
for _, m in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
  local k = prefix .. m
  if redis.call('HGET', k, 'u') ~= subject then
    redis.call('ZREM', idx, m)
  elseif ARGV[1] == 'list' then
    out[#out + 1] = m
    out[#out + 1] = redis.call('HGET', k, 'm') or ''
    out[#out + 1] = redis.call('HGET', k, 'p') or ''
  else
    local pid = redis.call('HGET', k, 'p') or ''
    redis.call('DEL', k)
    unpid(pid, m)
    redis.call('ZREM', idx, m)
    out[#out + 1] = m
    out[#out + 1] = pid
  end
end
return out
)lua";

// Cluster: the index steps, one key each (redis_store.h).
//
// KEYS[1] a subject's index. ARGV[1] member, ARGV[2] score (0: the score
// the member, or else ARGV[4], has in this index, or 0), ARGV[3] ttl ms,
// ARGV[4] the member it replaces ("" none: a re-key within one subject).
// Adds the member, takes out the replaced one, and gives the index at
// least ttl. Returns 1.
constexpr char kIndexAddScript[] = R"lua(
local idx, m = KEYS[1], ARGV[1]
local score = tonumber(ARGV[2])
if score == 0 then
  local old = redis.call('ZSCORE', idx, m)
  if not old and ARGV[4] ~= '' then old = redis.call('ZSCORE', idx, ARGV[4]) end
  if old then score = tonumber(old) end
end
redis.call('ZADD', idx, score, m)
if ARGV[4] ~= '' and ARGV[4] ~= m then redis.call('ZREM', idx, ARGV[4]) end
if redis.call('PTTL', idx) < tonumber(ARGV[3]) then redis.call('PEXPIRE', idx, ARGV[3]) end
return 1
)lua";

// KEYS[1] a key; deletes it when its value is ARGV[1] (a public id's key
// that still names this session). Returns 1 when deleted.
constexpr char kDeleteIfScript[] = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

// KEYS[1] a session; deletes it when its field ARGV[1] (u or p) is ARGV[2].
// Returns {1, u, p} when deleted, else {0}.
constexpr char kRevokeIfScript[] = R"lua(
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return {0} end
local u = redis.call('HGET', KEYS[1], 'u') or ''
local p = redis.call('HGET', KEYS[1], 'p') or ''
redis.call('DEL', KEYS[1])
return {1, u, p}
)lua";

// KEYS[1] a session; ARGV[1] ttl ms, ARGV[2] the metadata. When it exists:
// PEXPIRE and m, returning {1, u, p} (its subject and public id, "" when
// not indexed); else {0}.
constexpr char kTouchScript[] = R"lua(
if redis.call('HEXISTS', KEYS[1], 'v') == 0 then return {0} end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], 'm', ARGV[2])
return {1, redis.call('HGET', KEYS[1], 'u') or '', redis.call('HGET', KEYS[1], 'p') or ''}
)lua";

// The SHA1 of each script, computed once.
template <const char* kScript>
const std::string& ShaOf() {
  static const std::string sha = Sha1Hex(kScript);
  return sha;
}

const char* RevokeArg(RevokeScope scope) {
  switch (scope) {
    case RevokeScope::kOthers: return "1";
    case RevokeScope::kAll: return "2";
    case RevokeScope::kNone: break;
  }
  return "0";
}

// Waits for several commands: `done` runs once, after the last, with the
// first failure (or OK). Start with Add() per command and one Release()
// after the last is sent.
class Join {
 public:
  explicit Join(std::function<void(Status)> done) : done_(std::move(done)) {}
  void Add() { ++pending_; }
  void Finish(const Status& st) {
    if (!st.ok() && first_error_.ok()) first_error_ = st;
    if (--pending_ == 0) done_(first_error_);
  }
  void Release() { Finish(Status::OK()); }

 private:
  size_t pending_ = 1;
  Status first_error_ = Status::OK();
  std::function<void(Status)> done_;
};

// The failure a plain command's reply means, if any.
Status ReplyStatus(const Status& failure, const redisReply* r) {
  if (!failure.ok()) return failure;
  if (IsErrorReply(r)) return ErrorReplyStatus(r);
  return Status::OK();
}

}  // namespace

// What a cluster's index steps must do after the session's own step.
struct RedisStore::IndexChange {
  bool exists = false;     // the session exists after the step
  bool destroyed = false;  // the batch deleted it (Destroy)
  std::string old_subject, old_member, old_pid;
  std::string new_subject, new_member, new_pid;
  std::string score = "0";  // creation time for the index ("0": keep the index's)
  int64_t ttl_ms = 0;
  RevokeScope revoke = RevokeScope::kNone;
  uint64_t max_per_subject = 0;
};

struct RedisStore::Member {
  std::string key;  // the store key
  SessionMeta meta;
};

void RedisStore::SubjectCall(std::vector<std::string_view> keys_and_args, RedisRouter::Callback cb) {
  std::vector<std::string_view> argv = {"EVALSHA", ShaOf<kSubjectScript>()};
  argv.insert(argv.end(), keys_and_args.begin(), keys_and_args.end());
  // Every mode writes the same result when sent twice.
  RunScript(keys_and_args.size() > 1 && keys_and_args[0] == "1" ? std::string(keys_and_args[1]) : std::string(),
            kSubjectScript, RedisCommand::Format(argv), RedisRouter::kIdempotent | RedisRouter::kWrite,
            std::move(cb));
}

void RedisStore::ApplySubject(const ApplyRequest& request, ApplyCallback cb) {
  if (cluster_ && request.new_key && *request.new_key != request.key) {
    ApplySubjectRekeyOnCluster(request, std::move(cb));
    return;
  }
  const std::string key = RedisKey(request.key);
  RunSubjectScript(request, key, request.new_key ? RedisKey(*request.new_key) : key, cluster_, nullptr,
                   std::move(cb));
}

void RedisStore::RunSubjectScript(const ApplyRequest& request, const std::string& key, const std::string& target,
                                  bool session_only, std::shared_ptr<const IndexChange> taken, ApplyCallback cb) {
  const bool destroy = request.clear && request.sets.empty() && !request.new_key;
  std::string flags;
  if (request.clear) flags += 'c';
  if (destroy) flags += 'D';
  if (request.must_exist) flags += 'm';
  if (request.want_data) flags += 'd';
  if (session_only) flags += 'x';
  std::string subject_field;
  if (!request.subject_key.empty()) AppendJsonString(&subject_field, request.subject_key);
  const std::string ttl = std::to_string(request.ttl.count());
  const std::string max = std::to_string(request.max_bytes);
  const std::string meta = request.meta ? MetaJson(*request.meta) : std::string();
  const std::string score = std::to_string(request.meta ? request.meta->created_at : 0);
  const std::string limit = std::to_string(request.max_per_subject);
  const ScriptBatch batch(request);
  const std::string ndel = std::to_string(batch.delete_names.size());
  std::vector<std::string_view> argv = {"EVALSHA",
                                        ShaOf<kSubjectApplyScript>(),
                                        "2",
                                        key,
                                        target,
                                        ttl,
                                        max,
                                        flags,
                                        subject_field,
                                        meta,
                                        score,
                                        request.meta ? std::string_view(request.meta->public_id) : std::string_view(),
                                        RevokeArg(request.revoke),
                                        limit,
                                        config_.key_prefix,
                                        ndel};
  for (const std::string& name : batch.delete_names) argv.push_back(name);
  for (size_t i = 0; i < batch.set_names.size(); ++i) {
    argv.push_back(batch.set_names[i]);
    argv.push_back(batch.set_values[i]);
  }
  const uint32_t route = RedisRouter::kWrite | (target == key ? RedisRouter::kIdempotent : 0);
  auto change = std::make_shared<IndexChange>();
  change->destroyed = destroy;
  change->old_member = taken ? taken->old_member : request.key;
  change->new_member = request.new_key ? *request.new_key : request.key;
  change->score = score;
  change->ttl_ms = request.ttl.count();
  change->revoke = request.revoke;
  change->max_per_subject = request.max_per_subject;
  const uint64_t max_bytes = request.max_bytes;
  std::optional<SessionMeta> written = request.meta;
  RunScript(key, kSubjectApplyScript, RedisCommand::Format(argv), route,
            [this, cb = std::move(cb), max_bytes, change, taken, session_only, written = std::move(written)](
                const Status& failure, redisReply* r) mutable {
              if (!failure.ok()) {
                cb(failure, ApplyResult{});
                return;
              }
              if (IsErrorReply(r)) {
                cb(ScriptErrorStatus(r, max_bytes), ApplyResult{});
                return;
              }
              if (r->type != REDIS_REPLY_ARRAY || r->elements < 6 || r->element[0]->type != REDIS_REPLY_INTEGER ||
                  r->element[5]->type != REDIS_REPLY_INTEGER || r->element[5]->integer < 0 ||
                  r->elements < 6 + 2 * static_cast<size_t>(r->element[5]->integer)) {
                cb(Unexpected(), ApplyResult{});
                return;
              }
              for (size_t i = 1; i < 5; ++i) {
                if (!IsStringReply(r->element[i])) {
                  cb(Unexpected(), ApplyResult{});
                  return;
                }
              }
              ApplyResult result;
              result.exists = r->element[0]->integer == 1;
              const size_t n = static_cast<size_t>(r->element[5]->integer);
              for (size_t i = 0; i < n; ++i) {
                const redisReply* k = r->element[6 + 2 * i];
                const redisReply* p = r->element[7 + 2 * i];
                if (!IsStringReply(k) || !IsStringReply(p)) {
                  cb(Unexpected(), ApplyResult{});
                  return;
                }
                result.revoked.push_back(RevokedSession{std::string(Text(k)), std::string(Text(p))});
              }
              Result<SessionData> decoded = DecodeFields(r, 6 + 2 * n);
              if (!decoded.ok()) {
                cb(decoded.status(), ApplyResult{});
                return;
              }
              result.data = std::move(*decoded);
              const std::string subject(Text(r->element[1]));
              if (result.exists) {
                if (written) result.meta = *written;
                result.meta.subject = subject;
                result.meta.public_id = std::string(Text(r->element[4]));
              }
              if (!session_only) {
                cb(Status::OK(), std::move(result));
                return;
              }
              // A cluster: the index keys are sessiond's to update now.
              change->exists = result.exists;
              change->new_subject = subject;
              change->new_pid = std::string(Text(r->element[4]));
              if (taken) {
                change->old_subject = taken->old_subject;
                change->old_pid = taken->old_pid;
              } else {
                change->old_subject = std::string(Text(r->element[2]));
                change->old_pid = std::string(Text(r->element[3]));
              }
              UpdateIndex(change, [cb = std::move(cb), result = std::move(result)](
                                      Status st, std::vector<RevokedSession> revoked) mutable {
                if (!st.ok()) {
                  cb(st, ApplyResult{});
                  return;
                }
                result.revoked.insert(result.revoked.end(), revoked.begin(), revoked.end());
                cb(Status::OK(), std::move(result));
              });
            });
}

void RedisStore::ApplySubjectRekeyOnCluster(const ApplyRequest& request, ApplyCallback cb) {
  // Two steps as in ApplyRekeyInTwoSteps: the session is taken from its
  // old key (with its bookkeeping), then written under the new one by the
  // subject script; the index steps then move the member.
  const std::string key = RedisKey(request.key);
  const ScriptBatch batch(request);
  std::string flags;
  if (request.must_exist) flags += 'm';
  if (request.clear) flags += 'c';
  const std::string max = std::to_string(request.max_bytes);
  std::string count;
  std::vector<std::string_view> argv = {"EVALSHA", TakeSha(), "1", key, max, flags};
  batch.AppendTo(&argv, &count);
  ApplyRequest put = request;
  put.key = *request.new_key;
  put.new_key.reset();
  put.clear = true;
  put.must_exist = false;
  put.sets.clear();
  put.deletes.clear();
  put.loaded.reset();
  const uint64_t max_bytes = request.max_bytes;
  const StoreKey old_member = request.key;
  RunScript(key, kTakeScript, RedisCommand::Format(argv), RedisRouter::kWrite,
            [this, put = std::move(put), cb = std::move(cb), max_bytes, old_member](const Status& failure,
                                                                                     redisReply* r) mutable {
              Status outcome;
              std::optional<SessionData> fields = TakenFields(failure, r, max_bytes, &outcome);
              if (!fields) {
                cb(outcome, ApplyResult{});
                return;
              }
              for (auto& [name, value] : *fields) put.sets[name] = std::move(value);
              auto taken = std::make_shared<IndexChange>();
              taken->old_member = old_member;
              taken->old_subject = BookkeepingField(r, 1, "u").value_or("");
              taken->old_pid = BookkeepingField(r, 1, "p").value_or("");
              if (!put.meta) {
                if (std::optional<std::string> m = BookkeepingField(r, 1, "m")) put.meta = ParseMetaJson(*m);
              }
              if (put.meta && put.meta->public_id.empty()) put.meta->public_id = taken->old_pid;
              const std::string target = RedisKey(put.key);
              RunSubjectScript(put, target, target, true, taken, [cb = std::move(cb)](Status st, ApplyResult result) {
                if (!st.ok()) {
                  LOG_WARN("redis: a session moved to a new key was lost between the two steps of the move: %s",
                           st.message().c_str());
                }
                cb(st, std::move(result));
              });
            });
}

void RedisStore::UpdateIndex(std::shared_ptr<IndexChange> c, RevokedCallback done) {
  // Step 1: the member leaves its old subject and public id, and joins the
  // new ones, all at once.
  auto join = std::make_shared<Join>([this, c, done = std::move(done)](Status st) mutable {
    if (!st.ok()) {
      done(st, {});
      return;
    }
    // Step 2: X-Session-Revoke; step 3: the per-subject limit.
    auto limit = [this, c, done = std::move(done)](Status st, std::vector<RevokedSession> revoked) mutable {
      if (!st.ok() || !c->exists || c->max_per_subject == 0 || c->new_subject.empty() ||
          c->new_subject == c->old_subject) {
        done(st, std::move(revoked));
        return;
      }
      EnforceLimit(c->new_subject, c->new_member, c->max_per_subject,
                   [done = std::move(done), revoked = std::move(revoked)](
                       Status st, std::vector<RevokedSession> more) mutable {
                     revoked.insert(revoked.end(), more.begin(), more.end());
                     done(st, std::move(revoked));
                   });
    };
    const std::string& scope = c->destroyed ? c->old_subject : c->new_subject;
    if (c->revoke == RevokeScope::kNone || scope.empty()) {
      limit(Status::OK(), {});
      return;
    }
    RevokeMembers(scope, c->exists ? c->new_member : std::string(), std::move(limit));
  });
  const bool moved = c->old_member != c->new_member;
  const uint32_t flags = RedisRouter::kIdempotent | RedisRouter::kWrite;
  auto finish = [join](const Status& failure, redisReply* r) { join->Finish(ReplyStatus(failure, r)); };
  if (!c->old_subject.empty() && (!c->exists || c->old_subject != c->new_subject)) {
    const std::string idx = IndexKey(c->old_subject);
    join->Add();
    router_->Execute(idx, RedisCommand::Format({"ZREM", idx, c->old_member}), flags, finish);
  }
  if (!c->old_pid.empty() && (!c->exists || c->new_subject.empty() || c->old_pid != c->new_pid || moved)) {
    const std::string pid = PidKey(c->old_pid);
    join->Add();
    RunScript(pid, kDeleteIfScript,
              RedisCommand::Format({"EVALSHA", ShaOf<kDeleteIfScript>(), "1", pid, c->old_member}), flags, finish);
  }
  if (c->exists && !c->new_subject.empty()) {
    const std::string idx = IndexKey(c->new_subject);
    const std::string ttl = std::to_string(c->ttl_ms);
    const std::string replaced = c->old_subject == c->new_subject && moved ? c->old_member : std::string();
    join->Add();
    RunScript(idx, kIndexAddScript,
              RedisCommand::Format({"EVALSHA", ShaOf<kIndexAddScript>(), "1", idx, c->new_member, c->score, ttl,
                                    replaced}),
              flags, finish);
    if (!c->new_pid.empty()) {
      const std::string pid = PidKey(c->new_pid);
      join->Add();
      router_->Execute(pid, RedisCommand::Format({"SET", pid, c->new_member, "PX", ttl}), flags, finish);
    }
  }
  join->Release();
}

void RedisStore::RevokeMembers(const std::string& subject, const std::string& keep, RevokedCallback done) {
  const std::string idx = IndexKey(subject);
  router_->Execute(
      idx, RedisCommand::Format({"ZRANGE", idx, "0", "-1"}), RedisRouter::kIdempotent,
      [this, subject, keep, idx, done = std::move(done)](const Status& failure, redisReply* r) mutable {
        Status st = ReplyStatus(failure, r);
        if (st.ok() && r->type != REDIS_REPLY_ARRAY) st = Unexpected();
        if (!st.ok()) {
          done(st, {});
          return;
        }
        auto revoked = std::make_shared<std::vector<RevokedSession>>();
        auto members = std::make_shared<std::vector<std::string>>();
        for (size_t i = 0; i < r->elements; ++i) {
          if (IsStringReply(r->element[i]) && Text(r->element[i]) != keep) {
            members->emplace_back(Text(r->element[i]));
          }
        }
        // Then: the members leave the index, the revoked ones' public ids go.
        auto join = std::make_shared<Join>([this, idx, members, revoked, done = std::move(done)](Status st) mutable {
          if (!st.ok() || members->empty()) {
            done(st, st.ok() ? std::move(*revoked) : std::vector<RevokedSession>{});
            return;
          }
          auto tidy = std::make_shared<Join>([revoked, done = std::move(done)](Status st) mutable {
            done(st, st.ok() ? std::move(*revoked) : std::vector<RevokedSession>{});
          });
          const uint32_t flags = RedisRouter::kIdempotent | RedisRouter::kWrite;
          auto finish = [tidy](const Status& failure, redisReply* r) { tidy->Finish(ReplyStatus(failure, r)); };
          std::vector<std::string_view> zrem = {"ZREM", idx};
          for (const std::string& m : *members) zrem.push_back(m);
          tidy->Add();
          router_->Execute(idx, RedisCommand::Format(zrem), flags, finish);
          for (const RevokedSession& gone : *revoked) {
            if (gone.public_id.empty()) continue;
            const std::string pid = PidKey(gone.public_id);
            tidy->Add();
            RunScript(pid, kDeleteIfScript,
                      RedisCommand::Format({"EVALSHA", ShaOf<kDeleteIfScript>(), "1", pid, gone.key}), flags, finish);
          }
          tidy->Release();
        });
        for (const std::string& m : *members) {
          const std::string key = RedisKey(m);
          join->Add();
          RunScript(key, kRevokeIfScript, RedisCommand::Format({"EVALSHA", ShaOf<kRevokeIfScript>(), "1", key, "u", subject}),
                    RedisRouter::kIdempotent | RedisRouter::kWrite,
                    [join, revoked, m](const Status& failure, redisReply* r) {
                      Status st = ReplyStatus(failure, r);
                      if (st.ok() && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                                      r->element[0]->type != REDIS_REPLY_INTEGER)) {
                        st = Unexpected();
                      }
                      if (st.ok() && r->element[0]->integer == 1 && r->elements == 3) {
                        revoked->push_back(RevokedSession{m, std::string(Text(r->element[2]))});
                      }
                      join->Finish(st);
                    });
        }
        join->Release();
      });
}

void RedisStore::LiveMembers(const std::string& subject, std::function<void(Status, std::vector<Member>)> done) {
  const std::string idx = IndexKey(subject);
  router_->Execute(
      idx, RedisCommand::Format({"ZRANGE", idx, "0", "-1"}), RedisRouter::kIdempotent,
      [this, subject, idx, done = std::move(done)](const Status& failure, redisReply* r) mutable {
        Status st = ReplyStatus(failure, r);
        if (st.ok() && r->type != REDIS_REPLY_ARRAY) st = Unexpected();
        if (!st.ok()) {
          done(st, {});
          return;
        }
        const size_t n = r->elements;
        auto members = std::make_shared<std::vector<Member>>(n);
        auto live = std::make_shared<std::vector<bool>>(n, false);
        for (size_t i = 0; i < n; ++i) (*members)[i].key = std::string(Text(r->element[i]));
        auto join = std::make_shared<Join>([this, idx, members, live, done = std::move(done)](Status st) mutable {
          if (!st.ok()) {
            done(st, {});
            return;
          }
          std::vector<Member> out;
          std::vector<std::string_view> zrem = {"ZREM", idx};
          for (size_t i = 0; i < members->size(); ++i) {
            if ((*live)[i]) {
              out.push_back(std::move((*members)[i]));
            } else {
              zrem.push_back((*members)[i].key);
            }
          }
          if (zrem.size() > 2) {  // stale members go; whether that works changes no answer
            router_->Execute(idx, RedisCommand::Format(zrem), RedisRouter::kIdempotent,
                             [members](const Status&, redisReply*) {});
          }
          done(Status::OK(), std::move(out));
        });
        for (size_t i = 0; i < n; ++i) {
          const std::string key = RedisKey((*members)[i].key);
          join->Add();
          router_->Execute(key, RedisCommand::Format({"HMGET", key, "u", "m", "p"}), RedisRouter::kIdempotent,
                           [join, members, live, subject, i](const Status& failure, redisReply* r) {
                             Status st = ReplyStatus(failure, r);
                             if (st.ok() && (r->type != REDIS_REPLY_ARRAY || r->elements != 3)) st = Unexpected();
                             if (st.ok() && Text(r->element[0]) == subject && IsStringReply(r->element[0])) {
                               (*live)[i] = true;
                               Member& m = (*members)[i];
                               if (IsStringReply(r->element[1])) ReadSessionMetaText(Text(r->element[1]), &m.meta);
                               m.meta.public_id = std::string(Text(r->element[2]));
                               m.meta.subject = subject;
                             }
                             join->Finish(st);
                           });
        }
        join->Release();
      });
}

void RedisStore::EnforceLimit(const std::string& subject, const std::string& me, uint64_t max, RevokedCallback done) {
  LiveMembers(subject, [this, subject, me, max, done = std::move(done)](Status st, std::vector<Member> live) mutable {
    if (!st.ok() || live.size() <= max) {
      done(st, {});
      return;
    }
    // Oldest first (the index's order); never the session that joined.
    size_t excess = live.size() - max;
    auto revoked = std::make_shared<std::vector<RevokedSession>>();
    auto join = std::make_shared<Join>([this, subject, revoked, done = std::move(done)](Status st) mutable {
      if (!st.ok() || revoked->empty()) {
        done(st, st.ok() ? std::move(*revoked) : std::vector<RevokedSession>{});
        return;
      }
      auto tidy = std::make_shared<Join>([revoked, done = std::move(done)](Status st) mutable {
        done(st, st.ok() ? std::move(*revoked) : std::vector<RevokedSession>{});
      });
      const std::string idx = IndexKey(subject);
      const uint32_t flags = RedisRouter::kIdempotent | RedisRouter::kWrite;
      auto finish = [tidy](const Status& failure, redisReply* r) { tidy->Finish(ReplyStatus(failure, r)); };
      std::vector<std::string_view> zrem = {"ZREM", idx};
      for (const RevokedSession& gone : *revoked) zrem.push_back(gone.key);
      tidy->Add();
      router_->Execute(idx, RedisCommand::Format(zrem), flags, finish);
      for (const RevokedSession& gone : *revoked) {
        if (gone.public_id.empty()) continue;
        const std::string pid = PidKey(gone.public_id);
        tidy->Add();
        RunScript(pid, kDeleteIfScript,
                  RedisCommand::Format({"EVALSHA", ShaOf<kDeleteIfScript>(), "1", pid, gone.key}), flags, finish);
      }
      tidy->Release();
    });
    for (const Member& m : live) {
      if (excess == 0) break;
      if (m.key == me) continue;
      --excess;
      const std::string key = RedisKey(m.key);
      join->Add();
      RunScript(key, kRevokeIfScript, RedisCommand::Format({"EVALSHA", ShaOf<kRevokeIfScript>(), "1", key, "u", subject}),
                RedisRouter::kIdempotent | RedisRouter::kWrite,
                [join, revoked, member = m.key](const Status& failure, redisReply* r) {
                  Status st = ReplyStatus(failure, r);
                  if (st.ok() && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                                  r->element[0]->type != REDIS_REPLY_INTEGER)) {
                    st = Unexpected();
                  }
                  if (st.ok() && r->element[0]->integer == 1 && r->elements == 3) {
                    revoked->push_back(RevokedSession{member, std::string(Text(r->element[2]))});
                  }
                  join->Finish(st);
                });
    }
    join->Release();
  });
}

void RedisStore::LoadSession(const StoreKey& key, LoadSessionCallback cb) {
  const std::string redis_key = RedisKey(key);
  router_->Execute(redis_key, RedisCommand::Format({"HGETALL", redis_key}), RedisRouter::kIdempotent,
                   [cb = std::move(cb)](const Status& failure, redisReply* r) {
                     Status st = ReplyStatus(failure, r);
                     std::optional<StoredSession> session;
                     if (st.ok() && r->type != REDIS_REPLY_ARRAY) st = Unexpected();
                     if (st.ok() && HasLayoutField(r)) {
                       Result<SessionData> decoded = DecodeFields(r, 0);
                       if (decoded.ok()) {
                         session.emplace();
                         session->data = std::move(*decoded);
                         if (std::optional<std::string> m = BookkeepingField(r, 0, "m")) {
                           ReadSessionMetaText(*m, &session->meta);
                         }
                         session->meta.subject = BookkeepingField(r, 0, "u").value_or("");
                         session->meta.public_id = BookkeepingField(r, 0, "p").value_or("");
                       } else {
                         st = decoded.status();
                       }
                     }
                     cb(st, std::move(session));
                   });
}

void RedisStore::TouchSession(const StoreKey& key, std::chrono::milliseconds ttl, const SessionMeta& meta,
                              DoneCallback cb) {
  const std::string redis_key = RedisKey(key);
  const std::string ms = std::to_string(ttl.count());
  const std::string meta_json = MetaJson(meta);
  if (!cluster_) {
    SubjectCall({"1", redis_key, "touch", config_.key_prefix, ms, meta_json},
                [cb = std::move(cb)](const Status& failure, redisReply* r) { cb(ReplyStatus(failure, r)); });
    return;
  }
  RunScript(redis_key, kTouchScript,
            RedisCommand::Format({"EVALSHA", ShaOf<kTouchScript>(), "1", redis_key, ms, meta_json}),
            RedisRouter::kIdempotent | RedisRouter::kWrite,
            [this, key, ms, cb = std::move(cb)](const Status& failure, redisReply* r) mutable {
              Status st = ReplyStatus(failure, r);
              if (st.ok() && (r->type != REDIS_REPLY_ARRAY || r->elements < 1)) st = Unexpected();
              if (!st.ok() || r->elements != 3 || Text(r->element[1]).empty()) {
                cb(st);  // gone, or not indexed: nothing more to extend
                return;
              }
              // The index keys live at least as long as the session.
              auto join = std::make_shared<Join>(std::move(cb));
              const uint32_t flags = RedisRouter::kIdempotent | RedisRouter::kWrite;
              auto finish = [join](const Status& failure, redisReply* r) { join->Finish(ReplyStatus(failure, r)); };
              const std::string idx = IndexKey(std::string(Text(r->element[1])));
              join->Add();
              RunScript(idx, kIndexAddScript,
                        RedisCommand::Format({"EVALSHA", ShaOf<kIndexAddScript>(), "1", idx, key, "0", ms, ""}), flags,
                        finish);
              if (!Text(r->element[2]).empty()) {
                const std::string pid = PidKey(std::string(Text(r->element[2])));
                join->Add();
                router_->Execute(pid, RedisCommand::Format({"SET", pid, key, "PX", ms}), flags, finish);
              }
              join->Release();
            });
}

void RedisStore::ListSubject(const std::string& subject, ListCallback cb) {
  if (cluster_) {
    LiveMembers(subject, [cb = std::move(cb)](Status st, std::vector<Member> live) {
      std::vector<SessionListing> out;
      for (Member& m : live) out.push_back(SessionListing{std::move(m.key), std::move(m.meta)});
      cb(st, std::move(out));
    });
    return;
  }
  SubjectCall({"0", "list", config_.key_prefix, subject},
              [subject, cb = std::move(cb)](const Status& failure, redisReply* r) {
                Status st = ReplyStatus(failure, r);
                std::vector<SessionListing> out;
                if (st.ok() && (r->type != REDIS_REPLY_ARRAY || r->elements % 3 != 0)) st = Unexpected();
                if (st.ok()) {
                  for (size_t i = 0; i + 2 < r->elements; i += 3) {
                    SessionListing l;
                    l.key = std::string(Text(r->element[i]));
                    ReadSessionMetaText(Text(r->element[i + 1]), &l.meta);
                    l.meta.public_id = std::string(Text(r->element[i + 2]));
                    l.meta.subject = subject;
                    out.push_back(std::move(l));
                  }
                }
                cb(st, std::move(out));
              });
}

namespace {

// {key, public id, ...} of the standalone subject script's revocations.
Status DecodeRevoked(const redisReply* r, std::vector<RevokedSession>* out) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) return Unexpected();
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    if (!IsStringReply(r->element[i]) || !IsStringReply(r->element[i + 1])) return Unexpected();
    out->push_back(RevokedSession{std::string(Text(r->element[i])), std::string(Text(r->element[i + 1]))});
  }
  return Status::OK();
}

}  // namespace

void RedisStore::RevokeSubject(const std::string& subject, RevokeCallback cb) {
  if (cluster_) {
    RevokeMembers(subject, std::string(), std::move(cb));
    return;
  }
  SubjectCall({"0", "revoke", config_.key_prefix, subject},
              [cb = std::move(cb)](const Status& failure, redisReply* r) {
                Status st = ReplyStatus(failure, r);
                std::vector<RevokedSession> out;
                if (st.ok()) st = DecodeRevoked(r, &out);
                cb(st, std::move(out));
              });
}

void RedisStore::RevokePublicId(const std::string& public_id, RevokeCallback cb) {
  if (!cluster_) {
    SubjectCall({"0", "revoke_pid", config_.key_prefix, public_id},
                [cb = std::move(cb)](const Status& failure, redisReply* r) {
                  Status st = ReplyStatus(failure, r);
                  std::vector<RevokedSession> out;
                  if (st.ok()) st = DecodeRevoked(r, &out);
                  cb(st, std::move(out));
                });
    return;
  }
  // The public id's key names the session; the session must still carry
  // that public id (a stale key names nothing).
  const std::string pid = PidKey(public_id);
  router_->Execute(
      pid, RedisCommand::Format({"GET", pid}), RedisRouter::kIdempotent,
      [this, pid, public_id, cb = std::move(cb)](const Status& failure, redisReply* r) mutable {
        Status st = ReplyStatus(failure, r);
        if (!st.ok() || !IsStringReply(r)) {
          cb(st, {});
          return;
        }
        const std::string member(Text(r));
        const std::string key = RedisKey(member);
        RunScript(
            key, kRevokeIfScript, RedisCommand::Format({"EVALSHA", ShaOf<kRevokeIfScript>(), "1", key, "p", public_id}),
            RedisRouter::kIdempotent | RedisRouter::kWrite,
            [this, pid, member, public_id, cb = std::move(cb)](const Status& failure, redisReply* r) mutable {
              Status st = ReplyStatus(failure, r);
              if (st.ok() && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                              r->element[0]->type != REDIS_REPLY_INTEGER)) {
                st = Unexpected();
              }
              if (!st.ok() || r->element[0]->integer != 1 || r->elements != 3) {
                cb(st, {});
                return;
              }
              std::vector<RevokedSession> revoked = {RevokedSession{member, public_id}};
              auto join = std::make_shared<Join>([cb = std::move(cb), revoked](Status st) mutable {
                cb(st, st.ok() ? std::move(revoked) : std::vector<RevokedSession>{});
              });
              const uint32_t flags = RedisRouter::kIdempotent | RedisRouter::kWrite;
              auto finish = [join](const Status& failure, redisReply* r) { join->Finish(ReplyStatus(failure, r)); };
              if (!Text(r->element[1]).empty()) {
                const std::string idx = IndexKey(std::string(Text(r->element[1])));
                join->Add();
                router_->Execute(idx, RedisCommand::Format({"ZREM", idx, member}), flags, finish);
              }
              join->Add();
              RunScript(pid, kDeleteIfScript,
                        RedisCommand::Format({"EVALSHA", ShaOf<kDeleteIfScript>(), "1", pid, member}), flags, finish);
              join->Release();
            });
      });
}

}  // namespace sessiond
