// Tests for the configuration loader (src/config/): schema, defaults, error
// positions, ${ENV} expansion, secrets, addresses, URLs and the summary.
#include "config/config.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "tls_test_util.h"

using namespace sessiond;
using namespace std::chrono_literals;

namespace {

const std::string kSecret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t";  // 34 bytes

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// The two required keys, then `extra` starting on line 3.
std::string Minimal(const std::string& extra = "") {
  return "upstream: http://127.0.0.1:3000\nsecret_key: " + kSecret + "\n" + extra;
}

Result<std::shared_ptr<const Config>> Parse(const std::string& text,
                                            std::map<std::string, std::string> env = {}) {
  return ParseConfig(text, "test.yaml", FakeEnv(std::move(env)));
}

// The error message of a config that must not load ("" if it loaded).
std::string ErrorOf(const std::string& text, std::map<std::string, std::string> env = {}) {
  auto result = Parse(text, std::move(env));
  if (result.ok()) return "";
  CHECK(result.status().code() == Status::Code::kInvalid);
  return result.status().message();
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}
bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

uint16_t PortOf(const SocketAddress& a) {
  if (a.storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_port);
}

std::string HostOf(const SocketAddress& a) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (a.storage.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr, buf,
              sizeof(buf));
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr, buf,
              sizeof(buf));
  }
  return buf;
}

