#include "store/http_store.h"

#include <event2/event.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "base/json_text.h"
#include "store/session_meta_json.h"
#include "base/log.h"
#include "http/body.h"
#include "http/head_parser.h"
#include "http/head_writer.h"
#include "net/connection.h"
#include "net/timer.h"
#include "store/memory_store.h"

namespace sessiond {

namespace {

constexpr size_t kMaxHeadBytes = 16 * 1024;
constexpr uint64_t kMaxTrailerBytes = 4096;
constexpr size_t kMaxCached = 1024;
// A Load's answer stands in for the read of the write that follows it in
// the same exchange; older ones are not worth a likely 412.
constexpr std::chrono::seconds kCacheFor{5};

int64_t NowUnixMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool IsUnreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

std::string PercentEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    if (IsUnreserved(c)) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
      out.push_back(kHex[static_cast<unsigned char>(c) & 0xF]);
    }
  }
  return out;
}

bool Is2xx(int code) { return code >= 200 && code < 300; }

// The pause before the next attempt after `attempts` conflicts (see
// HttpStore::kMaxAttempts).
int Backoff(int attempts) {
  static thread_local std::minstd_rand rng(std::random_device{}());
  const int cap = std::min(attempts, 20);
  return cap <= 0 ? 0 : static_cast<int>(rng() % static_cast<unsigned>(cap + 1));
}

}  // namespace

// ---------------------------------------------------------------------------
// One connection to the store service, carrying one call at a time.
// ---------------------------------------------------------------------------

class HttpStore::Conn final : public net::Connection::Handler {
 public:
  explicit Conn(HttpStore* store)
      : store_(store), conn_(store->base_, &store->blocks_), timer_(store->base_, &Conn::OnTimeout, this) {
    conn_.set_handler(this);
  }

  bool Open() {
    if (!conn_.Connect(store_->config_.address.sa(), store_->config_.address.length)) return false;
    connecting_ = true;
    conn_.EnableReading();
    return true;
  }

  bool busy() const { return call_ != nullptr; }
  bool reused() const { return answered_ > 0; }

  void Start(std::unique_ptr<Call> call) {
    call_ = std::move(call);
    raw_.clear();
    head_done_ = false;
    body_pos_ = 0;
    response_ = Response();
    parser_.StartResponse(kMaxHeadBytes, /*request_was_head=*/false);
    head_.Clear();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(call_->deadline -
                                                                            std::chrono::steady_clock::now());
    timer_.ArmVaried(std::max(left, std::chrono::milliseconds(1)));
    if (!connecting_) Write();
  }

  // net::Connection::Handler
  void OnConnected(net::Connection*) override {
    connecting_ = false;
    if (call_) Write();
  }
  void OnReadable(net::Connection*) override {
    net::Buffer& in = conn_.input();
    while (!in.empty()) {
      const std::string_view slice = in.front();
      raw_.append(slice.data(), slice.size());
      in.Consume(slice.size());
    }
    if (!call_) {  // bytes on an idle connection: the service is confused
      Drop(Status::Unavailable("http store: unexpected bytes on an idle connection"));
      return;
    }
    Process(/*eof=*/false);
  }
  void OnPeerEof(net::Connection*) override {
    if (!call_) {
      Drop(Status::OK());  // the service closed an idle connection
      return;
    }
    Process(/*eof=*/true);
  }
  void OnWritable(net::Connection*) override {}
  void OnError(net::Connection*, int err) override {
    char buf[128];
    Drop(Status::Unavailable(std::string("http store: ") + strerror_r(err, buf, sizeof(buf))));
  }

 private:
  static void OnTimeout(void* arg) {
    auto* self = static_cast<Conn*>(arg);
    if (!self->call_) return;
    self->Drop(Status::Timeout("http store: no answer within " +
                               std::to_string(self->store_->config_.timeout.count()) + " ms"));
  }

