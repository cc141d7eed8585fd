// Config: the whole of sessiond's configuration (docs/CONFIGURATION.md), parsed
// and validated once into an immutable value.
//
// LoadConfig() is the only way to build one. Everything derived from the raw
// YAML (resolved addresses, the worker count for "auto", the secret read from
// secret_key_file, durations in milliseconds) is computed there, so code on the
// request path reads plain fields and never re-parses. A reload builds a new
// Config and swaps the shared_ptr; a Config is never mutated after load, so any
// thread may read it without locks.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/ip_address.h"
#include "base/log.h"
#include "base/status.h"
#include "config/policy_config.h"

namespace sessiond {

using Millis = std::chrono::milliseconds;

// A resolved socket address plus the text it came from ("127.0.0.1:8080",
// "[::1]:8080"). Resolution happens at load time: numeric addresses only for
// listen addresses; upstream/redis host names are resolved with getaddrinfo.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string text;  // as written in the config, for messages
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

enum class SameSite { kNone, kLax, kStrict };
enum class StoreKind { kCookie, kRedis, kFile, kMemory, kHttp };
enum class SessionCreate { kLazy, kAlways };
enum class OnStoreError { kFailClosed, kFailOpen };
enum class AccessLogFormat { kCombined, kJson, kOff };
const char* ToString(SameSite v);
const char* ToString(StoreKind v);
const char* ToString(SessionCreate v);
const char* ToString(OnStoreError v);
const char* ToString(AccessLogFormat v);
const char* ToString(LogLevel v);
const char* ToString(LogFormat v);

// upstream: http://host[:port][/] or https://host[:port][/]
struct UpstreamConfig {
  std::string url;        // as written (after ${ENV} expansion)
  bool https = false;     // TLS to the upstream (upstream_tls)
  std::string host;       // host name or address literal, without brackets
  uint16_t port = 80;     // 443 by default for https
  SocketAddress address;  // resolved at load
};

// How a server sessiond connects to over TLS is verified and what sessiond
// presents to it: upstream_tls for an https:// upstream, redis.tls for Redis
// (docs/CONFIGURATION.md, upstream_tls and redis.tls). The files are read
// and checked at load; their bytes are kept, so what runs is what was checked.
struct ClientTlsConfig {
  std::string ca_file;                 // empty: the system's trusted CAs
  std::string ca_pem;
  // SNI and the verified name. upstream_tls: the URL's host unless set.
  // redis.tls: empty means each node's own host, as sessiond connects to it.
  std::string server_name;
  std::string client_certificate;      // path; empty: no client certificate
  std::string client_certificate_pem;
  std::string client_key;              // path
  std::string client_key_pem;          // secret: never log
};
using UpstreamTlsConfig = ClientTlsConfig;

// tls: TLS on the listener (docs/CONFIGURATION.md, tls). As for
// UpstreamTlsConfig, the files' checked bytes are kept.
struct TlsConfig {
  std::string certificate;       // path, as written
  std::string certificate_pem;   // the certificate, then its chain
  std::string private_key;       // path, as written
  std::string private_key_pem;   // secret: never log
  int min_version = 12;          // 12: TLS 1.2 and 1.3; 13: TLS 1.3 only
  std::string client_ca;         // path; empty: no client certificate asked for
  std::string client_ca_pem;
};

struct SessionConfig {
  StoreKind manager = StoreKind::kCookie;
  std::string cookie_name = "session_id";          // session_cookie_name
  std::optional<std::string> cookie_domain;        // session_cookie_domain (~ = unset)
  std::string cookie_path = "/";                   // session_cookie_path
  bool cookie_httponly = true;                     // session_cookie_httponly
  bool cookie_secure = true;                       // session_cookie_secure
  SameSite cookie_samesite = SameSite::kLax;       // session_cookie_samesite
  bool cookie_partitioned = false;                 // session_cookie_partitioned
  Millis expiration{std::chrono::minutes(1440)};   // session_expiration_time
  bool permanent = true;                           // session_permanent
  bool refresh_each_request = false;               // session_refresh_each_request
  SessionCreate create = SessionCreate::kLazy;     // session_create
  uint64_t max_session_bytes = 4096;               // max_session_bytes
  // Timeouts (docs/CONFIGURATION.md, session.session_idle_timeout and the
  // keys after it). Zero is off: no idle timeout, no absolute timeout, and a
  // sliding refresh on every request (today's behaviour).
  Millis idle_timeout{0};                          // session_idle_timeout (~ = off)
  Millis absolute_timeout{0};                      // session_absolute_timeout (~ = off)
  Millis refresh_threshold{0};                     // session_refresh_threshold (~ = every request)
  // Subjects (store managers): the data key whose value names the session's
  // user; empty = no index. max_sessions_per_subject 0 = no limit.
  std::string subject_key;                         // subject_key (~ = none)
  uint64_t max_sessions_per_subject = 0;           // max_sessions_per_subject
  // Cookie manager: a sealed value split over NAME, NAME.1, ... (at most this
  // many cookies), optionally deflated first.
  uint64_t max_cookie_chunks = 4;                  // max_cookie_chunks
  bool compress = false;                           // compress
};

// A Redis node's address as written in the config (host:port, [v6]:port).
struct RedisNodeAddress {
  std::string host;  // name or address literal, without brackets
  uint16_t port = 6379;
};

// redis.sentinel: find the master through Redis Sentinel.
struct RedisSentinelConfig {
  std::string master_name;
  std::vector<RedisNodeAddress> addresses;  // the sentinels, asked in turn
  std::string username;                     // AUTH to the sentinels (not to Redis)
  std::string password;                     // never log it
};

// redis.cluster: Redis Cluster, discovered from any of the seeds.
struct RedisClusterConfig {
  std::vector<RedisNodeAddress> seeds;
};

// redis.url: redis[s]://[:password@]host:port/db  or  unix:///path.sock[?db=N]
// (docs/CONFIGURATION.md, redis). With sentinel or cluster, the URL supplies
// the data nodes' credentials; its host is not used.
struct RedisConfig {
  std::string url;  // as written; contains the password: never log it
  bool rediss = false;  // the URL's scheme is rediss:// (TLS)
  bool unix_socket = false;
  std::string host = "127.0.0.1";  // tcp only
  uint16_t port = 6379;            // tcp only
  std::string socket_path;         // unix only
  std::string password;            // empty = no AUTH
  std::string username;            // redis 6 ACL user (redis://user:pass@...), empty = default
  int db = 0;
  std::string key_prefix = "sessiond:";
  Millis timeout{1000};
  OnStoreError on_error = OnStoreError::kFailClosed;
  std::optional<RedisSentinelConfig> sentinel;
  std::optional<RedisClusterConfig> cluster;
  int wait_replicas = 0;       // 0: answer once the master has the write
  Millis wait_timeout{100};    // how long WAIT waits for wait_replicas
  // Set: every Redis connection (data nodes, sentinels, cluster nodes)
  // speaks TLS, verified as redis.tls says; set by a rediss:// URL or
  // redis.tls.enabled: true (docs/CONFIGURATION.md, redis.tls).
  std::optional<ClientTlsConfig> tls;
};

struct FileStoreConfig {
  std::string directory = "./sessions";
};

struct MemoryStoreConfig {
  uint64_t max_sessions = 100000;
};

// http_store.url: http://host[:port][/prefix] (docs/CONFIGURATION.md, http_store)
struct HttpStoreConfig {
  std::string url;          // as written; empty when unset
  std::string host;         // for the Host header
  uint16_t port = 80;
  std::string path_prefix;  // "" or "/prefix" (no trailing slash)
  SocketAddress address;    // resolved at load
  Millis timeout{1000};
  // Sent as "Authorization: Bearer TOKEN" when not empty. A secret: never log it.
  std::string token;
  OnStoreError on_error = OnStoreError::kFailClosed;
};

struct AdminConfig {
  std::optional<SocketAddress> listen;  // no admin listener when unset
  // admin.token or the contents of admin.token_file: when not empty, every
  // admin request but /healthz and /readyz needs "Authorization: Bearer
  // TOKEN". A secret: never log it.
  std::string token;
};

struct LimitsConfig {
  uint64_t max_header_bytes = 16384;
  uint64_t max_body_bytes = 10485760;
};

struct TimeoutsConfig {
  Millis client_header{10000};
  Millis upstream_connect{2000};
  Millis upstream_response{60000};
  Millis idle{60000};
  Millis shutdown{10000};
  Millis tunnel_idle{std::chrono::minutes(5)};  // an upgraded connection with no bytes either way
  Millis tunnel_max{std::chrono::hours(24)};    // an upgraded connection's whole life
};

// websocket: upgrades (docs/HTTP.md, Upgrades and WebSockets).
struct WebSocketConfig {
  // Origins allowed to open an upgraded connection besides the request's own
  // host, in canonical form (FormatWebOrigin: lower case, no default port).
  std::vector<std::string> allowed_origins;
};

struct LogConfig {
  AccessLogFormat access = AccessLogFormat::kCombined;
  LogLevel level = LogLevel::kInfo;
  // The error log's format; the access log's is `access` alone
  // (docs/CONFIGURATION.md, log.format).
  LogFormat format = LogFormat::kText;
};

struct Config {
  std::string source_path;  // the file it was loaded from

