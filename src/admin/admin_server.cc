#include "admin/admin_server.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include <event2/keyvalq_struct.h>

#include "admin/process_metrics.h"
#include "base/json_text.h"
#include "base/log.h"
#include "crypto/crypto.h"
#include "net/listen_socket.h"

namespace sessiond {

namespace {

void Counter(std::string* out, const char* name, const char* help, uint64_t value) {
  char line[256];
  snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, value);
  out->append(line);
}

// The endpoints, as `GET /` lists them.
const char kIndex[] =
    "sessiond admin endpoints:\n"
    "  /healthz  200 \"ok\" while the process runs\n"
    "  /readyz   200 when the session store answers, else 503\n"
    "  /metrics  Prometheus text format\n"
    "  /sessions?subject=S         GET: a subject's sessions; DELETE: revoke them (needs admin.token)\n"
    "  /sessions/PUBLIC_ID         DELETE: revoke one session (needs admin.token)\n";

constexpr const char* kJson = "application/json";
// A digest, not the token, is kept and compared: constant time over equal
// lengths whatever the token's length.
constexpr std::string_view kTokenDigestKey = "sessiond admin token";

std::string TokenDigest(std::string_view token) {
  Result<std::string> mac = crypto::HmacSha256(kTokenDigestKey, token);
  return mac.ok() ? *mac : std::string();
}

std::string JsonError(const std::string& message) {
  std::string out = "{\"error\":";
  AppendJsonString(&out, message);
  out += "}\n";
  return out;
}

// A public id is 22 base64url characters (docs/COOKIES.md, Public id).
bool IsPublicId(const std::string& s) {
  if (s.size() != 22) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
      return false;
    }
  }
  return true;
}

void Reply(evhttp_request* req, int code, const char* reason, const char* type, const std::string& body,
           const char* allow = nullptr) {
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  if (allow) evhttp_add_header(headers, "Allow", allow);
  evhttp_add_header(headers, "Content-Type", type);
  evhttp_add_header(headers, "Cache-Control", "no-store");
  evbuffer* buf = evbuffer_new();
  evbuffer_add(buf, body.data(), body.size());
  evhttp_send_reply(req, code, reason, buf);
  evbuffer_free(buf);
}

uint64_t Load(const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); }

