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
// clear (0/1), destroy (0/1), n, then n fields to delete, then field/value
// pairs to set. The result is computed and sized before the first write, so
// a TOOLARGE error leaves everything as it was. Returns {1, f1, v1, ...} with
// the session's data fields, or {0} when it was deleted.
constexpr char kApplyScript[] = R"lua(
local ndel = tonumber(ARGV[5])
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[1])
  return {0}
end
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then
  return {0}
end
local view = {}
if ARGV[3] ~= '1' then
  local cur = redis.call('HGETALL', KEYS[1])
  for i = 1, #cur, 2 do view[cur[i]] = cur[i + 1] end
end
for i = 7, 6 + ndel do view[ARGV[i]] = nil end
for i = 7 + ndel, #ARGV, 2 do view[ARGV[i]] = ARGV[i + 1] end
local size, n, out = 2, 0, {1}
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
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
for i = 7, 6 + ndel do redis.call('HDEL', KEYS[1], ARGV[i]) end
redis.call('HSET', KEYS[1], 'v', '1')
for i = 7 + ndel, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if KEYS[2] ~= KEYS[1] then redis.call('RENAME', KEYS[1], KEYS[2]) end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
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

}  // namespace

// One command in flight on the current connection.
struct RedisStore::Command {
  Command(RedisStore* s, ReplyHandler h) : store(s), on_reply(std::move(h)) {}
  RedisStore* store;
  ReplyHandler on_reply;
  event* deadline = nullptr;
  // Apply only: the EVALSHA arguments, resent as EVAL on NOSCRIPT.
  std::vector<std::string> apply_argv;
  ~Command() {
    if (deadline) event_free(deadline);
  }
};

RedisStore::RedisStore(const RedisConfig& config, event_base* base)
    : config_(config), base_(base), script_sha_(Sha1Hex(kApplyScript)), backoff_(kMinBackoff) {
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

void RedisStore::Submit(std::vector<std::string> argv, ReplyHandler on_reply, bool is_apply) {
  if (!ctx_ && std::chrono::steady_clock::now() - last_attempt_ >= kMinBackoff) StartConnect();
  if (!ctx_) {
    on_reply(nullptr, last_error_.ok() ? Status::Unavailable("redis: not connected") : last_error_);
    return;
  }
  Command* cmd = new Command(this, std::move(on_reply));
  if (is_apply) cmd->apply_argv = argv;
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
  } else if (!cmd->apply_argv.empty() && r->type == REDIS_REPLY_ERROR && r->str &&
             strncmp(r->str, "NOSCRIPT", 8) == 0) {
    // The script cache was flushed (or a failover lost it): send the script
    // itself, keeping the command's deadline.
    cmd->apply_argv[0] = "EVAL";
    cmd->apply_argv[1] = kApplyScript;
    std::vector<std::string> argv;
    argv.swap(cmd->apply_argv);
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
         },
         false);
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
                                   request.must_exist ? "1" : "0"};
  for (const std::string& key : request.deletes) deleted.push_back(JsonKey(key));
  for (const auto& [key, value] : request.sets) {
    if (!value) deleted.push_back(JsonKey(key));
  }
  argv[argv.size() - 2] = std::to_string(deleted.size());
  argv.insert(argv.end(), deleted.begin(), deleted.end());
  for (const auto& [key, value] : request.sets) {
    if (!value) continue;
    argv.push_back(JsonKey(key));
    argv.push_back(*value);
  }
  const uint64_t max_bytes = request.max_bytes;
  Submit(std::move(argv),
         [this, cb = std::move(cb), max_bytes](redisReply* r, const Status& failure) mutable {
           Status st = failure;
           ApplyResult result;
           if (r && r->type == REDIS_REPLY_ERROR) {
             if (r->str && strncmp(r->str, "TOOLARGE ", 9) == 0) {
               st = CheckSessionSize(std::strtoull(r->str + 9, nullptr, 10), max_bytes);
               if (st.ok()) st = Status::Unavailable("redis: unexpected reply");  // TOOLARGE within the limit
             } else {
               st = ErrorReplyStatus(r);
             }
           } else if (r && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                            r->element[0]->type != REDIS_REPLY_INTEGER)) {
             st = Status::Unavailable("redis: unexpected reply");
           } else if (r) {
             result.exists = r->element[0]->integer == 1;
             Result<SessionData> decoded = DecodeFields(r, 1);
             if (decoded.ok()) result.data = std::move(*decoded);
             else st = decoded.status();
           }
           Complete([cb = std::move(cb), st, result = std::move(result)] { cb(st, result); });
         },
         true);
}

void RedisStore::Touch(const StoreKey& key, std::chrono::milliseconds ttl, DoneCallback cb) {
  Submit({"PEXPIRE", config_.key_prefix + key, std::to_string(ttl.count())},
         [this, cb = std::move(cb)](redisReply* r, const Status& failure) mutable {
           Status st = failure;
           if (r && r->type == REDIS_REPLY_ERROR) st = ErrorReplyStatus(r);
           Complete([cb = std::move(cb), st] { cb(st); });
         },
         false);
}

void RedisStore::Ping(DoneCallback cb) {
  Submit({"PING"},
         [this, cb = std::move(cb)](redisReply* r, const Status& failure) mutable {
           Status st = failure;
           if (r && r->type == REDIS_REPLY_ERROR) st = ErrorReplyStatus(r);
           Complete([cb = std::move(cb), st] { cb(st); });
         },
         false);
}

}  // namespace sessiond
