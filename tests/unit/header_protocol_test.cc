#include "session/header_protocol.h"

#include <doctest/doctest.h>

#include "http/headers.h"

#include <string>

namespace sessiond {
namespace {

// A marker placed in hostile values: no error message may ever contain it.
constexpr char kSecret[] = "s3cr3t-marker";

Result<ChangeBatch> Parse(const HeaderPairs& headers) { return ParseInstructions(headers); }

Result<ChangeBatch> ParseOne(const std::string& name, const std::string& value) {
  return ParseInstructions({{name, value}});
}

std::string Nested(size_t depth, char open, char close) {
  return std::string(depth, open) + std::string(depth, close);
}

bool IsPrintableAscii(const std::string& s) {
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7F) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("IsSessionHeader matches the prefix case-insensitively with _ as -") {
  for (const char* name : {"X-Session-Data", "x-session-data", "X_Session_Data", "x-session_data",
                           "X_SESSION-ID", "X-SESSION-SET", "x_session_", "X-Session-",
                           "X-Session-anything-at-all", " X-Session-Data\t", "\rX-Session-Id\n"}) {
    CAPTURE(name);
    CHECK(IsSessionHeader(name));
  }
  for (const char* name : {"", "X", "X-Session", "X-Sessio-Data", "X-Sessions-Data", "Session-X",
                           "XX-Session-Data", "X--Session-Data", "X Session-Data", "X.Session-Data",
                           "Cookie", "X-Forwarded-For"}) {
    CAPTURE(name);
    CHECK_FALSE(IsSessionHeader(name));
  }
  // Only ASCII folds: a non-ASCII look-alike is a different header.
  CHECK_FALSE(IsSessionHeader("X-Sess\xC4\xB0on-Data"));
  CHECK_FALSE(IsSessionHeader(std::string("X-Session\0-", 11)));
}

TEST_CASE("ClassifyInstruction recognises the four instructions in any spelling") {
  CHECK(ClassifyInstruction("X-Session-Set") == InstructionKind::kSet);
  CHECK(ClassifyInstruction("x_session_SET") == InstructionKind::kSet);
  CHECK(ClassifyInstruction("X-SESSION-DELETE") == InstructionKind::kDelete);
  CHECK(ClassifyInstruction("x-session_destroy") == InstructionKind::kDestroy);
  CHECK(ClassifyInstruction("X_Session_Regenerate") == InstructionKind::kRegenerate);
  CHECK(ClassifyInstruction("X-Session-Data") == InstructionKind::kIgnored);
  CHECK(ClassifyInstruction("X-Session-Setx") == InstructionKind::kIgnored);
  CHECK(ClassifyInstruction("X-Session-") == InstructionKind::kIgnored);
  CHECK(ClassifyInstruction("Set") == InstructionKind::kIgnored);
  CHECK(ClassifyInstruction("X-Other-Set") == InstructionKind::kIgnored);
}

TEST_CASE("SessionStatus strings are the contract's values") {
  CHECK(std::string(ToString(SessionStatus::kNone)) == "none");
  CHECK(std::string(ToString(SessionStatus::kNew)) == "new");
  CHECK(std::string(ToString(SessionStatus::kActive)) == "active");
  CHECK(std::string(ToString(SessionStatus::kExpired)) == "expired");
  CHECK(std::string(ToString(SessionStatus::kInvalid)) == "invalid");
}

TEST_CASE("FormatRequestHeaders injects id, data and expiry only for a live session") {
  SessionData data{{"user", "\"ada\""}, {"caf\xC3\xA9", "1"}};
  InjectedSession session{"pub123", &data, 1700000000, {}};

  SUBCASE("active") {
    const HeaderPairs h = FormatRequestHeaders(SessionStatus::kActive, &session);
    REQUIRE(h.size() == 4);
    CHECK(h[0] == std::make_pair(std::string(kHeaderStatus), std::string("active")));
    CHECK(h[1] == std::make_pair(std::string(kHeaderId), std::string("pub123")));
    CHECK(h[2].first == kHeaderData);
    CHECK(h[2].second == SerializeSession(data));
    CHECK(IsPrintableAscii(h[2].second));
    CHECK(h[3] == std::make_pair(std::string(kHeaderExpires), std::string("1700000000")));
  }
  SUBCASE("new with no data yet") {
    InjectedSession empty{"pub", nullptr, 5, {}};
    const HeaderPairs h = FormatRequestHeaders(SessionStatus::kNew, &empty);
    REQUIRE(h.size() == 4);
    CHECK(h[0].second == "new");
    CHECK(h[2].second == "{}");
  }
  for (SessionStatus status : {SessionStatus::kNone, SessionStatus::kExpired,
                               SessionStatus::kInvalid}) {
    CAPTURE(ToString(status));
    for (const InjectedSession* s : {static_cast<const InjectedSession*>(&session), static_cast<const InjectedSession*>(nullptr)}) {
      const HeaderPairs h = FormatRequestHeaders(status, s);
      REQUIRE(h.size() == 2);
      CHECK(h[0].first == kHeaderStatus);
      CHECK(h[0].second == ToString(status));
      CHECK(h[1] == std::make_pair(std::string(kHeaderData), std::string("{}")));
    }
  }
  for (const auto& [name, value] : FormatRequestHeaders(SessionStatus::kActive, &session)) {
    CHECK(IsSessionHeader(name));  // our own headers are stripped if a client sends them
  }
}

TEST_CASE("Set stores compact ASCII-only values and null deletes") {
  auto r = ParseOne("X-Session-Set",
                    R"({"user":"ada", "cart":[1, 2], "o":{"k" : true}, "gone":null})");
  REQUIRE(r.ok());
  const auto& sets = r->sets;
  REQUIRE(sets.size() == 4);
  CHECK(sets.at("user") == std::optional<std::string>("\"ada\""));
  CHECK(sets.at("cart") == std::optional<std::string>("[1,2]"));
  CHECK(sets.at("o") == std::optional<std::string>("{\"k\":true}"));
  CHECK_FALSE(sets.at("gone").has_value());
  CHECK_FALSE(r->destroy);
  CHECK_FALSE(r->regenerate);
  CHECK(r->deletes.empty());
}

TEST_CASE("Set escapes non-ASCII and control characters so values carry no CR, LF or NUL") {
  auto r = ParseOne("X-Session-Set",
                    "{\"k\":\"caf\xC3\xA9 \\r\\n\\u0000 \\u007f \xF0\x9F\x98\x80\"}");
  REQUIRE(r.ok());
  const std::string value = *r->sets.at("k");
  CHECK(IsPrintableAscii(value));
  CHECK(value.find("\\u00e9") != std::string::npos);
  CHECK(value.find("\\ud83d\\ude00") != std::string::npos);
  CHECK(value.find("\\u0000") != std::string::npos);
  // Non-ASCII keys are allowed; they are escaped when the session is serialized.
  auto k = ParseOne("X-Session-Set", "{\"caf\xC3\xA9\":1}");
  REQUIRE(k.ok());
  CHECK(k->sets.count("caf\xC3\xA9") == 1);
}

TEST_CASE("Several Set headers merge in order and the later one wins") {
  auto r = Parse({{"X-Session-Set", R"({"a":1,"b":2})"},
                  {"x-session-set", R"({"b":3,"c":null})"},
                  {"X_SESSION_SET", R"({"c":4,"a":null})"}});
  REQUIRE(r.ok());
  REQUIRE(r->sets.size() == 3);
  CHECK_FALSE(r->sets.at("a").has_value());
  CHECK(r->sets.at("b") == std::optional<std::string>("3"));
  CHECK(r->sets.at("c") == std::optional<std::string>("4"));
}

TEST_CASE("Set with a duplicate key inside one object keeps the last value") {
  auto r = ParseOne("X-Session-Set", R"({"a":1,"a":2})");
  REQUIRE(r.ok());
  CHECK(r->sets.at("a") == std::optional<std::string>("2"));
}

TEST_CASE("Set accepts an empty object and big but finite numbers") {
  auto empty = ParseOne("X-Session-Set", " { } ");
  REQUIRE(empty.ok());
  CHECK(empty->empty());
  auto big = ParseOne("X-Session-Set", R"({"n":123456789012345678901234567890,"m":-9223372036854775808})");
  REQUIRE(big.ok());
  CHECK(big->sets.at("m") == std::optional<std::string>("-9223372036854775808"));
  CHECK(big->sets.at("n")->find('e') != std::string::npos);  // kept as a double
}

TEST_CASE("Set rejects values that are not a JSON object") {
  for (const char* v : {"[1,2]", "\"str\"", "42", "null", "true", "[]", "[{}]"}) {
    CAPTURE(v);
    auto r = ParseOne("X-Session-Set", v);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kInvalid);
    CHECK(r.status().message() == "X-Session-Set: not a JSON object");
  }
}

TEST_CASE("Set rejects invalid JSON naming the byte but never the value") {
  SUBCASE("syntax error reports the byte offset") {
    auto r = ParseOne("X-Session-Set", std::string("{\"a\":") + kSecret + "}");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == "X-Session-Set: invalid JSON at byte 6");
  }
  for (const std::string& v :
       {std::string("{\"a\":1} trailing") + kSecret, std::string("{\"a\":1,}"),
        std::string("{'a':1}"), std::string("{\"a\":1"), std::string("{a:1}"),
        std::string("{\"a\":\"\xFF\xFE") + kSecret + "\"}",           // invalid UTF-8
        std::string("{\"a\":\"\xC0\xAF\"}"),                          // overlong
        std::string("{\"a\":\"\xED\xA0\x80\"}"),                      // raw surrogate
        std::string("{\"a\":\"\\ud800\"}"),                           // lone escaped surrogate
        std::string("{\"a\":\"x\r\ny\"}"),                            // raw CR/LF in a string
        std::string("{\"a\":\"x\0y\"}", 11),                          // raw NUL
        std::string("{\"a\":1}\0", 8),                                // NUL after the object
        std::string("{\"a\":1} /* c */"),                             // no comments
        std::string("{\"a\":1e400}")}) {                              // non-finite
    CAPTURE(v);
    auto r = ParseOne("X-Session-Set", v);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kInvalid);
    const std::string& msg = r.status().message();
    CHECK(msg.rfind("X-Session-Set: ", 0) == 0);
    CHECK(msg.find(kSecret) == std::string::npos);
    CHECK(msg.find("trailing") == std::string::npos);
    CHECK(IsPrintableAscii(msg));
  }
}