// A file under /tmp holding `content` with permission bits `mode`; removed
// when the object goes away.
class TempFile {
 public:
  TempFile(const std::string& content, mode_t mode) {
    char name[] = "/tmp/sessiond_config_test_XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    close(fd);
    path_ = name;
    REQUIRE(chmod(name, mode) == 0);
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

TEST_CASE("omitted keys take the defaults of docs/CONFIGURATION.md") {
  auto r = Parse(Minimal());
  REQUIRE(r.ok());
  const Config& c = **r;
  CHECK(c.source_path == "test.yaml");
  CHECK(c.listen.text == "127.0.0.1:8080");
  CHECK(c.listen.storage.ss_family == AF_INET);
  CHECK(HostOf(c.listen) == "127.0.0.1");
  CHECK(PortOf(c.listen) == 8080);
  CHECK(c.listen.length == sizeof(sockaddr_in));
  CHECK(c.workers == 1);
  CHECK_FALSE(c.workers_auto);
  CHECK(c.secret_key == kSecret);
  CHECK(c.secret_key_file.empty());
  CHECK(c.secret_key_fallbacks.empty());
  CHECK(c.session.manager == StoreKind::kCookie);
  CHECK(c.session.cookie_name == "session_id");
  CHECK_FALSE(c.session.cookie_domain.has_value());
  CHECK(c.session.cookie_path == "/");
  CHECK(c.session.cookie_httponly);
  CHECK(c.session.cookie_secure);
  CHECK(c.session.cookie_samesite == SameSite::kLax);
  CHECK_FALSE(c.session.cookie_partitioned);
  CHECK(c.session.expiration == std::chrono::minutes(1440));
  CHECK(c.session.permanent);
  CHECK_FALSE(c.session.refresh_each_request);
  CHECK(c.session.create == SessionCreate::kLazy);
  CHECK(c.session.max_session_bytes == 4096);
  CHECK(c.redis.url == "redis://127.0.0.1:6379/0");
  CHECK_FALSE(c.redis.unix_socket);
  CHECK(c.redis.host == "127.0.0.1");
  CHECK(c.redis.port == 6379);
  CHECK(c.redis.db == 0);
  CHECK(c.redis.password.empty());
  CHECK(c.redis.key_prefix == "sessiond:");
  CHECK(c.redis.timeout == 1s);
  CHECK(c.redis.on_error == OnStoreError::kFailClosed);
  CHECK(c.file.directory == "./sessions");
  CHECK(c.memory.max_sessions == 100000);
  CHECK_FALSE(c.admin.listen.has_value());
  CHECK(c.limits.max_header_bytes == 16384);
  CHECK(c.limits.max_body_bytes == 10485760);
  CHECK(c.timeouts.client_header == 10s);
  CHECK(c.timeouts.upstream_connect == 2s);
  CHECK(c.timeouts.upstream_response == 60s);
  CHECK(c.timeouts.idle == 60s);
  CHECK(c.timeouts.shutdown == 10s);
  CHECK(c.log.access == AccessLogFormat::kCombined);
  CHECK(c.log.level == LogLevel::kInfo);
  CHECK(c.log.format == LogFormat::kText);
}

TEST_CASE("sessiond.yaml.example loads and matches the defaults") {
  std::ifstream in("sessiond.yaml.example");
  REQUIRE_MESSAGE(in.good(), "run the tests from the top of the repository");
  std::stringstream text;
  text << in.rdbuf();
  const std::string env_secret = "an-example-secret-of-more-than-32-bytes";
  auto r =
      ParseConfig(text.str(), "sessiond.yaml.example", FakeEnv({{"SESSIOND_SECRET", env_secret}}));
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  const Config& c = **r;
  auto defaults = Parse(Minimal());
  REQUIRE(defaults.ok());
  const Config& d = **defaults;
  CHECK(c.secret_key == env_secret);
  CHECK(PortOf(c.upstream.address) == 3000);
  CHECK(c.listen.text == d.listen.text);
  CHECK(c.workers == d.workers);
  CHECK(c.session.cookie_samesite == d.session.cookie_samesite);
  CHECK(c.session.expiration == d.session.expiration);
  CHECK(c.redis.key_prefix == d.redis.key_prefix);
  CHECK(c.redis.url == d.redis.url);
  CHECK_FALSE(c.admin.listen.has_value());
  CHECK(c.timeouts.shutdown == d.timeouts.shutdown);
  // Same summary apart from the file name: every effective setting agrees.
  std::string described = DescribeConfig(c);
  std::string expected = DescribeConfig(d);
  described = described.substr(described.find('\n'));
  expected = expected.substr(expected.find('\n'));
  const std::string secret_line_example = "(set, " + std::to_string(env_secret.size()) + " bytes)";
  const std::string secret_line_default = "(set, " + std::to_string(kSecret.size()) + " bytes)";
  expected.replace(expected.find(secret_line_default), secret_line_default.size(),
                   secret_line_example);
  CHECK(described == expected);
}

TEST_CASE("sessiond.yaml.example without SESSIOND_SECRET names the variable") {
  std::ifstream in("sessiond.yaml.example");
  std::stringstream text;
  text << in.rdbuf();
  auto r = ParseConfig(text.str(), "sessiond.yaml.example", FakeEnv({}));
  REQUIRE_FALSE(r.ok());
  CHECK(Contains(r.status().message(), "SESSIOND_SECRET is not set"));
}

TEST_CASE("unknown keys are errors at the key's line and column") {
  CHECK(ErrorOf(Minimal("bogus: 1\n")) == "test.yaml:3:1: unknown key 'bogus'");
  CHECK(ErrorOf(Minimal("session:\n  manager: cookie\n    \n  colour: red\n")) ==
        "test.yaml:6:3: unknown key 'session.colour'");
  CHECK(ErrorOf(Minimal("timeouts: {idle: 5s, idel: 5s}\n")) ==
        "test.yaml:3:22: unknown key 'timeouts.idel' (did you mean 'idle'?)");
}

TEST_CASE("duplicate keys are errors at the second occurrence") {
  CHECK(ErrorOf(Minimal("workers: 2\nworkers: 3\n")) == "test.yaml:4:1: duplicate key 'workers'");
  CHECK(ErrorOf(Minimal("log:\n  level: info\n  level: debug\n")) ==
        "test.yaml:5:3: duplicate key 'log.level'");
}

TEST_CASE("a document that is not a mapping, or empty, is an error") {
  CHECK(StartsWith(ErrorOf("- a\n- b\n"), "test.yaml:1:1: the configuration must be a mapping"));
  CHECK(StartsWith(ErrorOf("just text\n"), "test.yaml:1:1: the configuration must be a mapping"));
  std::string empty = ErrorOf("");
  CHECK(StartsWith(empty, "test.yaml:1:1: the configuration is empty"));
  CHECK(Contains(empty, "upstream"));
  CHECK(Contains(empty, "secret_key"));
  CHECK(StartsWith(ErrorOf("# only a comment\n"), "test.yaml:1:1: the configuration is empty"));
  CHECK(Contains(ErrorOf(Minimal() + "---\nworkers: 2\n"), "only one YAML document"));
}

TEST_CASE("YAML syntax errors carry FILE:LINE:COL") {
  std::string e = ErrorOf(Minimal("session: [1, 2\n"));
  CHECK(StartsWith(e, "test.yaml:4:1: YAML syntax error: "));
  CHECK(StartsWith(ErrorOf("a: 'unterminated\n"), "test.yaml:"));
}

TEST_CASE("required keys: upstream, and exactly one secret form") {
  CHECK(Contains(ErrorOf("secret_key: " + kSecret + "\n"), "upstream is required"));
  CHECK(Contains(ErrorOf("upstream: http://127.0.0.1:3000\n"),
                 "secret_key (or secret_key_file) is required"));
  TempFile file(kSecret, 0600);
  std::string both = ErrorOf(Minimal("secret_key_file: " + file.path() + "\n"));
  CHECK(StartsWith(both, "test.yaml:3:1: "));
  CHECK(Contains(both, "both set"));
  CHECK_FALSE(Contains(both, kSecret));
}

TEST_CASE("wrong types are errors at the value") {
  CHECK(
      StartsWith(ErrorOf(Minimal("session: 5\n")), "test.yaml:3:10: session: expected a mapping"));
  CHECK(StartsWith(ErrorOf(Minimal("workers: [1]\n")),
                   "test.yaml:3:10: workers: expected a single value, not a list"));
  CHECK(Contains(ErrorOf(Minimal("secret_key_fallbacks: abc\n")),
                 "secret_key_fallbacks: expected a list"));
  CHECK(Contains(ErrorOf(Minimal("limits:\n  max_body_bytes: {a: 1}\n")),
                 "limits.max_body_bytes: expected a single value, not a mapping"));
  CHECK(Contains(ErrorOf(Minimal("workers:\n")), "test.yaml:3:1: workers: a value is required"));
}

TEST_CASE("bad values name the key and the accepted forms") {
  CHECK(ErrorOf(Minimal("session:\n  manager: mysql\n")) ==
        "test.yaml:4:12: session.manager: expected one of cookie | redis | file | memory | http "
        "(got \"mysql\")");
  CHECK(Contains(ErrorOf(Minimal("log: {level: loud}\n")), "log.level: expected one of"));
  CHECK(Contains(ErrorOf(Minimal("log: {access: xml}\n")), "log.access: expected one of"));
  CHECK(Contains(ErrorOf(Minimal("log: {format: combined}\n")), "log.format: expected one of text | json"));
  CHECK(Contains(ErrorOf(Minimal("redis: {on_error: ignore}\n")), "redis.on_error"));
  CHECK(Contains(ErrorOf(Minimal("session: {session_create: never}\n")), "session.session_create"));
  CHECK(Contains(ErrorOf(Minimal("session: {session_cookie_secure: maybe}\n")),
                 "expected true or false"));
  CHECK(Contains(ErrorOf(Minimal("session: {max_session_bytes: 63}\n")), "from 64 to 1048576"));
  CHECK(
      Contains(ErrorOf(Minimal("session: {max_session_bytes: 1048577}\n")), "from 64 to 1048576"));
  CHECK(
      Contains(ErrorOf(Minimal("limits: {max_header_bytes: 1023}\n")), "limits.max_header_bytes"));
  CHECK(Contains(ErrorOf(Minimal("limits: {max_body_bytes: 1099511627777}\n")),
                 "limits.max_body_bytes"));
  CHECK(Contains(ErrorOf(Minimal("memory: {max_sessions: 0}\n")), "memory.max_sessions"));
  CHECK(Contains(ErrorOf(Minimal("file: {directory: ''}\n")), "file.directory: must not be empty"));
}

TEST_CASE("sizes reject floats, signs and words but accept quoted digits") {
  for (std::string bad : {"4096.0", "-4096", "+4096", "4e3", "0x1000", "lots", "4_096"}) {
    CAPTURE(bad);
    CHECK(Contains(ErrorOf(Minimal("session: {max_session_bytes: " + bad + "}\n")),
                   "session.max_session_bytes: expected a size"));
  }
  auto r = Parse(Minimal("session: {max_session_bytes: \"8192\"}\nlimits: {max_body_bytes: 0}\n"));
  REQUIRE(r.ok());
  CHECK((*r)->session.max_session_bytes == 8192);
  CHECK((*r)->limits.max_body_bytes == 0);
}

TEST_CASE("booleans accept the YAML 1.1 spellings") {
  auto r =
      Parse(Minimal("session:\n  session_cookie_httponly: no\n  session_permanent: off\n"
                    "  session_refresh_each_request: yes\n  session_cookie_partitioned: On\n"));
  REQUIRE(r.ok());
  CHECK_FALSE((*r)->session.cookie_httponly);
  CHECK_FALSE((*r)->session.permanent);
  CHECK((*r)->session.refresh_each_request);
  CHECK((*r)->session.cookie_partitioned);
  CHECK(Contains(ErrorOf(Minimal("session: {session_permanent: 1}\n")), "expected true or false"));
}

TEST_CASE("${NAME} is expanded in any scalar before it is interpreted") {
  auto r = Parse(Minimal("workers: ${W}\nsession:\n  session_cookie_name: ${P}_${S}\n"
                         "  session_permanent: ${B}\n"),
                 {{"W", "4"}, {"P", "app"}, {"S", "sid"}, {"B", "false"}});
  REQUIRE(r.ok());
  CHECK((*r)->workers == 4);
  CHECK((*r)->session.cookie_name == "app_sid");
  CHECK_FALSE((*r)->session.permanent);

  SUBCASE("an unset variable is named at the scalar's position") {
    CHECK(ErrorOf(Minimal("workers: ${NOPE}\n")) ==
          "test.yaml:3:10: workers: environment variable NOPE is not set");
    // In a flow list '{' is syntax, so the reference is quoted there.
    CHECK(Contains(ErrorOf(Minimal("secret_key_fallbacks: ['${OLD}']\n")), "OLD is not set"));
  }
  SUBCASE("a malformed reference is an error that does not echo the text") {
    for (std::string bad : {"${", "${}", "${1X}", "${A-B}", "${OPEN"}) {
      CAPTURE(bad);
      std::string e = ErrorOf(Minimal("file: {directory: 'x" + bad + "'}\n"));
      CHECK(Contains(e, "file.directory: malformed environment reference"));
      CHECK_FALSE(Contains(e, "x" + bad));
    }
  }
  SUBCASE("a value that came from the environment is never quoted in an error") {
    std::string e = ErrorOf(Minimal("workers: ${W}\n"), {{"W", "hunter2-secret"}});
    CHECK(Contains(e, "workers: expected an integer"));
    CHECK_FALSE(Contains(e, "hunter2"));
  }
  SUBCASE("a lone $ is literal") {
    auto d = Parse(Minimal("redis: {key_prefix: \"a$b$\"}\n"));
    REQUIRE(d.ok());
    CHECK((*d)->redis.key_prefix == "a$b$");
  }
}

TEST_CASE("ParseDuration: a number and a unit, or a compound, largest unit first") {
  CHECK(ParseDuration("90s") == Millis(90000));
  CHECK(ParseDuration("30m") == Millis(30 * 60000));
  CHECK(ParseDuration("12h") == Millis(12 * 3600000LL));
  CHECK(ParseDuration("7d") == Millis(7 * 86400000LL));
  CHECK(ParseDuration("250ms") == Millis(250));
  CHECK(ParseDuration("0s") == Millis(0));
  CHECK(ParseDuration("36525d") == Millis(36525LL * 86400000LL));
  // Compounds (docs/CONFIGURATION.md, Durations).
  CHECK(ParseDuration("1h30m") == Millis(90 * 60000));
  CHECK(ParseDuration("1m30s") == Millis(90000));
  CHECK(ParseDuration("1h30m15s250ms") == Millis(5415250));
  CHECK(ParseDuration("1d12h") == Millis(36 * 3600000LL));
  CHECK(ParseDuration("2s500ms") == Millis(2500));
  CHECK(ParseDuration("36524d23h59m59s999ms") == Millis(36525LL * 86400000LL - 1));
}

TEST_CASE("ParseDuration rejects bare numbers, malformed and out-of-range text") {
  for (std::string bad : {"", "15", "0", "-5", "-5s", "5x", "1.5h", "5 m", " 5", "5s ", "s", "5S",
                          "30m1h", "1h1h", "1s1m", "1h30", "1h 30m", "h1", "1hm", "1h30m15s250ms1",
                          "36526d", "876601h", "36525d1ms", "99999999999999999999",
                          "18446744073709551615ms", "18446744073709551615d1s"}) {
    CAPTURE(bad);
    CHECK_FALSE(ParseDuration(bad).has_value());
  }
}

TEST_CASE("ParseMinutesOrDuration: a bare number is minutes") {
  CHECK(ParseMinutesOrDuration("15") == Millis(15 * 60000));
  CHECK(ParseMinutesOrDuration("1440") == Millis(1440LL * 60000));
  CHECK(ParseMinutesOrDuration("1h30m") == Millis(90 * 60000));
  CHECK(ParseMinutesOrDuration("52596000") == Millis(52596000LL * 60000));  // 100 years
  CHECK_FALSE(ParseMinutesOrDuration("52596001").has_value());
  CHECK_FALSE(ParseMinutesOrDuration("15x").has_value());
}

TEST_CASE("duration keys: a unit is required except for session_expiration_time (minutes)") {
  auto r = Parse(Minimal("session: {session_expiration_time: 60}\ntimeouts: {idle: 250ms}\n"));
  REQUIRE(r.ok());
  CHECK((*r)->session.expiration == std::chrono::minutes(60));
  CHECK((*r)->timeouts.idle == 250ms);
  auto compound = Parse(Minimal("session: {session_expiration_time: 1h30m}\n"
                                "timeouts: {upstream_response: 1m30s, shutdown: 2s500ms}\n"));
  REQUIRE_MESSAGE(compound.ok(), compound.status().message());
  CHECK((*compound)->session.expiration == 90min);
  CHECK((*compound)->timeouts.upstream_response == 90s);
  CHECK((*compound)->timeouts.shutdown == 2500ms);

  // The bug of the issue: "upstream_connect: 5" meant five MINUTES.
  CHECK(ErrorOf(Minimal("timeouts:\n  upstream_connect: 5\n")) ==
        "test.yaml:4:21: timeouts.upstream_connect: add a unit, e.g. 5s (a bare number is not a "
        "duration here; units: ms s m h d)");
  for (std::string key : {"client_header", "upstream_response", "idle", "shutdown"}) {
    CAPTURE(key);
    CHECK(Contains(ErrorOf(Minimal("timeouts: {" + key + ": 30}\n")),
                   "timeouts." + key + ": add a unit, e.g. 30s"));
  }
  CHECK(Contains(ErrorOf(Minimal("redis: {timeout: 2}\n")), "redis.timeout: add a unit, e.g. 2s"));
  // From the environment the number is not echoed (environment values never are).
  std::string env = ErrorOf(Minimal("redis: {timeout: '${T}'}\n"), {{"T", "7"}});
  CHECK(Contains(env, "redis.timeout: add a unit, e.g. 5s"));
  CHECK_FALSE(Contains(env, "7s"));

  CHECK(ErrorOf(Minimal("timeouts:\n  idle: 0s\n")) ==
        "test.yaml:4:9: timeouts.idle: must be greater than zero");
  CHECK(Contains(ErrorOf(Minimal("session: {session_expiration_time: 0}\n")),
                 "must be greater than zero"));
  CHECK(Contains(ErrorOf(Minimal("redis: {timeout: 1y}\n")), "redis.timeout: expected a duration"));
  CHECK(Contains(ErrorOf(Minimal("timeouts: {shutdown: -1s}\n")), "timeouts.shutdown"));
  CHECK(Contains(ErrorOf(Minimal("timeouts: {shutdown: 30m1h}\n")), "timeouts.shutdown: expected a duration"));
}

TEST_CASE("size keys: a byte count, or KB MB (1000) KiB MiB (1024)") {
  auto r = Parse(Minimal("limits: {max_header_bytes: 16KiB, max_body_bytes: 10MB}\n"
                         "session: {max_session_bytes: 2KB}\n"));
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK((*r)->limits.max_header_bytes == 16384);
  CHECK((*r)->limits.max_body_bytes == 10000000);
  CHECK((*r)->session.max_session_bytes == 2000);
  auto m = Parse(Minimal("limits: {max_header_bytes: 512KB, max_body_bytes: 10MiB}\n"
                         "session: {max_session_bytes: 1MiB}\n"));
  REQUIRE_MESSAGE(m.ok(), m.status().message());
  CHECK((*m)->limits.max_header_bytes == 512000);
  CHECK((*m)->limits.max_body_bytes == 10485760);
  CHECK((*m)->session.max_session_bytes == 1048576);
  // The range applies to the bytes, whatever the unit.
  CHECK(ErrorOf(Minimal("session:\n  max_session_bytes: 2MiB\n")) ==
        "test.yaml:4:22: session.max_session_bytes: must be from 64 to 1048576 bytes (got \"2MiB\")");
  for (std::string bad : {"10 MB", "10mb", "10Mb", "1.5MB", "MB", "10GB", "-1KB", "10KiBs", "0x10"}) {
    CAPTURE(bad);
    CHECK(Contains(ErrorOf(Minimal("limits: {max_body_bytes: '" + bad + "'}\n")),
                   "limits.max_body_bytes: expected a size"));
  }
  CHECK(Contains(ErrorOf(Minimal("limits: {max_body_bytes: 20000000MiB}\n")),
                 "limits.max_body_bytes: must be from 0 to 1099511627776 bytes"));
  CHECK(Contains(ErrorOf(Minimal("limits: {max_body_bytes: 99999999999999999999KB}\n")),
                 "limits.max_body_bytes: expected a size"));
}

TEST_CASE("a short secret_key is rejected without printing it") {
  const std::string short_secret = "tooshort-secret-value";
  std::string e = ErrorOf("upstream: http://127.0.0.1:3000\nsecret_key: " + short_secret + "\n");
  CHECK(StartsWith(e, "test.yaml:2:13: secret_key: must be at least 32 bytes (got 21)"));
  CHECK_FALSE(Contains(e, short_secret));
  std::string from_env =
      ErrorOf("upstream: http://127.0.0.1:3000\nsecret_key: ${S}\n", {{"S", short_secret}});
  CHECK(Contains(from_env, "at least 32 bytes"));
  CHECK_FALSE(Contains(from_env, short_secret));
}

TEST_CASE("secret_key_fallbacks: a list of keys of at least 32 bytes") {
  auto r =
      Parse(Minimal("secret_key_fallbacks:\n  - " + kSecret + "-old1\n  - " + kSecret + "-old2\n"));
  REQUIRE(r.ok());
  REQUIRE((*r)->secret_key_fallbacks.size() == 2);
  CHECK((*r)->secret_key_fallbacks[1] == kSecret + "-old2");
  std::string e = ErrorOf(Minimal("secret_key_fallbacks:\n  - " + kSecret + "\n  - short-old\n"));
  CHECK(StartsWith(e, "test.yaml:5:5: secret_key_fallbacks[1]: must be at least 32 bytes"));
  CHECK_FALSE(Contains(e, "short-old"));
  auto none = Parse(Minimal("secret_key_fallbacks: ~\n"));
  REQUIRE(none.ok());
  CHECK((*none)->secret_key_fallbacks.empty());
}

TEST_CASE("secret_key_file: one trailing newline stripped, world-readable flagged") {
  const std::string base = "upstream: http://127.0.0.1:3000\nsecret_key_file: ";
  SUBCASE("private file with \\n") {
    TempFile f(kSecret + "\n", 0600);
    auto r = Parse(base + f.path() + "\n");
    REQUIRE(r.ok());
    CHECK((*r)->secret_key == kSecret);
    CHECK((*r)->secret_key_file == f.path());
    CHECK_FALSE((*r)->secret_key_file_world_readable);
  }
  SUBCASE("group/other readable file with \\r\\n") {
    TempFile f(kSecret + "\r\n", 0644);
    auto r = Parse(base + f.path() + "\n");
    REQUIRE(r.ok());
    CHECK((*r)->secret_key == kSecret);
    CHECK((*r)->secret_key_file_world_readable);
  }
  SUBCASE("group-readable only still counts") {
    TempFile f(kSecret, 0640);
    auto r = Parse(base + f.path() + "\n");
    REQUIRE(r.ok());
    CHECK((*r)->secret_key == kSecret);
    CHECK((*r)->secret_key_file_world_readable);
  }
  SUBCASE("only ONE newline is stripped") {
    TempFile f(kSecret + "\n\n", 0600);
    auto r = Parse(base + f.path() + "\n");
    REQUIRE(r.ok());
    CHECK((*r)->secret_key == kSecret + "\n");
  }
  SUBCASE("a short key in the file is rejected without printing it") {
    TempFile f("short-file-secret\n", 0600);
    std::string e = ErrorOf(base + f.path() + "\n");
    CHECK(Contains(e, "at least 32 bytes (got 17)"));
    CHECK_FALSE(Contains(e, "short-file-secret"));
  }
  SUBCASE("an unreadable file is an error with the OS reason") {
    std::string e = ErrorOf(base + "/nonexistent/sessiond/secret\n");
    CHECK(e ==
          "test.yaml:2:18: secret_key_file: cannot read /nonexistent/sessiond/secret: "
          "No such file or directory");
    CHECK(Contains(ErrorOf(base + "/tmp\n"), "Is a directory"));
  }
}

TEST_CASE("SameSite=None and Partitioned require secure") {
  std::string e =
      ErrorOf(Minimal("session:\n  session_cookie_secure: false\n"
                      "  session_cookie_samesite: None\n"));
  CHECK(e ==
        "test.yaml:5:28: session.session_cookie_samesite: None requires "
        "session_cookie_secure: true");
  std::string p =
      ErrorOf(Minimal("session:\n  session_cookie_partitioned: true\n"
                      "  session_cookie_secure: false\n"));
  CHECK(StartsWith(p, "test.yaml:4:31: session.session_cookie_partitioned: requires"));
  auto ok =
      Parse(Minimal("session: {session_cookie_samesite: none, session_cookie_partitioned: "
                    "true}\n"));
  REQUIRE(ok.ok());
  CHECK((*ok)->session.cookie_samesite == SameSite::kNone);
  CHECK((*ok)->session.cookie_partitioned);
  auto strict =
      Parse(Minimal("session: {session_cookie_samesite: STRICT, "
                    "session_cookie_secure: false}\n"));
  REQUIRE(strict.ok());
  CHECK(strict.value()->session.cookie_samesite == SameSite::kStrict);
  CHECK(Contains(ErrorOf(Minimal("session: {session_cookie_samesite: Medium}\n")),
                 "expected one of None | Lax | Strict"));
}

TEST_CASE("cookie name, domain and path are validated") {
  for (std::string bad : {"'a b'", "'a;b'", "''", "'a=b'", "\"s\\u00e9\""}) {
    CAPTURE(bad);
    CHECK(Contains(ErrorOf(Minimal("session: {session_cookie_name: " + bad + "}\n")),
                   "session.session_cookie_name"));
  }
  for (std::string bad : {"'a;b.com'", "'a,b.com'", "'a b.com'", "'a..b'", "'x.com.'"}) {
    CAPTURE(bad);
    CHECK(Contains(ErrorOf(Minimal("session: {session_cookie_domain: " + bad + "}\n")),
                   "session.session_cookie_domain"));
  }
  for (std::string bad : {"app", "'/a;b'", "\"/a\\tb\"", "''", "\"/caf\\u00e9\""}) {
    CAPTURE(bad);
    CHECK(Contains(ErrorOf(Minimal("session: {session_cookie_path: " + bad + "}\n")),
                   "session.session_cookie_path"));
  }
  auto r =
      Parse(Minimal("session:\n  session_cookie_name: __Host-sid\n"
                    "  session_cookie_domain: .example.com\n  session_cookie_path: /app\n"));
  REQUIRE(r.ok());
  CHECK((*r)->session.cookie_name == "__Host-sid");
  CHECK((*r)->session.cookie_domain == std::optional<std::string>(".example.com"));
  CHECK((*r)->session.cookie_path == "/app");
  auto unset = Parse(Minimal("session: {session_cookie_domain: null}\n"));
  REQUIRE(unset.ok());
  CHECK_FALSE((*unset)->session.cookie_domain.has_value());
}

TEST_CASE("listen addresses: IPv4, [IPv6], localhost") {
  auto v4 = Parse(Minimal("listen: 0.0.0.0:80\n"));
  REQUIRE(v4.ok());
  CHECK((*v4)->listen.storage.ss_family == AF_INET);
  CHECK(HostOf((*v4)->listen) == "0.0.0.0");
  CHECK(PortOf((*v4)->listen) == 80);
  CHECK((*v4)->listen.text == "0.0.0.0:80");

  auto v6 = Parse(Minimal("listen: '[::1]:8443'\n"));
  REQUIRE(v6.ok());
  CHECK((*v6)->listen.storage.ss_family == AF_INET6);
  CHECK((*v6)->listen.length == sizeof(sockaddr_in6));
  CHECK(HostOf((*v6)->listen) == "::1");
  CHECK(PortOf((*v6)->listen) == 8443);

  auto local = Parse(Minimal("listen: localhost:9000\n"));
  REQUIRE(local.ok());
  CHECK(HostOf((*local)->listen) == "127.0.0.1");
  CHECK(PortOf((*local)->listen) == 9000);
  CHECK((*local)->listen.text == "localhost:9000");
}

TEST_CASE("listen addresses: bad hosts and ports are errors") {
  for (std::string bad :
       {"127.0.0.1:0", "127.0.0.1:65536", "'127.0.0.1:'", "127.0.0.1", "127.0.0.1:http", "':8080'",
        "'::1:8080'", "example.com:80", "'[zz]:80'", "'[::1]'", "'[::1]8080'", "256.0.0.1:80"}) {
    CAPTURE(bad);
    std::string e = ErrorOf(Minimal("listen: " + bad + "\n"));
    CHECK(StartsWith(e, "test.yaml:3:9: listen: "));
  }
  CHECK(Contains(ErrorOf(Minimal("listen: '::1:8080'\n")), "in brackets"));
  CHECK(Contains(ErrorOf(Minimal("listen: 127.0.0.1:0\n")), "from 1 to 65535"));
}

TEST_CASE("admin.listen: optional, parsed like listen, distinct from it") {
  auto r = Parse(Minimal("admin:\n  listen: '[::]:9090'\n"));
  REQUIRE(r.ok());
  REQUIRE((*r)->admin.listen.has_value());
  CHECK(PortOf(*(*r)->admin.listen) == 9090);
  CHECK((*r)->admin.listen->storage.ss_family == AF_INET6);
  auto off = Parse(Minimal("admin:\n  listen: ~\n"));
  REQUIRE(off.ok());
  CHECK_FALSE((*off)->admin.listen.has_value());
  CHECK(StartsWith(ErrorOf(Minimal("admin: {listen: 1.2.3.4:99999}\n")),
                   "test.yaml:3:17: admin.listen: "));
  CHECK(Contains(ErrorOf(Minimal("admin: {listen: 127.0.0.1:8080}\n")), "must differ from listen"));
}

TEST_CASE("upstream URL forms") {
  auto v4 = Parse("upstream: http://127.0.0.1:3000\nsecret_key: " + kSecret + "\n");
  REQUIRE(v4.ok());
  CHECK((*v4)->upstream.url == "http://127.0.0.1:3000");
  CHECK((*v4)->upstream.host == "127.0.0.1");
  CHECK((*v4)->upstream.port == 3000);
  CHECK(HostOf((*v4)->upstream.address) == "127.0.0.1");
  CHECK(PortOf((*v4)->upstream.address) == 3000);

  auto v6 = Parse("upstream: 'http://[::1]:8000/'\nsecret_key: " + kSecret + "\n");
  REQUIRE(v6.ok());
  CHECK((*v6)->upstream.host == "::1");
  CHECK((*v6)->upstream.address.storage.ss_family == AF_INET6);
  CHECK(PortOf((*v6)->upstream.address) == 8000);

  auto named = Parse("upstream: http://localhost\nsecret_key: " + kSecret + "\n");
  REQUIRE(named.ok());
  CHECK((*named)->upstream.port == 80);
  CHECK(HostOf((*named)->upstream.address) == "127.0.0.1");

  auto from_env = Parse("upstream: http://${H}:${P}/\nsecret_key: " + kSecret + "\n",
                        {{"H", "10.1.2.3"}, {"P", "8081"}});
  REQUIRE(from_env.ok());
  CHECK(HostOf((*from_env)->upstream.address) == "10.1.2.3");
  CHECK((*from_env)->upstream.port == 8081);
}

TEST_CASE("upstream URL errors") {
  auto err = [](const std::string& url) {
    return ErrorOf("upstream: '" + url + "'\nsecret_key: " + kSecret + "\n");
  };
  CHECK(err("ftp://127.0.0.1") == "test.yaml:1:11: upstream: expected http://host[:port] or https://host[:port]");
  CHECK(Contains(err("127.0.0.1:3000"), "expected http://host[:port]"));
  CHECK(Contains(err("https://127.0.0.1:3000/api"), "a path is not supported"));
  CHECK(Contains(err("http://127.0.0.1:3000/api"), "a path is not supported"));
  CHECK(Contains(err("http://127.0.0.1:3000/?x=1"), "query is not supported"));
  CHECK(Contains(err("http://127.0.0.1:3000#top"), "fragment is not supported"));
  CHECK(Contains(err("http://127.0.0.1:0"), "from 1 to 65535"));
  CHECK(Contains(err("http://"), "host is missing"));
  CHECK(Contains(err("http://[fe80::zz]:80"), "not a valid IPv6"));
  CHECK(Contains(err("http://bad host"), "not a valid host name"));
  std::string userinfo = err("http://admin:Upstr3amPw@127.0.0.1:3000");
  CHECK(Contains(userinfo, "user info"));
  CHECK_FALSE(Contains(userinfo, "Upstr3amPw"));
  CHECK(StartsWith(err("http://no-such-host.invalid:3000"),
                   "test.yaml:1:11: upstream: cannot resolve host no-such-host.invalid"));
}

TEST_CASE("redis URL forms") {
  auto redis = [](const std::string& url) {
    return Parse(Minimal("session: {manager: redis}\nredis:\n  url: '" + url + "'\n"));
  };
  auto full = redis("redis://:pa%40ss:w0rd@10.0.0.5:6380/3");
  REQUIRE(full.ok());
  const RedisConfig& f = (*full)->redis;
  CHECK(f.url == "redis://:pa%40ss:w0rd@10.0.0.5:6380/3");
  CHECK_FALSE(f.unix_socket);
  CHECK(f.host == "10.0.0.5");
  CHECK(f.port == 6380);
  CHECK(f.db == 3);
  CHECK(f.username.empty());
  CHECK(f.password == "pa@ss:w0rd");

  auto user = redis("redis://alice:pw@cache.internal");
  REQUIRE(user.ok());
  CHECK((*user)->redis.username == "alice");
  CHECK((*user)->redis.password == "pw");
  CHECK((*user)->redis.host == "cache.internal");
  CHECK((*user)->redis.port == 6379);
  CHECK((*user)->redis.db == 0);

  auto v6 = redis("redis://[::1]:7000/");
  REQUIRE(v6.ok());
  CHECK((*v6)->redis.host == "::1");
  CHECK((*v6)->redis.port == 7000);
  CHECK((*v6)->redis.db == 0);

  auto sock = redis("unix:///run/redis/redis.sock?db=2&password=s%3Bcret");
  REQUIRE(sock.ok());
  CHECK((*sock)->redis.unix_socket);
  CHECK((*sock)->redis.socket_path == "/run/redis/redis.sock");
  CHECK((*sock)->redis.db == 2);
  CHECK((*sock)->redis.password == "s;cret");

  auto plain_sock = redis("unix:///tmp/r.sock");
  REQUIRE(plain_sock.ok());
  CHECK((*plain_sock)->redis.socket_path == "/tmp/r.sock");
  CHECK((*plain_sock)->redis.db == 0);
  CHECK((*plain_sock)->redis.password.empty());
}

TEST_CASE("redis URL errors never echo the password, whatever the manager") {
  auto err = [](const std::string& url) {
    return ErrorOf(Minimal("redis:\n  url: '" + url + "'\n"));
  };
  for (std::string bad :
       {"redis://:Sup3rS3cretPw@h:0", "redis://:Sup3rS3cretPw@h:99999",
        "redis://:Sup3rS3cretPw@h/x", "redis://:Sup3rS3cretPw@h/-1",
        "redis://:Sup3rS3cretPw@h/2147483648", "rediss://:Sup3rS3cretPw@h:0",
        "http://:Sup3rS3cretPw@h", "redis://Sup3rS3cretPw@h", "redis://:Sup3rS3cretPw%zz@h",
        "redis://:Sup3rS3cretPw@", "redis://:Sup3rS3cretPw@[zz]:1", "redis://:Sup3rS3cretPw@h?db=1",
        "unix://relative.sock?password=Sup3rS3cretPw",
        "unix:///s.sock?password=Sup3rS3cretPw&foo=1",
        "unix:///s.sock?password=Sup3rS3cretPw&db=x"}) {
    CAPTURE(bad);
    std::string e = err(bad);
    CHECK(StartsWith(e, "test.yaml:4:8: redis.url: "));
    CHECK_FALSE(Contains(e, "Sup3rS3cretPw"));
  }
  CHECK(Contains(err("redis+tls://h"), "rediss://host:port/db (TLS)"));
}

TEST_CASE("redis.sentinel and redis.cluster: nodes, credentials, and what may not go together") {
  auto sentinel = Parse(Minimal(
      "session: {manager: redis}\n"
      "redis:\n"
      "  url: redis://app:data-pw@ignored:1/2\n"
      "  sentinel:\n"
      "    master_name: mymaster\n"
      "    addresses: [10.0.0.1, '10.0.0.2:26380', '[::1]:26381']\n"
      "    username: watcher\n"
      "    password: s3ntinel-pw\n"));
  REQUIRE(sentinel.ok());
  const RedisConfig& s = (*sentinel)->redis;
  REQUIRE(s.sentinel.has_value());
  CHECK(s.sentinel->master_name == "mymaster");
  REQUIRE(s.sentinel->addresses.size() == 3);
  CHECK(s.sentinel->addresses[0].host == "10.0.0.1");
  CHECK(s.sentinel->addresses[0].port == 26379);  // the sentinel port by default
  CHECK(s.sentinel->addresses[1].port == 26380);
  CHECK(s.sentinel->addresses[2].host == "::1");
  CHECK(s.sentinel->username == "watcher");
  CHECK(s.sentinel->password == "s3ntinel-pw");
  CHECK(s.username == "app");  // the data node's, from the URL
  CHECK(s.password == "data-pw");
  CHECK(s.db == 2);
  CHECK_FALSE(s.cluster.has_value());
  const std::string described = DescribeConfig(**sentinel);
  CHECK(Contains(described, "10.0.0.1:26379, 10.0.0.2:26380, [::1]:26381"));
  CHECK_FALSE(Contains(described, "s3ntinel-pw"));
  CHECK_FALSE(Contains(described, "data-pw"));

  auto cluster = Parse(Minimal("session: {manager: redis}\nredis:\n  cluster: {seeds: ['10.0.0.1:7000', node-2.internal]}\n"));
  REQUIRE(cluster.ok());
  REQUIRE((*cluster)->redis.cluster.has_value());
  REQUIRE((*cluster)->redis.cluster->seeds.size() == 2);
  CHECK((*cluster)->redis.cluster->seeds[0].port == 7000);
  CHECK((*cluster)->redis.cluster->seeds[1].host == "node-2.internal");
  CHECK((*cluster)->redis.cluster->seeds[1].port == 6379);
  CHECK(Contains(DescribeConfig(**cluster), "redis.cluster.seeds"));

  CHECK(Contains(ErrorOf(Minimal("redis:\n  cluster: {seeds: [a:1]}\n  sentinel: {master_name: m, addresses: [b]}\n")),
                 "redis.cluster and redis.sentinel are both set; use one"));
  CHECK(Contains(ErrorOf(Minimal("redis:\n  url: redis://h/3\n  cluster: {seeds: [a:1]}\n")),
                 "redis.url: Redis Cluster has only database 0"));
  CHECK(Contains(ErrorOf(Minimal("redis:\n  url: unix:///r.sock\n  cluster: {seeds: [a:1]}\n")),
                 "redis.url: with redis.cluster"));
  CHECK(Contains(ErrorOf(Minimal("redis:\n  cluster: {seeds: []}\n")), "redis.cluster.seeds: must list at least one"));
  CHECK(Contains(ErrorOf(Minimal("redis:\n  cluster: {}\n")), "redis.cluster.seeds is required"));
  CHECK(Contains(ErrorOf(Minimal("redis:\n  cluster: {seeds: ['a:99999']}\n")), "redis.cluster.seeds[0]: "));
  CHECK(Contains(ErrorOf(Minimal("redis:\n  cluster: {seeds: ['bad host:1']}\n")), "redis.cluster.seeds[0]: "));
  CHECK(Contains(ErrorOf(Minimal("redis:\n  cluster: {seed: [a:1]}\n")), "did you mean 'seeds'"));
  CHECK(Contains(ErrorOf(Minimal("redis:\n  sentinel: {addresses: [a]}\n")), "redis.sentinel.master_name is required"));
  CHECK(Contains(ErrorOf(Minimal("redis:\n  sentinel: {master_name: '', addresses: [a]}\n")),
                 "redis.sentinel.master_name: must not be empty"));
  CHECK(Contains(ErrorOf(Minimal("redis:\n  sentinel: {master_name: m}\n")), "redis.sentinel.addresses is required"));
  const std::string no_pw = ErrorOf(Minimal("redis:\n  sentinel: {master_name: m, addresses: [a], username: u}\n"));
  CHECK(Contains(no_pw, "redis.sentinel.username: needs redis.sentinel.password"));
}

TEST_CASE("redis.wait_replicas and redis.wait_timeout") {
  auto defaults = Parse(Minimal());
  REQUIRE(defaults.ok());
  CHECK((*defaults)->redis.wait_replicas == 0);
  CHECK((*defaults)->redis.wait_timeout == 100ms);
  auto set = Parse(Minimal("redis: {wait_replicas: 2, wait_timeout: 250ms, timeout: 2s}\n"));
  REQUIRE(set.ok());
  CHECK((*set)->redis.wait_replicas == 2);
  CHECK((*set)->redis.wait_timeout == 250ms);
  CHECK(Contains(ErrorOf(Minimal("redis: {wait_replicas: 1, wait_timeout: 1s}\n")),
                 "redis.wait_timeout: must be shorter than redis.timeout (1000 ms)"));
  CHECK(Contains(ErrorOf(Minimal("redis: {wait_replicas: -1}\n")), "redis.wait_replicas: expected an integer"));
  CHECK(Contains(ErrorOf(Minimal("redis: {wait_replicas: 65}\n")), "redis.wait_replicas: expected an integer"));
  CHECK(Contains(ErrorOf(Minimal("redis: {wait_timeout: 0s}\n")), "redis.wait_timeout"));
}

TEST_CASE("workers: a count or auto") {
  auto r = Parse(Minimal("workers: auto\n"));
  REQUIRE(r.ok());
  const int expected =
      static_cast<int>(std::max(1u, std::min(256u, std::thread::hardware_concurrency())));
  CHECK((*r)->workers == expected);
  CHECK((*r)->workers_auto);
  auto n = Parse(Minimal("workers: 256\n"));
  REQUIRE(n.ok());
  CHECK((*n)->workers == 256);
  CHECK_FALSE((*n)->workers_auto);
  for (std::string bad : {"0", "257", "-1", "1.5", "Auto", "many"}) {
    CAPTURE(bad);
    CHECK(Contains(ErrorOf(Minimal("workers: " + bad + "\n")),
                   "workers: expected an integer from 1 to 256, or auto"));
  }
}

TEST_CASE("every key is read: a full non-default file") {
  auto r = Parse(
      Minimal("session:\n  manager: file\n  session_create: always\n  session_expiration_time: 7d\n"
              "redis:\n  key_prefix: 'app:'\n  timeout: 250ms\n  on_error: fail_open\n"
              "file:\n  directory: /var/lib/sessiond\nmemory:\n  max_sessions: 5\n"
              "limits:\n  max_header_bytes: 1024\n  max_body_bytes: 1099511627776\n"
              "timeouts:\n  client_header: 1s\n  upstream_connect: 2s\n  upstream_response: 3s\n"
              "  idle: 4s\n  shutdown: 5s\nlog:\n  access: json\n  level: debug\n  format: json\n"));
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  const Config& c = **r;
  CHECK(c.session.manager == StoreKind::kFile);
  CHECK(c.session.create == SessionCreate::kAlways);
  CHECK(c.session.expiration == std::chrono::hours(7 * 24));
  CHECK(c.redis.key_prefix == "app:");
  CHECK(c.redis.timeout == 250ms);
  CHECK(c.redis.on_error == OnStoreError::kFailOpen);
  CHECK(c.file.directory == "/var/lib/sessiond");
  CHECK(c.memory.max_sessions == 5);
  CHECK(c.limits.max_header_bytes == 1024);
  CHECK(c.limits.max_body_bytes == (uint64_t{1} << 40));
  CHECK(c.timeouts.client_header == 1s);
  CHECK(c.timeouts.upstream_connect == 2s);
  CHECK(c.timeouts.upstream_response == 3s);
  CHECK(c.timeouts.idle == 4s);
  CHECK(c.timeouts.shutdown == 5s);
  CHECK(c.log.access == AccessLogFormat::kJson);
  CHECK(c.log.level == LogLevel::kDebug);
  CHECK(c.log.format == LogFormat::kJson);
}

TEST_CASE("DescribeConfig masks the secret and the redis password and fits one screen") {
  auto r = Parse(Minimal("secret_key_fallbacks: ['" + kSecret +
                         "-old']\n"
                         "session: {manager: redis}\n"
                         "redis: {url: 'redis://bob:Sup3rS3cretPw@127.0.0.1:6380/1'}\n"
                         "admin: {listen: '[::1]:9090'}\n"));
  REQUIRE(r.ok());
  std::string text = DescribeConfig(**r);
  CHECK_FALSE(Contains(text, kSecret));
  CHECK_FALSE(Contains(text, "s3cr3t"));
  CHECK_FALSE(Contains(text, "Sup3rS3cretPw"));
  CHECK(Contains(text, "(set, 34 bytes)"));
  CHECK(Contains(text, "redis://bob:***@127.0.0.1:6380/1"));
  CHECK(Contains(text, "1 key(s)"));
  CHECK(Contains(text, "[::1]:9090"));
  CHECK(Contains(text, "session_cookie_samesite"));
  CHECK(Contains(text, "timeouts.shutdown"));
  size_t lines = std::count(text.begin(), text.end(), '\n');
  CHECK(lines >= 30);
  CHECK(lines <= 48);  // one 50-line screen

  TempFile f(kSecret + "\n", 0644);
  auto from_file = Parse("upstream: http://127.0.0.1:3000\nsecret_key_file: " + f.path() +
                         "\n"
                         "redis: {url: 'unix:///tmp/r.sock?password=Sup3rS3cretPw'}\n");
  REQUIRE(from_file.ok());
  std::string t2 = DescribeConfig(**from_file);
  CHECK(Contains(t2, "(from " + f.path() + ", 34 bytes)"));
  CHECK(Contains(t2, "readable by group/others"));
  CHECK(Contains(t2, "password=***"));
  CHECK_FALSE(Contains(t2, "Sup3rS3cretPw"));
  CHECK_FALSE(Contains(t2, kSecret));
}

TEST_CASE("ToString gives the YAML spelling of every enum value") {
  CHECK(std::string(ToString(SameSite::kNone)) == "None");
  CHECK(std::string(ToString(SameSite::kLax)) == "Lax");
  CHECK(std::string(ToString(SameSite::kStrict)) == "Strict");
  CHECK(std::string(ToString(StoreKind::kCookie)) == "cookie");
  CHECK(std::string(ToString(StoreKind::kRedis)) == "redis");
  CHECK(std::string(ToString(StoreKind::kFile)) == "file");
  CHECK(std::string(ToString(StoreKind::kMemory)) == "memory");
  CHECK(std::string(ToString(SessionCreate::kLazy)) == "lazy");
  CHECK(std::string(ToString(SessionCreate::kAlways)) == "always");
  CHECK(std::string(ToString(OnStoreError::kFailClosed)) == "fail_closed");
  CHECK(std::string(ToString(OnStoreError::kFailOpen)) == "fail_open");
  CHECK(std::string(ToString(AccessLogFormat::kCombined)) == "combined");
  CHECK(std::string(ToString(AccessLogFormat::kJson)) == "json");
  CHECK(std::string(ToString(AccessLogFormat::kOff)) == "off");
  CHECK(std::string(ToString(LogLevel::kDebug)) == "debug");
  CHECK(std::string(ToString(LogLevel::kInfo)) == "info");
  CHECK(std::string(ToString(LogLevel::kWarn)) == "warn");
  CHECK(std::string(ToString(LogLevel::kError)) == "error");
}

TEST_CASE("LoadConfig reads the file and reports an unreadable one") {
  auto missing = LoadConfig("/nonexistent/sessiond.yaml");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message() ==
        "/nonexistent/sessiond.yaml: cannot read: No such file or directory");

  TempFile f(Minimal("workers: 3\n"), 0600);
  auto r = LoadConfig(f.path());
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK((*r)->workers == 3);
  CHECK((*r)->source_path == f.path());

  TempFile bad(Minimal("nope: 1\n"), 0600);
  auto e = LoadConfig(bad.path());
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message() == bad.path() + ":3:1: unknown key 'nope'");
}