bool StartsWithIgnoreCaseAscii(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char a = s[i], b = prefix[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

}  // namespace

std::string RenderMetrics(const Metrics& m) {
  std::string out;
  out.reserve(8192);
  char line[256];

  out.append("# HELP sessiond_requests_total Requests answered, by HTTP status code and method.\n"
             "# TYPE sessiond_requests_total counter\n");
  for (int code = 100; code < 600; ++code) {
    for (int method = 0; method < Metrics::kMethods; ++method) {
      uint64_t n = Load(m.requests[code][method]);
      if (n == 0) continue;
      snprintf(line, sizeof(line), "sessiond_requests_total{code=\"%d\",method=\"%s\"} %" PRIu64 "\n", code,
               Metrics::MethodName(method), n);
      out.append(line);
    }
  }
  out.append("# HELP sessiond_request_duration_seconds Time from request head to response complete.\n"
             "# TYPE sessiond_request_duration_seconds histogram\n");
  m.request_duration.Render(&out, "sessiond_request_duration_seconds", "");

  out.append("# HELP sessiond_connections_active Client connections open now.\n"
             "# TYPE sessiond_connections_active gauge\n");
  snprintf(line, sizeof(line), "sessiond_connections_active %" PRId64 "\n",
           m.connections_active.load(std::memory_order_relaxed));
  out.append(line);
  Counter(&out, "sessiond_connections_total", "Client connections accepted.", Load(m.connections_total));

  Counter(&out, "sessiond_upstream_errors_total", "Upstream failures answered 502/504 or cut mid-response.",
          Load(m.upstream_errors));
  Counter(&out, "sessiond_upstream_connections_opened_total",
          "Connections opened to the upstream (the rest of the requests reused a pooled one).",
          Load(m.upstream_connections_opened));
  Counter(&out, "sessiond_sessions_created_total", "Sessions created.", Load(m.sessions_created));
  Counter(&out, "sessiond_sessions_destroyed_total", "Sessions destroyed by X-Session-Destroy.",
          Load(m.sessions_destroyed));
  Counter(&out, "sessiond_invalid_cookies_total", "Session cookies that failed verification.",
          Load(m.cookies_invalid));
  Counter(&out, "sessiond_expired_cookies_total", "Correctly signed session cookies past their expiry.",
          Load(m.cookies_expired));
  Counter(&out, "sessiond_malformed_instructions_total", "Upstream responses with malformed X-Session-* instructions.",
          Load(m.instructions_malformed));
  Counter(&out, "sessiond_sessions_too_large_total", "Changes refused for exceeding max_session_bytes or the cookie limit.",
          Load(m.sessions_too_large));
  Counter(&out, "sessiond_sessions_revoked_total",
          "Sessions ended by X-Session-Revoke, max_sessions_per_subject or the admin API.",
          Load(m.sessions_revoked));
  Counter(&out, "sessiond_session_refreshes_total", "Sliding expiry refreshes carried out.",
          Load(m.session_refreshes));
  Counter(&out, "sessiond_session_refreshes_skipped_total",
          "Sliding refreshes skipped: session_refresh_threshold not yet elapsed.",
          Load(m.session_refreshes_skipped));
  Counter(&out, "sessiond_bad_requests_total", "Requests refused before forwarding (400, 413, 431, 505...).",
          Load(m.bad_requests));
  Counter(&out, "sessiond_loops_detected_total", "Requests that came back through this sessiond (answered 508).",
          Load(m.loops_detected));

  out.append("# HELP sessiond_tunnels_active Upgraded connections (WebSockets) open now.\n"
             "# TYPE sessiond_tunnels_active gauge\n");
  snprintf(line, sizeof(line), "sessiond_tunnels_active %" PRId64 "\n", m.tunnels_active.load(std::memory_order_relaxed));
  out.append(line);
  Counter(&out, "sessiond_tunnels_total", "Upgraded connections opened (101 Switching Protocols relayed).",
          Load(m.tunnels_opened));
  Counter(&out, "sessiond_tunnels_session_ended_total",
          "Upgraded connections closed because their session ended (destroyed, regenerated, expired, revoked).",
          Load(m.tunnels_session_ended));
  Counter(&out, "sessiond_upgrades_refused_total", "Cross-origin upgrade requests answered 403.",
          Load(m.upgrades_refused_origin));
  out.append("# HELP sessiond_tunnel_bytes_total Bytes relayed through upgraded connections, by direction.\n"
             "# TYPE sessiond_tunnel_bytes_total counter\n");
  snprintf(line, sizeof(line), "sessiond_tunnel_bytes_total{direction=\"to_upstream\"} %" PRIu64 "\n",
           Load(m.tunnel_bytes_upstream));
  out.append(line);
  snprintf(line, sizeof(line), "sessiond_tunnel_bytes_total{direction=\"to_client\"} %" PRIu64 "\n",
           Load(m.tunnel_bytes_client));
  out.append(line);

  out.append("# HELP sessiond_timeouts_total Timeouts, by kind.\n# TYPE sessiond_timeouts_total counter\n");
  const std::pair<const char*, const std::atomic<uint64_t>*> timeouts[] = {
      {"client_header", &m.timeouts_client_header},
      {"client_body", &m.timeouts_client_body},
      {"upstream_connect", &m.timeouts_upstream_connect},
      {"upstream_response", &m.timeouts_upstream_response},
  };
  for (const auto& [kind, counter] : timeouts) {
    snprintf(line, sizeof(line), "sessiond_timeouts_total{kind=\"%s\"} %" PRIu64 "\n", kind, Load(*counter));
    out.append(line);
  }

  out.append("# HELP sessiond_tls_handshakes_total TLS handshakes completed on the listener, full or resumed.\n"
             "# TYPE sessiond_tls_handshakes_total counter\n");
  for (int resumed = 0; resumed < 2; ++resumed) {
    snprintf(line, sizeof(line), "sessiond_tls_handshakes_total{resumed=\"%s\"} %" PRIu64 "\n",
             resumed ? "true" : "false", Load(m.tls_handshakes[resumed]));
    out.append(line);
  }
  out.append("# HELP sessiond_tls_handshake_failures_total TLS handshakes on the listener that failed, by reason.\n"
             "# TYPE sessiond_tls_handshake_failures_total counter\n");
  for (int kind = 0; kind < Metrics::kTlsFailureKinds; ++kind) {
    snprintf(line, sizeof(line), "sessiond_tls_handshake_failures_total{reason=\"%s\"} %" PRIu64 "\n",
             Metrics::TlsFailureName(kind), Load(m.tls_handshake_failures[kind]));
    out.append(line);
  }
  out.append("# HELP sessiond_upstream_tls_handshakes_total TLS handshakes completed with the upstream, full or "
             "resumed.\n# TYPE sessiond_upstream_tls_handshakes_total counter\n");
  for (int resumed = 0; resumed < 2; ++resumed) {
    snprintf(line, sizeof(line), "sessiond_upstream_tls_handshakes_total{resumed=\"%s\"} %" PRIu64 "\n",
             resumed ? "true" : "false", Load(m.upstream_tls_handshakes[resumed]));
    out.append(line);
  }

  out.append("# HELP sessiond_store_errors_total Session store calls that failed, by operation.\n"
             "# TYPE sessiond_store_errors_total counter\n");
  for (int op = 0; op < Metrics::kStoreOps; ++op) {
    snprintf(line, sizeof(line), "sessiond_store_errors_total{op=\"%s\"} %" PRIu64 "\n", Metrics::StoreOpName(op),
             Load(m.store_errors[op]));
    out.append(line);
  }
  out.append("# HELP sessiond_store_duration_seconds Session store call latency, by operation.\n"
             "# TYPE sessiond_store_duration_seconds histogram\n");
  for (int op = 0; op < Metrics::kStoreOps; ++op) {
    m.store_duration[op].Render(&out, "sessiond_store_duration_seconds",
                                std::string("op=\"") + Metrics::StoreOpName(op) + "\"");
  }
  m.redis.Render(&out);

  out.append("# HELP sessiond_config_last_reload_successful Whether the last configuration reload "
             "(SIGHUP) applied: 1, or was refused: 0.\n"
             "# TYPE sessiond_config_last_reload_successful gauge\n");
  snprintf(line, sizeof(line), "sessiond_config_last_reload_successful %d\n",
           m.config_last_reload_successful.load(std::memory_order_relaxed));
  out.append(line);
  out.append("# HELP sessiond_config_last_reload_success_timestamp_seconds Unix time of the last "
             "configuration load that applied (start-up or reload).\n"
             "# TYPE sessiond_config_last_reload_success_timestamp_seconds gauge\n");
  snprintf(line, sizeof(line), "sessiond_config_last_reload_success_timestamp_seconds %" PRId64 "\n",
           m.config_last_reload_success_unix.load(std::memory_order_relaxed));
  out.append(line);
  RenderProcessMetrics(&out);
  return out;
}

std::string RenderSessionListing(const std::string& subject, const std::vector<SessionListing>& sessions) {
  std::string out = "{\"subject\":";
  AppendJsonString(&out, subject);
  out += ",\"sessions\":[";
  bool first = true;
  for (const SessionListing& s : sessions) {
    if (!first) out += ",";
    first = false;
    out += "{\"id\":";
    AppendJsonString(&out, s.meta.public_id);
    out += ",\"created\":" + std::to_string(s.meta.created_at);
    out += ",\"last_seen\":" + std::to_string(s.meta.refreshed_at);
    out += ",\"expires\":" + std::to_string(s.meta.expires_at);
    out += ",\"client_address\":";
    AppendJsonString(&out, s.meta.client);
    out += ",\"user_agent\":";
    AppendJsonString(&out, std::string_view(s.meta.user_agent).substr(0, kMaxUserAgentBytes));
    out += "}";
  }
  out += "]}\n";
  return out;
}

AdminServer::AdminServer(event_base* base, const Metrics* metrics, std::function<bool()> ready)
    : base_(base), metrics_(metrics), ready_(std::move(ready)) {}

AdminServer::~AdminServer() {
  store_.reset();  // drops the callbacks of /sessions calls in flight
  for (auto& [conn, flags] : open_requests_) {
    for (auto& flag : flags) *flag = false;
  }
  if (http_) evhttp_free(http_);
}

void AdminServer::Configure(const Config& config) {
  token_digest_ = config.admin.token.empty() ? std::string() : TokenDigest(config.admin.token);
  subject_key_ = config.session.subject_key;
  cookie_manager_ = config.session.manager == StoreKind::kCookie;
}

void AdminServer::SetSessionStore(std::shared_ptr<SessionStore> store,
                                  std::function<void(const std::vector<RevokedSession>&)> on_revoked) {
  store_ = std::move(store);
  on_revoked_ = std::move(on_revoked);
}

bool AdminServer::Authorized(evhttp_request* req) const {
  if (token_digest_.empty()) return true;
  const char* header = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
  if (!header) return false;
  std::string_view value = header;
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() < kBearer.size() || !StartsWithIgnoreCaseAscii(value, kBearer)) return false;
  value.remove_prefix(kBearer.size());
  return crypto::ConstantTimeEqual(TokenDigest(value), token_digest_);
}