TEST_CASE("Set rejects a NUL after the object that the JSON lexer would take for end of input") {
  auto r = ParseOne("X-Session-Set", std::string("{\"a\":1}\0{\"b\":2}", 15));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "X-Session-Set: invalid JSON at byte 8");
}

TEST_CASE("Set rejects an empty or blank value") {
  for (const char* v : {"", " ", "\t \t"}) {
    auto r = ParseOne("X-Session-Set", v);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == "X-Session-Set: empty value");
  }
}

TEST_CASE("Set nesting is bounded at 32 levels counting the top-level object") {
  // depth 32: the object plus 31 nested arrays.
  auto ok = ParseOne("X-Session-Set", "{\"a\":" + Nested(31, '[', ']') + "}");
  CHECK(ok.ok());
  auto deep = ParseOne("X-Session-Set", "{\"a\":" + Nested(32, '[', ']') + "}");
  REQUIRE_FALSE(deep.ok());
  CHECK(deep.status().message() == "X-Session-Set: JSON nested deeper than 32");
  // Brackets inside strings, including after an escaped quote, do not count.
  const std::string in_string = "{\"a\":\"\\\"" + Nested(100, '[', ']') + "{{{{\"}";
  auto s = ParseOne("X-Session-Set", in_string);
  REQUIRE(s.ok());
  CHECK(s->sets.count("a") == 1);
}

