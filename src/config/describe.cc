// DescribeConfig: the summary `sessiond --check-config` prints. One line per
// setting, named by its YAML path so an operator can find it in the file; the
// secret appears only as its length and the redis password as "***".
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "config/address.h"
#include "config/config.h"
#include "config/policy_reader.h"
#include "config/redis_url.h"

namespace sessiond {

namespace {

using namespace config_internal;

// In ParseDuration's syntax, largest unit first ("1h30m", "10s", "250ms"),
// so the output can be pasted back into the file.
std::string FormatDuration(Millis d) {
  long long ms = d.count();
  if (ms <= 0) return "0s";
  struct Unit {
    long long millis;
    const char* suffix;
  };
  static const Unit kUnits[] = {
      {86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
  std::string out;
  for (const Unit& u : kUnits) {
    if (ms >= u.millis) {
      out += std::to_string(ms / u.millis) + u.suffix;
      ms %= u.millis;
    }
  }
  return out;
}

// Keeps every value on its own line, whatever bytes it holds.
std::string Printable(const std::string& text) {
  std::string out;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::string Quoted(const std::string& text) { return "\"" + Printable(text) + "\""; }

const char* Bool(bool b) { return b ? "true" : "false"; }

class Lines {
 public:
  void Add(const char* key, const std::string& value) {
    std::string padded = key;
    padded.resize(std::max<size_t>(padded.size() + 1, 38), ' ');
    out_ << padded << value << '\n';
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

std::string JoinStrings(const std::vector<std::string>& items, const char* empty) {
  if (items.empty()) return empty;
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + Printable(items[i]);
  return out + "]";
}

std::string JoinNetworks(const std::vector<IpNetwork>& networks) {
  std::vector<std::string> items;
  for (const IpNetwork& n : networks) items.push_back(FormatIpAddress(n.base) + "/" + std::to_string(n.prefix));
  return JoinStrings(items, "[] (no peer is trusted)");
}

}  // namespace

std::string DescribeConfig(const Config& c) {
  Lines l;
  l.Add("config", Printable(c.source_path));
  l.Add("listen", FormatSocketAddress(c.listen));
  if (c.tls) {
    // Paths only: the key's bytes never leave the process.
    l.Add("tls.certificate", Printable(c.tls->certificate));
    l.Add("tls.private_key", Printable(c.tls->private_key));
    l.Add("tls.min_version", c.tls->min_version >= 13 ? "1.3" : "1.2");
    l.Add("tls.client_ca", c.tls->client_ca.empty() ? "~ (no client certificates)" : Printable(c.tls->client_ca));
  } else {
    l.Add("tls", "~ (plain HTTP)");
  }
  l.Add("upstream", Printable(c.upstream.url) + " -> " + FormatSocketAddress(c.upstream.address));
  if (c.upstream.https) {
    const UpstreamTlsConfig& u = c.upstream_tls;
    l.Add("upstream_tls.ca_file", u.ca_file.empty() ? "~ (the system's CAs)" : Printable(u.ca_file));
    l.Add("upstream_tls.server_name", Printable(u.server_name));
    l.Add("upstream_tls.client_certificate",
          u.client_certificate.empty() ? "~ (none)" : Printable(u.client_certificate));
    l.Add("upstream_tls.client_key", u.client_key.empty() ? "~ (none)" : Printable(u.client_key));
  }
  l.Add("workers", std::to_string(c.workers) + (c.workers_auto ? " (auto)" : ""));
  std::string secret =
      "(" +
      (c.secret_key_file.empty() ? std::string("set") : "from " + Printable(c.secret_key_file)) +
      ", " + std::to_string(c.secret_key.size()) + " bytes)";
  if (c.secret_key_file_world_readable) secret += "  WARNING: readable by group/others";
  l.Add("secret_key", secret);
  l.Add("secret_key_fallbacks", std::to_string(c.secret_key_fallbacks.size()) + " key(s)");
  l.Add("trusted_proxies", JoinNetworks(c.trusted_proxies));

  const SessionConfig& s = c.session;
  l.Add("session.manager", ToString(s.manager));
  l.Add("session.session_cookie_name", Printable(s.cookie_name));
  l.Add("session.session_cookie_domain",
        s.cookie_domain ? Printable(*s.cookie_domain) : "~ (unset)");
  l.Add("session.session_cookie_path", Printable(s.cookie_path));
  l.Add("session.session_cookie_httponly", Bool(s.cookie_httponly));
  l.Add("session.session_cookie_secure", Bool(s.cookie_secure));
  l.Add("session.session_cookie_samesite", ToString(s.cookie_samesite));
  l.Add("session.session_cookie_partitioned", Bool(s.cookie_partitioned));
  l.Add("session.session_expiration_time", FormatDuration(s.expiration));
  l.Add("session.session_permanent", Bool(s.permanent));
  l.Add("session.session_refresh_each_request", Bool(s.refresh_each_request));
  l.Add("session.session_create", ToString(s.create));
  l.Add("session.max_session_bytes", std::to_string(s.max_session_bytes));
  // Keys that do nothing in this configuration are left out or share a
  // line, so that the summary fits one screen.
  auto off_or = [](Millis d, const char* off) { return d.count() > 0 ? FormatDuration(d) : std::string(off); };
  if (s.idle_timeout.count() == 0 && s.absolute_timeout.count() == 0) {
    l.Add("session.session_idle_timeout, session_absolute_timeout", "~ (off)");
  } else {
    l.Add("session.session_idle_timeout", off_or(s.idle_timeout, "~ (off)"));
    l.Add("session.session_absolute_timeout", off_or(s.absolute_timeout, "~ (off)"));
  }
  if (s.refresh_each_request || s.idle_timeout.count() > 0) {
    l.Add("session.session_refresh_threshold", off_or(s.refresh_threshold, "~ (every request)"));
  }
  if (s.manager == StoreKind::kCookie) {
    l.Add("session.max_cookie_chunks", std::to_string(s.max_cookie_chunks));
    l.Add("session.compress", Bool(s.compress));
  } else {
    l.Add("session.subject_key", s.subject_key.empty() ? "~ (no subject index)" : Quoted(s.subject_key));
    if (!s.subject_key.empty()) {
      l.Add("session.max_sessions_per_subject",
            s.max_sessions_per_subject > 0 ? std::to_string(s.max_sessions_per_subject) : "0 (no limit)");
    }
  }

  // Store sections keep their (validated) values when another manager is in
  // use; say so, or an operator may think they take effect.
  auto unused_unless = [&](StoreKind kind) {
    return s.manager == kind ? ""
                             : " (unused: manager is " + std::string(ToString(s.manager)) + ")";
  };
  l.Add("redis.url", Printable(MaskedRedisUrl(c.redis)) + unused_unless(StoreKind::kRedis));
  if (s.manager == StoreKind::kRedis) {  // the rest of an unused section would only fill the screen
    l.Add("redis.key_prefix", Quoted(c.redis.key_prefix));
    l.Add("redis.timeout", FormatDuration(c.redis.timeout));
    l.Add("redis.on_error", ToString(c.redis.on_error));
    auto nodes = [](const std::vector<RedisNodeAddress>& list) {
      std::string text;
      for (const RedisNodeAddress& n : list) {
        if (!text.empty()) text += ", ";
        text += (n.host.find(':') == std::string::npos ? n.host : "[" + n.host + "]") + ":" + std::to_string(n.port);
      }
      return Printable(text);
    };
    if (c.redis.sentinel) {
      const RedisSentinelConfig& sentinel = *c.redis.sentinel;
      l.Add("redis.sentinel.master_name", Quoted(sentinel.master_name));
      l.Add("redis.sentinel.addresses", nodes(sentinel.addresses));
      l.Add("redis.sentinel.username", sentinel.username.empty() ? "(none)" : Quoted(sentinel.username));
      l.Add("redis.sentinel.password", sentinel.password.empty() ? "(none)" : "***");
    }
    if (c.redis.cluster) l.Add("redis.cluster.seeds", nodes(c.redis.cluster->seeds));
    if (c.redis.tls) {
      // Paths only, as for upstream_tls.
      const ClientTlsConfig& t = *c.redis.tls;
      std::string tls = "on, CA " + (t.ca_file.empty() ? std::string("the system's") : Printable(t.ca_file)) +
                        ", name " + (t.server_name.empty() ? std::string("each node's host") : Printable(t.server_name));
      if (!t.client_certificate.empty()) {
        tls += ", client certificate " + Printable(t.client_certificate) + " (key " + Printable(t.client_key) + ")";
      }
      l.Add("redis.tls", tls);
    } else {
      l.Add("redis.tls", "~ (plain TCP)");
    }
    l.Add("redis.wait_replicas", std::to_string(c.redis.wait_replicas));
    l.Add("redis.wait_timeout", FormatDuration(c.redis.wait_timeout));
  }
  l.Add("file.directory", Printable(c.file.directory) + unused_unless(StoreKind::kFile));
  l.Add("memory.max_sessions",
        std::to_string(c.memory.max_sessions) + unused_unless(StoreKind::kMemory));
  if (s.manager == StoreKind::kHttp || !c.http_store.url.empty()) {  // an unset, unused section says nothing
    l.Add("http_store.url", (c.http_store.url.empty() ? std::string("~ (unset)") : Printable(c.http_store.url)) +
                                unused_unless(StoreKind::kHttp));
  }
  if (s.manager == StoreKind::kHttp) {
    l.Add("http_store.timeout", FormatDuration(c.http_store.timeout));
    l.Add("http_store.token", c.http_store.token.empty() ? "~ (none)" : "*** (set)");
    l.Add("http_store.on_error", ToString(c.http_store.on_error));
  }
  l.Add("admin.listen",
        c.admin.listen ? FormatSocketAddress(*c.admin.listen) : "~ (no admin listener)");
  l.Add("admin.token", c.admin.token.empty() ? "~ (none: /sessions is refused)" : "*** (set)");
  l.Add("limits.max_header_bytes", std::to_string(c.limits.max_header_bytes));
  l.Add("limits.max_body_bytes", std::to_string(c.limits.max_body_bytes));
  l.Add("timeouts.client_header", FormatDuration(c.timeouts.client_header));
  l.Add("timeouts.upstream_connect", FormatDuration(c.timeouts.upstream_connect));
  l.Add("timeouts.upstream_response", FormatDuration(c.timeouts.upstream_response));
  l.Add("timeouts.idle", FormatDuration(c.timeouts.idle));
  l.Add("timeouts.shutdown", FormatDuration(c.timeouts.shutdown));
  l.Add("timeouts.tunnel_idle", FormatDuration(c.timeouts.tunnel_idle));
  l.Add("timeouts.tunnel_max", FormatDuration(c.timeouts.tunnel_max));
  l.Add("websocket.allowed_origins", JoinStrings(c.websocket.allowed_origins, "[] (the request's own host only)"));
  l.Add("log.access", ToString(c.log.access));
  l.Add("log.level", ToString(c.log.level));
  l.Add("log.format", ToString(c.log.format));
  for (const auto& [key, value] : DescribePolicy(c.policy)) l.Add(key.c_str(), Printable(value));
  return l.str();
}

}  // namespace sessiond
