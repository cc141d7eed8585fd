#include "store/redis_store.h"

#include "base/json_text.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/log.h"

namespace sessiond {

namespace {

constexpr std::chrono::milliseconds kMinBackoff{50};
constexpr std::chrono::milliseconds kMaxBackoff{2000};
// Redis error text is shown in Status messages; keep it to one short line.
constexpr size_t kMaxErrorText = 200;

// See redis_store.h for the data layout. KEYS[1] is the session, KEYS[2]
// where it ends up (KEYS[1] unless re-keyed). ARGV: ttl ms, max bytes,
// clear (0/1), destroy (0/1), n, must_exist (0/1), the subject key as a
// field name ("" for no index), the metadata JSON ("" keeps it), created
// (the index score), public id, revoke (0 none, 1 others, 2 all), the
// per-subject limit, the key prefix, then n fields to delete, then
// field/value pairs to set. The result is computed and sized before the
// first write, so a TOOLARGE error leaves everything as it was. Returns
// {exists (0/1), subject, n revoked, then n key/public id pairs, then the
// session's data fields and values}.
//
// The index keys (prefix "subject:" S, a sorted set of store keys scored by
// creation; prefix "pid:" P, the store key of an indexed public id) are
// named inside the script: sessiond's Redis is one server (no Cluster).
constexpr char kApplyScript[] = R"lua(
local ndel = tonumber(ARGV[5])
local first = 14
local prefix = ARGV[13]
local ttl = tonumber(ARGV[1])
local revoked = {}
local function member_of(key) return string.sub(key, #prefix + 1) end
local function subject_key(s) return prefix .. 'subject:' .. s end
local function unpid(pid, member)
  if pid and pid ~= '' and redis.call('GET', prefix .. 'pid:' .. pid) == member then
    redis.call('DEL', prefix .. 'pid:' .. pid)
  end
end
local function revoke_one(member, subject)
  local k = prefix .. member
  if redis.call('HGET', k, 's') == subject then
    local pid = redis.call('HGET', k, 'p') or ''
    redis.call('DEL', k)
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
local function reply(exists, subject, fields)
  local out = {exists, subject or '', #revoked / 2}
  for _, v in ipairs(revoked) do out[#out + 1] = v end
  if fields then for _, v in ipairs(fields) do out[#out + 1] = v end end
  return out
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

local old_subject = redis.call('HGET', KEYS[1], 's')
local old_pid = redis.call('HGET', KEYS[1], 'p')
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[1])
  if old_subject then
    redis.call('ZREM', subject_key(old_subject), member_of(KEYS[1]))
    unpid(old_pid, member_of(KEYS[1]))
    if ARGV[11] ~= '0' then revoke_subject(old_subject, nil) end
  end
  return reply(0, '', nil)
end
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then
  return reply(0, '', nil)
end
local view = {}
if ARGV[3] ~= '1' then
  local cur = redis.call('HGETALL', KEYS[1])
  for i = 1, #cur, 2 do view[cur[i]] = cur[i + 1] end
end
for i = first, first - 1 + ndel do view[ARGV[i]] = nil end
for i = first + ndel, #ARGV, 2 do view[ARGV[i]] = ARGV[i + 1] end
local size, n, out = 2, 0, {}
for f, v in pairs(view) do
  if string.byte(f, 1) == 34 then
    size = size + #f + 1 + #v
    n = n + 1
    out[#out + 1] = f
    out[#out + 1] = v
  end
end
if n > 1 then size = size + n - 1 end
if size > tonumber(ARGV[2]) then
  return redis.error_reply('TOOLARGE ' .. string.format('%d', size))
end
local new_subject = nil
if ARGV[7] ~= '' then new_subject = subject_of(view[ARGV[7]]) end
local old_score = nil
if old_subject then old_score = redis.call('ZSCORE', subject_key(old_subject), member_of(KEYS[1])) end
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
for i = first, first - 1 + ndel do redis.call('HDEL', KEYS[1], ARGV[i]) end
redis.call('HSET', KEYS[1], 'v', '1')
for i = first + ndel, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'm', ARGV[8]) end
if new_subject then
  redis.call('HSET', KEYS[1], 's', new_subject)
  if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'p', ARGV[10]) end
else
  redis.call('HDEL', KEYS[1], 's', 'p')
end
local new_pid = redis.call('HGET', KEYS[1], 'p')
local rekey = KEYS[2] ~= KEYS[1]
if rekey then redis.call('RENAME', KEYS[1], KEYS[2]) end
redis.call('PEXPIRE', KEYS[2], ttl)
local me = member_of(KEYS[2])
if old_subject and (old_subject ~= new_subject or rekey) then
  redis.call('ZREM', subject_key(old_subject), member_of(KEYS[1]))
end
if old_pid and (old_pid ~= new_pid or rekey or not new_subject) then unpid(old_pid, member_of(KEYS[1])) end
if new_subject then
  local score = tonumber(ARGV[9])
  if score == 0 and old_score then score = tonumber(old_score) end
  redis.call('ZADD', subject_key(new_subject), score, me)
  if redis.call('PTTL', subject_key(new_subject)) < ttl then redis.call('PEXPIRE', subject_key(new_subject), ttl) end
  if new_pid then redis.call('SET', prefix .. 'pid:' .. new_pid, me, 'PX', ttl) end
end
local exists = 1
if new_subject and ARGV[11] ~= '0' then
  revoke_subject(new_subject, me)
  if ARGV[11] == '2' then
    redis.call('DEL', KEYS[2])
    redis.call('ZREM', subject_key(new_subject), me)
    unpid(new_pid, me)
    exists = 0
    out = {}
  end
end
local max = tonumber(ARGV[12])
if exists == 1 and new_subject and max > 0 and new_subject ~= old_subject then
  local live = {}
  for _, m in ipairs(redis.call('ZRANGE', subject_key(new_subject), 0, -1)) do
    if redis.call('HGET', prefix .. m, 's') == new_subject then
      live[#live + 1] = m
    else
      redis.call('ZREM', subject_key(new_subject), m)
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
return reply(exists, new_subject, out)
)lua";

// The other calls on metadata and subjects, one mode each (ARGV[1]); ARGV[2]
// is the key prefix.
//   touch KEYS[1]  ttl, meta       PEXPIRE and the new metadata if it exists: {1} or {0}
//   list           subject         the live members, pruning stale ones: {key, meta, public id, ...}
//   revoke         subject         deletes every member: {key, public id, ...}
//   revoke_pid     public id       deletes the indexed session: {key, public id} or {}
constexpr char kSubjectScript[] = R"lua(
local prefix = ARGV[2]
local function unpid(pid, member)
  if pid and pid ~= '' and redis.call('GET', prefix .. 'pid:' .. pid) == member then
    redis.call('DEL', prefix .. 'pid:' .. pid)
  end
end
if ARGV[1] == 'touch' then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
  local ttl = tonumber(ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('HSET', KEYS[1], 'm', ARGV[4])
  local s = redis.call('HGET', KEYS[1], 's')
  local pid = redis.call('HGET', KEYS[1], 'p')
  local me = string.sub(KEYS[1], #prefix + 1)
  if s then
    local idx = prefix .. 'subject:' .. s
    if redis.call('PTTL', idx) < ttl then redis.call('PEXPIRE', idx, ttl) end
    if pid and redis.call('GET', prefix .. 'pid:' .. pid) == me then redis.call('PEXPIRE', prefix .. 'pid:' .. pid, ttl) end
  end
  return {1}
end
if ARGV[1] == 'revoke_pid' then
  local pid = ARGV[3]
  local m = redis.call('GET', prefix .. 'pid:' .. pid)
  if not m then return {} end
  local k = prefix .. m
  if redis.call('HGET', k, 'p') ~= pid then return {} end
  local s = redis.call('HGET', k, 's')
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
  if redis.call('HGET', k, 's') ~= subject then
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

std::string Sha1Hex(const std::string& text) {
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

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string JsonKey(const std::string& key) {
  std::string out;
  AppendJsonString(&out, key);
  return out;
}

std::string ReplyText(const redisReply* r) {
  std::string text(r->str ? r->str : "", r->str ? std::min(r->len, kMaxErrorText) : 0);
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return text;
}

Status ErrorReplyStatus(const redisReply* r) { return Status::Unavailable("redis: " + ReplyText(r)); }

bool IsString(const redisReply* r) {
  return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS;
}

// Data fields of a flat field/value array starting at element `first`.
Result<SessionData> DecodeFields(const redisReply* r, size_t first) {
  SessionData data;
  if ((r->elements - first) % 2 != 0) return Status::Unavailable("redis: unexpected reply");
  for (size_t i = first; i + 1 < r->elements; i += 2) {
    const redisReply* f = r->element[i];
    const redisReply* v = r->element[i + 1];
    if (!IsString(f) || !IsString(v)) return Status::Unavailable("redis: unexpected reply");
    if (f->len == 0 || f->str[0] != '"') continue;  // bookkeeping field
    const auto key = nlohmann::json::parse(f->str, f->str + f->len, nullptr, /*allow_exceptions=*/false);
    if (!key.is_string()) return Status::IOError("redis: corrupt session field");
    data[key.get<std::string>()] = std::string(v->str, v->len);
  }
  return data;
}

// The "m" field: a SessionMeta without its subject ("s") and public id
// ("p", kept for indexed sessions only).
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

// Reads MetaJson's output; unknown or mistyped members are ignored (they
// only feed listings and timeouts).
void ParseMetaJson(const std::string& text, SessionMeta* m) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return;
  auto number = [&](const char* name, int64_t* out) {
    auto it = j.find(name);
    if (it != j.end() && it->is_number_integer()) *out = it->get<int64_t>();
  };
  auto string = [&](const char* name, std::string* out) {
    auto it = j.find(name);
    if (it != j.end() && it->is_string()) *out = it->get<std::string>();
  };
  number("created", &m->created_at);
  number("refreshed", &m->refreshed_at);
  number("expires", &m->expires_at);
  string("client", &m->client);
  string("user_agent", &m->user_agent);
}

}  // namespace

// One command in flight on the current connection.
struct RedisStore::Command {
  Command(RedisStore* s, ReplyHandler h) : store(s), on_reply(std::move(h)) {}
  RedisStore* store;
  ReplyHandler on_reply;
  event* deadline = nullptr;
  // Scripts only: the EVALSHA arguments, resent as EVAL of `script` on NOSCRIPT.
  std::vector<std::string> eval_argv;
  const char* script = nullptr;
  ~Command() {
    if (deadline) event_free(deadline);
  }
};

RedisStore::RedisStore(const RedisConfig& config, event_base* base)
    : config_(config),
      base_(base),
      script_sha_(Sha1Hex(kApplyScript)),
      subject_sha_(Sha1Hex(kSubjectScript)),
      backoff_(kMinBackoff) {
  connect_timer_ = evtimer_new(base_, &RedisStore::OnConnectTimeout, this);
  reconnect_timer_ = evtimer_new(base_, &RedisStore::OnReconnectTimer, this);
  teardown_event_ = event_new(base_, -1, 0, &RedisStore::OnTeardownEvent, this);
  completion_event_ = event_new(base_, -1, 0, &RedisStore::OnCompletions, this);
  StartConnect();
}

RedisStore::~RedisStore() {
  *alive_ = false;
  shutting_down_ = true;
  Teardown(Status::Unavailable("redis store shut down"));
  completions_.clear();
  event_free(connect_timer_);
  event_free(reconnect_timer_);
  event_free(teardown_event_);
  event_free(completion_event_);
}

std::string RedisStore::Where() const {
  if (config_.unix_socket) return config_.socket_path;
  return config_.host + ":" + std::to_string(config_.port);
}

// ------------------------------------------------------------ connection

void RedisStore::StartConnect() {
  if (ctx_ || shutting_down_) return;
  evtimer_del(reconnect_timer_);
  last_attempt_ = std::chrono::steady_clock::now();
  dying_reason_ = Status::OK();
  redisAsyncContext* ac = config_.unix_socket ? redisAsyncConnectUnix(config_.socket_path.c_str())
                                              : redisAsyncConnect(config_.host.c_str(), config_.port);
  if (!ac || ac->err) {
    NoteFailure(Status::Unavailable("redis: cannot connect to " + Where() + ": " +
                                    (ac && ac->errstr ? ac->errstr : "out of memory")));
    if (ac) redisAsyncFree(ac);
    ScheduleReconnect();
    return;
  }
  ac->data = this;
  if (redisLibeventAttach(ac, base_) != REDIS_OK) {
    NoteFailure(Status::Unavailable("redis: cannot attach to the event loop"));
    redisAsyncFree(ac);
    ScheduleReconnect();
    return;
  }
  redisAsyncSetConnectCallback(ac, &RedisStore::OnConnect);
  redisAsyncSetDisconnectCallback(ac, &RedisStore::OnDisconnect);
  ctx_ = ac;
  ++connection_serial_;
  state_ = State::kConnecting;
  const timeval tv = ToTimeval(config_.timeout);
  evtimer_add(connect_timer_, &tv);

  // Pipelined ahead of every command queued on this connection.
  if (!config_.password.empty()) {
    if (config_.username.empty()) SendHandshake({"AUTH", config_.password}, "AUTH", false);
    else SendHandshake({"AUTH", config_.username, config_.password}, "AUTH", false);
  }
  if (config_.db != 0) SendHandshake({"SELECT", std::to_string(config_.db)}, "SELECT", false);
  SendHandshake({"SCRIPT", "LOAD", kSubjectScript}, "SCRIPT LOAD", false);
  SendHandshake({"SCRIPT", "LOAD", kApplyScript}, "SCRIPT LOAD", true);
}

void RedisStore::SendHandshake(std::vector<std::string> argv, const char* what, bool last) {
  const uint64_t serial = connection_serial_;
  Command* cmd = new Command(this, nullptr);
  cmd->on_reply = [this, what, last, serial](redisReply* r, const Status&) {
    if (!r) return;  // the connection is going away; the commands queued on it say why
    if (r->type == REDIS_REPLY_ERROR) {
      // The message is Redis's (e.g. WRONGPASS), never the password.
      RequestTeardown(Status::Unavailable(std::string("redis: ") + what + " failed: " + ReplyText(r)));
      return;
    }
    if (!last || serial != connection_serial_ || state_ != State::kConnecting) return;
    state_ = State::kReady;
    evtimer_del(connect_timer_);
    backoff_ = kMinBackoff;
    last_error_ = Status::OK();
    // Only a recovery is news; every worker connecting at startup is not.
    if (!last_logged_.empty()) LOG_INFO("redis: connected to %s again", Where().c_str());
    last_logged_.clear();
  };
  if (!Send(ctx_, cmd, argv)) delete cmd;
}

void RedisStore::ScheduleReconnect() {
  if (shutting_down_) return;
  const timeval tv = ToTimeval(backoff_);
  evtimer_add(reconnect_timer_, &tv);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

void RedisStore::Teardown(const Status& reason) {
  if (!ctx_) return;
  redisAsyncContext* ac = ctx_;
  ctx_ = nullptr;
  state_ = State::kDisconnected;
  evtimer_del(connect_timer_);
  NoteFailure(reason);
  dying_reason_ = reason;
  ac->data = nullptr;  // OnDisconnect ignores a teardown we started
  redisAsyncFree(ac);  // runs every pending OnReply with a NULL reply
  dying_reason_ = Status::OK();
  ScheduleReconnect();
}

void RedisStore::RequestTeardown(const Status& reason) {
  if (teardown_serial_ == connection_serial_) return;  // already requested for this connection
  teardown_serial_ = connection_serial_;
  teardown_reason_ = reason;
  event_active(teardown_event_, 0, 0);
}

void RedisStore::NoteFailure(const Status& reason) {
  last_error_ = reason;
  // One line per distinct failure, not one per retry every 2 s.
  if (shutting_down_ || reason.message() == last_logged_) return;
  LOG_WARN("%s", reason.message().c_str());
  last_logged_ = reason.message();
}

Status RedisStore::FailureReason(const redisAsyncContext* ac) const {
  if (!dying_reason_.ok()) return dying_reason_;
  return Status::Unavailable("redis: connection to " + Where() + " lost" +
                             (ac && ac->errstr ? std::string(": ") + ac->errstr : std::string()));
}

void RedisStore::OnConnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisStore*>(ac->data);
  if (!self || status == REDIS_OK) return;  // readiness comes with the handshake replies
  // hiredis frees `ac` when this returns, failing the queued commands with
  // dying_reason_.
  self->ctx_ = nullptr;
  self->state_ = State::kDisconnected;
  evtimer_del(self->connect_timer_);
  self->dying_reason_ = Status::Unavailable("redis: cannot connect to " + self->Where() + ": " +
                                            (ac->errstr ? ac->errstr : "error"));
  self->NoteFailure(self->dying_reason_);
  self->ScheduleReconnect();
}

void RedisStore::OnDisconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisStore*>(ac->data);
  if (!self) return;
  // hiredis already failed the pending commands and frees `ac` after this.
  self->ctx_ = nullptr;
  self->state_ = State::kDisconnected;
  evtimer_del(self->connect_timer_);
  self->NoteFailure(self->FailureReason(ac));
  self->ScheduleReconnect();
}

void RedisStore::OnConnectTimeout(int, short, void* arg) {
  auto* self = static_cast<RedisStore*>(arg);
  self->Teardown(Status::Timeout("redis: connecting to " + self->Where() + " timed out after " +
                                 std::to_string(self->config_.timeout.count()) + " ms"));
}

void RedisStore::OnReconnectTimer(int, short, void* arg) { static_cast<RedisStore*>(arg)->StartConnect(); }

void RedisStore::OnTeardownEvent(int, short, void* arg) {
  auto* self = static_cast<RedisStore*>(arg);
  if (self->ctx_ && self->teardown_serial_ == self->connection_serial_) self->Teardown(self->teardown_reason_);
}

// ------------------------------------------------------------ commands

bool RedisStore::Send(redisAsyncContext* ac, Command* cmd, const std::vector<std::string>& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const std::string& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  return redisAsyncCommandArgv(ac, &RedisStore::OnReply, cmd, static_cast<int>(argv.size()), ptrs.data(),
                               lens.data()) == REDIS_OK;
}

void RedisStore::Submit(std::vector<std::string> argv, ReplyHandler on_reply, const char* script) {
  if (!ctx_ && std::chrono::steady_clock::now() - last_attempt_ >= kMinBackoff) StartConnect();
  if (!ctx_) {
    on_reply(nullptr, last_error_.ok() ? Status::Unavailable("redis: not connected") : last_error_);
    return;
  }
  Command* cmd = new Command(this, std::move(on_reply));
  if (script) {
    cmd->eval_argv = argv;
    cmd->script = script;
  }
  if (!Send(ctx_, cmd, argv)) {
    cmd->on_reply(nullptr, Status::Unavailable("redis: connection closing"));
    delete cmd;
    return;
  }
  cmd->deadline = evtimer_new(base_, &RedisStore::OnDeadline, cmd);
  const timeval tv = ToTimeval(config_.timeout);
  evtimer_add(cmd->deadline, &tv);
}

void RedisStore::OnReply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* cmd = static_cast<Command*>(privdata);
  RedisStore* self = cmd->store;
  auto* r = static_cast<redisReply*>(reply);
  if (!r) {
    cmd->on_reply(nullptr, self->FailureReason(ac));
  } else if (!cmd->eval_argv.empty() && r->type == REDIS_REPLY_ERROR && r->str &&
             strncmp(r->str, "NOSCRIPT", 8) == 0) {
    // The script cache was flushed (or a failover lost it): send the script
    // itself, keeping the command's deadline.
    cmd->eval_argv[0] = "EVAL";
    cmd->eval_argv[1] = cmd->script;
    std::vector<std::string> argv;
    argv.swap(cmd->eval_argv);
    if (self->Send(ac, cmd, argv)) return;
    cmd->on_reply(nullptr, Status::Unavailable("redis: connection closing"));
  } else {
    cmd->on_reply(r, Status::OK());
  }
  delete cmd;
}

void RedisStore::OnDeadline(int, short, void* arg) {
  RedisStore* self = static_cast<Command*>(arg)->store;
  // Replies come in order, so everything behind this command is stuck too.
  self->Teardown(Status::Timeout("redis: command timed out after " + std::to_string(self->config_.timeout.count()) +
                                 " ms"));
}

void RedisStore::Complete(std::function<void()> fn) {
  if (shutting_down_) return;
  completions_.push_back(std::move(fn));
  event_active(completion_event_, 0, 0);
}

void RedisStore::OnCompletions(int, short, void* arg) {
  auto* self = static_cast<RedisStore*>(arg);
  std::deque<std::function<void()>> batch;
  batch.swap(self->completions_);
  const std::shared_ptr<bool> alive = self->alive_;
  for (std::function<void()>& fn : batch) {
    if (!*alive) break;  // a callback destroyed the store: drop the rest
    fn();
  }
}

// ------------------------------------------------------------ operations

void RedisStore::Load(const StoreKey& key, LoadCallback cb) {
  Submit({"HGETALL", config_.key_prefix + key},
         [this, cb = std::move(cb)](redisReply* r, const Status& failure) mutable {
           Status st = failure;
           std::optional<SessionData> data;
           if (r && r->type == REDIS_REPLY_ERROR) {
             st = ErrorReplyStatus(r);
           } else if (r && r->type != REDIS_REPLY_ARRAY) {
             st = Status::Unavailable("redis: unexpected reply");
           } else if (r && r->elements > 0) {
             Result<SessionData> decoded = DecodeFields(r, 0);
             if (decoded.ok()) data = std::move(*decoded);
             else st = decoded.status();
           }
           Complete([cb = std::move(cb), st, data = std::move(data)] { cb(st, data); });
         });
}

void RedisStore::Apply(const ApplyRequest& request, ApplyCallback cb) {
  const bool destroy = request.clear && request.sets.empty() && !request.new_key;
  std::vector<std::string> deleted;
  std::vector<std::string> argv = {"EVALSHA",
                                   script_sha_,
                                   "2",
                                   config_.key_prefix + request.key,
                                   config_.key_prefix + request.new_key.value_or(request.key),
                                   std::to_string(request.ttl.count()),
                                   std::to_string(request.max_bytes),
                                   request.clear ? "1" : "0",
                                   destroy ? "1" : "0",
                                   "",
                                   request.must_exist ? "1" : "0",
                                   request.subject_key.empty() ? std::string() : JsonKey(request.subject_key),
                                   request.meta ? MetaJson(*request.meta) : std::string(),
                                   std::to_string(request.meta ? request.meta->created_at : 0),
                                   request.meta ? request.meta->public_id : std::string(),
                                   request.revoke == RevokeScope::kAll      ? "2"
                                   : request.revoke == RevokeScope::kOthers ? "1"
                                                                            : "0",
                                   std::to_string(request.max_per_subject),
                                   config_.key_prefix};
  constexpr size_t kCountArg = 9;  // the "n" of ARGV[5]
  for (const std::string& key : request.deletes) deleted.push_back(JsonKey(key));
  for (const auto& [key, value] : request.sets) {
    if (!value) deleted.push_back(JsonKey(key));
  }
  argv[kCountArg] = std::to_string(deleted.size());
  argv.insert(argv.end(), deleted.begin(), deleted.end());
  for (const auto& [key, value] : request.sets) {
    if (!value) continue;
    argv.push_back(JsonKey(key));
    argv.push_back(*value);
  }
  const uint64_t max_bytes = request.max_bytes;
  std::optional<SessionMeta> meta = request.meta;
  Submit(std::move(argv),
         [this, cb = std::move(cb), max_bytes, meta = std::move(meta)](redisReply* r, const Status& failure) mutable {
           Status st = failure;
           ApplyResult result;
           if (r && r->type == REDIS_REPLY_ERROR) {
             if (r->str && strncmp(r->str, "TOOLARGE ", 9) == 0) {
               st = CheckSessionSize(std::strtoull(r->str + 9, nullptr, 10), max_bytes);
               if (st.ok()) st = Status::Unavailable("redis: unexpected reply");  // TOOLARGE within the limit
             } else {
               st = ErrorReplyStatus(r);
             }
           } else if (r && (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
                            r->element[0]->type != REDIS_REPLY_INTEGER || !IsString(r->element[1]) ||
                            r->element[2]->type != REDIS_REPLY_INTEGER || r->element[2]->integer < 0 ||
                            r->elements < 3 + 2 * static_cast<size_t>(r->element[2]->integer))) {
             st = Status::Unavailable("redis: unexpected reply");
           } else if (r) {
             result.exists = r->element[0]->integer == 1;
             const size_t n = static_cast<size_t>(r->element[2]->integer);
             for (size_t i = 0; i < n; ++i) {
               const redisReply* k = r->element[3 + 2 * i];
               const redisReply* p = r->element[4 + 2 * i];
               if (!IsString(k) || !IsString(p)) {
                 st = Status::Unavailable("redis: unexpected reply");
                 break;
               }
               result.revoked.push_back(RevokedSession{std::string(k->str, k->len), std::string(p->str, p->len)});
             }
             if (st.ok()) {
               Result<SessionData> decoded = DecodeFields(r, 3 + 2 * n);
               if (decoded.ok()) result.data = std::move(*decoded);
               else st = decoded.status();
             }
             if (result.exists) {
               if (meta) result.meta = *meta;
               result.meta.subject.assign(r->element[1]->str, r->element[1]->len);
               if (result.meta.subject.empty()) result.meta.public_id.clear();
             }
           }
           Complete([cb = std::move(cb), st, result = std::move(result)] { cb(st, result); });
         },
         kApplyScript);
}

void RedisStore::SubjectCall(std::vector<std::string> keys_and_args, ReplyHandler on_reply) {
  std::vector<std::string> argv = {"EVALSHA", subject_sha_};
  argv.insert(argv.end(), keys_and_args.begin(), keys_and_args.end());
  Submit(std::move(argv), std::move(on_reply), kSubjectScript);
}

void RedisStore::LoadSession(const StoreKey& key, LoadSessionCallback cb) {
  Submit({"HGETALL", config_.key_prefix + key}, [this, cb = std::move(cb)](redisReply* r, const Status& failure) mutable {
    Status st = failure;
    std::optional<StoredSession> session;
    if (r && r->type == REDIS_REPLY_ERROR) {
      st = ErrorReplyStatus(r);
    } else if (r && r->type != REDIS_REPLY_ARRAY) {
      st = Status::Unavailable("redis: unexpected reply");
    } else if (r && r->elements > 0) {
      Result<SessionData> decoded = DecodeFields(r, 0);
      if (decoded.ok()) {
        session.emplace();
        session->data = std::move(*decoded);
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
          const redisReply* f = r->element[i];
          const redisReply* v = r->element[i + 1];
          if (f->len == 1 && f->str[0] == 'm') ParseMetaJson(std::string(v->str, v->len), &session->meta);
          if (f->len == 1 && f->str[0] == 's') session->meta.subject.assign(v->str, v->len);
          if (f->len == 1 && f->str[0] == 'p') session->meta.public_id.assign(v->str, v->len);
        }
      } else {
        st = decoded.status();
      }
    }
    Complete([cb = std::move(cb), st, session = std::move(session)]() mutable { cb(st, std::move(session)); });
  });
}

void RedisStore::TouchSession(const StoreKey& key, std::chrono::milliseconds ttl, const SessionMeta& meta,
                              DoneCallback cb) {
  SubjectCall({"1", config_.key_prefix + key, "touch", config_.key_prefix, std::to_string(ttl.count()), MetaJson(meta)},
              [this, cb = std::move(cb)](redisReply* r, const Status& failure) mutable {
                Status st = failure;
                if (r && r->type == REDIS_REPLY_ERROR) st = ErrorReplyStatus(r);
                Complete([cb = std::move(cb), st] { cb(st); });
              });
}

void RedisStore::ListSubject(const std::string& subject, ListCallback cb) {
  SubjectCall({"0", "list", config_.key_prefix, subject},
              [this, subject, cb = std::move(cb)](redisReply* r, const Status& failure) mutable {
                Status st = failure;
                std::vector<SessionListing> out;
                if (r && r->type == REDIS_REPLY_ERROR) {
                  st = ErrorReplyStatus(r);
                } else if (r && (r->type != REDIS_REPLY_ARRAY || r->elements % 3 != 0)) {
                  st = Status::Unavailable("redis: unexpected reply");
                } else if (r) {
                  for (size_t i = 0; i + 2 < r->elements; i += 3) {
                    SessionListing l;
                    l.key.assign(r->element[i]->str ? r->element[i]->str : "", r->element[i]->len);
                    const redisReply* m = r->element[i + 1];
                    const redisReply* p = r->element[i + 2];
                    if (m->str) ParseMetaJson(std::string(m->str, m->len), &l.meta);
                    if (p->str) l.meta.public_id.assign(p->str, p->len);
                    l.meta.subject = subject;
                    out.push_back(std::move(l));
                  }
                }
                Complete([cb = std::move(cb), st, out = std::move(out)]() mutable { cb(st, std::move(out)); });
              });
}

namespace {

// {key, public id, ...} of the subject script's revocations.
Status DecodeRevoked(const redisReply* r, std::vector<RevokedSession>* out) {
  if (r->type == REDIS_REPLY_ERROR) return ErrorReplyStatus(r);
  if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) return Status::Unavailable("redis: unexpected reply");
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    if (!IsString(r->element[i]) || !IsString(r->element[i + 1])) return Status::Unavailable("redis: unexpected reply");
    out->push_back(RevokedSession{std::string(r->element[i]->str, r->element[i]->len),
                                  std::string(r->element[i + 1]->str, r->element[i + 1]->len)});
  }
  return Status::OK();
}

}  // namespace

void RedisStore::RevokeSubject(const std::string& subject, RevokeCallback cb) {
  SubjectCall({"0", "revoke", config_.key_prefix, subject},
              [this, cb = std::move(cb)](redisReply* r, const Status& failure) mutable {
                Status st = failure;
                std::vector<RevokedSession> out;
                if (r) st = DecodeRevoked(r, &out);
                Complete([cb = std::move(cb), st, out = std::move(out)]() mutable { cb(st, std::move(out)); });
              });
}

void RedisStore::RevokePublicId(const std::string& public_id, RevokeCallback cb) {
  SubjectCall({"0", "revoke_pid", config_.key_prefix, public_id},
              [this, cb = std::move(cb)](redisReply* r, const Status& failure) mutable {
                Status st = failure;
                std::vector<RevokedSession> out;
                if (r) st = DecodeRevoked(r, &out);
                Complete([cb = std::move(cb), st, out = std::move(out)]() mutable { cb(st, std::move(out)); });
              });
}

void RedisStore::Touch(const StoreKey& key, std::chrono::milliseconds ttl, DoneCallback cb) {
  Submit({"PEXPIRE", config_.key_prefix + key, std::to_string(ttl.count())},
         [this, cb = std::move(cb)](redisReply* r, const Status& failure) mutable {
           Status st = failure;
           if (r && r->type == REDIS_REPLY_ERROR) st = ErrorReplyStatus(r);
           Complete([cb = std::move(cb), st] { cb(st); });
         });
}

void RedisStore::Ping(DoneCallback cb) {
  Submit({"PING"},
         [this, cb = std::move(cb)](redisReply* r, const Status& failure) mutable {
           Status st = failure;
           if (r && r->type == REDIS_REPLY_ERROR) st = ErrorReplyStatus(r);
           Complete([cb = std::move(cb), st] { cb(st); });
         });
}

}  // namespace sessiond
