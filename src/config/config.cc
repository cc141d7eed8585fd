// The schema of sessiond.yaml (docs/CONFIGURATION.md): which keys exist, their
// types, ranges and defaults, and the checks that involve several keys.
// Reading and positioning live in yaml_reader.*, address and URL syntax in
// address.* and redis_url.*, the summary in describe.cc.
#include "config/config.h"

#include <fcntl.h>
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

#include "config/address.h"
#include "config/numbers.h"
#include "config/redis_url.h"
#include "config/yaml_reader.h"

namespace sessiond {

namespace {

using namespace config_internal;

constexpr size_t kMinSecretBytes = 32;
constexpr size_t kMaxConfigFileBytes = 4 << 20;
constexpr size_t kMaxSecretFileBytes = 64 << 10;
constexpr uint64_t kMaxWorkers = 256;
// Bounds of the session keys added with timeouts, subjects and chunks
// (docs/CONFIGURATION.md, session).
constexpr size_t kMaxSubjectKeyBytes = 256;
constexpr uint64_t kMaxSessionsPerSubject = 100000;
constexpr uint64_t kMaxCookieChunksLimit = 8;  // session/cookie_header.h, kMaxCookieChunks
constexpr size_t kMinAdminTokenBytes = 16;
constexpr const char* kDefaultListen = "127.0.0.1:8080";
constexpr const char* kDefaultRedisUrl = "redis://127.0.0.1:6379/0";

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
const EnumNames<LogLevel> kLogLevelNames = {{"debug", LogLevel::kDebug},
                                            {"info", LogLevel::kInfo},
                                            {"warn", LogLevel::kWarn},
                                            {"error", LogLevel::kError}};

// The schema's mappings and their keys (docs/CONFIGURATION.md). Also given
// to the reader, so a key written in the wrong mapping is pointed to the
// right one.
#define SESSIOND_TOP_KEYS                                                                     \
  "listen", "upstream", "workers", "secret_key", "secret_key_file", "secret_key_fallbacks", \
      "session", "redis", "file", "memory", "http_store", "admin", "limits", "timeouts", "log"
#define SESSIOND_SESSION_KEYS                                                                 \
  "manager", "session_cookie_name", "session_cookie_domain", "session_cookie_path",         \
      "session_cookie_httponly", "session_cookie_secure", "session_cookie_samesite",        \
      "session_cookie_partitioned", "session_expiration_time", "session_permanent",         \
      "session_refresh_each_request", "session_create", "max_session_bytes",                \
      "session_idle_timeout", "session_absolute_timeout", "session_refresh_threshold",      \
      "subject_key", "max_sessions_per_subject", "max_cookie_chunks", "compress"
#define SESSIOND_REDIS_KEYS "url", "key_prefix", "timeout", "on_error"
#define SESSIOND_FILE_KEYS "directory"
#define SESSIOND_MEMORY_KEYS "max_sessions"
#define SESSIOND_HTTP_STORE_KEYS "url", "timeout", "token", "on_error"
#define SESSIOND_ADMIN_KEYS "listen", "token", "token_file"
#define SESSIOND_LIMITS_KEYS "max_header_bytes", "max_body_bytes"
#define SESSIOND_TIMEOUTS_KEYS "client_header", "upstream_connect", "upstream_response", "idle", "shutdown"
#define SESSIOND_LOG_KEYS "access", "level"

std::vector<SchemaSection> Schema() {
  return {{"", {SESSIOND_TOP_KEYS}},           {"session", {SESSIOND_SESSION_KEYS}},
          {"redis", {SESSIOND_REDIS_KEYS}},    {"file", {SESSIOND_FILE_KEYS}},
          {"memory", {SESSIOND_MEMORY_KEYS}},  {"http_store", {SESSIOND_HTTP_STORE_KEYS}},
          {"admin", {SESSIOND_ADMIN_KEYS}},
          {"limits", {SESSIOND_LIMITS_KEYS}},  {"timeouts", {SESSIOND_TIMEOUTS_KEYS}},
          {"log", {SESSIOND_LOG_KEYS}}};
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

  ReadSecret(root, c);
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

void ReadRedis(Section& root, RedisConfig* r) {
  Section sec = root.Child("redis", {SESSIOND_REDIS_KEYS});
  // The URL is checked even when another manager is selected, so switching
  // manager later cannot surface a latent error. A url that is there but
  // unusable (null, an unset variable) has been reported already.
  std::optional<ScalarValue> url = sec.Required("url");
  if (url || !sec.Has("url")) {
    r->url = url ? url->text : kDefaultRedisUrl;
    Status s = ParseRedisUrl(r->url, r);
    if (!s.ok()) sec.Fail(sec.ValueMark("url"), "redis.url: " + s.message());
  }
  sec.String("key_prefix", true, &r->key_prefix);
  sec.PositiveDuration("timeout", BareNumber::kError, &r->timeout);
  sec.Enum("on_error", kOnStoreErrorNames, false, &r->on_error);
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
                            std::pair{"shutdown", &c->timeouts.shutdown}}) {
    timeouts.PositiveDuration(key, BareNumber::kError, field);
  }

  Section log = root.Child("log", {SESSIOND_LOG_KEYS});
  log.Enum("access", kAccessLogNames, false, &c->log.access);
  log.Enum("level", kLogLevelNames, false, &c->log.level);
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