void AdminServer::ConnectionClosedCb(evhttp_connection* conn, void* arg) {
  auto* self = static_cast<AdminServer*>(arg);
  auto it = self->open_requests_.find(conn);
  if (it == self->open_requests_.end()) return;
  for (auto& flag : it->second) *flag = false;
  self->open_requests_.erase(it);
}

std::shared_ptr<bool> AdminServer::Track(evhttp_request* req) {
  auto flag = std::make_shared<bool>(true);
  evhttp_connection* conn = evhttp_request_get_connection(req);
  if (conn) {
    evhttp_connection_set_closecb(conn, &AdminServer::ConnectionClosedCb, this);
    auto& flags = open_requests_[conn];
    flags.erase(std::remove_if(flags.begin(), flags.end(), [](const std::shared_ptr<bool>& f) { return !*f; }),
                flags.end());
    flags.push_back(flag);
  }
  return flag;
}

Status AdminServer::Listen(const SocketAddress& address) {
  Result<int> fd = ListenSocket(address, /*reuse_port=*/false);
  if (!fd.ok()) return fd.status();
  http_ = evhttp_new(base_);
  if (!http_) {
    close(*fd);
    return Status::IOError("cannot create the admin listener");
  }
  evhttp_set_max_headers_size(http_, 8192);
  // A small body is read (and ignored) so that a POST reaches Handle and
  // gets its 405, not a 413 from evhttp.
  evhttp_set_max_body_size(http_, 4096);
  evhttp_set_timeout(http_, 10);
  // Every method evhttp knows reaches Handle, which answers 405 to all but
  // GET and HEAD (evhttp's own answer to a disallowed method is a 501).
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                        EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                        EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
  evhttp_set_gencb(http_, HandleCb, this);
  if (!evhttp_accept_socket_with_handle(http_, *fd)) {
    close(*fd);
    return Status::IOError("cannot listen on " + address.text);
  }
  return Status::OK();
}

