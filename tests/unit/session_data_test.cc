// Tests of the session data model (store/session_data.h): the JSON form and
// its reader, the map-free merge of a change batch, and the one size rule.
#include "store/session_data.h"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sessiond {
namespace {

// Values are stored as their exact JSON text; keys are any bytes.
const SessionData kSample = {
    {"user", "\"ada\""}, {"cart", "[1,2,{\"x\":null}]"}, {"n", "1.50e2"}, {"ok", "true"},
    {"caf\xc3\xa9", "\"\\u00e9\""}, {"quote\"back\\slash", "{}"}, {"", "0"}, {"ctl\x01", "null"},
    {"emoji\xf0\x9f\x98\x80", "[\"}\",\"]\"]"},
};

// What MergeSessionJson must equal: parse, change the map, serialize.
std::string MergedViaMap(const std::string& current, const ChangeBatch& batch) {
  SessionData data;
  REQUIRE(ParseSessionJson(current.empty() ? "{}" : current, &data));
  ApplyChanges(&data, batch.destroy, batch.deletes, batch.sets);
  return SerializeSession(data);
}

TEST_CASE("SerializeSession and ParseSessionJson are inverses, and SerializedSize is the length") {
  const std::string json = SerializeSession(kSample);
  CHECK(SerializedSize(kSample) == json.size());
  for (const char c : json) CHECK(static_cast<unsigned char>(c) < 0x80);  // ASCII only
  SessionData back;
  REQUIRE(ParseSessionJson(json, &back));
  CHECK(back == kSample);
  CHECK(IsSessionJson(json));

  std::string appended = "prefix";
  AppendSession(&appended, kSample);
  CHECK(appended == "prefix" + json);
  CHECK(SerializeSession({}) == "{}");
  CHECK(SerializedSize({}) == 2);
}

TEST_CASE("ParseSessionJson refuses everything that is not one session object, and says so") {
  for (const char* bad : {"[1,2]", "\"text\"", "7", "", "{", "{\"a\":", "{\"a\":1", "{\"a\":1,}", "{\"a\":1}x",
                          "{\"a\":1}}", "{\"a\"}", "{a:1}", "{\"a\":tr ue}", "{\"a\":[1,2}",
                          "{\"a\":\"unterminated}", "{\"\\ud800\":1}", "{\"\\udc00\":1}", "{\"\\x41\":1}",
                          "{\"a\\u12\":1}", "{\"tab\there\":1}", " {}", "{} ", "{\"a\" :1}"}) {
    CAPTURE(bad);
    SessionData out = {{"stale", "1"}};
    CHECK_FALSE(ParseSessionJson(bad, &out));
    CHECK(out.empty());
    CHECK_FALSE(IsSessionJson(bad));
  }
  SessionData out;
  REQUIRE(ParseSessionJson("{\"a\":1,\"b\\u00e9\":[\"]\",{\"c\":\"}\"}],\"a\":2}", &out));
  CHECK(out == SessionData{{"a", "2"}, {"b\xc3\xa9", "[\"]\",{\"c\":\"}\"}]"}});  // the last duplicate wins
}

TEST_CASE("IsSessionJson agrees with ParseSessionJson on mutated session text") {
  const std::string base = SerializeSession(kSample);
  const std::string alphabet = "{}[]\":,\\u0123456789abcdefnrtls.-+eE\x01\x80";
  std::mt19937 rng(4242);
  int valid = 0;
  for (int round = 0; round < 5000; ++round) {
    std::string json = base;
    for (unsigned m = 1 + rng() % 3; m > 0; --m) {
      const size_t at = rng() % (json.size() + 1);
      switch (rng() % 3) {
        case 0: if (at < json.size()) json[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: json.insert(json.begin() + at, alphabet[rng() % alphabet.size()]); break;
        default: if (at < json.size()) json.erase(at, 1); break;
      }
    }
    SessionData out;
    const bool parsed = ParseSessionJson(json, &out);
    CAPTURE(json);
    REQUIRE(IsSessionJson(json) == parsed);
    if (parsed) ++valid;
    // Whatever nlohmann reads as an object, the reader reads too.
    if (nlohmann::json::parse(json, nullptr, false).is_object()) CHECK(parsed);
  }
  CHECK(valid > 200);  // the mutations kept enough texts valid to mean something
}

TEST_CASE("MergeSessionJson equals parse + ApplyChanges + serialize") {
  const std::string current = SerializeSession(kSample);

  SUBCASE("no changes reproduce the text") {
    std::string out = "junk";
    REQUIRE(MergeSessionJson(current, false, {}, {}, &out));
    CHECK(out == current);
  }
  SUBCASE("an empty current is the empty session") {
    ChangeBatch batch;
    batch.sets["b"] = "2";
    batch.sets["a"] = "1";
    std::string out;
    REQUIRE(MergeSessionJson("", false, {}, batch.sets, &out));
    CHECK(out == "{\"a\":1,\"b\":2}");
  }
  SUBCASE("sets before, between and after the current keys; replace; null deletes") {
    ChangeBatch batch;
    batch.sets[""] = "\"first\"";
    batch.sets["caf\xc3\xa9"] = std::nullopt;
    batch.sets["m"] = "[]";
    batch.sets["user"] = "\"grace\"";
    batch.sets["zzz\n"] = "1";
    batch.sets["absent"] = std::nullopt;
    std::string out;
    REQUIRE(MergeSessionJson(current, false, {}, batch.sets, &out));
    CHECK(out == MergedViaMap(current, batch));
  }
  SUBCASE("clear keeps only the sets, deletes apply before sets") {
    ChangeBatch batch;
    batch.deletes = {"user", "n", "missing", "ok"};
    batch.sets["ok"] = "false";  // deleted and set again: the set wins
    std::string out;
    REQUIRE(MergeSessionJson(current, false, batch.deletes, batch.sets, &out));
    CHECK(out == MergedViaMap(current, batch));
    batch.destroy = true;
    REQUIRE(MergeSessionJson(current, true, batch.deletes, batch.sets, &out));
    CHECK(out == "{\"ok\":false}");
    CHECK(out == MergedViaMap(current, batch));
  }
  SUBCASE("text not sorted by key (never our own) still merges correctly") {
    const std::string unsorted = "{\"b\":1,\"a\":2,\"b\":3}";
    ChangeBatch batch;
    batch.sets["c"] = "4";
    std::string out;
    REQUIRE(MergeSessionJson(unsorted, false, {}, batch.sets, &out));
    CHECK(out == "{\"a\":2,\"b\":3,\"c\":4}");
  }
  SUBCASE("text that is not session JSON fails and leaves nothing") {
    std::string out = "junk";
    CHECK_FALSE(MergeSessionJson("{\"a\":", false, {}, {}, &out));
    CHECK(out.empty());
    CHECK_FALSE(MergeSessionJson("[1]", true, {}, {}, &out));
  }
}

TEST_CASE("MergeSessionJson matches the map for random sessions and batches") {
  std::mt19937 rng(99);
  const std::vector<std::string> keys = {"", "a", "b", "ab", "B", "caf\xc3\xa9", "q\"", "\\", "\x01", "\x7f",
                                         "z", "zz", "\xf0\x9f\x98\x80", "\xff"};
  const std::vector<std::string> values = {"1", "\"x\"", "[1,{\"y\":\"]\"}]", "null", "{}", "true"};
  for (int round = 0; round < 2000; ++round) {
    SessionData data;
    for (unsigned n = rng() % 6; n > 0; --n) data[keys[rng() % keys.size()]] = values[rng() % values.size()];
    ChangeBatch batch;
    batch.destroy = rng() % 5 == 0;
    for (unsigned n = rng() % 3; n > 0; --n) batch.deletes.push_back(keys[rng() % keys.size()]);
    for (unsigned n = rng() % 4; n > 0; --n) {
      const std::string& key = keys[rng() % keys.size()];
      if (rng() % 4 == 0) batch.sets[key] = std::nullopt;
      else batch.sets[key] = values[rng() % values.size()];
    }
    const std::string current = SerializeSession(data);
    std::string out;
    REQUIRE(MergeSessionJson(current, batch.destroy, batch.deletes, batch.sets, &out));
    CAPTURE(current);
    REQUIRE(out == MergedViaMap(current, batch));
  }
}

TEST_CASE("CheckSessionSize is the one size rule, with one message") {
  const SessionData data{{"a", "\"b\""}};
  const uint64_t size = SerializedSize(data);
  CHECK(CheckSessionSize(size, size).ok());
  CHECK(CheckSessionSize(2, 2).ok());
  const Status over = CheckSessionSize(size, size - 1);
  REQUIRE_FALSE(over.ok());
  CHECK(over.code() == Status::Code::kTooLarge);
  CHECK(over.message() == "session would be " + std::to_string(size) + " bytes, over max_session_bytes (" +
                              std::to_string(size - 1) + ")");
}

TEST_CASE("ChangeBatch says whether it changes keys and whether a Set gives a value") {
  ChangeBatch batch;
  CHECK(batch.empty());
  CHECK_FALSE(batch.changes_keys());
  CHECK_FALSE(batch.sets_a_value());
  batch.sets["a"] = std::nullopt;
  CHECK(batch.changes_keys());
  CHECK_FALSE(batch.sets_a_value());
  batch.sets["b"] = "1";
  CHECK(batch.sets_a_value());
  ChangeBatch deletes;
  deletes.deletes = {"a"};
  CHECK(deletes.changes_keys());
  ChangeBatch flags;
  flags.regenerate = true;
  CHECK_FALSE(flags.empty());
  CHECK_FALSE(flags.changes_keys());
}

}  // namespace
}  // namespace sessiond

TEST_CASE("SessionJsonHasKey finds top-level keys only, escaped or not") {
  using sessiond::SessionJsonHasKey;
  const std::string json = R"({"a":{"inner":1},"caf\u00e9":"x","list":["user"],"user":"ada"})";
  CHECK(SessionJsonHasKey(json, "user"));
  CHECK(SessionJsonHasKey(json, "a"));
  CHECK(SessionJsonHasKey(json, "list"));
  CHECK(SessionJsonHasKey(json, "caf\xc3\xa9"));
  CHECK_FALSE(SessionJsonHasKey(json, "inner"));
  CHECK_FALSE(SessionJsonHasKey(json, "ada"));
  CHECK_FALSE(SessionJsonHasKey(json, "use"));
  CHECK_FALSE(SessionJsonHasKey(json, ""));
  CHECK_FALSE(SessionJsonHasKey("{}", "user"));
  CHECK_FALSE(SessionJsonHasKey("", "user"));
  CHECK_FALSE(SessionJsonHasKey(R"({"user")", "user"));
  CHECK_FALSE(SessionJsonHasKey(R"(["user"])", "user"));
}
