#include "config/redis_url.h"

#include <arpa/inet.h>
#include <strings.h>

#include <cstring>

#include "config/address.h"
#include "config/numbers.h"

namespace sessiond {
namespace config_internal {

namespace {

constexpr uint64_t kMaxDb = 2147483647;  // hiredis sends SELECT with an int

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool PercentDecode(const std::string& in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      *out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = HexValue(in[i + 1]);
    int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    *out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

Status ParseDb(const std::string& text, int* db) {
  std::optional<uint64_t> n = ParseDecimal(text);
  if (!n || *n > kMaxDb) return Status::Invalid("the database must be a non-negative integer");
  *db = static_cast<int>(*n);
  return Status::OK();
}

Status ParseTcp(const std::string& rest, RedisConfig* out) {
  // The last '@' ends the user info, so an unencoded '@' in a password works.
  size_t at = rest.rfind('@');
  std::string hostpart = at == std::string::npos ? rest : rest.substr(at + 1);
  if (at != std::string::npos) {
    std::string userinfo = rest.substr(0, at);
    size_t colon = userinfo.find(':');
    if (colon == std::string::npos) {
      return Status::Invalid("user info must be [user]:password@ (a password is required)");
    }
    if (!PercentDecode(userinfo.substr(0, colon), &out->username) ||
        !PercentDecode(userinfo.substr(colon + 1), &out->password)) {
      return Status::Invalid("bad %-escape in the user info");
    }
    if (out->password.empty()) return Status::Invalid("the password after ':' is empty");
  }
  if (hostpart.find_first_of("?#") != std::string::npos) {
    return Status::Invalid("a ?query or #fragment is not supported in redis:// and rediss:// URLs");
  }
  size_t slash = hostpart.find('/');
  std::string authority = hostpart.substr(0, slash);
  if (slash != std::string::npos && slash + 1 < hostpart.size()) {
    Status s = ParseDb(hostpart.substr(slash + 1), &out->db);
    if (!s.ok()) return s;
  }
  bool bracketed = false;
  Status s = SplitHostPort(authority, 6379, &out->host, &bracketed, &out->port);
  if (!s.ok()) return s;
  if (bracketed) {
    in6_addr a6{};
    if (inet_pton(AF_INET6, out->host.c_str(), &a6) != 1) {
      return Status::Invalid("not a valid IPv6 address between [ and ]");
    }
  } else if (!IsPlausibleHostName(out->host)) {
    return Status::Invalid("not a valid host name");
  }
  return Status::OK();
}

Status ParseUnix(const std::string& rest, RedisConfig* out) {
  size_t q = rest.find('?');
  out->socket_path = rest.substr(0, q);
  if (out->socket_path.size() < 2 || out->socket_path[0] != '/') {
    return Status::Invalid("expected an absolute socket path, as unix:///path/to/redis.sock");
  }
  if (q == std::string::npos) return Status::OK();
  std::string query = rest.substr(q + 1);
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string param = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    pos = amp == std::string::npos ? query.size() + 1 : amp + 1;
    if (param.empty()) continue;
    size_t eq = param.find('=');
    std::string name = param.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : param.substr(eq + 1);
    if (name == "db") {
      Status s = ParseDb(value, &out->db);
      if (!s.ok()) return s;
    } else if (name == "password") {
      if (!PercentDecode(value, &out->password)) {
        return Status::Invalid("bad %-escape in the password");
      }
    } else {
      return Status::Invalid("unknown parameter after '?' (expected db= or password=)");
    }
  }
  return Status::OK();
}

}  // namespace

Status ParseRedisUrl(const std::string& url, RedisConfig* out) {
  out->rediss = false;
  out->unix_socket = false;
  out->host = "127.0.0.1";
  out->port = 6379;
  out->socket_path.clear();
  out->username.clear();
  out->password.clear();
  out->db = 0;
  if (strncasecmp(url.c_str(), "rediss://", 9) == 0) {
    out->rediss = true;
    return ParseTcp(url.substr(9), out);
  }
  if (strncasecmp(url.c_str(), "redis://", 8) == 0) return ParseTcp(url.substr(8), out);
  if (strncasecmp(url.c_str(), "unix://", 7) == 0) {
    out->unix_socket = true;
    return ParseUnix(url.substr(7), out);
  }
  return Status::Invalid("expected redis://host:port/db, rediss://host:port/db (TLS) or unix:///path.sock");
}

std::string MaskedRedisUrl(const RedisConfig& redis) {
  const bool has_password = !redis.password.empty();
  if (redis.unix_socket) {
    return "unix://" + redis.socket_path + "?db=" + std::to_string(redis.db) +
           (has_password ? "&password=***" : "");
  }
  std::string url = redis.rediss ? "rediss://" : "redis://";
  if (has_password) url += redis.username + ":***@";
  url += redis.host.find(':') == std::string::npos ? redis.host : "[" + redis.host + "]";
  return url + ":" + std::to_string(redis.port) + "/" + std::to_string(redis.db);
}

}  // namespace config_internal
}  // namespace sessiond