  SocketAddress listen;
  std::optional<TlsConfig> tls;   // TLS on the listener when set
  UpstreamConfig upstream;
  UpstreamTlsConfig upstream_tls;  // used when upstream.https
  int workers = 1;            // resolved: "auto" is replaced by the core count
  bool workers_auto = false;  // true when the file said "auto"

  // Raw secret bytes (>= 32). Never log, print or put in an error message.
  std::string secret_key;
  std::string secret_key_file;  // the path when secret_key_file was used
  std::vector<std::string> secret_key_fallbacks;
  // Set when secret_key_file is readable by group or others (a warning, not an error).
  bool secret_key_file_world_readable = false;

  // Peers whose X-Forwarded-* and Forwarded headers are believed (docs/HTTP.md,
  // Forwarding and trusted proxies). Empty: none.
  std::vector<IpNetwork> trusted_proxies;

  SessionConfig session;
  RedisConfig redis;
  FileStoreConfig file;
  MemoryStoreConfig memory;
  HttpStoreConfig http_store;
  AdminConfig admin;
  LimitsConfig limits;
  TimeoutsConfig timeouts;
  WebSocketConfig websocket;
  LogConfig log;
  PolicyConfig policy;  // routes, csrf, rate_limits, upstream_signature
};

// Looks up an environment variable; returns nullopt when unset. Injected so
// tests need not touch the real environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup ProcessEnv();

// Parses and validates YAML text. `filename` is used only in error messages;
// relative paths (secret_key_file, file.directory) stay relative to the
// working directory. Returns the config or every error found, as
// Status::Invalid whose message holds one line per error, in file order,
// separated by '\n': "FILE:LINE:COL: what is wrong" (or "FILE: what is
// wrong" when there is no position, e.g. unreadable file). At most
// kMaxConfigErrors lines; a YAML syntax error stops the reading, so it comes
// alone (with any tab found in the indentation, its usual cause).
// Error messages never contain a secret value.
inline constexpr size_t kMaxConfigErrors = 20;
Result<std::shared_ptr<const Config>> ParseConfig(const std::string& yaml_text,
                                                  const std::string& filename,
                                                  const EnvLookup& env);

// Reads FILE and calls ParseConfig with the process environment.
Result<std::shared_ptr<const Config>> LoadConfig(const std::string& path);

// The one-screen summary printed by --check-config: every effective setting,
// secrets and the redis password masked.
std::string DescribeConfig(const Config& config);

// Parses a duration (docs/CONFIGURATION.md, Durations): one or more terms of
// a whole number and a unit, ms s m h d, largest unit first and each unit at
// most once: "250ms", "90s", "1h30m", "1h30m15s250ms". A bare number is NOT a
// duration here. Returns nullopt when malformed or out of range (more than
// 100 years).
std::optional<Millis> ParseDuration(const std::string& text);

// As ParseDuration, but a bare whole number means minutes: the form of
// session.session_expiration_time, whose unit was minutes in the original
// design.
std::optional<Millis> ParseMinutesOrDuration(const std::string& text);

}  // namespace sessiond