  void Write() {
    const Call& c = *call_;
    const HttpStoreConfig& cfg = store_->config_;
    const std::string_view method = c.method;
    // Upper bound of the head, then written in place (http/head_writer.h).
    const size_t bound = method.size() + cfg.path_prefix.size() + c.path.size() + 64 +
                         store_->host_header_.size() + store_->auth_header_.size() + c.precondition.size() +
                         HeadWriter::kMaxNumber + 64;
    net::Buffer& out = conn_.output();
    HeadWriter w(out.Reserve(bound), bound);
    w.Put(method);
    w.Put(" ");
    w.Put(cfg.path_prefix);
    w.Put(c.path);
    w.Put(" HTTP/1.1\r\n");
    w.Put(store_->host_header_);
    w.Put(store_->auth_header_);
    w.Put(c.precondition);
    w.Put("Accept: application/json\r\n");
    if (!c.body.empty() || std::strcmp(c.method, "PUT") == 0) {
      w.Put("Content-Type: application/json\r\nContent-Length: ");
      w.PutNumber(c.body.size());
      w.Put("\r\n");
    }
    w.Put("\r\n");
    out.Commit(w.size());
    if (!c.body.empty()) out.Append(c.body);
    conn_.Flush();
  }

  void Process(bool eof) {
    if (!head_done_) {
      switch (parser_.Parse(raw_.data(), raw_.size(), &head_)) {
        case HeadParser::State::kIncomplete:
          if (eof) Drop(Status::Unavailable("http store: connection closed before a complete answer"));
          return;
        case HeadParser::State::kError:
          Drop(Status::Unavailable(std::string("http store: malformed answer: ") + parser_.error()));
          return;
        case HeadParser::State::kDone:
          break;
      }
      if (head_.status < 200) {
        Drop(Status::Unavailable("http store: unexpected interim answer"));
        return;
      }
      head_done_ = true;
      // The head's views point into raw_, which grows with the body: keep
      // what is needed now.
      response_.code = head_.status;
      if (std::optional<std::string_view> etag = head_.headers.Get("ETag")) response_.etag.assign(TrimOws(*etag));
      keep_alive_ = head_.keep_alive;
      decoder_.Reset(head_.framing, head_.content_length, kMaxTrailerBytes, kMaxResponseBytes);
      body_pos_ = parser_.head_size();
    }
    while (!decoder_.done() && !decoder_.failed()) {
      const BodyDecoder::Step step =
          decoder_.Next(raw_.data() + body_pos_, raw_.size() - body_pos_, kMaxResponseBytes);
      if (step.framing == 0 && step.data == 0) break;
      body_pos_ += step.framing;
      response_.body.append(raw_, body_pos_, step.data);
      body_pos_ += step.data;
      if (response_.body.size() > kMaxResponseBytes) {
        Drop(Status::Unavailable("http store: answer too large"));
        return;
      }
    }
    if (decoder_.failed()) {
      Drop(Status::Unavailable(std::string("http store: malformed answer body: ") +
                               (decoder_.error() ? decoder_.error() : "framing")));
      return;
    }
    if (!decoder_.done() && eof && decoder_.framing() == BodyFraming::kUntilClose) {
      decoder_.FinishOnEof();
      keep_alive_ = false;
    }
    if (!decoder_.done()) {
      if (eof) Drop(Status::Unavailable("http store: connection closed inside an answer"));
      return;
    }
    // Bytes beyond the answer: a service that pipelines on its own.
    const bool reusable = keep_alive_ && !eof && body_pos_ == raw_.size();
    timer_.Cancel();
    ++answered_;
    HttpStore* store = store_;
    std::unique_ptr<Call> call = std::move(call_);
    Response response = std::move(response_);
    response.status = Status::OK();
    store->Finished(this, std::move(call), std::move(response), reusable);  // may free this
  }

  // Ends the connection; its call (if any) fails with `why`.
  void Drop(Status why) {
    timer_.Cancel();
    conn_.Stop();
    HttpStore* store = store_;
    std::unique_ptr<Call> call = std::move(call_);
    Response response;
    response.status = why.ok() ? Status::Unavailable("http store: connection closed") : std::move(why);
    store->Finished(this, std::move(call), std::move(response), /*reusable=*/false);  // frees this
  }