TEST_CASE("Set with 10000 levels of nesting is rejected without recursion") {
  for (const std::string& v :
       {Nested(10000, '[', ']'), "{\"a\":" + Nested(10000, '[', ']') + "}",
        std::string(10000, '{'), std::string(10000, '['),
        "{\"a\":" + std::string(60000, '[')}) {
    auto r = ParseOne("X-Session-Set", v);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == "X-Session-Set: JSON nested deeper than 32");
  }
  std::string objects;
  for (int i = 0; i < 10000; ++i) objects += "{\"k\":";
  objects += "1" + std::string(10000, '}');
  CHECK_FALSE(ParseOne("X-Session-Set", objects).ok());
}

TEST_CASE("Set keys must be 1..256 bytes without control characters") {
  CHECK(ParseOne("X-Session-Set", "{\"" + std::string(256, 'k') + "\":1}").ok());
  struct Case { std::string value; const char* message; };
  for (const Case& c : {
           Case{"{\"\":1}", "X-Session-Set: empty key"},
           Case{"{\"" + std::string(257, 'k') + "\":1}", "X-Session-Set: key longer than 256 bytes"},
           Case{"{\"a\\u0000b\":1}", "X-Session-Set: control character in key"},
           Case{"{\"a\\r\\nb\":1}", "X-Session-Set: control character in key"},
           Case{"{\"a\\tb\":1}", "X-Session-Set: control character in key"},
           Case{"{\"a\\u007fb\":1}", "X-Session-Set: control character in key"}}) {
    CAPTURE(c.value);
    auto r = ParseOne("X-Session-Set", c.value);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == c.message);
  }
}