TEST_CASE("ProcessEnv reads the process environment") {
  setenv("SESSIOND_CONFIG_TEST_VAR", "value-1", 1);
  EnvLookup env = ProcessEnv();
  CHECK(env("SESSIOND_CONFIG_TEST_VAR") == std::optional<std::string>("value-1"));
  unsetenv("SESSIOND_CONFIG_TEST_VAR");
  CHECK_FALSE(env("SESSIOND_CONFIG_TEST_VAR").has_value());
}

// ---- errors an operator meets first (docs/CONFIGURATION.md, Errors) ----------

TEST_CASE("every error of a file is reported at once, one line each, in file order") {
  const std::string e = ErrorOf(Minimal("log: {level: loud}\nbogus: 1\ntimeouts:\n  idle: 5\n"
                                        "  shutdown: 1y\nsession:\n  max_session_bytes: 10\n"));
  CHECK(e ==
        "test.yaml:3:14: log.level: expected one of debug | info | warn | error (got \"loud\")\n"
        "test.yaml:4:1: unknown key 'bogus'\n"
        "test.yaml:6:9: timeouts.idle: add a unit, e.g. 5s (a bare number is not a duration here; "
        "units: ms s m h d)\n"
        "test.yaml:7:13: timeouts.shutdown: expected a duration such as 250ms, 90s, 30m, 12h, 7d or "
        "1h30m, at most 100 years (got \"1y\")\n"
        "test.yaml:9:22: session.max_session_bytes: must be from 64 to 1048576 bytes (got \"10\")");
  // Errors in several sections and both secrets missing: all of them.
  const std::string both = ErrorOf("upstream: ftp://x\nworkers: 0\n");
  CHECK(Contains(both, "upstream: "));
  CHECK(Contains(both, "workers: expected an integer"));
  CHECK(Contains(both, "secret_key (or secret_key_file) is required"));
  CHECK(std::count(both.begin(), both.end(), '\n') == 2);
}