  HttpStore* store_;
  net::Connection conn_;
  net::Timer timer_;
  std::unique_ptr<Call> call_;
  bool connecting_ = false;
  uint64_t answered_ = 0;
  std::string raw_;
  HeadParser parser_;
  ResponseHead head_;
  bool head_done_ = false;
  bool keep_alive_ = false;
  size_t body_pos_ = 0;
  BodyDecoder decoder_;
  Response response_;
};

// ---------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------

HttpStore::HttpStore(const HttpStoreConfig& config, event_base* base) : config_(config), base_(base) {
  host_header_ = "Host: " + config_.host + ":" + std::to_string(config_.port) + "\r\n";
  if (!config_.token.empty()) auth_header_ = "Authorization: Bearer " + config_.token + "\r\n";
  completion_event_ = event_new(base_, -1, 0, &HttpStore::OnCompletions, this);
}

HttpStore::~HttpStore() {
  *alive_ = false;
  shutting_down_ = true;
  conns_.clear();  // their calls' callbacks are dropped with them
  dead_.clear();
  queue_.clear();
  completions_.clear();
  event_free(completion_event_);
}

void HttpStore::Send(const char* method, std::string path, std::string body, std::string precondition,
                     ResponseFn fn) {
  auto call = std::make_unique<Call>();
  call->method = method;
  call->path = std::move(path);
  call->body = std::move(body);
  call->precondition = std::move(precondition);
  call->fn = std::move(fn);
  call->deadline = std::chrono::steady_clock::now() + config_.timeout;
  queue_.push_back(std::move(call));
  Dispatch();
}

void HttpStore::Dispatch() {
  while (!queue_.empty() && !shutting_down_) {
    Conn* idle = nullptr;
    for (auto& c : conns_) {
      if (!c->busy()) {
        idle = c.get();
        break;
      }
    }
    if (!idle) {
      if (conns_.size() >= kMaxConnections) return;  // queued until one is free
      auto conn = std::make_unique<Conn>(this);
      if (!conn->Open()) {
        char buf[128];
        const Status failed =
            Status::Unavailable(std::string("http store: cannot connect: ") + strerror_r(errno, buf, sizeof(buf)));
        std::unique_ptr<Call> call = std::move(queue_.front());
        queue_.pop_front();
        Complete([fn = std::move(call->fn), failed] {
          Response r;
          r.status = failed;
          fn(std::move(r));
        });
        continue;
      }
      idle = conn.get();
      conns_.push_back(std::move(conn));
    }
    std::unique_ptr<Call> call = std::move(queue_.front());
    queue_.pop_front();
    if (std::chrono::steady_clock::now() >= call->deadline) {
      Complete([fn = std::move(call->fn), ms = config_.timeout.count()] {
        Response r;
        r.status = Status::Timeout("http store: no answer within " + std::to_string(ms) + " ms");
        fn(std::move(r));
      });
      continue;
    }
    idle->Start(std::move(call));
  }
}

void HttpStore::Finished(Conn* conn, std::unique_ptr<Call> call, Response response, bool reusable) {
  const bool retry = call && !response.status.ok() && conn->reused() && !call->retried && response.code == 0;
  if (!reusable) {
    for (auto it = conns_.begin(); it != conns_.end(); ++it) {
      if (it->get() == conn) {
        // Freed from the loop, not under its own handler call's feet.
        dead_.push_back(std::move(*it));
        conns_.erase(it);
        event_active(completion_event_, 0, 0);
        break;
      }
    }
  }
  if (call) {
    if (retry) {
      // docs/STORE-PROTOCOL.md, Connections: a kept-alive connection the
      // service closed meanwhile; once more on a fresh one.
      call->retried = true;
      queue_.push_front(std::move(call));
    } else {
      ++calls_;
      Complete([fn = std::move(call->fn), response = std::move(response)]() mutable { fn(std::move(response)); });
    }
  }
  Dispatch();
}