TEST_CASE("Delete splits a comma list, trims whitespace and accumulates") {
  auto r = Parse({{"X-Session-Delete", " cart ,flash,\t, ,,x y "},
                  {"x_session_delete", "cart"},
                  {"X-Session-Delete", ""},
                  {"X-Session-Delete", ",,,"},
                  {"X-Session-Delete", "\"q\",caf\xC3\xA9"}});
  REQUIRE(r.ok());
  CHECK(r->deletes ==
        std::vector<std::string>{"cart", "flash", "x y", "cart", "\"q\"", "caf\xC3\xA9"});
  CHECK(r->sets.empty());
}

TEST_CASE("Delete rejects keys with CR, LF, NUL or other control bytes, or too long") {
  for (const std::string& v : {std::string("a,b\rc"), std::string("a\nb"),
                               std::string("a,b\0c", 5), std::string("a\x01"),
                               std::string("a\x7F")}) {
    auto r = ParseOne("X-Session-Delete", v);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == "X-Session-Delete: control character in key");
  }
  CHECK(ParseOne("X-Session-Delete", std::string(256, 'k')).ok());
  auto r = ParseOne("X-Session-Delete", "a," + std::string(257, 'k'));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "X-Session-Delete: key longer than 256 bytes");
}

TEST_CASE("Destroy and Regenerate take true or false only") {
  for (const char* v : {"true", "TRUE", " True\t"}) {
    CAPTURE(v);
    auto d = ParseOne("X-Session-Destroy", v);
    REQUIRE(d.ok());
    CHECK(d->destroy);
    CHECK_FALSE(d->regenerate);
    auto g = ParseOne("x_session_regenerate", v);
    REQUIRE(g.ok());
    CHECK(g->regenerate);
    CHECK_FALSE(g->destroy);
  }
  for (const char* v : {"false", "FALSE", " false "}) {
    auto d = ParseOne("X-Session-Destroy", v);
    REQUIRE(d.ok());
    CHECK(d->empty());
  }
  // "false" does not undo an earlier "true".
  auto both = Parse({{"X-Session-Destroy", "true"}, {"X-Session-Destroy", "false"}});
  REQUIRE(both.ok());
  CHECK(both->destroy);
  for (const std::string& v : {std::string(""), std::string("1"), std::string("yes"),
                               std::string("true,true"), std::string("tru"),
                               std::string("true\0", 5), std::string(kSecret)}) {
    auto d = ParseOne("X-Session-Destroy", v);
    REQUIRE_FALSE(d.ok());
    CHECK(d.status().message() == "X-Session-Destroy: expected true or false");
    auto g = ParseOne("X-Session-Regenerate", v);
    REQUIRE_FALSE(g.ok());
    CHECK(g.status().message() == "X-Session-Regenerate: expected true or false");
  }
}