TEST_CASE("the number of reported errors is bounded") {
  std::string text = Minimal();
  for (int i = 0; i < 50; ++i) text += "bogus" + std::to_string(i) + ": 1\n";
  const std::string e = ErrorOf(text);
  CHECK(std::count(e.begin(), e.end(), '\n') == static_cast<long>(kMaxConfigErrors));
  CHECK(Contains(e, "test.yaml: 30 more error(s) not shown"));
}

TEST_CASE("an unknown key suggests the nearest key of its section") {
  // The issue's example, and no second "upstream is required" for it.
  CHECK(ErrorOf("upsteam: http://127.0.0.1:3000\nsecret_key: " + kSecret + "\n") ==
        "test.yaml:1:1: unknown key 'upsteam' (did you mean 'upstream'?)");
  CHECK(ErrorOf(Minimal("timeouts:\n  upstream_conect: 2s\n")) ==
        "test.yaml:4:3: unknown key 'timeouts.upstream_conect' (did you mean 'upstream_connect'?)");
  CHECK(Contains(ErrorOf(Minimal("session: {sesion_cookie_name: x}\n")),
                 "unknown key 'session.sesion_cookie_name' (did you mean 'session_cookie_name'?)"));
  CHECK(Contains(ErrorOf(Minimal("log: {Level: info}\n")), "(did you mean 'level'?)"));
  CHECK(Contains(ErrorOf(Minimal("redis: {url: 'redis://127.0.0.1:1/0', timout: 1s}\n")),
                 "unknown key 'redis.timout' (did you mean 'timeout'?)"));
  std::string secret = ErrorOf("upstream: http://127.0.0.1:3000\nsecret_ky: " + kSecret + "\n");
  CHECK(secret == "test.yaml:2:1: unknown key 'secret_ky' (did you mean 'secret_key'?)");
  // Nothing near: no guess.
  CHECK(ErrorOf(Minimal("colour: red\n")) == "test.yaml:3:1: unknown key 'colour'");
  CHECK(ErrorOf(Minimal("timeouts: {connect: 2s}\n")) == "test.yaml:3:12: unknown key 'timeouts.connect'");
}