void AdminServer::HandleCb(evhttp_request* req, void* arg) { static_cast<AdminServer*>(arg)->Handle(req); }

void AdminServer::Handle(evhttp_request* req) {
  const evhttp_cmd_type method = evhttp_request_get_command(req);
  const char* uri = evhttp_request_get_uri(req);
  std::string path = uri ? uri : "";
  const size_t q = path.find('?');
  const std::string query = q == std::string::npos ? std::string() : path.substr(q + 1);
  path = path.substr(0, q);
  const bool sessions = path == "/sessions" || path.rfind("/sessions/", 0) == 0;
  // docs/OPERATIONS.md, Sessions API: the probes stay open to every prober.
  if (path != "/healthz" && path != "/readyz" && !Authorized(req)) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
    Reply(req, 401, "Unauthorized", "text/plain; charset=utf-8", "unauthorized: send Authorization: Bearer TOKEN\n");
    return;
  }
  if (sessions) {
    HandleSessions(req, path, query);
    return;
  }
  if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
    Reply(req, 405, "Method Not Allowed", "text/plain; charset=utf-8",
          "method not allowed: the admin endpoints answer GET and HEAD\n", "GET, HEAD");
    return;
  }
  if (path == "/") {
    Reply(req, 200, "OK", "text/plain; charset=utf-8", kIndex);
  } else if (path == "/healthz") {
    Reply(req, 200, "OK", "text/plain; charset=utf-8", "ok\n");
  } else if (path == "/readyz") {
    if (ready_()) {
      Reply(req, 200, "OK", "text/plain; charset=utf-8", "ready\n");
    } else {
      Reply(req, 503, "Service Unavailable", "text/plain; charset=utf-8", "not ready: session store unavailable\n");
    }
  } else if (path == "/metrics") {
    Reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", RenderMetrics(*metrics_));
  } else {
    Reply(req, 404, "Not Found", "text/plain; charset=utf-8", "not found\n");
  }
}

