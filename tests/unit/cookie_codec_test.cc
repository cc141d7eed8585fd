// Tests of CookieCodec: token and sealed-cookie round trips, rejection of every
// tampering, key rotation, keyed store/public ids and Set-Cookie strings.
#include <doctest/doctest.h>

#include <ctime>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "crypto/crypto.h"
#include "crypto/keys.h"
#include "session/cookie_codec.h"

namespace sessiond {
namespace {

const std::string kSecretA = "secret A: 0123456789abcdef0123456789abcdef";
const std::string kSecretB = "secret B: 0123456789abcdef0123456789abcdef";
constexpr int64_t kNow = 1700000000;  // Tue, 14 Nov 2023 22:13:20 GMT
constexpr int64_t kLater = kNow + 86400;

Config MakeConfig(const std::string& secret, StoreKind manager = StoreKind::kRedis,
                  std::vector<std::string> fallbacks = {}) {
  Config config;
  config.secret_key = secret;
  config.secret_key_fallbacks = std::move(fallbacks);
  config.session.manager = manager;
  return config;
}

std::shared_ptr<const CookieCodec> MakeCodec(const Config& config) {
  Result<std::shared_ptr<const CookieCodec>> codec = CookieCodec::Create(config);
  REQUIRE(codec.ok());
  return *codec;
}

std::string NewId(const CookieCodec& codec) {
  Result<std::string> id = codec.NewSessionId();
  REQUIRE(id.ok());
  return *id;
}

// Every value obtained by replacing one byte of `value` with a different one
// from a set covering the alphabet, the separators and bytes outside it.
std::vector<std::string> SingleByteChanges(const std::string& value) {
  const std::string replacements = std::string("Az09-_.=+/ ~%;\x7f\x80\xff") + '\0';
  std::vector<std::string> out;
  for (size_t i = 0; i < value.size(); ++i) {
    std::string candidates = replacements;
    candidates.push_back(static_cast<char>(value[i] ^ 0x01));
    candidates.push_back(static_cast<char>(value[i] ^ 0x20));
    for (char c : candidates) {
      if (c == value[i]) continue;
      std::string changed = value;
      changed[i] = c;
      out.push_back(std::move(changed));
    }
  }
  return out;
}

// --- store-manager tokens ------------------------------------------------------

TEST_CASE("a token round-trips id and expiry with key index 0") {
  auto codec = MakeCodec(MakeConfig(kSecretA));
  const std::string id = NewId(*codec);
  Result<std::string> token = codec->EncodeToken(id, kLater);
  REQUIRE(token.ok());
  CHECK(token->rfind("1.", 0) == 0);
  CHECK(token->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
        std::string::npos);

  DecodedCookie decoded = codec->DecodeToken(*token, kNow);
  CHECK(decoded.verdict == CookieVerdict::kValid);
  CHECK(decoded.id == id);
  CHECK(decoded.expires_at == kLater);
  CHECK(decoded.key_index == 0);
  CHECK(codec->Verify(*token, kNow).verdict == CookieVerdict::kValid);
}

TEST_CASE("the token MAC covers prefix, cookie name, id and expiry as documented") {
  auto codec = MakeCodec(MakeConfig(kSecretA));
  const std::string id = NewId(*codec);
  Result<std::string> token = codec->EncodeToken(id, kLater);
  REQUIRE(token.ok());
  Result<crypto::KeySet> keys = crypto::DeriveKeySet(kSecretA);
  REQUIRE(keys.ok());
  Result<std::string> mac = crypto::HmacSha256(
      keys->cookie_mac, "sessiond-token|v1|session_id|" + id + "|" + std::to_string(kLater));
  REQUIRE(mac.ok());
  CHECK(*token == "1." + crypto::Base64UrlEncode(id) + "." + std::to_string(kLater) + "." +
                      crypto::Base64UrlEncode(*mac));
}

TEST_CASE("every single-byte change of a token is invalid") {
  auto codec = MakeCodec(MakeConfig(kSecretA));
  Result<std::string> token = codec->EncodeToken(NewId(*codec), kLater);
  REQUIRE(token.ok());
  const std::vector<std::string> changes = SingleByteChanges(*token);
  REQUIRE(changes.size() > token->size() * 10);
  size_t accepted = 0;
  for (const std::string& changed : changes) {
    if (codec->DecodeToken(changed, kNow).verdict != CookieVerdict::kInvalid) ++accepted;
  }
  CHECK(accepted == 0);
}

TEST_CASE("every truncation or extension of a token is invalid") {
  auto codec = MakeCodec(MakeConfig(kSecretA));
  Result<std::string> token = codec->EncodeToken(NewId(*codec), kLater);
  REQUIRE(token.ok());
  for (size_t n = 0; n < token->size(); ++n) {
    CHECK(codec->DecodeToken(token->substr(0, n), kNow).verdict == CookieVerdict::kInvalid);
    CHECK(codec->DecodeToken(token->substr(n + 1), kNow).verdict == CookieVerdict::kInvalid);
  }
  for (const char* suffix : {"A", ".", "=", " ", ".1"}) {
    CHECK(codec->DecodeToken(*token + suffix, kNow).verdict == CookieVerdict::kInvalid);
  }
  CHECK(codec->DecodeToken(*token + std::string(600, 'A'), kNow).verdict == CookieVerdict::kInvalid);
}

TEST_CASE("a correctly MACed token with a non-canonical expiry is invalid") {
  auto codec = MakeCodec(MakeConfig(kSecretA));
  Result<crypto::KeySet> keys = crypto::DeriveKeySet(kSecretA);
  REQUIRE(keys.ok());
  const std::string id = NewId(*codec);
  // Forge with the real key, so only the parser can refuse these.
  auto forge = [&](const std::string& expiry) {
    Result<std::string> mac =
        crypto::HmacSha256(keys->cookie_mac, "sessiond-token|v1|session_id|" + id + "|" + expiry);
    REQUIRE(mac.ok());
    return "1." + crypto::Base64UrlEncode(id) + "." + expiry + "." + crypto::Base64UrlEncode(*mac);
  };
  CHECK(codec->DecodeToken(forge(std::to_string(kLater)), kNow).verdict == CookieVerdict::kValid);
  CHECK(codec->DecodeToken(forge("0" + std::to_string(kLater)), kNow).verdict ==
        CookieVerdict::kInvalid);
  CHECK(codec->DecodeToken(forge("+" + std::to_string(kLater)), kNow).verdict ==
        CookieVerdict::kInvalid);
  CHECK(codec->DecodeToken(forge("0"), kNow).verdict == CookieVerdict::kInvalid);
  CHECK(codec->DecodeToken(forge("-5"), kNow).verdict == CookieVerdict::kInvalid);
  CHECK(codec->DecodeToken(forge("1000000000000"), kNow).verdict == CookieVerdict::kInvalid);
}

TEST_CASE("a token minted under another cookie name or secret is invalid") {
  auto codec = MakeCodec(MakeConfig(kSecretA));
  Config renamed = MakeConfig(kSecretA);
  renamed.session.cookie_name = "other_session";
  auto other_name = MakeCodec(renamed);
  auto other_secret = MakeCodec(MakeConfig(kSecretB));
  Result<std::string> token = codec->EncodeToken(NewId(*codec), kLater);
  REQUIRE(token.ok());
  CHECK(codec->DecodeToken(*token, kNow).verdict == CookieVerdict::kValid);
  CHECK(other_name->DecodeToken(*token, kNow).verdict == CookieVerdict::kInvalid);
  CHECK(other_secret->DecodeToken(*token, kNow).verdict == CookieVerdict::kInvalid);
}

TEST_CASE("a token is expired exactly when its MAC verifies and expires_at <= now") {
  auto codec = MakeCodec(MakeConfig(kSecretA));
  const std::string id = NewId(*codec);
  Result<std::string> token = codec->EncodeToken(id, kNow);
  REQUIRE(token.ok());
  DecodedCookie at = codec->DecodeToken(*token, kNow);
  CHECK(at.verdict == CookieVerdict::kExpired);
  CHECK(at.id == id);
  CHECK(at.expires_at == kNow);
  CHECK(codec->DecodeToken(*token, kNow + 1000).verdict == CookieVerdict::kExpired);
  CHECK(codec->DecodeToken(*token, kNow - 1).verdict == CookieVerdict::kValid);
  std::string forged = *token;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  CHECK(codec->DecodeToken(forged, kNow + 1000).verdict == CookieVerdict::kInvalid);
}

TEST_CASE("EncodeToken refuses bad ids and expiries") {
  auto codec = MakeCodec(MakeConfig(kSecretA));
  CHECK_FALSE(codec->EncodeToken(std::string(31, 'x'), kLater).ok());
  CHECK_FALSE(codec->EncodeToken(std::string(33, 'x'), kLater).ok());
  CHECK_FALSE(codec->EncodeToken(std::string(32, 'x'), 0).ok());
  CHECK_FALSE(codec->EncodeToken(std::string(32, 'x'), CookieCodec::kMaxExpiry + 1).ok());
  CHECK(codec->EncodeToken(std::string(32, 'x'), CookieCodec::kMaxExpiry).ok());
}

// --- key rotation --------------------------------------------------------------

TEST_CASE("a fallback key verifies with its index but never signs") {
  auto old_codec = MakeCodec(MakeConfig(kSecretA));
  auto rotated = MakeCodec(MakeConfig(kSecretB, StoreKind::kRedis, {kSecretA}));
  auto only_b = MakeCodec(MakeConfig(kSecretB));
  REQUIRE(rotated->key_count() == 2);
  const std::string id = NewId(*rotated);

  Result<std::string> old_token = old_codec->EncodeToken(id, kLater);
  REQUIRE(old_token.ok());
  DecodedCookie d = rotated->DecodeToken(*old_token, kNow);
  CHECK(d.verdict == CookieVerdict::kValid);
  CHECK(d.key_index == 1);
  CHECK(d.id == id);

  Result<std::string> new_token = rotated->EncodeToken(id, kLater);
  REQUIRE(new_token.ok());
  CHECK(only_b->DecodeToken(*new_token, kNow).verdict == CookieVerdict::kValid);
  CHECK(old_codec->DecodeToken(*new_token, kNow).verdict == CookieVerdict::kInvalid);
  CHECK(rotated->DecodeToken(*new_token, kNow).key_index == 0);

  auto old_sealer = MakeCodec(MakeConfig(kSecretA, StoreKind::kCookie));
  auto rotated_sealer = MakeCodec(MakeConfig(kSecretB, StoreKind::kCookie, {kSecretA}));
  Result<std::string> old_sealed = old_sealer->Seal(id, kLater, {{"user", "\"ada\""}});
  REQUIRE(old_sealed.ok());
  DecodedCookie s = rotated_sealer->Open(*old_sealed, kNow);
  CHECK(s.verdict == CookieVerdict::kValid);
  CHECK(s.key_index == 1);
  CHECK(s.data.at("user") == "\"ada\"");
  Result<std::string> new_sealed = rotated_sealer->Seal(id, kLater, s.data);
  REQUIRE(new_sealed.ok());
  CHECK(old_sealer->Open(*new_sealed, kNow).verdict == CookieVerdict::kInvalid);
  CHECK(rotated_sealer->Open(*new_sealed, kNow).key_index == 0);
}

// --- cookie-manager sealed values ----------------------------------------------

SessionData ExampleSession() {
  // Values as the header protocol stores them: nlohmann dump(-1, ' ', true),
  // i.e. compact, ASCII-only, object keys sorted.
  return {{"user", "\"ada\""},
          {"cart", "[1,2,{\"qty\":3,\"sku\":\"x-1\"}]"},
          {"ratio", "1.5"},
          {"admin", "false"},
          {"note", "null"},
          {"caf\xc3\xa9", "\"cr\\u00e8me \\ud83d\\ude00\""},
          {"profile", "{\"lang\":\"en\",\"tags\":[\"a\",\"b\"]}"}};
}

TEST_CASE("a sealed cookie round-trips id, expiry and session data") {
  auto codec = MakeCodec(MakeConfig(kSecretA, StoreKind::kCookie));
  const std::string id = NewId(*codec);
  Result<std::string> sealed = codec->Seal(id, kLater, ExampleSession());
  REQUIRE(sealed.ok());
  CHECK(sealed->rfind("3.", 0) == 0);
  CHECK(sealed->find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
        std::string::npos);
  CHECK(sealed->find("ada") == std::string::npos);

  DecodedCookie opened = codec->Open(*sealed, kNow);
  CHECK(opened.verdict == CookieVerdict::kValid);
  CHECK(opened.id == id);
  CHECK(opened.expires_at == kLater);
  CHECK(opened.key_index == 0);
  CHECK(opened.data == ExampleSession());
  CHECK(codec->Verify(*sealed, kNow).data == ExampleSession());

  Result<std::string> empty = codec->Seal(id, kLater, {});
  REQUIRE(empty.ok());
  DecodedCookie opened_empty = codec->Open(*empty, kNow);
  CHECK(opened_empty.verdict == CookieVerdict::kValid);
  CHECK(opened_empty.data.empty());
}

// A random JSON value, nested up to `depth`.
nlohmann::json RandomJson(std::mt19937* rng, int depth) {
  static const std::vector<std::string> kStrings = {
      "", "ada", "quote\"back\\slash", "line\nbreak\ttab\x01", "caf\xc3\xa9", "\xf0\x9f\x98\x80",
      "</script>", "\xe2\x80\xa8"};
  switch ((*rng)() % (depth > 0 ? 8 : 6)) {
    case 0: return nullptr;
    case 1: return (*rng)() % 2 == 0;
    case 2: return static_cast<int64_t>((*rng)()) - 2000000000;
    case 3: return static_cast<double>((*rng)() % 100000) / 64.0;
    case 4:
    case 5: return kStrings[(*rng)() % kStrings.size()];
    case 6: {
      nlohmann::json array = nlohmann::json::array();
      for (unsigned n = (*rng)() % 4; n > 0; --n) array.push_back(RandomJson(rng, depth - 1));
      return array;
    }
    default: {
      nlohmann::json object = nlohmann::json::object();
      for (unsigned n = (*rng)() % 4; n > 0; --n) {
        object[kStrings[(*rng)() % kStrings.size()] + std::to_string(n)] = RandomJson(rng, depth - 1);
      }
      return object;
    }
  }
}

TEST_CASE("Open decodes sessions exactly as an nlohmann parse and ASCII dump would") {
  auto codec = MakeCodec(MakeConfig(kSecretA, StoreKind::kCookie));
  const std::string id = NewId(*codec);
  const std::vector<std::string> keys = {"user", "", "k\"q", "back\\slash", "nl\n\x01\x1f\x7f",
                                         "caf\xc3\xa9", "\xf0\x9f\x98\x80 smile", "a/b", "\xe2\x80\xa8"};
  std::mt19937 rng(12345);
  for (int round = 0; round < 300; ++round) {
    SessionData data;
    for (unsigned n = rng() % 6; n > 0; --n) {
      data[keys[rng() % keys.size()]] = RandomJson(&rng, 3).dump(-1, ' ', true);
    }
    SessionData expected;
    const nlohmann::json doc = nlohmann::json::parse(SerializeSession(data));
    for (const auto& [key, value] : doc.items()) expected[key] = value.dump(-1, ' ', true);
    REQUIRE(expected == data);  // the oracle agrees these values are canonical

    Result<std::string> sealed = codec->Seal(id, kLater, data);
    REQUIRE(sealed.ok());
    DecodedCookie opened = codec->Open(*sealed, kNow);
    REQUIRE(opened.verdict == CookieVerdict::kValid);
    CHECK(opened.data == expected);
  }
}

TEST_CASE("every single-byte change of a sealed cookie is invalid") {
  auto codec = MakeCodec(MakeConfig(kSecretA, StoreKind::kCookie));
  Result<std::string> sealed = codec->Seal(NewId(*codec), kLater, {{"user", "\"ada\""}});
  REQUIRE(sealed.ok());
  const std::vector<std::string> changes = SingleByteChanges(*sealed);
  REQUIRE(changes.size() > sealed->size() * 10);
  size_t accepted = 0;
  for (const std::string& changed : changes) {
    if (codec->Open(changed, kNow).verdict != CookieVerdict::kInvalid) ++accepted;
  }
  CHECK(accepted == 0);
}

TEST_CASE("every truncation or extension of a sealed cookie is invalid") {
  auto codec = MakeCodec(MakeConfig(kSecretA, StoreKind::kCookie));
  Result<std::string> sealed = codec->Seal(NewId(*codec), kLater, {{"user", "\"ada\""}});
  REQUIRE(sealed.ok());
  for (size_t n = 0; n < sealed->size(); ++n) {
    CHECK(codec->Open(sealed->substr(0, n), kNow).verdict == CookieVerdict::kInvalid);
    CHECK(codec->Open(sealed->substr(n + 1), kNow).verdict == CookieVerdict::kInvalid);
  }
  for (const char* suffix : {"A", "AAAA", "=", "."}) {
    CHECK(codec->Open(*sealed + suffix, kNow).verdict == CookieVerdict::kInvalid);
  }
  CHECK(codec->Open(*sealed + std::string(9000, 'A'), kNow).verdict == CookieVerdict::kInvalid);
}

TEST_CASE("a sealed cookie from another cookie name or secret is invalid") {
  auto codec = MakeCodec(MakeConfig(kSecretA, StoreKind::kCookie));
  Config renamed = MakeConfig(kSecretA, StoreKind::kCookie);
  renamed.session.cookie_name = "sid";
  auto other_name = MakeCodec(renamed);
  auto other_secret = MakeCodec(MakeConfig(kSecretB, StoreKind::kCookie));
  Result<std::string> sealed = codec->Seal(NewId(*codec), kLater, {{"k", "1"}});
  REQUIRE(sealed.ok());
  CHECK(codec->Open(*sealed, kNow).verdict == CookieVerdict::kValid);
  CHECK(other_name->Open(*sealed, kNow).verdict == CookieVerdict::kInvalid);
  CHECK(other_secret->Open(*sealed, kNow).verdict == CookieVerdict::kInvalid);
}

TEST_CASE("a sealed cookie is expired when authentic and expires_at <= now") {
  auto codec = MakeCodec(MakeConfig(kSecretA, StoreKind::kCookie));
  const std::string id = NewId(*codec);
  Result<std::string> sealed = codec->Seal(id, kNow, {{"k", "1"}});
  REQUIRE(sealed.ok());
  DecodedCookie d = codec->Open(*sealed, kNow);
  CHECK(d.verdict == CookieVerdict::kExpired);
  CHECK(d.id == id);
  CHECK(d.expires_at == kNow);
  CHECK(d.data.empty());
  CHECK(codec->Open(*sealed, kNow - 1).verdict == CookieVerdict::kValid);
}

TEST_CASE("an authentic sealed payload that is not one JSON object is invalid") {
  auto codec = MakeCodec(MakeConfig(kSecretA, StoreKind::kCookie));
  Result<crypto::KeySet> keys = crypto::DeriveKeySet(kSecretA);
  REQUIRE(keys.ok());
  std::string head;  // big-endian kLater, then a 32-byte id
  for (int shift = 56; shift >= 0; shift -= 8) head.push_back(static_cast<char>(kLater >> shift));
  head += std::string(32, 'i') + std::string(16, 'p');  // id, public id
  auto seal = [&](const std::string& json) {
    Result<std::string> s =
        crypto::Seal(keys->cookie_enc, "sessiond-cookie|v2|session_id", head + json);
    REQUIRE(s.ok());
    return "2." + crypto::Base64UrlEncode(*s);
  };
  DecodedCookie good = codec->Open(seal("{\"a\":1,\"b\\u00e9\":[\"]\",{\"c\":\"}\"}]}"), kNow);
  CHECK(good.verdict == CookieVerdict::kValid);
  CHECK(good.data == SessionData{{"a", "1"}, {"b\xc3\xa9", "[\"]\",{\"c\":\"}\"}]"}});
  for (const char* bad : {"[1,2]", "\"text\"", "7", "", "{", "{\"a\":", "{\"a\":1", "{\"a\":1,}",
                          "{\"a\":1}x", "{\"a\":1}}", "{\"a\"}", "{a:1}", "{\"a\":tr ue}",
                          "{\"a\":[1,2}", "{\"a\":\"unterminated}", "{\"\\ud800\":1}",
                          "{\"\\udc00\":1}", "{\"\\x41\":1}", "{\"a\\u12\":1}",
                          "{\"tab\there\":1}"}) {
    CAPTURE(bad);
    CHECK(codec->Open(seal(bad), kNow).verdict == CookieVerdict::kInvalid);
  }
}

TEST_CASE("mutated authentic payloads never crash Open, and every object nlohmann accepts opens") {
  auto codec = MakeCodec(MakeConfig(kSecretA, StoreKind::kCookie));
  Result<crypto::KeySet> keys = crypto::DeriveKeySet(kSecretA);
  REQUIRE(keys.ok());
  std::string head;
  for (int shift = 56; shift >= 0; shift -= 8) head.push_back(static_cast<char>(kLater >> shift));
  head += std::string(32, 'i') + std::string(16, 'p');  // id, public id
  const std::string base =
      SerializeSession({{"a", "[1,{\"b\":\"x\\\"y\"}]"}, {"k\xc3\xa9", "\"v\\u00e9\""}, {"n", "null"}});
  const std::string alphabet = "{}[]\":,\\u0123456789abcdefnrtls.-+eE\x01\x80";
  std::mt19937 rng(777);
  int opened_objects = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string json = base;
    for (unsigned m = 1 + rng() % 3; m > 0; --m) {
      const size_t at = rng() % (json.size() + 1);
      switch (rng() % 3) {
        case 0: if (at < json.size()) json[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: json.insert(json.begin() + at, alphabet[rng() % alphabet.size()]); break;
        default: if (at < json.size()) json.erase(at, 1); break;
      }
    }
    Result<std::string> sealed =
        crypto::Seal(keys->cookie_enc, "sessiond-cookie|v2|session_id", head + json);
    REQUIRE(sealed.ok());
    DecodedCookie d = codec->Open("2." + crypto::Base64UrlEncode(*sealed), kNow);
    const nlohmann::json doc = nlohmann::json::parse(json, nullptr, false);
    if (doc.is_object()) {
      CAPTURE(json);
      REQUIRE(d.verdict == CookieVerdict::kValid);
      std::vector<std::string> want, got;
      for (const auto& [key, value] : doc.items()) want.push_back(key);
      for (const auto& [key, value] : d.data) got.push_back(key);
      CHECK(got == want);
      ++opened_objects;
    } else if (d.verdict != CookieVerdict::kValid) {
      CHECK(d.data.empty());
    }
  }
  CHECK(opened_objects > 100);  // the mutations kept enough payloads valid to mean something
}

TEST_CASE("tokens and sealed values are not accepted in each other's place") {
  auto store_codec = MakeCodec(MakeConfig(kSecretA, StoreKind::kMemory));
  auto cookie_codec = MakeCodec(MakeConfig(kSecretA, StoreKind::kCookie));
  const std::string id = NewId(*store_codec);
  Result<std::string> token = store_codec->EncodeToken(id, kLater);
  Result<std::string> sealed = cookie_codec->Seal(id, kLater, {});
  REQUIRE(token.ok());
  REQUIRE(sealed.ok());
  CHECK(cookie_codec->Verify(*token, kNow).verdict == CookieVerdict::kInvalid);
  CHECK(store_codec->Verify(*sealed, kNow).verdict == CookieVerdict::kInvalid);
  CHECK(cookie_codec->Verify(*sealed, kNow).verdict == CookieVerdict::kValid);
  CHECK(store_codec->Verify(*token, kNow).verdict == CookieVerdict::kValid);
}

// --- size limit ------------------------------------------------------------------

TEST_CASE("CheckCookieSize: a store token is held to the 4096-byte name=value limit") {
  auto codec = MakeCodec(MakeConfig(kSecretA, StoreKind::kRedis));
  const size_t fits = 4096 - std::string("session_id=").size();
  CHECK(codec->CheckCookieSize(std::string(fits, 'v')).ok());
  Status over = codec->CheckCookieSize(std::string(fits + 1, 'v'));
  CHECK(over.code() == Status::Code::kTooLarge);
  CHECK(over.message() == "session cookie would be 4097 bytes, over the 4096-byte browser limit");
}

// docs/COOKIES.md, Chunked cookies: with max_cookie_chunks: 1 a sealed value
// must fit one Set-Cookie line of 4096 bytes, attributes included.
TEST_CASE("Seal with max_cookie_chunks 1 succeeds exactly while its Set-Cookie line fits 4096 bytes") {
  Config config = MakeConfig(kSecretA, StoreKind::kCookie);
  config.session.max_cookie_chunks = 1;
  auto codec = MakeCodec(config);
  const std::string id = NewId(*codec);
  size_t longest_line = 0;
  bool failed = false;
  for (size_t n = 2700; n < 3000; ++n) {
    Result<std::string> sealed = codec->Seal(id, kLater, {{"k", "\"" + std::string(n, 'x') + "\""}});
    if (sealed.ok()) {
      CHECK_FALSE(failed);  // once too large, always too large
      CHECK(codec->CheckCookieSize(*sealed).ok());
      CHECK(codec->ChunksFor(*sealed) == 1);
      std::string line;
      const size_t n_cookies = codec->EmitSetCookies(*sealed, kLater, kNow, &line, [&](std::string_view v) {
        longest_line = std::max(longest_line, std::string("Set-Cookie: ").size() + v.size());
      });
      CHECK(n_cookies == 1);
    } else {
      failed = true;
      CHECK(sealed.status().code() == Status::Code::kTooLarge);
      CHECK(sealed.status().message() == "session cookie would need 2 cookies, over session.max_cookie_chunks (1)");
    }
  }
  CHECK(failed);
  CHECK(longest_line <= 4096);
  // The room kept for Max-Age's longest value (12 digits) and a 5-digit
  // year, and base64url's steps of 4 characters, are all that is left over.
  CHECK(longest_line > 4096 - 16);
}

// --- ids and keyed names ---------------------------------------------------------

TEST_CASE("session ids are 32 bytes and 100,000 of them are distinct") {
  auto codec = MakeCodec(MakeConfig(kSecretA));
  std::unordered_set<std::string> seen;
  for (int i = 0; i < 100000; ++i) {
    Result<std::string> id = codec->NewSessionId();
    REQUIRE(id.ok());
    REQUIRE(id->size() == CookieCodec::kIdSize);
    seen.insert(*id);
  }
  CHECK(seen.size() == 100000);
}

TEST_CASE("StoreKey is keyed hex per key index and never reveals the id") {
  auto codec = MakeCodec(MakeConfig(kSecretB, StoreKind::kRedis, {kSecretA}));
  const std::string id = NewId(*codec);
  Result<std::string> k0 = codec->StoreKey(id, 0);
  Result<std::string> k1 = codec->StoreKey(id, 1);
  REQUIRE(k0.ok());
  REQUIRE(k1.ok());
  CHECK(k0->size() == 64);
  CHECK(k0->find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(*k0 != *k1);
  CHECK(*codec->StoreKey(id, 0) == *k0);
  for (const std::string* k : {&*k0, &*k1}) {
    CHECK(k->find(id) == std::string::npos);
    CHECK(k->find(crypto::HexEncode(id)) == std::string::npos);
    CHECK(k->find(crypto::Base64UrlEncode(id)) == std::string::npos);
  }
  CHECK_FALSE(codec->StoreKey(id, 2).ok());

  // Index 1 is the old secret's store key: what the old deployment used.
  auto old_codec = MakeCodec(MakeConfig(kSecretA));
  CHECK(*old_codec->StoreKey(id, 0) == *k1);
  Result<crypto::KeySet> keys = crypto::DeriveKeySet(kSecretB);
  REQUIRE(keys.ok());
  CHECK(*k0 == crypto::HexEncode(*crypto::HmacSha256(keys->store_hash, id)));
}

TEST_CASE("PublicId is stable, short, and differs from the token and the store key") {
  auto codec = MakeCodec(MakeConfig(kSecretA));
  const std::string id = NewId(*codec);
  Result<std::string> p1 = codec->PublicId(id);
  Result<std::string> p2 = codec->PublicId(id);
  Result<std::string> other = codec->PublicId(NewId(*codec));
  REQUIRE(p1.ok());
  REQUIRE(p2.ok());
  REQUIRE(other.ok());
  CHECK(*p1 == *p2);
  CHECK(*p1 != *other);
  CHECK(p1->size() == 22);
  Result<std::string> token = codec->EncodeToken(id, kLater);
  REQUIRE(token.ok());
  CHECK(token->find(*p1) == std::string::npos);
  CHECK(p1->find(crypto::Base64UrlEncode(id).substr(0, 8)) == std::string::npos);
  Result<crypto::KeySet> keys = crypto::DeriveKeySet(kSecretA);
  REQUIRE(keys.ok());
  CHECK(*p1 == crypto::Base64UrlEncode(crypto::HmacSha256(keys->public_id, id)->substr(0, 16)));
  CHECK(*p1 != crypto::Base64UrlEncode(crypto::HmacSha256(keys->store_hash, id)->substr(0, 16)));
}

// --- Set-Cookie -------------------------------------------------------------------

TEST_CASE("Set-Cookie of a permanent session carries Max-Age and an IMF-fixdate Expires") {
  auto codec = MakeCodec(MakeConfig(kSecretA));
  CHECK(codec->SetCookie("VALUE", kLater, kNow) ==
        "session_id=VALUE; Path=/; Max-Age=86400; Expires=Wed, 15 Nov 2023 22:13:20 GMT; "
        "HttpOnly; Secure; SameSite=Lax");
  // RFC 7231's own example date; a past expiry clamps Max-Age to 0.
  CHECK(codec->SetCookie("v", 784111777, 784111777 + 5) ==
        "session_id=v; Path=/; Max-Age=0; Expires=Sun, 06 Nov 1994 08:49:37 GMT; "
        "HttpOnly; Secure; SameSite=Lax");
}

TEST_CASE("Set-Cookie Expires is strftime's IMF-fixdate of the expiry, appended after what the buffer holds") {
  auto codec = MakeCodec(MakeConfig(kSecretA));
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    const int64_t expires = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(CookieCodec::kMaxExpiry));
    const time_t t = static_cast<time_t>(expires);
    struct tm tm {};
    REQUIRE(gmtime_r(&t, &tm) != nullptr);
    char date[64];
    REQUIRE(strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0);  // the C locale
    std::string out = "prefix|";
    codec->AppendSetCookie(&out, "v", expires, expires - 10);
    CAPTURE(expires);
    CHECK(out == std::string("prefix|session_id=v; Path=/; Max-Age=10; Expires=") + date +
                     "; HttpOnly; Secure; SameSite=Lax");
  }
}

TEST_CASE("Set-Cookie of a browser-session cookie has no Max-Age or Expires") {
  Config config = MakeConfig(kSecretA);
  config.session.permanent = false;
  config.session.cookie_samesite = SameSite::kStrict;
  auto codec = MakeCodec(config);
  CHECK(codec->SetCookie("v", kLater, kNow) ==
        "session_id=v; Path=/; HttpOnly; Secure; SameSite=Strict");
}

TEST_CASE("Set-Cookie follows domain, path, flags, SameSite=None and Partitioned") {
  Config config = MakeConfig(kSecretA);
  config.session.cookie_name = "sid";
  config.session.cookie_domain = "example.com";
  config.session.cookie_path = "/app";
  config.session.cookie_samesite = SameSite::kNone;
  config.session.cookie_partitioned = true;
  auto codec = MakeCodec(config);
  CHECK(codec->SetCookie("v", kLater, kNow) ==
        "sid=v; Path=/app; Domain=example.com; Max-Age=86400; "
        "Expires=Wed, 15 Nov 2023 22:13:20 GMT; HttpOnly; Secure; SameSite=None; Partitioned");
  CHECK(codec->ClearCookie() ==
        "sid=; Path=/app; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
        "HttpOnly; Secure; SameSite=None; Partitioned");

  config.session.cookie_httponly = false;
  config.session.cookie_secure = false;
  config.session.cookie_partitioned = false;
  config.session.cookie_samesite = SameSite::kLax;
  config.session.cookie_domain.reset();
  auto plain = MakeCodec(config);
  CHECK(plain->SetCookie("v", kLater, kNow) ==
        "sid=v; Path=/app; Max-Age=86400; Expires=Wed, 15 Nov 2023 22:13:20 GMT; SameSite=Lax");
}

TEST_CASE("ClearCookie expires the cookie with the same attributes") {
  Config config = MakeConfig(kSecretA);
  config.session.permanent = false;  // cleared with Max-Age=0 all the same
  auto codec = MakeCodec(config);
  CHECK(codec->ClearCookie() ==
        "session_id=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; "
        "Secure; SameSite=Lax");
}

TEST_CASE("ExpiresAt adds the configured expiration in seconds") {
  Config config = MakeConfig(kSecretA);
  config.session.expiration = std::chrono::minutes(30);
  CHECK(MakeCodec(config)->ExpiresAt(kNow) == kNow + 1800);
}

TEST_CASE("Create refuses names and attributes that would break the header, and empty secrets") {
  for (const char* name : {"", "a;b", "a b", "a=b", "a\r\nb", "a,b"}) {
    Config config = MakeConfig(kSecretA);
    config.session.cookie_name = name;
    CHECK_FALSE(CookieCodec::Create(config).ok());
  }
  Config bad_path = MakeConfig(kSecretA);
  bad_path.session.cookie_path = "/; Domain=evil.com";
  CHECK_FALSE(CookieCodec::Create(bad_path).ok());
  Config bad_domain = MakeConfig(kSecretA);
  bad_domain.session.cookie_domain = "example.com\r\nX-Evil: 1";
  CHECK_FALSE(CookieCodec::Create(bad_domain).ok());
  CHECK_FALSE(CookieCodec::Create(MakeConfig("")).ok());
  Result<std::shared_ptr<const CookieCodec>> bad_fallback =
      CookieCodec::Create(MakeConfig(kSecretA, StoreKind::kRedis, {kSecretB, ""}));
  REQUIRE_FALSE(bad_fallback.ok());
  CHECK(bad_fallback.status().message().find("secret_key_fallbacks[1]") != std::string::npos);
  CHECK(bad_fallback.status().message().find(kSecretB) == std::string::npos);
}

TEST_CASE("one codec serves many threads at once") {
  auto token_codec = MakeCodec(MakeConfig(kSecretA, StoreKind::kRedis, {kSecretB}));
  auto seal_codec = MakeCodec(MakeConfig(kSecretA, StoreKind::kCookie));
  std::vector<int> wrong(6, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        Result<std::string> id = token_codec->NewSessionId();
        if (!id.ok()) { ++wrong[t]; continue; }
        Result<std::string> token = token_codec->EncodeToken(*id, kLater);
        const SessionData data = {{"i", std::to_string(i)}};
        Result<std::string> sealed = seal_codec->Seal(*id, kLater, data);
        if (!token.ok() || !sealed.ok()) { ++wrong[t]; continue; }
        DecodedCookie a = token_codec->DecodeToken(*token, kNow);
        DecodedCookie b = seal_codec->Open(*sealed, kNow);
        if (a.verdict != CookieVerdict::kValid || a.id != *id || b.verdict != CookieVerdict::kValid ||
            b.data != data || !token_codec->StoreKey(*id, 1).ok()) {
          ++wrong[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int w : wrong) CHECK(w == 0);
}

}  // namespace
}  // namespace sessiond

// ---- format 3: times, flags, compression (docs/COOKIES.md, Sealed cookie) ----

namespace sessiond {
namespace {

Config CookieConfig() {
  Config config = MakeConfig(kSecretA, StoreKind::kCookie);
  config.session.expiration = std::chrono::hours(1);
  return config;
}

TEST_CASE("a sealed cookie carries its creation and last refresh times") {
  auto codec = MakeCodec(CookieConfig());
  const std::string id = NewId(*codec);
  Result<std::string> sealed = codec->Seal(id, SealTimes{kLater, kNow - 500, kNow - 20}, {{"u", "1"}});
  REQUIRE(sealed.ok());
  DecodedCookie d = codec->Open(*sealed, kNow);
  REQUIRE(d.verdict == CookieVerdict::kValid);
  CHECK(d.created_at == kNow - 500);
  CHECK(d.refreshed_at == kNow - 20);
  CHECK(d.expires_at == kLater);
  // Expired values still say who they were (for the expired status).
  DecodedCookie late = codec->Open(*sealed, kLater);
  CHECK(late.verdict == CookieVerdict::kExpired);
  CHECK(late.created_at == kNow - 500);
  CHECK_FALSE(codec->Seal(id, SealTimes{kLater, -1, kNow}, {}).ok());
}

TEST_CASE("a format-2 cookie still opens; its lifetime is taken to start at expiry - session_expiration_time") {
  auto codec = MakeCodec(CookieConfig());
  Result<crypto::KeySet> keys = crypto::DeriveKeySet(kSecretA);
  REQUIRE(keys.ok());
  std::string plain;
  for (int shift = 56; shift >= 0; shift -= 8) plain.push_back(static_cast<char>(kLater >> shift));
  plain += std::string(32, 'i') + std::string(16, 'p') + "{\"user\":\"ada\"}";
  Result<std::string> s = crypto::Seal(keys->cookie_enc, "sessiond-cookie|v2|session_id", plain);
  REQUIRE(s.ok());
  DecodedCookie d = codec->Open("2." + crypto::Base64UrlEncode(*s), kNow);
  REQUIRE(d.verdict == CookieVerdict::kValid);
  CHECK(d.data == SessionData{{"user", "\"ada\""}});
  CHECK(d.created_at == kLater - 3600);
  CHECK(d.refreshed_at == kLater - 3600);
  // The same plaintext under the format-3 label is not a format-2 cookie.
  Result<std::string> relabeled = crypto::Seal(keys->cookie_enc, "sessiond-cookie|v3|session_id", plain);
  REQUIRE(relabeled.ok());
  CHECK(codec->Open("2." + crypto::Base64UrlEncode(*relabeled), kNow).verdict == CookieVerdict::kInvalid);
  CHECK(codec->Open("3." + crypto::Base64UrlEncode(*s), kNow).verdict == CookieVerdict::kInvalid);
}

TEST_CASE("an authentic format-3 payload with an unknown flag is invalid") {
  auto codec = MakeCodec(CookieConfig());
  Result<crypto::KeySet> keys = crypto::DeriveKeySet(kSecretA);
  REQUIRE(keys.ok());
  auto seal = [&](unsigned char flags) {
    std::string plain(1, static_cast<char>(flags));
    for (int shift = 56; shift >= 0; shift -= 8) plain.push_back(static_cast<char>(kLater >> shift));
    plain += std::string(16, '\0') + std::string(32, 'i') + std::string(16, 'p') + "{}";
    Result<std::string> s = crypto::Seal(keys->cookie_enc, "sessiond-cookie|v3|session_id", plain);
    REQUIRE(s.ok());
    return "3." + crypto::Base64UrlEncode(*s);
  };
  CHECK(codec->Open(seal(0), kNow).verdict == CookieVerdict::kValid);
  CHECK(codec->Open(seal(0x02), kNow).verdict == CookieVerdict::kInvalid);
  CHECK(codec->Open(seal(0x80), kNow).verdict == CookieVerdict::kInvalid);
  CHECK(codec->Open(seal(0x01), kNow).verdict == CookieVerdict::kInvalid);  // "deflated", but "{}" is not deflate
}

TEST_CASE("session.compress deflates a large session; compressed cookies open whatever the setting") {
  Config on = CookieConfig();
  on.session.compress = true;
  on.session.max_session_bytes = 65536;
  Config off = on;
  off.session.compress = false;
  auto zip = MakeCodec(on);
  auto plain = MakeCodec(off);
  const std::string id = NewId(*zip);
  SessionData data;
  for (int i = 0; i < 40; ++i) data["item" + std::to_string(i)] = "\"the same words again and again\"";
  Result<std::string> small = zip->Seal(id, kLater, data);
  Result<std::string> big = plain->Seal(id, kLater, data);
  REQUIRE(small.ok());
  REQUIRE(big.ok());
  CHECK(small->size() * 2 < big->size());
  CHECK(plain->Open(*small, kNow).data == data);
  CHECK(zip->Open(*big, kNow).data == data);
  // A tiny session is not worth deflating: sealed as it is.
  Result<std::string> tiny = zip->Seal(id, kLater, {{"a", "1"}});
  Result<std::string> tiny_plain = plain->Seal(id, kLater, {{"a", "1"}});
  REQUIRE(tiny.ok());
  REQUIRE(tiny_plain.ok());
  CHECK(tiny->size() == tiny_plain->size());
}

TEST_CASE("a compressed session that would inflate beyond max_session_bytes is invalid") {
  Config on = CookieConfig();
  on.session.compress = true;
  on.session.max_session_bytes = 65536;
  auto writer = MakeCodec(on);
  Config strict = on;
  strict.session.max_session_bytes = 1000;
  auto reader = MakeCodec(strict);
  const std::string id = NewId(*writer);
  Result<std::string> sealed = writer->Seal(id, kLater, {{"k", "\"" + std::string(5000, 'z') + "\""}});
  REQUIRE(sealed.ok());
  CHECK(writer->Open(*sealed, kNow).verdict == CookieVerdict::kValid);
  CHECK(reader->Open(*sealed, kNow).verdict == CookieVerdict::kInvalid);
}

}  // namespace
}  // namespace sessiond