TEST_CASE("a key written in the wrong mapping is pointed to the right one") {
  CHECK(ErrorOf(Minimal("manager: redis\n")) ==
        "test.yaml:3:1: unknown key 'manager' (it belongs under 'session:')");
  CHECK(ErrorOf(Minimal("session_cookie_name: sid\nsession_expiration_time: 1h\n")) ==
        "test.yaml:3:1: unknown key 'session_cookie_name' (it belongs under 'session:')\n"
        "test.yaml:4:1: unknown key 'session_expiration_time' (it belongs under 'session:')");
  CHECK(Contains(ErrorOf(Minimal("idle: 5s\n")), "unknown key 'idle' (it belongs under 'timeouts:')"));
  CHECK(Contains(ErrorOf(Minimal("max_body_bytes: 1MB\n")), "(it belongs under 'limits:')"));
  CHECK(Contains(ErrorOf(Minimal("session: {workers: 2}\n")),
                 "unknown key 'session.workers' (it belongs at the top level, not under 'session:')"));
}

TEST_CASE("a tab in the indentation is named with its line and column") {
  CHECK(ErrorOf(Minimal("session:\n\tmanager: cookie\n")) ==
        "test.yaml:4:1: YAML syntax error: a tab in the indentation; YAML indents with spaces only");
  CHECK(ErrorOf(Minimal("session:\n  manager: cookie\n  \tsession_cookie_name: x\n")) ==
        "test.yaml:5:3: YAML syntax error: a tab in the indentation; YAML indents with spaces only");
  // A tab elsewhere is no error, and a syntax error without tabs is reported as before.
  CHECK(Parse(Minimal("log:\t{level: info}\n")).ok());
  CHECK(StartsWith(ErrorOf(Minimal("session: [1, 2\n")), "test.yaml:4:1: YAML syntax error: "));
}