TEST_CASE("Unknown X-Session-* names and non-session names are ignored") {
  auto r = Parse({{"X-Session-Data", "{not json"},
                  {"X-Session-Status", "garbage\r\n"},
                  {"X-Session-Setx", "[1]"},
                  {"X-Session-", "x"},
                  {"Content-Type", "text/html"},
                  {"X-Session-Set", R"({"a":1})"}});
  REQUIRE(r.ok());
  CHECK(r->sets.size() == 1);
  CHECK_FALSE(r->destroy);
}

TEST_CASE("Error messages name the canonical header whatever the spelling") {
  auto r = ParseOne("x_SESSION_set", "[1]");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "X-Session-Set: not a JSON object");
}

TEST_CASE("The first error sticks and nothing is applied") {
  InstructionParser parser;
  CHECK(parser.Add("X-Session-Set", R"({"a":1})").ok());
  const Status first = parser.Add("X-Session-Destroy", "maybe");
  REQUIRE_FALSE(first.ok());
  const Status again = parser.Add("X-Session-Set", R"({"b":2})");
  CHECK(again.message() == first.message());
  auto r = parser.Finish();
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "X-Session-Destroy: expected true or false");
}

TEST_CASE("At most 64 instruction headers, ignored names included") {
  HeaderPairs headers;
  for (int i = 0; i < 63; ++i) headers.emplace_back("X-Session-Delete", "k" + std::to_string(i));
  headers.emplace_back("X-Session-Data", "echo");
  auto ok = Parse(headers);
  REQUIRE(ok.ok());
  CHECK(ok->deletes.size() == 63);
  headers.emplace_back("X-Session-Echo", "x");
  auto r = Parse(headers);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kInvalid);
  CHECK(r.status().message() == "X-Session-*: more than 64 headers");
  // Non-session names do not count.
  HeaderPairs mixed = headers;
  mixed.pop_back();
  for (int i = 0; i < 1000; ++i) mixed.emplace_back("X-Other", "x");
  CHECK(Parse(mixed).ok());
}

TEST_CASE("Instruction values are bounded per header and in total") {
  const std::string filler(kMaxInstructionValueBytes - 10, 'x');
  const std::string at_bound = "{\"a\":\"" + filler + "\"}" + std::string(2, ' ');
  REQUIRE(at_bound.size() == kMaxInstructionValueBytes);
  CHECK(ParseOne("X-Session-Set", at_bound).ok());

  auto over = ParseOne("X-Session-Set", at_bound + " " + kSecret);
  REQUIRE_FALSE(over.ok());
  CHECK(over.status().message() == "X-Session-Set: value over 65536 bytes");
  auto del = ParseOne("X-Session-Delete", std::string(kMaxInstructionValueBytes + 1, ','));
  REQUIRE_FALSE(del.ok());
  CHECK(del.status().message() == "X-Session-Delete: value over 65536 bytes");

  HeaderPairs four(4, {"X-Session-Set", at_bound});
  CHECK(Parse(four).ok());  // exactly 256 KiB
  four.emplace_back("X-Session-Delete", "a");
  auto total = Parse(four);
  REQUIRE_FALSE(total.ok());
  CHECK(total.status().message() == "X-Session-Delete: instructions over 262144 bytes in total");
  // Ignored echoes do not count toward the byte total.
  HeaderPairs echoed(4, {"X-Session-Set", at_bound});
  echoed.emplace_back("X-Session-Data", std::string(1 << 20, 'x'));
  CHECK(Parse(echoed).ok());
}

