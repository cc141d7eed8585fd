// The X-Session-Set JSON reader (session/set_json.h): nlohmann's acceptance,
// error offsets and stored forms, checked against nlohmann itself (which
// sessiond used before, docs/HEADER-PROTOCOL.md, Instructions), plus the
// forms the contract pins.
#include "session/set_json.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "new_counter.h"

namespace sessiond {
namespace {

using Json = nlohmann::json;

struct Collected final : SetJsonMembers {
  std::vector<std::pair<std::string, std::string>> members;
  void Member(std::string_view key, std::string_view value) override {
    members.emplace_back(std::string(key), std::string(value));
  }
  // The last value of each key, as a map (what a batch keeps).
  std::map<std::string, std::string> Merged() const {
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : members) out[k] = v;
    return out;
  }
};

// What nlohmann says about `text`: "ok", "syntax N", "range" or "not object",
// and the members with their dumped values.
std::string Oracle(const std::string& text, std::map<std::string, std::string>* members) {
  try {
    const Json j = Json::parse(text.begin(), text.end());
    if (!j.is_object()) return "not object";
    for (const auto& [k, v] : j.items()) (*members)[k] = v.dump(-1, ' ', /*ensure_ascii=*/true);
    return "ok";
  } catch (const Json::parse_error& e) {
    return "syntax " + std::to_string(e.byte);
  } catch (const Json::out_of_range&) {
    return "range";
  }
}

std::string Ours(const std::string& text, std::map<std::string, std::string>* members) {
  Collected c;
  std::string scratch;
  const SetJsonResult r = ReadSetJson(text, &c, &scratch);
  switch (r.kind) {
    case SetJsonResult::Kind::kOk: *members = c.Merged(); return "ok";
    case SetJsonResult::Kind::kSyntax: return "syntax " + std::to_string(r.byte);
    case SetJsonResult::Kind::kRange: return "range";
    case SetJsonResult::Kind::kNotObject: return "not object";
  }
  return "?";
}

void CheckAgainstOracle(const std::string& text) {
  CAPTURE(text);
  std::map<std::string, std::string> want, got;
  const std::string expected = Oracle(text, &want);
  CHECK(Ours(text, &got) == expected);
  CHECK(got == want);
}

std::string StoredValue(const std::string& text) {
  Collected c;
  std::string scratch;
  const SetJsonResult r = ReadSetJson("{\"v\":" + text + "}", &c, &scratch);
  REQUIRE(r.ok());
  REQUIRE(c.members.size() == 1);
  return c.members[0].second;
}

}  // namespace