TEST_CASE("an unclosed quote is a syntax error, not an error about the swallowed value") {
  // The issue: the quote swallowed the secret line, then the error blamed the URL.
  const std::string to_end = ErrorOf("upstream: \"http://127.0.0.1:3000\nsecret_key: ${S}\nworkers: 1\n",
                                     {{"S", kSecret}});
  CHECK(to_end ==
        "test.yaml:1:11: YAML syntax error: unclosed quote: the value quoted with \" here runs to "
        "the end of the file; close it on this line");
  const std::string next = ErrorOf("upstream: 'http://127.0.0.1:3000\nsecret_key: ${S}'\nworkers: 1\n",
                                   {{"S", kSecret}});
  CHECK(next ==
        "test.yaml:1:11: YAML syntax error: unclosed quote: the value quoted with ' here runs on "
        "to line 2; close it on this line");
  CHECK_FALSE(Contains(to_end + next, "URL"));
  CHECK_FALSE(Contains(to_end + next, kSecret));
  // Closed quotes, escaped quotes inside them, and quotes in lists are fine.
  auto ok = Parse(Minimal("session: {session_cookie_path: \"/a\\\"b\"}\nredis: {key_prefix: 'it''s:'}\n"
                          "secret_key_fallbacks: [\"" + kSecret + "-old\"]\n"));
  REQUIRE_MESSAGE(ok.ok(), ok.status().message());
  CHECK((*ok)->redis.key_prefix == "it's:");
  const std::string in_list = ErrorOf(Minimal("secret_key_fallbacks: [\"" + kSecret + "\n  -old\"]\n"));
  CHECK(Contains(in_list, "test.yaml:3:24: YAML syntax error: unclosed quote"));
  CHECK(Contains(in_list, "runs on to line 4"));
}

TEST_CASE("a missing secret says how to make one") {
  CHECK(Contains(ErrorOf("upstream: http://127.0.0.1:3000\n"), "run 'sessiond gen-secret'"));
  CHECK(Contains(ErrorOf("upstream: http://127.0.0.1:3000\nsecret_key: ${SESSIOND_SECRET}\n"),
                 "secret_key: environment variable SESSIOND_SECRET is not set; run 'sessiond gen-secret' "
                 "for a key: export SESSIOND_SECRET=$(sessiond gen-secret)"));
  CHECK(Contains(ErrorOf(Minimal("secret_key_fallbacks: [short]\n")), "run 'sessiond gen-secret'"));
  // Other variables get no such advice.
  CHECK_FALSE(Contains(ErrorOf(Minimal("workers: ${W}\n")), "gen-secret"));
}

// ---- timeouts, subjects, chunks, the http store, the admin token ----------

namespace {

TEST_CASE("the new session keys default to today's behaviour") {
  // docs/CONFIGURATION.md, session.session_idle_timeout and the keys after it
  auto r = Parse(Minimal());
  REQUIRE(r.ok());
  const SessionConfig& s = (*r)->session;
  CHECK(s.idle_timeout.count() == 0);
  CHECK(s.absolute_timeout.count() == 0);
  CHECK(s.refresh_threshold.count() == 0);
  CHECK(s.subject_key.empty());
  CHECK(s.max_sessions_per_subject == 0);
  CHECK(s.max_cookie_chunks == 4);
  CHECK_FALSE(s.compress);
  CHECK((*r)->admin.token.empty());
  CHECK((*r)->http_store.url.empty());
}

TEST_CASE("the new session keys are read, and ~ turns a timeout off") {
  auto r = Parse(Minimal("session:\n  manager: memory\n  session_idle_timeout: 15m\n"
                         "  session_absolute_timeout: 8h\n  session_refresh_threshold: 1m\n"
                         "  subject_key: user_id\n  max_sessions_per_subject: 5\n  max_cookie_chunks: 2\n"
                         "  compress: true\n"));
  REQUIRE(r.ok());
  const SessionConfig& s = (*r)->session;
  CHECK(s.idle_timeout == 15min);
  CHECK(s.absolute_timeout == 8h);
  CHECK(s.refresh_threshold == 1min);
  CHECK(s.subject_key == "user_id");
  CHECK(s.max_sessions_per_subject == 5);
  CHECK(s.max_cookie_chunks == 2);
  CHECK(s.compress);
  auto off = Parse(Minimal("session:\n  session_idle_timeout: ~\n  session_absolute_timeout: ~\n"));
  REQUIRE(off.ok());
  CHECK((*off)->session.idle_timeout.count() == 0);
  std::string text = DescribeConfig(**r);
  CHECK(Contains(text, "session.session_idle_timeout"));
  CHECK(Contains(text, "15m"));
  CHECK(Contains(text, "\"user_id\""));
}

TEST_CASE("the new session keys are validated with file:line:col") {
  CHECK(ErrorOf(Minimal("session:\n  session_idle_timeout: 15\n")) ==
        "test.yaml:4:25: session.session_idle_timeout: add a unit, e.g. 15s (a bare number is not a duration "
        "here; units: ms s m h d)");
  CHECK(ErrorOf(Minimal("session:\n  session_refresh_threshold: 1m\n")) ==
        "test.yaml:4:30: session.session_refresh_threshold: has no effect without "
        "session_refresh_each_request: true or a session_idle_timeout");
  CHECK(ErrorOf(Minimal("session:\n  session_idle_timeout: 5m\n  session_refresh_threshold: 5m\n")) ==
        "test.yaml:5:30: session.session_refresh_threshold: must be shorter than session_idle_timeout");
  CHECK(ErrorOf(Minimal("session:\n  session_refresh_each_request: true\n  session_expiration_time: 10m\n"
                        "  session_refresh_threshold: 10m\n")) ==
        "test.yaml:6:30: session.session_refresh_threshold: must be shorter than session_expiration_time");
  CHECK(ErrorOf(Minimal("session:\n  subject_key: user_id\n")) ==
        "test.yaml:4:16: session.subject_key: the cookie manager cannot index sessions (they live in the "
        "browsers); use manager redis, file, memory or http");
  CHECK(ErrorOf(Minimal("session:\n  manager: memory\n  max_sessions_per_subject: 3\n")) ==
        "test.yaml:5:29: session.max_sessions_per_subject: needs session.subject_key");
  CHECK(Contains(ErrorOf(Minimal("session:\n  manager: memory\n  subject_key: \"a\\nb\"\n")),
                 "test.yaml:5:16: session.subject_key: expected a session key of 1 to 256 bytes"));
  CHECK(ErrorOf(Minimal("session:\n  max_cookie_chunks: 9\n")) ==
        "test.yaml:4:22: session.max_cookie_chunks: expected an integer from 1 to 8 (got \"9\")");
  CHECK(ErrorOf(Minimal("session:\n  compress: maybe\n")) != "");
}

TEST_CASE("http_store: url with a path prefix, timeout, token, on_error") {
  // docs/CONFIGURATION.md, http_store
  auto r = Parse(Minimal("session: {manager: http}\nhttp_store:\n  url: http://127.0.0.1:7000/store/v1/\n"
                         "  timeout: 250ms\n  token: ${STORE_TOKEN}\n  on_error: fail_open\n"),
                 {{"STORE_TOKEN", "t0k3n-t0k3n-t0k3n"}});
  REQUIRE(r.ok());
  const HttpStoreConfig& h = (*r)->http_store;
  CHECK(h.host == "127.0.0.1");
  CHECK(h.port == 7000);
  CHECK(h.path_prefix == "/store/v1");
  CHECK(h.timeout == 250ms);
  CHECK(h.token == "t0k3n-t0k3n-t0k3n");
  CHECK(h.on_error == OnStoreError::kFailOpen);
  const std::string text = DescribeConfig(**r);
  CHECK_FALSE(Contains(text, "t0k3n"));
  CHECK(Contains(text, "http_store.token"));

  CHECK(ErrorOf(Minimal("session: {manager: http}\n")) ==
        "test.yaml:1:1: http_store.url is required with session.manager: http (e.g. http_store: {url: "
        "http://127.0.0.1:7000})");
  CHECK(Contains(ErrorOf(Minimal("http_store: {url: 'https://x:1'}\n")), "http_store.url: https is not supported"));
  CHECK(Contains(ErrorOf(Minimal("http_store: {url: 'http://127.0.0.1:1/a/../b'}\n")),
                 "http_store.url: the path may not hold empty, '.' or '..' segments"));
  CHECK(Contains(ErrorOf(Minimal("http_store: {url: 'http://127.0.0.1:1/a?b'}\n")),
                 "http_store.url: the path may hold only"));
  CHECK(Contains(ErrorOf(Minimal("http_store: {url: 'http://127.0.0.1:1', token: 'a b'}\n")),
                 "http_store.token: must be visible ASCII without spaces"));
}

TEST_CASE("admin.token and admin.token_file: exactly one, at least 16 bytes, never shown") {
  // docs/CONFIGURATION.md, admin.token
  auto r = Parse(Minimal("admin:\n  listen: 127.0.0.1:9090\n  token: abcdefghijklmnopqrst\n"));
  REQUIRE(r.ok());
  CHECK((*r)->admin.token == "abcdefghijklmnopqrst");
  CHECK_FALSE(Contains(DescribeConfig(**r), "abcdefghijklmnopqrst"));
  TempFile f("file-token-0123456789\n", 0600);
  auto from_file = Parse(Minimal("admin:\n  token_file: " + f.path() + "\n"));
  REQUIRE(from_file.ok());
  CHECK((*from_file)->admin.token == "file-token-0123456789");
  CHECK(ErrorOf(Minimal("admin:\n  token: short\n")) ==
        "test.yaml:4:10: admin.token: must be at least 16 bytes (got 5); 'sessiond gen-secret' prints a good one");
  CHECK(Contains(ErrorOf(Minimal("admin:\n  token: abcdefghijklmnopqrst\n  token_file: " + f.path() + "\n")),
                 "admin.token and admin.token_file are both set; use exactly one"));
  CHECK(Contains(ErrorOf(Minimal("admin:\n  token_file: /nonexistent/token\n")),
                 "admin.token_file: cannot read /nonexistent/token"));
}

}  // namespace
// ---- tls and upstream_tls (docs/CONFIGURATION.md, tls and upstream_tls) ----

