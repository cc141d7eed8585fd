#include "store/redis_store.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "base/json_text.h"
#include "store/session_data.h"
#include "base/log.h"

namespace sessiond {

namespace {

// See redis_store.h for the layout. KEYS[1] is the session, KEYS[2] where
// it ends up (KEYS[1] unless re-keyed). ARGV[1] ttl ms, ARGV[2] max bytes,
// ARGV[3] flags (m: must exist, c: clear first, d: return the data),
// ARGV[4] n, then n name/value pairs to set, then names to delete; every
// name once (the store merges the batch). The size is computed and checked
// before the first write, so TOOLARGE leaves everything as it was. Returns
// 1, or 0 when a must-exist session is gone, or with d {1, name, value...}.
// Arguments go to redis.call in pieces of at most B (Lua's unpack limit).
constexpr char kApplyScript[] = R"lua(
local k, dst, flags = KEYS[1], KEYS[2], ARGV[3]
local d0 = 5 + 2 * tonumber(ARGV[4])
local n = #ARGV
local B = 4000
local clear = string.find(flags, 'c', 1, true)
local s = 0
if clear then
  if string.find(flags, 'm', 1, true) and redis.call('EXISTS', k) == 0 then return 0 end
  for i = 5, d0 - 1, 2 do s = s + #ARGV[i] + #ARGV[i + 1] + 2 end
else
  local q = {'v', 's'}
  for i = 5, d0 - 1, 2 do q[#q + 1] = ARGV[i] end
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
  for i = 5, d0 - 1, 2 do
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
if d0 - 5 <= B then
  redis.call('HSET', k, 'v', '2', 's', s, unpack(ARGV, 5, d0 - 1))
else
  redis.call('HSET', k, 'v', '2', 's', s)
  for i = 5, d0 - 1, B do redis.call('HSET', k, unpack(ARGV, i, math.min(d0 - 1, i + B - 1))) end
end
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
// the batch, deleted here.
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
  if (!batch->set_names.empty()) {
    std::vector<std::string_view> hset = {"HSET", key};
    for (size_t i = 0; i < batch->set_names.size(); ++i) {
      hset.push_back(batch->set_names[i]);
      hset.push_back(batch->set_values[i]);
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
  std::vector<std::string_view> argv = {"EVALSHA", ApplySha(), "2", key, target, ttl, max, flags};
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
  const uint64_t max_bytes = request.max_bytes;
  RunScript(key, kTakeScript, RedisCommand::Format(argv), RedisRouter::kWrite,
            [this, put = std::move(put), cb = std::move(cb), max_bytes](const Status& failure,
                                                                         redisReply* r) mutable {
              if (!failure.ok()) {
                cb(failure, ApplyResult{});
                return;
              }
              if (IsErrorReply(r)) {
                cb(ScriptErrorStatus(r, max_bytes), ApplyResult{});
                return;
              }
              if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER) {
                cb(Unexpected(), ApplyResult{});
                return;
              }
              if (r->element[0]->integer != 1) {
                cb(Status::OK(), ApplyResult{});  // gone: nothing written anywhere
                return;
              }
              Result<SessionData> data = DecodeFields(r, 1);
              if (!data.ok()) {
                cb(data.status(), ApplyResult{});
                return;
              }
              for (auto& [name, value] : *data) put.sets[name] = std::move(value);
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

}  // namespace sessiond
