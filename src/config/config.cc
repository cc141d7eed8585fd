// The schema of sessiond.yaml (docs/CONFIGURATION.md): which keys exist, their
// types, ranges and defaults, and the checks that involve several keys.
// Reading and positioning live in yaml_reader.*, address and URL syntax in
// address.* and redis_url.*, the summary in describe.cc.
#include "config/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "base/web_origin.h"
#include "config/address.h"
#include "config/numbers.h"
#include "config/policy_reader.h"
#include "config/redis_url.h"
#include "config/tls_files.h"
#include "config/yaml_reader.h"

namespace sessiond {

namespace {

using namespace config_internal;

constexpr size_t kMinSecretBytes = 32;
constexpr size_t kMaxConfigFileBytes = 4 << 20;
constexpr size_t kMaxSecretFileBytes = 64 << 10;
constexpr size_t kMaxPemFileBytes = 1 << 20;
constexpr uint64_t kMaxWorkers = 256;
// Bounds of the session keys added with timeouts, subjects and chunks
// (docs/CONFIGURATION.md, session).
constexpr size_t kMaxSubjectKeyBytes = 256;
constexpr uint64_t kMaxSessionsPerSubject = 100000;
constexpr uint64_t kMaxCookieChunksLimit = 8;  // session/cookie_header.h, kMaxCookieChunks
constexpr size_t kMinAdminTokenBytes = 16;
constexpr const char* kDefaultListen = "127.0.0.1:8080";
constexpr const char* kDefaultRedisUrl = "redis://127.0.0.1:6379/0";
constexpr uint16_t kDefaultSentinelPort = 26379;
constexpr uint64_t kMaxRedisNodes = 64;  // sentinels or seeds listed
constexpr uint64_t kMaxWaitReplicas = 64;

// The YAML spellings, shared by parsing and ToString().
const EnumNames<SameSite> kSameSiteNames = {
    {"None", SameSite::kNone}, {"Lax", SameSite::kLax}, {"Strict", SameSite::kStrict}};
const EnumNames<StoreKind> kStoreKindNames = {{"cookie", StoreKind::kCookie},
                                              {"redis", StoreKind::kRedis},
                                              {"file", StoreKind::kFile},
                                              {"memory", StoreKind::kMemory},
                                              {"http", StoreKind::kHttp}};
const EnumNames<SessionCreate> kSessionCreateNames = {{"lazy", SessionCreate::kLazy},
                                                      {"always", SessionCreate::kAlways}};
const EnumNames<OnStoreError> kOnStoreErrorNames = {{"fail_closed", OnStoreError::kFailClosed},
                                                    {"fail_open", OnStoreError::kFailOpen}};
const EnumNames<AccessLogFormat> kAccessLogNames = {{"combined", AccessLogFormat::kCombined},
                                                    {"json", AccessLogFormat::kJson},
                                                    {"off", AccessLogFormat::kOff}};
const EnumNames<int> kTlsVersionNames = {{"1.2", 12}, {"1.3", 13}};
const EnumNames<LogLevel> kLogLevelNames = {{"debug", LogLevel::kDebug},
                                            {"info", LogLevel::kInfo},
                                            {"warn", LogLevel::kWarn},
                                            {"error", LogLevel::kError}};
const EnumNames<LogFormat> kLogFormatNames = {{"text", LogFormat::kText}, {"json", LogFormat::kJson}};

// The schema's mappings and their keys (docs/CONFIGURATION.md). Also given
// to the reader, so a key written in the wrong mapping is pointed to the
// right one.
#define SESSIOND_TOP_KEYS                                                                     \
  "listen", "tls", "upstream", "upstream_tls", "workers", "secret_key", "secret_key_file",  \
      "secret_key_fallbacks", "trusted_proxies", "session", "redis", "file", "memory",      \
      "http_store", "admin", "limits", "timeouts", "websocket", "log", "routes", "csrf",    \
      "rate_limits", "upstream_signature"
#define SESSIOND_TLS_KEYS "certificate", "private_key", "min_version", "client_ca"
#define SESSIOND_UPSTREAM_TLS_KEYS "ca_file", "server_name", "client_certificate", "client_key"
#define SESSIOND_SESSION_KEYS                                                                 \
  "manager", "session_cookie_name", "session_cookie_domain", "session_cookie_path",         \
      "session_cookie_httponly", "session_cookie_secure", "session_cookie_samesite",        \
      "session_cookie_partitioned", "session_expiration_time", "session_permanent",         \
      "session_refresh_each_request", "session_create", "max_session_bytes",                \
      "session_idle_timeout", "session_absolute_timeout", "session_refresh_threshold",      \
      "subject_key", "max_sessions_per_subject", "max_cookie_chunks", "compress"
#define SESSIOND_REDIS_KEYS                                                                            \
  "url", "key_prefix", "timeout", "on_error", "sentinel", "cluster", "wait_replicas", "wait_timeout", "tls"
#define SESSIOND_REDIS_TLS_KEYS "enabled", "ca_file", "server_name", "client_certificate", "client_key"
#define SESSIOND_REDIS_SENTINEL_KEYS "master_name", "addresses", "username", "password"
#define SESSIOND_REDIS_CLUSTER_KEYS "seeds"
#define SESSIOND_FILE_KEYS "directory"
#define SESSIOND_MEMORY_KEYS "max_sessions"
#define SESSIOND_HTTP_STORE_KEYS "url", "timeout", "token", "on_error"
#define SESSIOND_ADMIN_KEYS "listen", "token", "token_file"
#define SESSIOND_LIMITS_KEYS "max_header_bytes", "max_body_bytes"
#define SESSIOND_TIMEOUTS_KEYS                                                                   \
  "client_header", "upstream_connect", "upstream_response", "idle", "shutdown", "tunnel_idle", \
      "tunnel_max"
#define SESSIOND_WEBSOCKET_KEYS "allowed_origins"
#define SESSIOND_LOG_KEYS "access", "level", "format"
#define SESSIOND_CSRF_KEYS "enabled", "header", "exempt"
#define SESSIOND_UPSTREAM_SIGNATURE_KEYS "key", "key_file"

std::vector<SchemaSection> Schema() {
  return {{"", {SESSIOND_TOP_KEYS}},           {"tls", {SESSIOND_TLS_KEYS}},
          {"upstream_tls", {SESSIOND_UPSTREAM_TLS_KEYS}},
          {"session", {SESSIOND_SESSION_KEYS}},
          {"redis", {SESSIOND_REDIS_KEYS}},    {"redis.sentinel", {SESSIOND_REDIS_SENTINEL_KEYS}},
          {"redis.cluster", {SESSIOND_REDIS_CLUSTER_KEYS}},  {"redis.tls", {SESSIOND_REDIS_TLS_KEYS}},
          {"file", {SESSIOND_FILE_KEYS}},
          {"memory", {SESSIOND_MEMORY_KEYS}},  {"http_store", {SESSIOND_HTTP_STORE_KEYS}},
          {"admin", {SESSIOND_ADMIN_KEYS}},
          {"limits", {SESSIOND_LIMITS_KEYS}},  {"timeouts", {SESSIOND_TIMEOUTS_KEYS}},
          {"websocket", {SESSIOND_WEBSOCKET_KEYS}}, {"log", {SESSIOND_LOG_KEYS}},
          {"csrf", {SESSIOND_CSRF_KEYS}},      {"upstream_signature", {SESSIOND_UPSTREAM_SIGNATURE_KEYS}}};
}

template <class E>
const char* NameOf(EnumNames<E> names, E value) {
  for (const auto& [name, v] : names) {
    if (v == value) return name;
  }
  return "?";
}

// Reads at most `limit` bytes of `path`. Returns 0 or an errno value (EFBIG
// when the file is larger than `limit`); *mode gets the file's st_mode.
int ReadSmallFile(const std::string& path, size_t limit, std::string* out, mode_t* mode) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return err;
  }
  if (mode) *mode = st.st_mode;
  out->clear();
  char buf[8192];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return err;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > limit) {
      close(fd);
      return EFBIG;
    }
  }
  close(fd);
  return 0;
}