namespace {

struct TlsFiles {
  testing::TestCa ca{"config test CA"};
  testing::PemPair leaf = ca.Issue("localhost", {"localhost"}, {"127.0.0.1"});
  testing::PemPair other = ca.Issue("other", {"other"}, {});
  TempFile cert{leaf.cert, 0644};
  TempFile key{leaf.key, 0600};
  TempFile other_key{other.key, 0600};
  TempFile ca_file{ca.ca().cert, 0644};
  TempFile garbage{"not a certificate\n", 0644};
  TempFile encrypted{testing::EncryptedKeyPem(leaf.key, "passphrase"), 0600};
};

}  // namespace

TEST_CASE("tls: the files are read and checked at load, their bytes kept") {
  TlsFiles f;
  auto r = Parse(Minimal("tls:\n  certificate: " + f.cert.path() + "\n  private_key: " + f.key.path() + "\n"));
  REQUIRE(r.ok());
  REQUIRE((*r)->tls.has_value());
  CHECK((*r)->tls->certificate == f.cert.path());
  CHECK((*r)->tls->certificate_pem == f.leaf.cert);
  CHECK((*r)->tls->private_key_pem == f.leaf.key);
  CHECK((*r)->tls->min_version == 12);
  CHECK((*r)->tls->client_ca.empty());
  // The summary names the files, never the key's bytes.
  const std::string summary = DescribeConfig(**r);
  CHECK(Contains(summary, f.key.path()));
  CHECK_FALSE(Contains(summary, "PRIVATE KEY"));
  CHECK_FALSE(Contains(summary, f.leaf.key.substr(40, 40)));

  auto mutual = Parse(Minimal("tls: {certificate: " + f.cert.path() + ", private_key: " + f.key.path() +
                              ", min_version: 1.3, client_ca: " + f.ca_file.path() + "}\n"));
  REQUIRE(mutual.ok());
  CHECK((*mutual)->tls->min_version == 13);
  CHECK((*mutual)->tls->client_ca_pem == f.ca.ca().cert);

  auto off = Parse(Minimal("tls: ~\n"));
  REQUIRE(off.ok());
  CHECK_FALSE((*off)->tls.has_value());
  CHECK_FALSE((*Parse(Minimal()))->tls.has_value());
}

TEST_CASE("tls errors: FILE:LINE:COL at the value, what is wrong, never the key") {
  TlsFiles f;
  const std::string c = f.cert.path(), k = f.key.path();
  CHECK(ErrorOf(Minimal("tls:\n  certificate: " + c + "\n")) ==
        "test.yaml:4:3: tls.private_key is required when tls is set");
  CHECK(ErrorOf(Minimal("tls:\n  certificate: /nonexistent/cert.pem\n  private_key: " + k + "\n")) ==
        "test.yaml:4:16: tls.certificate: cannot read /nonexistent/cert.pem: No such file or directory");
  CHECK(ErrorOf(Minimal("tls:\n  certificate: " + f.garbage.path() + "\n  private_key: " + k + "\n")) ==
        "test.yaml:4:16: tls.certificate: " + f.garbage.path() +
            ": no PEM certificate (-----BEGIN CERTIFICATE-----) in it");
  CHECK(ErrorOf(Minimal("tls:\n  certificate: " + c + "\n  private_key: " + c + "\n")) ==
        "test.yaml:5:16: tls.private_key: " + c + ": no PEM private key in it");
  const std::string mismatch =
      ErrorOf(Minimal("tls:\n  certificate: " + c + "\n  private_key: " + f.other_key.path() + "\n"));
  CHECK(mismatch == "test.yaml:5:16: tls.private_key: " + f.other_key.path() +
                        ": it is not the private key of the certificate (tls.certificate)");
  CHECK_FALSE(Contains(mismatch, "PRIVATE"));
  CHECK(Contains(ErrorOf(Minimal("tls:\n  certificate: " + c + "\n  private_key: " + f.encrypted.path() + "\n")),
                 "the private key is encrypted"));
  CHECK(ErrorOf(Minimal("tls: {certificate: " + c + ", private_key: " + k + ", min_version: 1.1}\n")) ==
        "test.yaml:3:" + std::to_string(50 + c.size() + k.size()) +
            ": tls.min_version: expected one of 1.2 | 1.3 (got \"1.1\")");
  CHECK(Contains(ErrorOf(Minimal("tls: {certificate: " + c + ", private_key: " + k + ", client_ca: " +
                                 f.garbage.path() + "}\n")),
                 "tls.client_ca: " + f.garbage.path() + ": no PEM certificate"));
  CHECK(Contains(ErrorOf(Minimal("tls: {certificate: " + c + ", private_key: " + k + ", ciphers: x}\n")),
                 "unknown key 'tls.ciphers'"));
}

TEST_CASE("https upstreams: port 443, the host verified, upstream_tls read and checked") {
  TlsFiles f;
  auto https = Parse("upstream: https://localhost\nsecret_key: " + kSecret + "\n");
  REQUIRE(https.ok());
  CHECK((*https)->upstream.https);
  CHECK((*https)->upstream.port == 443);
  CHECK((*https)->upstream_tls.server_name == "localhost");
  CHECK((*https)->upstream_tls.ca_pem.empty());  // the system's CAs
  CHECK_FALSE((*Parse(Minimal()))->upstream.https);

  auto full = Parse("upstream: https://127.0.0.1:8443\nsecret_key: " + kSecret + "\nupstream_tls:\n  ca_file: " +
                    f.ca_file.path() + "\n  server_name: backend.internal\n  client_certificate: " + f.cert.path() +
                    "\n  client_key: " + f.key.path() + "\n");
  REQUIRE(full.ok());
  const UpstreamTlsConfig& u = (*full)->upstream_tls;
  CHECK(u.ca_pem == f.ca.ca().cert);
  CHECK(u.server_name == "backend.internal");
  CHECK(u.client_certificate_pem == f.leaf.cert);
  CHECK(u.client_key_pem == f.leaf.key);
  CHECK(Contains(DescribeConfig(**full), "backend.internal"));
  CHECK_FALSE(Contains(DescribeConfig(**full), "PRIVATE KEY"));

  auto ip = Parse("upstream: 'https://[::1]:8443'\nsecret_key: " + kSecret + "\n");
  REQUIRE(ip.ok());
  CHECK(ip.value()->upstream_tls.server_name == "::1");
}

TEST_CASE("upstream_tls errors") {
  TlsFiles f;
  const std::string head = "upstream: https://127.0.0.1:8443\nsecret_key: " + kSecret + "\n";
  CHECK(ErrorOf(Minimal("upstream_tls: {server_name: x}\n")) ==
        "test.yaml:3:1: upstream_tls: applies only to an https:// upstream");
  CHECK(ErrorOf(head + "upstream_tls: {client_certificate: " + f.cert.path() + "}\n") ==
        "test.yaml:3:16: upstream_tls.client_certificate and upstream_tls.client_key go together: set both or "
        "neither");
  CHECK(Contains(ErrorOf(head + "upstream_tls: {server_name: 'bad name'}\n"),
                 "upstream_tls.server_name: expected a host name or an IP address"));
  CHECK(Contains(ErrorOf(head + "upstream_tls: {ca_file: /nonexistent/ca.pem}\n"),
                 "upstream_tls.ca_file: cannot read /nonexistent/ca.pem"));
  CHECK(Contains(ErrorOf(head + "upstream_tls: {client_certificate: " + f.cert.path() +
                         ", client_key: " + f.other_key.path() + "}\n"),
                 "upstream_tls.client_key: " + f.other_key.path() + ": it is not the private key"));
}

// ---- redis.tls (docs/CONFIGURATION.md, redis.tls) ----