TEST_CASE("Set JSON: stored forms are compact, ASCII-only and canonical") {
  CHECK(StoredValue(" \"ada\" ") == "\"ada\"");
  CHECK(StoredValue("[ 1 , 2 ,\t[ ] , [true,false,null] ]") == "[1,2,[],[true,false,null]]");
  CHECK(StoredValue("-0") == "0");
  CHECK(StoredValue("-9223372036854775808") == "-9223372036854775808");
  CHECK(StoredValue("18446744073709551615") == "18446744073709551615");
  // Beyond 64 bits: a double, as nlohmann prints it.
  CHECK(StoredValue("18446744073709551616") == Json(18446744073709551616.0).dump());
  CHECK(StoredValue("1.50") == "1.5");
  CHECK(StoredValue("1E2") == "100.0");
  CHECK(StoredValue("-1e-400") == "-0.0");
  // Escapes: the short ones where JSON has them, \u00xx for other control
  // characters, DEL and non-ASCII as lowercase \u, '/' plain.
  CHECK(StoredValue(R"("\/\"\\\b\f\n\r\t\u0001\u007F\u00E9")") == R"("/\"\\\b\f\n\r\t\u0001\u007f\u00e9")");
  CHECK(StoredValue("\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \x7F\"") ==
        R"("caf\u00e9 \u20ac \ud83d\ude00 \u007f")");
  CHECK(StoredValue(R"("\uD83D\uDE00")") == R"("\ud83d\ude00")");
  // An object inside a value: keys sorted, the last of a repeated key kept.
  CHECK(StoredValue(R"({"b":1,"a":{"y":2,"x":[{"q":1,"p":2}]},"b":3})") ==
        R"({"a":{"x":[{"p":2,"q":1}],"y":2},"b":3})");
  CHECK(StoredValue(R"([1,{"b":2,"a":1}])") == R"([1,{"a":1,"b":2}])");
}

TEST_CASE("Set JSON: members come in document order with keys decoded") {
  Collected c;
  std::string scratch;
  const SetJsonResult r =
      ReadSetJson("\xEF\xBB\xBF { \"b\" : 1 , \"a\\u00e9\\n\" : \"x\" , \"caf\xC3\xA9\":null, \"b\":2 } \r\n",
                  &c, &scratch);
  REQUIRE(r.ok());
  REQUIRE(c.members.size() == 4);
  CHECK(c.members[0] == std::make_pair(std::string("b"), std::string("1")));
  CHECK(c.members[1] == std::make_pair(std::string("a\xC3\xA9\n"), std::string("\"x\"")));
  CHECK(c.members[2] == std::make_pair(std::string("caf\xC3\xA9"), std::string("null")));
  CHECK(c.members[3] == std::make_pair(std::string("b"), std::string("2")));
}

TEST_CASE("Set JSON: errors and their byte offsets are nlohmann's") {
  for (const char* text : {
           "", " ", "{", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,}", "{\"a\" 1}", "{,}", "{a:1}", "{'a':1}",
           "{\"a\":01}", "{\"a\":-}", "{\"a\":-a}", "{\"a\":1.}", "{\"a\":1.e5}", "{\"a\":1e}", "{\"a\":1e+}",
           "{\"a\":.5}", "{\"a\":+1}", "{\"a\":tru}", "{\"a\":truex}", "{\"a\":nul}", "{\"a\":falsy}",
           "{\"a\":1} x", "{\"a\":1} trailing", "{\"a\":1}}", "{\"a\":1} {}", "{\"a\":[1,]}", "{\"a\":[1 2]}",
           "{\"a\":[}", "{\"a\":{\"b\"}}", "{\"a\":1e400}", "{\"a\":-1e400}", "{\"a\":[1e999]}",
           "{1e400:1}", "{\"a\":1 1e400}", "{} 1e400", "[1e400", "{\"a\":\"x", "{\"a\":\"\\x\"}",
           "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12G4\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\ud800x\"}",
           "{\"a\":\"\\ud800\\n\"}", "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\udc00\"}",
           "{\"a\":\"\x01\"}", "{\"a\":\"\x1F\"}", "{\"a\":\"\x80\"}", "{\"a\":\"\xC1\xBF\"}",
           "{\"a\":\"\xC3\"}", "{\"a\":\"\xC3(\"}", "{\"a\":\"\xE0\x80\x80\"}", "{\"a\":\"\xED\xA0\x80\"}",
           "{\"a\":\"\xF0\x80\x80\x80\"}", "{\"a\":\"\xF4\x90\x80\x80\"}", "{\"a\":\"\xF5\x80\x80\x80\"}",
           "{\"a\":\"\xFF\"}", "\xEF", "\xEF\xBB", "\xEF\xBB\xBF", " \xEF\xBB\xBF{}", "\xEF\xBB\xBF{}",
           "[1,2]", "\"s\"", "42", "null", "[]", "[{}]", "{}", "{\"a\":1}/* c */", "{\"a\":1}\n\t\r "}) {
    CheckAgainstOracle(text);
  }
}

TEST_CASE("Set JSON: random documents and their mutations agree with nlohmann") {
  // A deterministic generator of valid documents (with every escape, UTF-8
  // length, number shape and nesting), one in three then damaged by
  // deleting, inserting or cutting bytes.
  std::mt19937 rng(20261205);
  const auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  const std::vector<std::string> ws = {"", "", "", " ", "\t", "\n", "\r", "  "};
  const std::vector<std::string> str_parts = {
      "a", "Z", "/", "\\/", "\\\"", "\\\\", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0041", "\\u00E9", "\\u0000",
      "\\u001f", "\\u007F", "\\ud83d\\ude00", "\\uD83D\\uDE00", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
      "\x7F", "~", " "};
  const std::vector<std::string> numbers = {
      "0", "-0", "1", "-1", "1.5", "-0.0", "0.1", "1e2", "1E-2", "1e+300", "2.5e-310", "1e-400",
      "123456789012345678901234567890", "18446744073709551615", "18446744073709551616",
      "-9223372036854775808", "-9223372036854775809", "1.7976931348623157e308", "5e-324", "12345678.125"};
  const auto str = [&] {
    std::string s = "\"";
    for (int i = static_cast<int>(rng() % 4); i > 0; --i) s += pick(str_parts);
    return s + "\"";
  };
  std::function<std::string(int)> value = [&](int depth) -> std::string {
    switch (rng() % (depth > 3 ? 4 : 7)) {
      case 0: return str();
      case 1:
      case 3: return pick(numbers);
      case 2: return pick({"true", "false", "null"});
      case 4:
      case 5: {
        std::string s = "[" + pick(ws);
        for (int i = 0, n = static_cast<int>(rng() % 4); i < n; ++i) s += (i ? "," + pick(ws) : "") + value(depth + 1) + pick(ws);
        return s + "]";
      }
      default: {
        std::string s = "{" + pick(ws);
        for (int i = 0, n = static_cast<int>(rng() % 4); i < n; ++i) {
          s += (i ? "," + pick(ws) : "") + str() + pick(ws) + ":" + pick(ws) + value(depth + 1) + pick(ws);
        }
        return s + "}";
      }
    }
  };
  const std::string damage = "{}[]:,\" \\0-.eE\x80\xC3\x01tfnu";
  for (int iteration = 0; iteration < 3000; ++iteration) {
    std::string text = (rng() % 20 == 0 ? "\xEF\xBB\xBF" : "") + pick(ws) + "{";
    for (int i = 0, n = static_cast<int>(rng() % 5); i < n; ++i) {
      text += (i ? "," : "") + pick(ws) + str() + ":" + pick(ws) + value(1) + pick(ws);
    }
    text += "}" + pick(ws);
    if (rng() % 3 == 0) {
      for (int k = static_cast<int>(rng() % 3) + 1; k > 0 && !text.empty(); --k) {
        const size_t at = rng() % text.size();
        switch (rng() % 3) {
          case 0: text.erase(at, 1); break;
          case 1: text.insert(at, 1, damage[rng() % damage.size()]); break;
          default: text.resize(at); break;
        }
      }
    }
    CheckAgainstOracle(text);
  }
}

TEST_CASE("Set JSON: a flat object allocates nothing beyond its values") {
  Collected c;
  c.members.reserve(8);
  std::string scratch;
  scratch.reserve(64);
  const std::string text = R"({"user":"ada", "n":1, "tags":["a","b"], "ok":true, "gone":null})";
  testing::NewCounter news;
  const SetJsonResult r = ReadSetJson(text, &c, &scratch);
  const long during = news.count();
  REQUIRE(r.ok());
  CHECK(c.members.size() == 5);
  // Collected copies each key and value (all within std::string's inline
  // capacity here): the reader itself allocated nothing.
  CHECK(during == 0);
}

TEST_CASE("Set JSON: nesting is bounded without recursion") {
  Collected c;
  std::string scratch;
  const std::string deep = "{\"a\":" + std::string(100000, '[');
  const SetJsonResult r = ReadSetJson(deep, &c, &scratch);
  CHECK(r.kind == SetJsonResult::Kind::kSyntax);
  CHECK(c.members.empty());
}

}  // namespace sessiond