void HttpStore::After(int ms, std::function<void()> fn) {
  struct Pending {
    std::shared_ptr<bool> alive;
    std::function<void()> fn;
  };
  auto* pending = new Pending{alive_, std::move(fn)};
  const timeval tv{ms / 1000, (ms % 1000) * 1000};
  const int rc = event_base_once(
      base_, -1, EV_TIMEOUT,
      [](evutil_socket_t, short, void* arg) {
        std::unique_ptr<Pending> p(static_cast<Pending*>(arg));
        if (*p->alive) p->fn();
      },
      pending, &tv);
  if (rc != 0) {
    std::unique_ptr<Pending> p(pending);
    Complete(std::move(p->fn));
  }
}

void HttpStore::Complete(std::function<void()> fn) {
  if (shutting_down_) return;
  completions_.push_back(std::move(fn));
  event_active(completion_event_, 0, 0);
}

void HttpStore::OnCompletions(int, short, void* arg) {
  auto* self = static_cast<HttpStore*>(arg);
  self->dead_.clear();
  std::deque<std::function<void()>> batch;
  batch.swap(self->completions_);
  const std::shared_ptr<bool> alive = self->alive_;
  for (std::function<void()>& fn : batch) {
    if (!*alive) break;  // a callback destroyed the store: drop the rest
    fn();
  }
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

std::string HttpStore::RecordJson(const SessionData& data, int64_t expires_at_ms, const SessionMeta& meta) {
  std::string out = "{\"data\":";
  AppendJsonString(&out, SerializeSession(data));
  out += ",\"expires_at\":" + std::to_string(expires_at_ms) + ",\"subject\":";
  AppendJsonString(&out, meta.subject);
  out += ",\"public_id\":";
  AppendJsonString(&out, meta.subject.empty() ? std::string() : meta.public_id);
  // The public id is kept only for indexed sessions (listed and revoked by it).
  out += ",\"meta\":{\"created\":" + std::to_string(meta.created_at) +
         ",\"refreshed\":" + std::to_string(meta.refreshed_at) + ",\"expires\":" + std::to_string(meta.expires_at) +
         ",\"public_id\":";
  AppendJsonString(&out, meta.subject.empty() ? std::string() : meta.public_id);
  out += ",\"client\":";
  AppendJsonString(&out, meta.client);
  out += ",\"user_agent\":";
  AppendJsonString(&out, meta.user_agent);
  out += "}}";
  return out;
}

Status HttpStore::Unexpected(const char* what, const Response& response) {
  if (!response.status.ok()) return response.status;
  return Status::Unavailable(std::string("http store: ") + what + " answered " + std::to_string(response.code));
}

Result<std::optional<HttpStore::Cached>> HttpStore::ParseRecord(const Response& response) {
  if (!response.status.ok()) return response.status;
  if (response.code == 404) return std::optional<Cached>();
  if (response.code != 200) return Unexpected("GET", response);
  const Status corrupt = Status::IOError("http store: malformed session record");
  const auto j = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return corrupt;
  auto data = j.find("data");
  auto expires = j.find("expires_at");
  if (data == j.end() || !data->is_string() || expires == j.end() || !expires->is_number_integer()) return corrupt;
  if (response.etag.empty()) return Status::IOError("http store: a record came without an ETag");
  Cached record;
  record.version = response.etag;
  record.expires_at_ms = expires->get<int64_t>();
  if (!ParseSessionJson(data->get_ref<const std::string&>(), &record.session.data)) return corrupt;
  if (auto meta = j.find("meta"); meta != j.end()) ReadSessionMeta(*meta, &record.session.meta);
  if (auto subject = j.find("subject"); subject != j.end() && subject->is_string()) {
    record.session.meta.subject = subject->get<std::string>();
  }
  if (record.expires_at_ms <= NowUnixMs()) return std::optional<Cached>();
  return std::optional<Cached>(std::move(record));
}

Result<std::vector<SessionListing>> HttpStore::ParseListing(const Response& response) {
  if (!response.status.ok()) return response.status;
  if (response.code != 200) return Unexpected("GET /sessions?", response);
  const Status corrupt = Status::IOError("http store: malformed session listing");
  const auto j = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("sessions") || !j["sessions"].is_array()) return corrupt;
  const int64_t now = NowUnixMs();
  std::vector<SessionListing> out;
  for (const auto& item : j["sessions"]) {
    if (!item.is_object()) return corrupt;
    auto key = item.find("key");
    auto record = item.find("record");
    if (key == item.end() || !key->is_string() || record == item.end() || !record->is_object()) return corrupt;
    SessionListing listing;
    listing.key = key->get<std::string>();
    const auto& r = *record;
    if (auto e = r.find("expires_at"); e != r.end() && e->is_number_integer() && e->get<int64_t>() <= now) {
      continue;  // expired: as good as gone
    }
    if (auto meta = r.find("meta"); meta != r.end()) ReadSessionMeta(*meta, &listing.meta);
    if (auto subject = r.find("subject"); subject != r.end() && subject->is_string()) {
      listing.meta.subject = subject->get<std::string>();
    }
    out.push_back(std::move(listing));
  }
  std::sort(out.begin(), out.end(), [](const SessionListing& a, const SessionListing& b) {
    return a.meta.created_at != b.meta.created_at ? a.meta.created_at < b.meta.created_at : a.key < b.key;
  });
  return out;
}