TEST_CASE("redis.tls: rediss:// or enabled: true turns TLS on for every connection, files read and checked") {
  TlsFiles f;
  auto redis = [](const std::string& body) { return Parse(Minimal("session: {manager: redis}\nredis:\n" + body)); };

  auto plain = redis("  url: redis://cache.internal\n");
  REQUIRE(plain.ok());
  CHECK_FALSE((*plain)->redis.rediss);
  CHECK_FALSE((*plain)->redis.tls.has_value());

  // rediss:// alone: the system's CAs, each node's own host.
  auto rediss = redis("  url: 'rediss://app:pw@cache.internal:6380/2'\n");
  REQUIRE(rediss.ok());
  const RedisConfig& r = (*rediss)->redis;
  CHECK(r.rediss);
  CHECK(r.host == "cache.internal");
  CHECK(r.port == 6380);
  CHECK(r.db == 2);
  CHECK(r.username == "app");
  CHECK(r.password == "pw");
  REQUIRE(r.tls.has_value());
  CHECK(r.tls->ca_pem.empty());
  CHECK(r.tls->server_name.empty());
  CHECK(r.tls->client_certificate_pem.empty());
  const std::string summary = DescribeConfig(**rediss);
  CHECK(Contains(summary, "rediss://app:***@cache.internal:6380/2"));
  CHECK(Contains(summary, "on, CA the system's, name each node's host"));

  // Every key, the files' bytes kept.
  auto full = redis("  url: rediss://127.0.0.1:6390\n  tls:\n    ca_file: " + f.ca_file.path() +
                    "\n    server_name: redis.internal\n    client_certificate: " + f.cert.path() +
                    "\n    client_key: " + f.key.path() + "\n");
  REQUIRE_MESSAGE(full.ok(), full.status().message());
  const ClientTlsConfig& t = *(*full)->redis.tls;
  CHECK(t.ca_file == f.ca_file.path());
  CHECK(t.ca_pem == f.ca.ca().cert);
  CHECK(t.server_name == "redis.internal");
  CHECK(t.client_certificate_pem == f.leaf.cert);
  CHECK(t.client_key_pem == f.leaf.key);
  const std::string described = DescribeConfig(**full);
  CHECK(Contains(described, "redis.internal"));
  CHECK(Contains(described, f.key.path()));
  CHECK_FALSE(Contains(described, "PRIVATE KEY"));

  // enabled: true for sentinel and cluster, whose URL may be left out.
  auto sentinel = redis("  tls: {enabled: true, ca_file: " + f.ca_file.path() +
                        "}\n  sentinel: {master_name: m, addresses: ['127.0.0.1:26379']}\n");
  REQUIRE_MESSAGE(sentinel.ok(), sentinel.status().message());
  CHECK_FALSE((*sentinel)->redis.rediss);
  REQUIRE((*sentinel)->redis.tls.has_value());
  CHECK((*sentinel)->redis.tls->ca_pem == f.ca.ca().cert);
  auto cluster = redis("  url: 'rediss://:pw@unused'\n  cluster: {seeds: ['10.0.0.1:7000']}\n");
  REQUIRE(cluster.ok());
  CHECK((*cluster)->redis.tls.has_value());

  // enabled: false switches the files off without removing them.
  auto off = redis("  tls: {enabled: false, ca_file: " + f.ca_file.path() + "}\n");
  REQUIRE(off.ok());
  CHECK_FALSE((*off)->redis.tls.has_value());
  // An IP address as the name to verify.
  auto ip = redis("  url: rediss://cache\n  tls: {server_name: '::1'}\n");
  REQUIRE(ip.ok());
  CHECK((*ip)->redis.tls->server_name == "::1");
}

TEST_CASE("redis.tls errors: FILE:LINE:COL, the key, what is wrong") {
  TlsFiles f;
  auto err = [](const std::string& body) { return ErrorOf(Minimal("redis:\n" + body)); };
  CHECK(err("  url: redis://h\n  tls:\n    ca_file: " + f.ca_file.path() + "\n") ==
        "test.yaml:5:3: redis.tls: TLS is off: write redis.url as rediss://... or set redis.tls.enabled: true");
  CHECK(err("  url: rediss://h\n  tls: {enabled: false}\n") ==
        "test.yaml:5:18: redis.tls.enabled: false, but redis.url is rediss:// (TLS); change one of them");
  CHECK(err("  url: unix:///run/redis.sock\n  tls: {enabled: true}\n") ==
        "test.yaml:4:8: redis.url: redis.tls.enabled needs a TCP URL (rediss://host:port); Redis speaks no TLS on "
        "a unix socket");
  CHECK(err("  url: rediss://h\n  tls: {enabled: maybe}\n") ==
        "test.yaml:5:18: redis.tls.enabled: expected true or false (got \"maybe\")");
  CHECK(err("  url: rediss://h\n  tls:\n    ca_file: /nonexistent/ca.pem\n") ==
        "test.yaml:6:14: redis.tls.ca_file: cannot read /nonexistent/ca.pem: No such file or directory");
  CHECK(err("  url: rediss://h\n  tls:\n    ca_file: " + f.garbage.path() + "\n") ==
        "test.yaml:6:14: redis.tls.ca_file: " + f.garbage.path() +
            ": no PEM certificate (-----BEGIN CERTIFICATE-----) in it");
  CHECK(err("  url: rediss://h\n  tls:\n    server_name: 'bad name'\n") ==
        "test.yaml:6:18: redis.tls.server_name: expected a host name or an IP address (got \"bad name\")");
  CHECK(err("  url: rediss://h\n  tls:\n    client_certificate: " + f.cert.path() + "\n") ==
        "test.yaml:6:5: redis.tls.client_certificate and redis.tls.client_key go together: set both or neither");
  const std::string mismatch = err("  url: rediss://h\n  tls:\n    client_certificate: " + f.cert.path() +
                                   "\n    client_key: " + f.other_key.path() + "\n");
  CHECK(mismatch == "test.yaml:7:17: redis.tls.client_key: " + f.other_key.path() +
                        ": it is not the private key of the certificate (redis.tls.client_certificate)");
  CHECK_FALSE(Contains(mismatch, "PRIVATE"));
  CHECK(Contains(err("  url: rediss://h\n  tls:\n    client_certificate: " + f.cert.path() + "\n    client_key: " +
                     f.encrypted.path() + "\n"),
                 "redis.tls.client_key: " + f.encrypted.path() + ": the private key is encrypted"));
  CHECK(Contains(err("  url: rediss://h\n  tls: {ciphers: x}\n"), "unknown key 'redis.tls.ciphers'"));
  // The files are checked whatever the manager, like the URL.
  CHECK(Contains(ErrorOf(Minimal("session: {manager: cookie}\nredis: {url: rediss://h, tls: {ca_file: " +
                                 f.garbage.path() + "}}\n")),
                 "redis.tls.ca_file: " + f.garbage.path() + ": no PEM certificate"));
}

// ---- trusted proxies, upgrades, loops (docs/CONFIGURATION.md) ----

TEST_CASE("trusted_proxies: CIDR blocks and bare addresses, IPv4 and IPv6") {
  auto c = Parse(Minimal("trusted_proxies: [10.0.0.0/8, \"::1\", 192.0.2.7, \"2001:db8::/32\"]\n"));
  REQUIRE(c.ok());
  const std::vector<IpNetwork>& t = (*c)->trusted_proxies;
  REQUIRE(t.size() == 4);
  CHECK(t[0].prefix == 8);
  CHECK(t[1].prefix == 128);
  CHECK(t[2].prefix == 32);
  CHECK(t[3].Contains(*ParseIpAddress("2001:db8::42")));
  CHECK(Parse(Minimal())->get()->trusted_proxies.empty());  // default: nobody
  CHECK(Parse(Minimal("trusted_proxies: []\n"))->get()->trusted_proxies.empty());
  const std::string err = ErrorOf(Minimal("trusted_proxies:\n  - 10.0.0.0/8\n  - 10.0.0.1/8\n  - nope\n"));
  CHECK(Contains(err, "test.yaml:5:5: trusted_proxies[1]: host bits are set"));
  CHECK(Contains(err, "test.yaml:6:5: trusted_proxies[2]: expected an IPv4 or IPv6 address"));
  CHECK(Contains(ErrorOf(Minimal("trusted_proxies: 10.0.0.0/8\n")), "test.yaml:3:"));
}

TEST_CASE("websocket.allowed_origins are kept in canonical form") {
  auto c = Parse(Minimal("websocket:\n  allowed_origins: [\"HTTPS://App.Example:443\", \"http://[::1]:8080\"]\n"));
  REQUIRE(c.ok());
  CHECK((*c)->websocket.allowed_origins == std::vector<std::string>{"https://app.example", "http://[::1]:8080"});
  CHECK(Parse(Minimal())->get()->websocket.allowed_origins.empty());
  CHECK(StartsWith(ErrorOf(Minimal("websocket:\n  allowed_origins: [\"https://a.example/path\"]\n")),
                   "test.yaml:4:21: websocket.allowed_origins[0]: expected an origin"));
  CHECK(Contains(ErrorOf(Minimal("websocket:\n  allowed_origin: []\n")), "did you mean 'allowed_origins'"));
}

TEST_CASE("timeouts.tunnel_idle and tunnel_max") {
  auto c = Parse(Minimal());
  REQUIRE(c.ok());
  CHECK((*c)->timeouts.tunnel_idle == std::chrono::minutes(5));
  CHECK((*c)->timeouts.tunnel_max == std::chrono::hours(24));
  c = Parse(Minimal("timeouts: {tunnel_idle: 90s, tunnel_max: 1h}\n"));
  REQUIRE(c.ok());
  CHECK((*c)->timeouts.tunnel_idle == 90s);
  CHECK((*c)->timeouts.tunnel_max == 1h);
  CHECK(Contains(ErrorOf(Minimal("timeouts: {tunnel_idle: 30}\n")), "timeouts.tunnel_idle"));
  CHECK(Contains(ErrorOf(Minimal("timeouts: {tunnel_max: 0s}\n")), "timeouts.tunnel_max"));
}

TEST_CASE("upstream pointing at sessiond's own listener is an error") {
  auto loops = [](const std::string& listen, const std::string& upstream) {
    std::string err = ErrorOf("listen: \"" + listen + "\"\nupstream: \"" + upstream + "\"\nsecret_key: " + kSecret + "\n");
    return Contains(err, "test.yaml:2:11: upstream:") && Contains(err, "own listen address");
  };
  CHECK(loops("127.0.0.1:8080", "http://127.0.0.1:8080"));
  CHECK(loops("127.0.0.1:8080", "http://localhost:8080/"));
  CHECK(loops("0.0.0.0:8080", "http://127.0.0.1:8080"));
  CHECK(loops("0.0.0.0:8080", "http://127.0.0.2:8080"));  // loopback
  CHECK(loops("127.0.0.1:8080", "http://0.0.0.0:8080"));
  CHECK(loops("[::1]:8080", "http://[::1]:8080"));
  CHECK(loops("[::]:8080", "http://[::1]:8080"));
  CHECK_FALSE(loops("127.0.0.1:8080", "http://127.0.0.1:8081"));
  CHECK_FALSE(loops("[::]:8080", "http://127.0.0.1:8080"));  // IPv6-only listener
  CHECK_FALSE(loops("127.0.0.2:8080", "http://127.0.0.1:8080"));
}