void AdminServer::HandleSessions(evhttp_request* req, const std::string& path, const std::string& query) {
  const evhttp_cmd_type method = evhttp_request_get_command(req);
  const bool one = path != "/sessions";
  const bool allowed = one ? method == EVHTTP_REQ_DELETE
                           : (method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD || method == EVHTTP_REQ_DELETE);
  if (!allowed) {
    Reply(req, 405, "Method Not Allowed", kJson, JsonError("method not allowed"), one ? "DELETE" : "GET, HEAD, DELETE");
    return;
  }
  if (token_digest_.empty()) {
    Reply(req, 403, "Forbidden", kJson, JsonError("set admin.token to use /sessions"));
    return;
  }
  if (cookie_manager_ || !store_) {
    Reply(req, 501, "Not Implemented", kJson,
          JsonError("the cookie manager keeps sessions in the browsers: they cannot be listed or revoked"));
    return;
  }
  if (subject_key_.empty() || !store_->supports_subjects()) {
    Reply(req, 501, "Not Implemented", kJson, JsonError("sessions are not indexed: set session.subject_key"));
    return;
  }
  std::shared_ptr<bool> open = Track(req);
  auto on_revoked = on_revoked_;
  auto answer_revoked = [req, open, on_revoked](const char* what, Status st, std::vector<RevokedSession> revoked) {
    if (on_revoked) on_revoked(revoked);
    if (!*open) return;
    if (!st.ok()) {
      LOG_WARN("admin: %s: session store failed: %s", what, st.ToString().c_str());
      Reply(req, 503, "Service Unavailable", kJson, JsonError("session store unavailable"));
      return;
    }
    std::string body = "{\"revoked\":" + std::to_string(revoked.size()) + "}\n";
    Reply(req, 200, "OK", kJson, body);
  };
  if (one) {
    const std::string id = path.substr(std::string("/sessions/").size());
    if (!IsPublicId(id)) {
      Reply(req, 404, "Not Found", kJson, JsonError("no such session"));
      return;
    }
    store_->RevokePublicId(id, [req, open, on_revoked](Status st, std::vector<RevokedSession> revoked) {
      if (on_revoked) on_revoked(revoked);
      if (!*open) return;
      if (!st.ok()) {
        LOG_WARN("admin: revoke by public id: session store failed: %s", st.ToString().c_str());
        Reply(req, 503, "Service Unavailable", kJson, JsonError("session store unavailable"));
      } else if (revoked.empty()) {
        Reply(req, 404, "Not Found", kJson, JsonError("no such session"));
      } else {
        Reply(req, 200, "OK", kJson, "{\"revoked\":" + std::to_string(revoked.size()) + "}\n");
      }
    });
    return;
  }
  evkeyvalq params = {};
  const bool parsed = evhttp_parse_query_str(query.c_str(), &params) == 0;
  const char* subject_param = parsed ? evhttp_find_header(&params, "subject") : nullptr;
  const std::string subject = subject_param ? subject_param : "";
  evhttp_clear_headers(&params);
  if (subject.empty() || subject.size() > 256) {
    Reply(req, 400, "Bad Request", kJson, JsonError("expected ?subject=S (1 to 256 bytes)"));
    return;
  }
  if (method == EVHTTP_REQ_DELETE) {
    store_->RevokeSubject(subject, [answer_revoked](Status st, std::vector<RevokedSession> revoked) {
      answer_revoked("revoke subject", std::move(st), std::move(revoked));
    });
    return;
  }
  store_->ListSubject(subject, [req, open, subject](Status st, std::vector<SessionListing> listing) {
    if (!*open) return;
    if (!st.ok()) {
      LOG_WARN("admin: list subject: session store failed: %s", st.ToString().c_str());
      Reply(req, 503, "Service Unavailable", kJson, JsonError("session store unavailable"));
      return;
    }
    Reply(req, 200, "OK", kJson, RenderSessionListing(subject, listing));
  });
}

}  // namespace sessiond