// RFC 6265 cookie-name: an RFC 2616 token.
bool IsCookieNameToken(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || std::strchr("()<>@,;:\\\"/[]?={}", c) != nullptr) return false;
  }
  return true;
}

// Dot-separated labels of letters, digits, '-' and '_', with an optional
// leading dot (old-style Domain=.example.com).
bool IsPlausibleCookieDomain(const std::string& domain) {
  std::string rest = !domain.empty() && domain[0] == '.' ? domain.substr(1) : domain;
  if (rest.empty() || rest.size() > 253 || rest.front() == '.' || rest.back() == '.' ||
      rest.find("..") != std::string::npos) {
    return false;
  }
  return IsPlausibleHostName(rest);
}

// RFC 6265 path-value: any CHAR except CTLs or ';'.
bool IsCookiePath(const std::string& path) {
  if (path.empty() || path[0] != '/') return false;
  return std::none_of(path.begin(), path.end(), [](char c) {
    unsigned char u = static_cast<unsigned char>(c);
    return u < 0x20 || u >= 0x7f || c == ';';
  });
}

// A session key (docs/HEADER-PROTOCOL.md, Instructions): 1..256 bytes, no
// control character.
bool IsSubjectKey(const std::string& key) {
  if (key.empty() || key.size() > kMaxSubjectKeyBytes) return false;
  return std::none_of(key.begin(), key.end(), [](char c) {
    unsigned char u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

std::string TooShort(const std::string& what, size_t got) {
  return what + ": must be at least " + std::to_string(kMinSecretBytes) + " bytes (got " +
         std::to_string(got) + "); run 'sessiond gen-secret' for a good one";
}

void ReadPrimarySecret(Section& root, Config* c) {
  const bool inline_key = root.Has("secret_key");
  const bool key_file = root.Has("secret_key_file");
  if (inline_key && key_file) {
    root.Fail(root.KeyMark("secret_key_file"),
              "secret_key and secret_key_file are both set; use exactly one");
    return;
  }
  if (!inline_key && !key_file) {
    if (root.Misspelled("secret_key") || root.Misspelled("secret_key_file")) return;
    root.Fail(root.mark(),
              "secret_key (or secret_key_file) is required; run 'sessiond gen-secret' for a key, "
              "e.g. secret_key: ${SESSIOND_SECRET} with "
              "SESSIOND_SECRET=$(sessiond gen-secret) in the environment");
    return;
  }
  if (inline_key) {
    std::optional<ScalarValue> v = root.Required("secret_key");
    if (!v) return;
    if (v->text.size() < kMinSecretBytes) {
      root.Fail(v->mark, TooShort("secret_key", v->text.size()));
      return;
    }
    c->secret_key = std::move(v->text);
  } else {
    std::optional<ScalarValue> v = root.Required("secret_key_file");
    if (!v) return;
    if (v->text.empty()) {
      root.Fail(v->mark, "secret_key_file: must not be empty");
      return;
    }
    std::string bytes;
    mode_t mode = 0;
    int err = ReadSmallFile(v->text, kMaxSecretFileBytes, &bytes, &mode);
    if (err != 0) {
      // Quote the path as written: a value expanded from the environment may
      // be a secret, the ${NAME} that produced it is not.
      root.Fail(v->mark, "secret_key_file: cannot read " + v->raw + ": " +
                             (err == EFBIG ? "larger than 64 KiB" : std::strerror(err)));
      return;
    }
    // Files written by `echo` or an editor end with a newline that is not
    // part of the key.
    if (bytes.size() >= 2 && bytes.compare(bytes.size() - 2, 2, "\r\n") == 0) {
      bytes.resize(bytes.size() - 2);
    } else if (!bytes.empty() && bytes.back() == '\n') {
      bytes.pop_back();
    }
    if (bytes.size() < kMinSecretBytes) {
      root.Fail(v->mark, TooShort("secret_key_file: the key in " + v->raw, bytes.size()));
      return;
    }
    c->secret_key = std::move(bytes);
    c->secret_key_file = v->text;
    c->secret_key_file_world_readable = (mode & 077) != 0;
  }
}

void ReadSecret(Section& root, Config* c) {
  ReadPrimarySecret(root, c);
  std::optional<std::vector<ScalarValue>> fallbacks = root.StringList("secret_key_fallbacks");
  if (!fallbacks) return;
  for (size_t i = 0; i < fallbacks->size(); ++i) {
    ScalarValue& v = (*fallbacks)[i];
    if (v.text.size() < kMinSecretBytes) {
      root.Fail(v.mark, TooShort("secret_key_fallbacks[" + std::to_string(i) + "]", v.text.size()));
      continue;
    }
    c->secret_key_fallbacks.push_back(std::move(v.text));
  }
}

// Reads the PEM file that `key` of `sec` names and checks its contents with
// `check` (config/tls_files.h); on success sets *path and *pem. Errors quote
// the path as written (an expanded value may be a secret).
bool ReadPemFile(Section& sec, const char* key, std::string (*check)(const std::string&), std::string* path,
                 std::string* pem) {
  std::optional<ScalarValue> v = sec.Required(key);
  if (!v) return false;
  if (v->text.empty()) {
    sec.Fail(v->mark, sec.PathOf(key) + ": must not be empty");
    return false;
  }
  std::string bytes;
  const int err = ReadSmallFile(v->text, kMaxPemFileBytes, &bytes, nullptr);
  if (err != 0) {
    sec.Fail(v->mark, sec.PathOf(key) + ": cannot read " + v->raw + ": " +
                          (err == EFBIG ? "larger than 1 MiB" : std::strerror(err)));
    return false;
  }
  const std::string why = check(bytes);
  if (!why.empty()) {
    sec.Fail(v->mark, sec.PathOf(key) + ": " + v->raw + ": " + why);
    return false;
  }
  *path = v->text;
  *pem = std::move(bytes);
  return true;
}

// tls (docs/CONFIGURATION.md, tls): absent or ~ is plain HTTP.
void ReadTls(Section& root, Config* c) {
  Section sec = root.Child("tls", {SESSIOND_TLS_KEYS});
  if (!root.Has("tls") || root.IsNull("tls")) return;
  TlsConfig t;
  bool have_pair = true;
  for (const char* key : {"certificate", "private_key"}) {
    if (!sec.Has(key)) {
      if (!sec.Misspelled(key)) {
        sec.Fail(sec.mark(), "tls." + std::string(key) + " is required when tls is set");
      }
      have_pair = false;
    }
  }
  if (sec.Has("certificate")) {
    have_pair &= ReadPemFile(sec, "certificate", CheckCertificatesPem, &t.certificate, &t.certificate_pem);
  }
  if (sec.Has("private_key")) {
    have_pair &= ReadPemFile(sec, "private_key", CheckPrivateKeyPem, &t.private_key, &t.private_key_pem);
  }
  if (have_pair) {
    const std::string why = CheckKeyMatchesCertificate(t.certificate_pem, t.private_key_pem);
    if (!why.empty()) {
      sec.Fail(sec.ValueMark("private_key"), "tls.private_key: " + t.private_key + ": " + why + " (tls.certificate)");
    }
  }
  sec.Enum("min_version", kTlsVersionNames, false, &t.min_version);
  if (sec.Has("client_ca")) ReadPemFile(sec, "client_ca", CheckCertificatesPem, &t.client_ca, &t.client_ca_pem);
  if (!sec.failed()) c->tls = std::move(t);
}

bool IsIpLiteral(const std::string& text) {
  unsigned char buf[16];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

// The keys a TLS client section shares (upstream_tls, redis.tls): ca_file,
// server_name, client_certificate and client_key, files read and checked.
void ReadClientTls(Section& sec, ClientTlsConfig* u) {
  if (sec.Has("ca_file")) ReadPemFile(sec, "ca_file", CheckCertificatesPem, &u->ca_file, &u->ca_pem);
  if (std::optional<ScalarValue> v = sec.Required("server_name")) {
    if (!IsPlausibleHostName(v->text) && !IsIpLiteral(v->text)) {
      sec.Fail(v->mark, sec.PathOf("server_name") + ": expected a host name or an IP address" + Section::Got(*v));
    } else {
      u->server_name = v->text;
    }
  }
  const bool has_cert = sec.Has("client_certificate");
  const bool has_key = sec.Has("client_key");
  if (has_cert != has_key) {
    sec.Fail(sec.KeyMark(has_cert ? "client_certificate" : "client_key"),
             sec.PathOf("client_certificate") + " and " + sec.PathOf("client_key") +
                 " go together: set both or neither");
  } else if (has_cert) {
    bool ok = ReadPemFile(sec, "client_certificate", CheckCertificatesPem, &u->client_certificate,
                          &u->client_certificate_pem);
    ok &= ReadPemFile(sec, "client_key", CheckPrivateKeyPem, &u->client_key, &u->client_key_pem);
    if (ok) {
      const std::string why = CheckKeyMatchesCertificate(u->client_certificate_pem, u->client_key_pem);
      if (!why.empty()) {
        sec.Fail(sec.ValueMark("client_key"), sec.PathOf("client_key") + ": " + u->client_key + ": " + why + " (" +
                                                  sec.PathOf("client_certificate") + ")");
      }
    }
  }
}

// upstream_tls (docs/CONFIGURATION.md, upstream_tls); read after upstream.
void ReadUpstreamTls(Section& root, Config* c) {
  Section sec = root.Child("upstream_tls", {SESSIOND_UPSTREAM_TLS_KEYS});
  UpstreamTlsConfig& u = c->upstream_tls;
  if (root.Has("upstream_tls") && !root.IsNull("upstream_tls") && !c->upstream.url.empty() &&
      !c->upstream.https) {
    root.Fail(root.KeyMark("upstream_tls"), "upstream_tls: applies only to an https:// upstream");
  }
  ReadClientTls(sec, &u);
  if (u.server_name.empty()) u.server_name = c->upstream.host;
}

void ReadTopLevel(Section& root, Config* c) {
  std::string listen = kDefaultListen;
  if (std::optional<ScalarValue> v = root.Required("listen")) listen = v->text;
  Result<SocketAddress> address = ParseListenAddress(listen);
  if (!address.ok()) {
    root.Fail(root.ValueMark("listen"), "listen: " + address.status().message());
  } else {
    c->listen = *address;
  }

  if (!root.Has("upstream")) {
    if (!root.Misspelled("upstream")) root.Fail(root.mark(), "upstream is required (e.g. upstream: http://127.0.0.1:3000)");
  } else if (std::optional<ScalarValue> v = root.Required("upstream")) {
    Result<UpstreamConfig> upstream = ParseUpstreamUrl(v->text);
    if (!upstream.ok()) {
      // A value that came from the environment may be a secret: say what is
      // wrong without quoting it.
      root.Fail(v->mark, v->expanded ? "upstream: invalid or unresolvable URL (the value comes from an "
                                       "environment variable and is not shown)"
                                     : "upstream: " + upstream.status().message());
    } else {
      c->upstream = *upstream;
    }
  }

  if (std::optional<ScalarValue> v = root.Required("workers")) {
    if (v->text == "auto") {
      uint64_t cores = std::thread::hardware_concurrency();
      c->workers = static_cast<int>(std::clamp<uint64_t>(cores, 1, kMaxWorkers));
      c->workers_auto = true;
    } else {
      std::optional<uint64_t> n = ParseDecimal(v->text);
      if (!n || *n < 1 || *n > kMaxWorkers) {
        root.Fail(v->mark,
                  "workers: expected an integer from 1 to 256, or auto" + Section::Got(*v));
      } else {
        c->workers = static_cast<int>(*n);
      }
    }
  }

  ReadTls(root, c);
  ReadUpstreamTls(root, c);
  ReadSecret(root, c);

  if (std::optional<std::vector<ScalarValue>> list = root.StringList("trusted_proxies")) {
    for (size_t i = 0; i < list->size(); ++i) {
      const ScalarValue& v = (*list)[i];
      std::string why;
      std::optional<IpNetwork> network = ParseIpNetwork(v.text, &why);
      if (!network) {
        root.Fail(v.mark, "trusted_proxies[" + std::to_string(i) + "]: " + why + Section::Got(v));
        continue;
      }
      c->trusted_proxies.push_back(*network);
    }
  }
}

uint16_t SocketPort(const SocketAddress& a) {
  if (a.storage.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_port);
  if (a.storage.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_port);
  return 0;
}

// A loopback address or one assigned to an interface of this host.
bool IsLocalAddress(const IpAddress& address) {
  if (address.IsLoopback()) return true;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool found = false;
  for (ifaddrs* i = list; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr != nullptr) found = IpAddressOf(i->ifa_addr) == address;
  }
  freeifaddrs(list);
  return found;
}

// upstream pointing back at sessiond's own listener: every request would come
// back in and loop until a header limit stops it (docs/HTTP.md, Loops).
void CheckUpstreamIsNotListen(Section& root, Config* c) {
  if (c->upstream.address.length == 0 || c->listen.length == 0) return;
  if (SocketPort(c->upstream.address) != SocketPort(c->listen)) return;
  const IpAddress up = IpAddressOf(c->upstream.address.sa());
  const IpAddress listen = IpAddressOf(c->listen.sa());
  bool loops = up == listen;
  // A wildcard listener takes connections to every local address of its
  // family (IPv6 listeners are IPv6-only: see net/listen_socket.h); and a
  // connect to the unspecified address reaches the local host.
  if (!loops && listen.IsUnspecified() && up.family == listen.family) loops = IsLocalAddress(up);
  if (!loops && up.IsUnspecified() && up.family == listen.family) loops = IsLocalAddress(listen) || listen.IsUnspecified();
  if (loops) {
    root.Fail(root.ValueMark("upstream"),
              "upstream: " + c->upstream.address.text + " is sessiond's own listen address (" + c->listen.text +
                  "): every request would come back to sessiond; point upstream at the backend");
  }
}

void ReadSession(Section& root, SessionConfig* s) {
  Section sec = root.Child("session", {SESSIOND_SESSION_KEYS});
  sec.Enum("manager", kStoreKindNames, false, &s->manager);

  if (std::optional<ScalarValue> v = sec.Required("session_cookie_name")) {
    if (!IsCookieNameToken(v->text)) {
      sec.Fail(v->mark,
               "session.session_cookie_name: must be a non-empty cookie name token "
               "(visible ASCII, none of ()<>@,;:\\\"/[]?={})");
    } else {
      s->cookie_name = v->text;
    }
  }
  if (std::optional<ScalarValue> v = sec.Scalar("session_cookie_domain")) {
    // ~ and an empty value (e.g. an empty ${VAR}) both leave Domain unset.
    if (!v->null && !v->text.empty()) {
      if (!IsPlausibleCookieDomain(v->text)) {
        sec.Fail(v->mark,
                 "session.session_cookie_domain: expected a domain name such as "
                 "example.com, or ~ for none");
      } else {
        s->cookie_domain = v->text;
      }
    }
  }
  if (std::optional<ScalarValue> v = sec.Required("session_cookie_path")) {
    if (!IsCookiePath(v->text)) {
      sec.Fail(v->mark,
               "session.session_cookie_path: must start with / and contain no ';', "
               "control or non-ASCII characters");
    } else {
      s->cookie_path = v->text;
    }
  }
  sec.Bool("session_cookie_httponly", &s->cookie_httponly);
  sec.Bool("session_cookie_secure", &s->cookie_secure);
  sec.Enum("session_cookie_samesite", kSameSiteNames, true, &s->cookie_samesite);
  sec.Bool("session_cookie_partitioned", &s->cookie_partitioned);
  // The one duration where a bare number is allowed: minutes, its unit in
  // the original design (docs/CONFIGURATION.md, Durations).
  sec.PositiveDuration("session_expiration_time", BareNumber::kMinutes, &s->expiration);
  sec.Bool("session_permanent", &s->permanent);
  sec.Bool("session_refresh_each_request", &s->refresh_each_request);
  sec.Enum("session_create", kSessionCreateNames, false, &s->create);
  sec.Size("max_session_bytes", 64, 1048576, &s->max_session_bytes);
  sec.OptionalDuration("session_idle_timeout", &s->idle_timeout);
  sec.OptionalDuration("session_absolute_timeout", &s->absolute_timeout);
  sec.OptionalDuration("session_refresh_threshold", &s->refresh_threshold);
  if (std::optional<ScalarValue> v = sec.Scalar("subject_key")) {
    if (!v->null && !IsSubjectKey(v->text)) {
      sec.Fail(v->mark, "session.subject_key: expected a session key of 1 to 256 bytes without control "
                        "characters, or ~ for none" + Section::Got(*v));
    } else if (!v->null) {
      s->subject_key = v->text;
    }
  }
  sec.UInt("max_sessions_per_subject", 0, kMaxSessionsPerSubject, &s->max_sessions_per_subject);
  sec.UInt("max_cookie_chunks", 1, kMaxCookieChunksLimit, &s->max_cookie_chunks);
  sec.Bool("compress", &s->compress);
  if (sec.failed()) return;

  // docs/CONFIGURATION.md, session.session_refresh_threshold: a threshold
  // only thins out sliding refreshes, and must leave room for one before the
  // session would expire.
  const bool sliding = s->refresh_each_request || s->idle_timeout.count() > 0;
  if (s->refresh_threshold.count() > 0) {
    if (!sliding) {
      sec.Fail(sec.ValueMark("session_refresh_threshold"),
               "session.session_refresh_threshold: has no effect without session_refresh_each_request: "
               "true or a session_idle_timeout");
    } else if (s->idle_timeout.count() > 0 && s->refresh_threshold >= s->idle_timeout) {
      sec.Fail(sec.ValueMark("session_refresh_threshold"),
               "session.session_refresh_threshold: must be shorter than session_idle_timeout");
    } else if (s->refresh_each_request && s->refresh_threshold >= s->expiration) {
      sec.Fail(sec.ValueMark("session_refresh_threshold"),
               "session.session_refresh_threshold: must be shorter than session_expiration_time");
    }
  }
  if (!s->subject_key.empty() && s->manager == StoreKind::kCookie) {
    sec.Fail(sec.ValueMark("subject_key"),
             "session.subject_key: the cookie manager cannot index sessions (they live in the browsers); "
             "use manager redis, file, memory or http");
  }
  if (s->max_sessions_per_subject > 0 && s->subject_key.empty()) {
    sec.Fail(sec.ValueMark("max_sessions_per_subject"),
             "session.max_sessions_per_subject: needs session.subject_key");
  }

  // Browsers drop SameSite=None and Partitioned cookies that lack Secure.
  if (s->cookie_samesite == SameSite::kNone && !s->cookie_secure) {
    sec.Fail(sec.ValueMark("session_cookie_samesite"),
             "session.session_cookie_samesite: None requires session_cookie_secure: true");
  } else if (s->cookie_partitioned && !s->cookie_secure) {
    sec.Fail(sec.ValueMark("session_cookie_partitioned"),
             "session.session_cookie_partitioned: requires session_cookie_secure: true");
  }
}

// A list of host:port nodes (port `default_port` when left out).
std::vector<RedisNodeAddress> ReadNodeList(Section& sec, const char* key, uint16_t default_port) {
  std::vector<RedisNodeAddress> nodes;
  std::optional<std::vector<ScalarValue>> items = sec.StringList(key);
  if (!items) {
    if (!sec.Has(key) && !sec.Misspelled(key)) {
      sec.Fail(sec.mark(), sec.PathOf(key) + " is required: a list of host:port");
    }
    return nodes;
  }
  if (items->empty()) {
    sec.Fail(sec.ValueMark(key), sec.PathOf(key) + ": must list at least one host:port");
    return nodes;
  }
  if (items->size() > kMaxRedisNodes) {
    sec.Fail(sec.ValueMark(key), sec.PathOf(key) + ": at most " + std::to_string(kMaxRedisNodes) + " nodes");
    return nodes;
  }
  for (size_t i = 0; i < items->size(); ++i) {
    const ScalarValue& v = (*items)[i];
    RedisNodeAddress node;
    bool bracketed = false;
    Status st = SplitHostPort(v.text, default_port, &node.host, &bracketed, &node.port);
    if (st.ok() && !bracketed && !IsPlausibleHostName(node.host)) st = Status::Invalid("not a valid host name");
    if (!st.ok()) {
      sec.Fail(v.mark, sec.PathOf(key) + "[" + std::to_string(i) + "]: " + st.message() + Section::Got(v));
      continue;
    }
    nodes.push_back(std::move(node));
  }
  return nodes;
}

void ReadRedisSentinel(Section& redis, RedisConfig* r) {
  Section sec = redis.Child("sentinel", {SESSIOND_REDIS_SENTINEL_KEYS});
  RedisSentinelConfig s;
  if (std::optional<ScalarValue> v = sec.Required("master_name")) {
    if (v->text.empty()) sec.Fail(v->mark, "redis.sentinel.master_name: must not be empty");
    s.master_name = v->text;
  } else if (!sec.Has("master_name") && !sec.Misspelled("master_name")) {
    sec.Fail(sec.mark(), "redis.sentinel.master_name is required: the name the sentinels monitor the master by");
  }
  s.addresses = ReadNodeList(sec, "addresses", kDefaultSentinelPort);
  sec.String("username", true, &s.username);
  sec.String("password", true, &s.password);
  if (!s.username.empty() && s.password.empty()) {
    sec.Fail(sec.ValueMark("username"), "redis.sentinel.username: needs redis.sentinel.password");
  }
  r->sentinel = std::move(s);
}

void ReadRedisCluster(Section& redis, RedisConfig* r) {
  Section sec = redis.Child("cluster", {SESSIOND_REDIS_CLUSTER_KEYS});
  RedisClusterConfig c;
  c.seeds = ReadNodeList(sec, "seeds", 6379);
  r->cluster = std::move(c);
}

// redis.tls (docs/CONFIGURATION.md, redis.tls): TLS is on for a rediss://
// URL or with enabled: true, and then for every connection of the store
// (data nodes, sentinels, cluster nodes). Read after redis.url.
// `url_ok`: redis.url parsed, so whether it is rediss:// is known.
void ReadRedisTls(Section& redis, RedisConfig* r, bool url_ok) {
  Section sec = redis.Child("tls", {SESSIOND_REDIS_TLS_KEYS});
  bool settings = false;  // any key but enabled
  for (const char* key : {"ca_file", "server_name", "client_certificate", "client_key"}) settings |= sec.Has(key);
  std::optional<bool> enabled;
  if (sec.Has("enabled")) {
    bool value = false;
    sec.Bool("enabled", &value);
    if (!sec.failed()) enabled = value;
  }
  ClientTlsConfig files;
  ReadClientTls(sec, &files);
  const bool on = r->rediss || enabled.value_or(false);
  if (r->rediss && enabled == false) {
    sec.Fail(sec.ValueMark("enabled"),
             "redis.tls.enabled: false, but redis.url is rediss:// (TLS); change one of them");
  } else if (settings && !on && !enabled.has_value() && url_ok) {
    redis.Fail(redis.KeyMark("tls"),
               "redis.tls: TLS is off: write redis.url as rediss://... or set redis.tls.enabled: true");
  }
  if (on && r->unix_socket) {
    redis.Fail(redis.ValueMark("url"), "redis.url: redis.tls.enabled needs a TCP URL (rediss://host:port); "
                                       "Redis speaks no TLS on a unix socket");
  }
  if (on && !sec.failed()) r->tls = std::move(files);
}

void ReadRedis(Section& root, RedisConfig* r) {
  Section sec = root.Child("redis", {SESSIOND_REDIS_KEYS});
  // The URL is checked even when another manager is selected, so switching
  // manager later cannot surface a latent error. A url that is there but
  // unusable (null, an unset variable) has been reported already.
  std::optional<ScalarValue> url = sec.Required("url");
  bool url_ok = false;
  if (url || !sec.Has("url")) {
    r->url = url ? url->text : kDefaultRedisUrl;
    Status s = ParseRedisUrl(r->url, r);
    if (!s.ok()) sec.Fail(sec.ValueMark("url"), "redis.url: " + s.message());
    url_ok = s.ok();
  }
  sec.String("key_prefix", true, &r->key_prefix);
  sec.PositiveDuration("timeout", BareNumber::kError, &r->timeout);
  sec.Enum("on_error", kOnStoreErrorNames, false, &r->on_error);
  uint64_t wait_replicas = 0;
  sec.UInt("wait_replicas", 0, kMaxWaitReplicas, &wait_replicas);
  r->wait_replicas = static_cast<int>(wait_replicas);
  sec.PositiveDuration("wait_timeout", BareNumber::kError, &r->wait_timeout);

  ReadRedisTls(sec, r, url_ok);
  const bool sentinel = sec.Has("sentinel");
  const bool cluster = sec.Has("cluster");
  if (sentinel) ReadRedisSentinel(sec, r);
  if (cluster) ReadRedisCluster(sec, r);
  if (sec.failed()) return;

  // A WAIT that outlives the command deadline would fail every write as a
  // timeout instead of as too few replicas.
  if (r->wait_replicas > 0 && r->wait_timeout >= r->timeout) {
    sec.Fail(sec.Has("wait_timeout") ? sec.ValueMark("wait_timeout") : sec.KeyMark("wait_replicas"),
             "redis.wait_timeout: must be shorter than redis.timeout (" + std::to_string(r->timeout.count()) +
                 " ms): WAIT runs within each write's deadline");
  }
  if (sentinel && cluster) {
    sec.Fail(sec.KeyMark("cluster"), "redis.cluster and redis.sentinel are both set; use one");
    return;
  }
  if ((sentinel || cluster) && r->unix_socket) {
    sec.Fail(sec.ValueMark("url"), std::string("redis.url: with redis.") + (cluster ? "cluster" : "sentinel") +
                                       " the URL gives the credentials of TCP nodes; use redis://[user:password@]host");
  }
  if (cluster && r->db != 0) {
    sec.Fail(sec.ValueMark("url"), "redis.url: Redis Cluster has only database 0 (the URL selects " +
                                       std::to_string(r->db) + ")");
  }
}

void ReadHttpStore(Section& root, Config* c) {
  HttpStoreConfig* h = &c->http_store;
  Section sec = root.Child("http_store", {SESSIOND_HTTP_STORE_KEYS});
  // ~ (or nothing) leaves it unset, which only manager: http refuses.
  std::optional<ScalarValue> url = sec.Scalar("url");
  if (url && !url->null) {
    Result<HttpStoreConfig> parsed = ParseHttpStoreUrl(url->text);
    if (!parsed.ok()) {
      sec.Fail(url->mark, url->expanded ? "http_store.url: invalid or unresolvable URL (the value comes from an "
                                          "environment variable and is not shown)"
                                        : "http_store.url: " + parsed.status().message());
    } else {
      h->url = url->text;
      h->host = parsed->host;
      h->port = parsed->port;
      h->path_prefix = parsed->path_prefix;
      h->address = parsed->address;
    }
  } else if ((url || !sec.Has("url")) && c->session.manager == StoreKind::kHttp && !sec.Misspelled("url")) {
    sec.Fail(url ? url->mark : sec.mark(), "http_store.url is required with session.manager: http "
                                           "(e.g. http_store: {url: http://127.0.0.1:7000})");
  }
  sec.PositiveDuration("timeout", BareNumber::kError, &h->timeout);
  if (std::optional<ScalarValue> v = sec.Scalar("token"); v && !v->null) {
    // A secret: never quoted.
    if (std::any_of(v->text.begin(), v->text.end(),
                    [](char ch) { return static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f; })) {
      sec.Fail(v->mark, "http_store.token: must be visible ASCII without spaces (it is sent in a header)");
    } else {
      h->token = std::move(v->text);
    }
  }
  sec.Enum("on_error", kOnStoreErrorNames, false, &h->on_error);
}

void ReadAdminToken(Section& admin, AdminConfig* a) {
  const bool inline_token = admin.Has("token");
  const bool token_file = admin.Has("token_file");
  if (inline_token && token_file) {
    admin.Fail(admin.KeyMark("token_file"), "admin.token and admin.token_file are both set; use exactly one");
    return;
  }
  std::string token;
  YAML::Mark mark;
  if (inline_token) {
    std::optional<ScalarValue> v = admin.Scalar("token");
    if (!v || v->null) return;  // ~: no token
    token = std::move(v->text);
    mark = v->mark;
  } else if (token_file) {
    std::optional<ScalarValue> v = admin.Scalar("token_file");
    if (!v || v->null) return;
    mark = v->mark;
    mode_t mode = 0;
    int err = ReadSmallFile(v->text, kMaxSecretFileBytes, &token, &mode);
    if (err != 0) {
      admin.Fail(v->mark, "admin.token_file: cannot read " + v->raw + ": " +
                              (err == EFBIG ? "larger than 64 KiB" : std::strerror(err)));
      return;
    }
    if (token.size() >= 2 && token.compare(token.size() - 2, 2, "\r\n") == 0) {
      token.resize(token.size() - 2);
    } else if (!token.empty() && token.back() == '\n') {
      token.pop_back();
    }
  } else {
    return;
  }
  if (token.size() < kMinAdminTokenBytes) {
    admin.Fail(mark, std::string(inline_token ? "admin.token" : "admin.token_file") + ": must be at least " +
                         std::to_string(kMinAdminTokenBytes) + " bytes (got " + std::to_string(token.size()) +
                         "); 'sessiond gen-secret' prints a good one");
    return;
  }
  if (std::any_of(token.begin(), token.end(),
                  [](char ch) { return static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f; })) {
    admin.Fail(mark, std::string(inline_token ? "admin.token" : "admin.token_file") +
                         ": must be visible ASCII without spaces (it is sent in the Authorization header)");
    return;
  }
  a->token = std::move(token);
}

void ReadSections(Section& root, Config* c) {
  ReadSession(root, &c->session);
  ReadRedis(root, &c->redis);
  ReadHttpStore(root, c);

  Section file = root.Child("file", {SESSIOND_FILE_KEYS});
  file.String("directory", false, &c->file.directory);

  Section memory = root.Child("memory", {SESSIOND_MEMORY_KEYS});
  memory.UInt("max_sessions", 1, UINT64_MAX, &c->memory.max_sessions);

  Section admin = root.Child("admin", {SESSIOND_ADMIN_KEYS});
  ReadAdminToken(admin, &c->admin);
  std::optional<ScalarValue> v = admin.Scalar("listen");
  // Absent, ~ or empty: no admin listener.
  if (v && !v->null && !v->text.empty()) {
    Result<SocketAddress> address = ParseListenAddress(v->text);
    if (!address.ok()) {
      admin.Fail(v->mark, "admin.listen: " + address.status().message());
    } else if (address->length == c->listen.length &&
               std::memcmp(&address->storage, &c->listen.storage, c->listen.length) == 0) {
      admin.Fail(v->mark, "admin.listen: must differ from listen");
    } else {
      c->admin.listen = *address;
    }
  }

  Section limits = root.Child("limits", {SESSIOND_LIMITS_KEYS});
  limits.Size("max_header_bytes", 1024, 1048576, &c->limits.max_header_bytes);
  limits.Size("max_body_bytes", 0, uint64_t{1} << 40, &c->limits.max_body_bytes);

  Section timeouts = root.Child("timeouts", {SESSIOND_TIMEOUTS_KEYS});
  for (auto [key, field] : {std::pair{"client_header", &c->timeouts.client_header},
                            std::pair{"upstream_connect", &c->timeouts.upstream_connect},
                            std::pair{"upstream_response", &c->timeouts.upstream_response},
                            std::pair{"idle", &c->timeouts.idle},
                            std::pair{"shutdown", &c->timeouts.shutdown},
                            std::pair{"tunnel_idle", &c->timeouts.tunnel_idle},
                            std::pair{"tunnel_max", &c->timeouts.tunnel_max}}) {
    timeouts.PositiveDuration(key, BareNumber::kError, field);
  }

  Section websocket = root.Child("websocket", {SESSIOND_WEBSOCKET_KEYS});
  if (std::optional<std::vector<ScalarValue>> origins = websocket.StringList("allowed_origins")) {
    for (size_t i = 0; i < origins->size(); ++i) {
      const ScalarValue& v = (*origins)[i];
      std::optional<WebOrigin> origin = ParseWebOrigin(v.text);
      if (!origin) {
        websocket.Fail(v.mark, "websocket.allowed_origins[" + std::to_string(i) +
                                   "]: expected an origin such as https://app.example.com "
                                   "(scheme://host[:port], no path)" +
                                   Section::Got(v));
        continue;
      }
      c->websocket.allowed_origins.push_back(FormatWebOrigin(*origin));
    }
  }

  Section log = root.Child("log", {SESSIOND_LOG_KEYS});
  log.Enum("access", kAccessLogNames, false, &c->log.access);
  log.Enum("level", kLogLevelNames, false, &c->log.level);
  log.Enum("format", kLogFormatNames, false, &c->log.format);

  // routes, csrf, rate_limits, upstream_signature: policy_config.cc.
  Section csrf = root.Child("csrf", {SESSIOND_CSRF_KEYS});
  Section signature = root.Child("upstream_signature", {SESSIOND_UPSTREAM_SIGNATURE_KEYS});
  ReadPolicy(root, csrf, signature, c->session, &c->policy);
}

// Records where each YAML document starts; ignores everything else.
class DocumentCounter : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

Result<std::shared_ptr<const Config>> ParseDocument(ConfigReader& reader, const std::string& yaml_text,
                                                    const std::string& filename) {
  // Not YAML::LoadAll: yaml-cpp 0.7 loops forever on some inputs (a file
  // starting with ","; jbeder/yaml-cpp#1040). Counting document starts with
  // at most two parser steps finds a second document without that loop.
  {
    std::stringstream stream(yaml_text);
    YAML::Parser parser(stream);
    DocumentCounter counter;
    for (int i = 0; i < 2 && parser.HandleNextDocument(counter); ++i) {
    }
    if (counter.starts.size() > 1) {
      reader.Fail(counter.starts[1], "only one YAML document is allowed");
      return reader.status();
    }
  }
  const YAML::Node doc = YAML::Load(yaml_text);
  if (doc.IsNull()) {
    YAML::Mark start;  // line 1, column 1
    reader.Fail(start,
                "the configuration is empty; upstream and secret_key (or secret_key_file) are "
                "required");
    return reader.status();
  }
  // Syntax first: an unclosed quote has swallowed keys, so the schema
  // would only add errors that are consequences of it.
  if (!reader.CheckQuotes(doc)) return reader.status();
  if (!doc.IsMap()) {
    reader.Fail(doc.Mark(), "the configuration must be a mapping of keys");
    return reader.status();
  }

  reader.SetSchema(Schema());
  Section root = reader.Root(doc, {SESSIOND_TOP_KEYS});
  auto config = std::make_shared<Config>();
  config->source_path = filename;
  ReadTopLevel(root, config.get());
  ReadSections(root, config.get());
  CheckUpstreamIsNotListen(root, config.get());
  if (reader.failed()) return reader.status();
  return std::shared_ptr<const Config>(std::move(config));
}

}  // namespace

const char* ToString(SameSite v) { return NameOf(kSameSiteNames, v); }
const char* ToString(StoreKind v) { return NameOf(kStoreKindNames, v); }
const char* ToString(SessionCreate v) { return NameOf(kSessionCreateNames, v); }
const char* ToString(OnStoreError v) { return NameOf(kOnStoreErrorNames, v); }
const char* ToString(AccessLogFormat v) { return NameOf(kAccessLogNames, v); }
const char* ToString(LogLevel v) { return NameOf(kLogLevelNames, v); }
const char* ToString(LogFormat v) { return NameOf(kLogFormatNames, v); }

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

Result<std::shared_ptr<const Config>> ParseConfig(const std::string& yaml_text,
                                                  const std::string& filename,
                                                  const EnvLookup& env) {
  ConfigReader reader(filename, yaml_text, env);
  try {
    return ParseDocument(reader, yaml_text, filename);
  } catch (const YAML::Exception& e) {
    // yaml-cpp names a tab in the indentation only sometimes ("illegal map
    // value" is as likely); when one precedes the error, it is the cause.
    ConfigReader syntax(filename, yaml_text, env);
    if (!syntax.ReportIndentTabs(e.mark.is_null() ? INT32_MAX : e.mark.line)) {
      syntax.Fail(e.mark, "YAML syntax error: " + e.msg);
    }
    return syntax.status();
  } catch (const std::exception& e) {
    return Status::Invalid(filename + ": cannot load the configuration: " + e.what());
  }
}

Result<std::shared_ptr<const Config>> LoadConfig(const std::string& path) {
  std::string text;
  int err = ReadSmallFile(path, kMaxConfigFileBytes, &text, nullptr);
  if (err != 0) {
    return Status::Invalid(
        path + ": cannot read: " + (err == EFBIG ? "larger than 4 MiB" : std::strerror(err)));
  }
  const EnvLookup env = ProcessEnv();
  return ParseConfig(text, path, env);
}

}  // namespace sessiond