void HttpStore::Remember(const StoreKey& key, const Cached& record) {
  if (cache_.count(key) == 0) {
    cache_order_.push_back(key);
    while (cache_order_.size() > kMaxCached) {
      cache_.erase(cache_order_.front());
      cache_order_.pop_front();
    }
  }
  cache_[key] = record;
  cache_[key].at = std::chrono::steady_clock::now();
}

std::optional<HttpStore::Cached> HttpStore::TakeCached(const StoreKey& key) {
  auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  std::optional<Cached> out;
  if (std::chrono::steady_clock::now() - it->second.at < kCacheFor) out = std::move(it->second);
  cache_.erase(it);
  cache_order_.remove(key);
  return out;
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

void HttpStore::LoadSession(const StoreKey& key, LoadSessionCallback cb) {
  Send("GET", "/sessions/" + key, "", "", [this, key, cb = std::move(cb)](Response r) {
    Result<std::optional<Cached>> record = ParseRecord(r);
    if (!record.ok()) {
      cb(record.status(), std::nullopt);
      return;
    }
    if (!*record) {
      cb(Status::OK(), std::nullopt);
      return;
    }
    Remember(key, **record);
    cb(Status::OK(), std::move((*record)->session));
  });
}

void HttpStore::Load(const StoreKey& key, LoadCallback cb) {
  LoadSession(key, [cb = std::move(cb)](Status st, std::optional<StoredSession> s) {
    if (!s) {
      cb(std::move(st), std::nullopt);
      return;
    }
    cb(std::move(st), std::move(s->data));
  });
}

void HttpStore::Ping(DoneCallback cb) {
  Send("GET", "/health", "", "", [cb = std::move(cb)](Response r) {
    if (r.status.ok() && Is2xx(r.code)) {
      cb(Status::OK());
    } else {
      cb(Unexpected("GET /health", r));
    }
  });
}

void HttpStore::List(const std::string& query, ListCallback cb) {
  Send("GET", "/sessions?" + query, "", "", [cb = std::move(cb)](Response r) {
    Result<std::vector<SessionListing>> listing = ParseListing(r);
    if (!listing.ok()) {
      cb(listing.status(), {});
      return;
    }
    cb(Status::OK(), std::move(*listing));
  });
}

void HttpStore::ListSubject(const std::string& subject, ListCallback cb) {
  List("subject=" + PercentEncode(subject), [subject, cb = std::move(cb)](Status st, std::vector<SessionListing> l) {
    // Only what the store says is indexed under exactly this subject.
    l.erase(std::remove_if(l.begin(), l.end(), [&](const SessionListing& s) { return s.meta.subject != subject; }),
            l.end());
    cb(std::move(st), std::move(l));
  });
}

void HttpStore::DeleteAll(std::vector<SessionListing> sessions, RevokeCallback cb) {
  struct State {
    size_t pending = 0;
    Status failure;
    std::vector<RevokedSession> revoked;
    RevokeCallback cb;
  };
  auto state = std::make_shared<State>();
  state->pending = sessions.size();
  state->cb = std::move(cb);
  if (sessions.empty()) {
    state->cb(Status::OK(), {});
    return;
  }
  for (SessionListing& s : sessions) {
    cache_.erase(s.key);
    Send("DELETE", "/sessions/" + s.key, "", "",
         [state, key = s.key, pid = s.meta.public_id](Response r) {
           if (r.status.ok() && Is2xx(r.code)) {
             state->revoked.push_back(RevokedSession{key, pid});
           } else if (!(r.status.ok() && r.code == 404) && state->failure.ok()) {
             state->failure = Unexpected("DELETE", r);
           }
           if (--state->pending == 0) state->cb(state->failure, std::move(state->revoked));
         });
  }
}

void HttpStore::RevokeSubject(const std::string& subject, RevokeCallback cb) {
  ListSubject(subject, [this, cb = std::move(cb)](Status st, std::vector<SessionListing> listing) mutable {
    if (!st.ok()) {
      cb(st, {});
      return;
    }
    DeleteAll(std::move(listing), std::move(cb));
  });
}

void HttpStore::RevokePublicId(const std::string& public_id, RevokeCallback cb) {
  List("public_id=" + PercentEncode(public_id),
       [this, public_id, cb = std::move(cb)](Status st, std::vector<SessionListing> listing) mutable {
         if (!st.ok()) {
           cb(st, {});
           return;
         }
         listing.erase(std::remove_if(listing.begin(), listing.end(),
                                      [&](const SessionListing& s) { return s.meta.public_id != public_id; }),
                       listing.end());
         DeleteAll(std::move(listing), std::move(cb));
       });
}

// Touch: a conditional PUT of the record with the new expiry, on top of the
// version read last.
struct HttpStore::TouchOp : std::enable_shared_from_this<TouchOp> {
  HttpStore* store;
  StoreKey key;
  std::chrono::milliseconds ttl;
  std::optional<SessionMeta> meta;
  DoneCallback cb;
  int attempts = 0;

  void Start() {
    if (std::optional<Cached> cached = store->TakeCached(key)) {
      Write(std::move(*cached));
      return;
    }
    Read();
  }
  void Read() {
    auto self = shared_from_this();
    store->Send("GET", "/sessions/" + key, "", "", [self](Response r) {
      Result<std::optional<Cached>> record = ParseRecord(r);
      if (!record.ok()) {
        self->cb(record.status());
      } else if (!*record) {
        self->cb(Status::OK());  // gone: nothing to extend, nothing created
      } else {
        self->Write(std::move(**record));
      }
    });
  }
  void Write(Cached record) {
    if (++attempts > kMaxAttempts) {
      cb(Status::Unavailable("http store: too many conflicting writes"));
      return;
    }
    SessionMeta m = record.session.meta;
    if (meta) {
      m.refreshed_at = meta->refreshed_at;
      m.expires_at = meta->expires_at;
      m.client = meta->client;
      m.user_agent = meta->user_agent;
      if (m.created_at == 0) m.created_at = meta->created_at;
    }
    auto self = shared_from_this();
    store->Send("PUT", "/sessions/" + key, RecordJson(record.session.data, NowUnixMs() + ttl.count(), m),
                "If-Match: " + record.version + "\r\n", [self](Response r) {
                  if (r.status.ok() && Is2xx(r.code)) {
                    self->cb(Status::OK());
                  } else if (r.status.ok() && r.code == 412) {
                    // changed or gone meanwhile: read again
                    self->store->After(Backoff(self->attempts), [self] { self->Read(); });
                  } else {
                    self->cb(Unexpected("PUT", r));
                  }
                });
  }
};

void HttpStore::Touch(const StoreKey& key, std::chrono::milliseconds ttl, DoneCallback cb) {
  auto op = std::make_shared<TouchOp>();
  op->store = this;
  op->key = key;
  op->ttl = ttl;
  op->cb = std::move(cb);
  op->Start();
}

void HttpStore::TouchSession(const StoreKey& key, std::chrono::milliseconds ttl, const SessionMeta& meta,
                             DoneCallback cb) {
  auto op = std::make_shared<TouchOp>();
  op->store = this;
  op->key = key;
  op->ttl = ttl;
  op->meta = meta;
  op->cb = std::move(cb);
  op->Start();
}

// Apply: read, ApplyToSession, conditional write; on 412 all over again.
struct HttpStore::ApplyOp : std::enable_shared_from_this<ApplyOp> {
  HttpStore* store;
  ApplyRequest request;
  ApplyCallback cb;
  int attempts = 0;
  std::optional<Cached> current;  // the record read (nullopt: none)
  ApplyResult result;
  SessionMeta old_meta;

  StoreKey target() const { return request.new_key ? *request.new_key : request.key; }
  bool rekey() const { return request.new_key && *request.new_key != request.key; }

  void Start() {
    if (std::optional<Cached> cached = store->TakeCached(request.key)) {
      current = std::move(cached);
      Compute();
      return;
    }
    Read();
  }
  void Fail(Status st) { cb(std::move(st), ApplyResult{}); }
  void Retry() {
    if (++attempts >= kMaxAttempts) {
      Fail(Status::Unavailable("http store: too many conflicting writes"));
      return;
    }
    auto self = shared_from_this();
    store->After(Backoff(attempts), [self] { self->Read(); });
  }
  void Read() {
    auto self = shared_from_this();
    store->Send("GET", "/sessions/" + request.key, "", "", [self](Response r) {
      Result<std::optional<Cached>> record = ParseRecord(r);
      if (!record.ok()) {
        self->Fail(record.status());
        return;
      }
      self->current = std::move(*record);
      self->Compute();
    });
  }
  void Compute() {
    std::optional<SessionData> data;
    old_meta = SessionMeta();
    if (current) {
      data = current->session.data;
      old_meta = current->session.meta;
    }
    Result<ApplyResult> computed = ApplyToSession(std::move(data), request);
    if (!computed.ok()) {
      Fail(computed.status());
      return;
    }
    result = std::move(*computed);
    if (!result.exists) {
      DeleteCurrent();
      return;
    }
    result.meta = request.meta ? *request.meta : old_meta;
    result.meta.subject = SubjectOf(result.data, request.subject_key);
    const std::string record = RecordJson(result.data, NowUnixMs() + request.ttl.count(), result.meta);
    auto self = shared_from_this();
    if (rekey()) {
      // The new key is fresh (a new random id): written unconditionally.
      store->Send("PUT", "/sessions/" + target(), record, "", [self](Response r) {
        if (!(r.status.ok() && Is2xx(r.code))) {
          self->Fail(Unexpected("PUT", r));
          return;
        }
        self->DeleteOldAfterMove();
      });
      return;
    }
    const std::string precondition =
        current ? "If-Match: " + current->version + "\r\n" : std::string("If-None-Match: *\r\n");
    store->Send("PUT", "/sessions/" + request.key, record, precondition, [self](Response r) {
      if (r.status.ok() && r.code == 412) {
        self->Retry();
      } else if (r.status.ok() && Is2xx(r.code)) {
        self->AfterWrite();
      } else {
        self->Fail(Unexpected("PUT", r));
      }
    });
  }
  void DeleteCurrent() {
    if (!current) {
      AfterWrite();
      return;
    }
    auto self = shared_from_this();
    store->Send("DELETE", "/sessions/" + request.key, "", "If-Match: " + current->version + "\r\n",
                [self](Response r) {
                  if (r.status.ok() && r.code == 412) {
                    self->Retry();
                  } else if (r.status.ok() && (Is2xx(r.code) || r.code == 404)) {
                    self->AfterWrite();
                  } else {
                    self->Fail(Unexpected("DELETE", r));
                  }
                });
  }
  void DeleteOldAfterMove() {
    auto self = shared_from_this();
    if (!current) {
      AfterWrite();
      return;
    }
    store->Send("DELETE", "/sessions/" + request.key, "", "If-Match: " + current->version + "\r\n",
                [self](Response r) {
                  const bool changed = r.status.ok() && r.code == 412;
                  const bool gone = r.status.ok() && r.code == 404;
                  if (r.status.ok() && Is2xx(r.code)) {
                    self->AfterWrite();
                  } else if (changed || (gone && self->request.must_exist)) {
                    // The old session changed (retry on its new state) or was
                    // destroyed (must_exist: nothing may survive): undo the copy.
                    self->store->Send("DELETE", "/sessions/" + self->target(), "", "", [self, changed](Response u) {
                      if (!(u.status.ok() && (Is2xx(u.code) || u.code == 404))) {
                        self->Fail(Unexpected("DELETE", u));
                      } else if (changed) {
                        self->Retry();
                      } else {
                        self->cb(Status::OK(), ApplyResult{});
                      }
                    });
                  } else if (gone) {
                    self->AfterWrite();
                  } else {
                    self->Fail(Unexpected("DELETE", r));
                  }
                });
  }
  void AfterWrite() {
    const std::string subject = result.exists ? result.meta.subject : old_meta.subject;
    if (request.revoke == RevokeScope::kNone || subject.empty()) {
      Limit();
      return;
    }
    auto self = shared_from_this();
    store->ListSubject(subject, [self](Status st, std::vector<SessionListing> listing) {
      if (!st.ok()) {
        self->Fail(st);
        return;
      }
      const bool all = self->request.revoke == RevokeScope::kAll;
      const StoreKey me = self->target();
      bool self_listed = false;
      listing.erase(std::remove_if(listing.begin(), listing.end(),
                                   [&](const SessionListing& s) {
                                     if (s.key != me) return false;
                                     self_listed = true;
                                     return !all;
                                   }),
                    listing.end());
      if (all && self->result.exists && !self_listed) listing.push_back(SessionListing{me, self->result.meta});
      self->store->DeleteAll(std::move(listing), [self, all, me](Status st2, std::vector<RevokedSession> revoked) {
        if (!st2.ok()) {
          self->Fail(st2);
          return;
        }
        for (RevokedSession& r : revoked) {
          if (r.key == me) continue;
          self->result.revoked.push_back(std::move(r));
        }
        if (all && self->result.exists) {
          self->result.exists = false;
          self->result.data.clear();
        }
        self->Limit();
      });
    });
  }
  void Limit() {
    const std::string& subject = result.meta.subject;
    if (!result.exists || request.max_per_subject == 0 || subject.empty() || subject == old_meta.subject) {
      cb(Status::OK(), std::move(result));
      return;
    }
    auto self = shared_from_this();
    store->ListSubject(subject, [self](Status st, std::vector<SessionListing> listing) {
      if (!st.ok()) {
        self->Fail(st);
        return;
      }
      const StoreKey me = self->target();
      std::vector<SessionListing> others;
      for (SessionListing& s : listing) {
        if (s.key != me) others.push_back(std::move(s));
      }
      const size_t live = others.size() + 1;  // oldest first already
      const size_t max = static_cast<size_t>(self->request.max_per_subject);
      if (live <= max) {
        self->cb(Status::OK(), std::move(self->result));
        return;
      }
      others.resize(live - max);
      self->store->DeleteAll(std::move(others), [self](Status st2, std::vector<RevokedSession> revoked) {
        if (!st2.ok()) {
          self->Fail(st2);
          return;
        }
        for (RevokedSession& r : revoked) self->result.revoked.push_back(std::move(r));
        self->cb(Status::OK(), std::move(self->result));
      });
    });
  }
};

void HttpStore::Apply(const ApplyRequest& request, ApplyCallback cb) {
  auto op = std::make_shared<ApplyOp>();
  op->store = this;
  op->request = request;
  op->cb = std::move(cb);
  op->Start();
}

}  // namespace sessiond
