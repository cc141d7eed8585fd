// The config_loader fuzz target: ParseConfig on arbitrary YAML text, with an
// injected environment (never the real one).
//
// Environment: a variable whose name starts with U is unset, E is empty, P is
// "8080", H is "127.0.0.1"; every other name holds kEnvSecret, a 36-byte value
// that is both a valid secret and a plausible host name (so it can reach
// every place a value can go, including messages that quote host names).
//
// Invariants: ParseConfig never throws; an error is one or more printable
// lines, each starting with the file name, that never contains an environment value
// (config.h and yaml_reader.h: such a value may be a secret) unless the YAML
// spelled it out literally; an accepted config satisfies the documented
// ranges, yields a CookieCodec (what --check-config accepts must start), and
// its DescribeConfig is one printable line per setting that does not depend
// on the secrets or the redis password at all (changing their bytes changes
// nothing) and never prints a redis URL holding a password.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "fuzz_check.h"
#include "session/cookie_codec.h"

namespace sessiond {
namespace fuzz {

inline constexpr std::string_view kEnvSecret = "fuzzenvvalue0123456789abcdefghijklmn";
inline constexpr std::string_view kConfigFileName = "fuzz.yaml";

inline std::optional<std::string> FuzzEnv(const std::string& name) {
  switch (name.empty() ? '\0' : name[0]) {
    case 'U': return std::nullopt;
    case 'E': return std::string();
    case 'P': return std::string("8080");
    case 'H': return std::string("127.0.0.1");
    default: return std::string(kEnvSecret);
  }
}

// Same length, every byte different.
inline std::string Flipped(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = static_cast<char>(c ^ 0x55);
  return out;
}

inline bool CheckAcceptedConfig(const Config& c) {
  FUZZ_CHECK(c.secret_key.size() >= 32);
  for (const std::string& f : c.secret_key_fallbacks) FUZZ_CHECK(f.size() >= 32);
  FUZZ_CHECK(c.workers >= 1 && c.workers <= 256);
  FUZZ_CHECK(c.limits.max_header_bytes >= 1024 && c.limits.max_header_bytes <= 1048576);
  FUZZ_CHECK(c.session.max_session_bytes >= 64 && c.session.max_session_bytes <= 1048576);
  FUZZ_CHECK(c.session.expiration.count() > 0);
  FUZZ_CHECK(c.listen.length > 0 && c.upstream.address.length > 0);
  FUZZ_CHECK(!(c.session.cookie_samesite == SameSite::kNone && !c.session.cookie_secure));
  FUZZ_CHECK(!(c.session.cookie_partitioned && !c.session.cookie_secure));
  FUZZ_CHECK(CookieCodec::Create(c).ok());

  const std::string described = DescribeConfig(c);
  for (std::string_view line : SplitOn(described, '\n')) {
    for (char ch : line) FUZZ_CHECK(static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7F);
  }
  Config other = c;
  other.secret_key = Flipped(c.secret_key);
  for (std::string& f : other.secret_key_fallbacks) f = Flipped(f);
  other.redis.password = Flipped(c.redis.password);
  // The URL as written carries the password (perhaps percent-encoded) in its
  // user-info: change that text too, so a description that printed the raw
  // URL would differ. (Searching the description for the URL instead fails
  // on a key_prefix that merely contains the same text.)
  const size_t scheme = other.redis.url.find("://");
  const size_t at = other.redis.url.rfind('@');
  if (scheme != std::string::npos && at != std::string::npos && at > scheme + 3) {
    const size_t from = scheme + 3;
    other.redis.url.replace(from, at - from, Flipped(other.redis.url.substr(from, at - from)));
  }
  FUZZ_CHECK(DescribeConfig(other) == described);
  return true;
}

inline bool CheckConfigText(std::string_view text) {
  std::optional<Result<std::shared_ptr<const Config>>> parsed;
  try {
    parsed.emplace(ParseConfig(std::string(text), std::string(kConfigFileName), FuzzEnv));
  } catch (...) {
    FUZZ_CHECK(!"ParseConfig let an exception escape");
  }
  const Result<std::shared_ptr<const Config>>& r = *parsed;
  if (!r.ok()) {
    const std::string& m = r.status().message();
    FUZZ_CHECK(r.status().code() == Status::Code::kInvalid);
    // One or more lines (every error of the file), each naming the file,
    // at most kMaxConfigErrors of them plus a "more not shown" line.
    size_t lines = 0;
    for (std::string_view line : SplitOn(m, '\n')) {
      ++lines;
      FUZZ_CHECK(line.substr(0, kConfigFileName.size() + 1) == std::string(kConfigFileName) + ":");
      for (char ch : line) FUZZ_CHECK(static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7F);
    }
    FUZZ_CHECK(lines >= 1 && lines <= kMaxConfigErrors + 1);
    if (text.find(kEnvSecret) == std::string_view::npos) FUZZ_CHECK(m.find(kEnvSecret) == std::string::npos);
    return true;
  }
  FUZZ_CHECK(*r != nullptr);
  return CheckAcceptedConfig(**r);
}

}  // namespace fuzz
}  // namespace sessiond