TEST_CASE("All instruction kinds combine into one batch") {
  auto r = Parse({{"X-Session-Destroy", "true"},
                  {"X-Session-Regenerate", "true"},
                  {"X-Session-Delete", "a"},
                  {"X-Session-Set", R"({"b":"c"})"}});
  REQUIRE(r.ok());
  CHECK(r->destroy);
  CHECK(r->regenerate);
  CHECK(r->deletes == std::vector<std::string>{"a"});
  CHECK(r->sets.at("b") == std::optional<std::string>("\"c\""));
  auto none = Parse({});
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("CheckBatchFits applies destroy, delete and set before measuring") {
  const SessionData current{{"big", "\"" + std::string(100, 'x') + "\""}, {"k", "1"}};
  ChangeBatch batch;
  batch.sets["n"] = "2";
  const uint64_t after_set = SerializedSize({{"big", current.at("big")}, {"k", "1"}, {"n", "2"}});
  CHECK(CheckBatchFits(current, batch, after_set).ok());
  CHECK(CheckBatchFits(current, batch, after_set - 1).code() == Status::Code::kTooLarge);

  ChangeBatch destroy = batch;
  destroy.destroy = true;
  CHECK(CheckBatchFits(current, destroy, SerializedSize({{"n", "2"}})).ok());

  ChangeBatch shrink;
  shrink.deletes = {"big"};
  shrink.sets["k"] = std::nullopt;
  CHECK(CheckBatchFits(current, shrink, 2).ok());  // "{}"
  // The early check against an empty session rejects an oversized Set alone.
  ChangeBatch huge;
  huge.sets["h"] = std::string(5000, '1');
  CHECK(CheckBatchFits({}, huge, 4096).code() == Status::Code::kTooLarge);
}

TEST_CASE("Every injected request header is an X-Session-* name (the filter appends them as kSessionAny)") {
  const SessionData data{{"a", "1"}};
  const InjectedSession session{"cHVibGljLWlk", &data, 2000000000, {}};
  for (SessionStatus status : {SessionStatus::kNone, SessionStatus::kNew, SessionStatus::kActive,
                               SessionStatus::kExpired, SessionStatus::kInvalid}) {
    for (const auto& [name, value] : FormatRequestHeaders(status, &session)) {
      CAPTURE(name);
      CHECK(ClassifyHeader(name) == HeaderId::kSessionAny);
    }
  }
}

}  // namespace sessiond

namespace sessiond {
namespace {

TEST_CASE("Revoke takes others or all; the wider wins; anything else is malformed") {
  // docs/HEADER-PROTOCOL.md, Instructions
  CHECK(ClassifyInstruction("x_session_REVOKE") == InstructionKind::kRevoke);
  Result<ChangeBatch> others = ParseInstructions({{"X-Session-Revoke", " Others "}});
  REQUIRE(others.ok());
  CHECK(others->revoke == RevokeScope::kOthers);
  CHECK_FALSE(others->empty());
  Result<ChangeBatch> all = ParseInstructions({{"X-Session-Revoke", "all"}, {"X-Session-Revoke", "others"}});
  REQUIRE(all.ok());
  CHECK(all->revoke == RevokeScope::kAll);
  for (const char* bad : {"", "true", "everyone", "others,all", "none"}) {
    CAPTURE(bad);
    Result<ChangeBatch> r = ParseInstructions({{"X-Session-Revoke", bad}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == "X-Session-Revoke: expected others or all");
  }
  CHECK(ParseInstructions({}).value().revoke == RevokeScope::kNone);
}

TEST_CASE("SubjectOf: a string's text or an integer's digits; anything else indexes nothing") {
  // docs/HEADER-PROTOCOL.md, Subjects
  const SessionData data = {{"s", "\"ada\""},       {"esc", "\"caf\\u00e9\""}, {"n", "42"},  {"neg", "-7"},
                            {"f", "1.5"},           {"o", "{\"a\":1}"},        {"b", "true"}, {"z", "null"},
                            {"empty", "\"\""},      {"ctl", "\"a\\nb\""}};
  CHECK(SubjectOf(data, "s") == "ada");
  CHECK(SubjectOf(data, "esc") == "caf\xc3\xa9");
  CHECK(SubjectOf(data, "n") == "42");
  CHECK(SubjectOf(data, "neg") == "-7");
  for (const char* none : {"f", "o", "b", "z", "empty", "ctl", "missing"}) {
    CAPTURE(none);
    CHECK(SubjectOf(data, none).empty());
  }
  CHECK(SubjectOf(data, "").empty());
  CHECK(SubjectOfValue("\"" + std::string(257, 'a') + "\"").empty());
  CHECK(SubjectOfValue("\"" + std::string(256, 'a') + "\"") == std::string(256, 'a'));
}

}  // namespace
}  // namespace sessiond
