// Tests of src/crypto: published known-answer vectors for HMAC, HKDF and
// AES-GCM, tamper rejection, strict base64url, and the key derivation.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "crypto/keys.h"

namespace sessiond::crypto {
namespace {

std::string Unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string Repeat(char c, size_t n) { return std::string(n, c); }

std::string Range(int from, int to) {  // bytes from..to inclusive
  std::string out;
  for (int i = from; i <= to; ++i) out.push_back(static_cast<char>(i));
  return out;
}

std::string HmacHex(const std::string& key, const std::string& data) {
  Result<std::string> mac = HmacSha256(key, data);
  REQUIRE(mac.ok());
  return HexEncode(*mac);
}

// RFC 4231 section 4: test cases 1-4, 6 and 7 (5 is a truncated output).
TEST_CASE("HMAC-SHA256 matches RFC 4231 test cases") {
  CHECK(HmacHex(Repeat('\x0b', 20), "Hi There") ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  CHECK(HmacHex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(HmacHex(Repeat('\xaa', 20), Repeat('\xdd', 50)) ==
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  CHECK(HmacHex(Range(1, 25), Repeat('\xcd', 50)) ==
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  CHECK(HmacHex(Repeat('\xaa', 131), "Test Using Larger Than Block-Size Key - Hash Key First") ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  CHECK(HmacHex(Repeat('\xaa', 131),
                "This is a test using a larger than block-size key and a larger than block-size "
                "data. The key needs to be hashed before being used by the HMAC algorithm.") ==
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST_CASE("HmacKey signs parts as their concatenation and is reusable") {
  Result<HmacKey> key = HmacKey::Create("Jefe");
  REQUIRE(key.ok());
  Sha256Digest whole;
  Sha256Digest parts;
  REQUIRE(key->Sign("what do ya want for nothing?", &whole));
  REQUIRE(key->Sign({"what do ", "", "ya want", " for nothing?"}, &parts));
  CHECK(whole == parts);
  CHECK(HexEncode(std::string(whole.begin(), whole.end())) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // A different message in between must not leak state into the next one.
  Sha256Digest other;
  REQUIRE(key->Sign("something else", &other));
  CHECK(other != whole);
  REQUIRE(key->Sign("what do ya want for nothing?", &parts));
  CHECK(parts == whole);
}

TEST_CASE("an empty or moved-from HmacKey refuses to sign") {
  Sha256Digest out;
  HmacKey empty;
  CHECK_FALSE(empty.Sign("x", &out));
  Result<HmacKey> key = HmacKey::Create("k");
  REQUIRE(key.ok());
  HmacKey moved = std::move(*key);
  CHECK(moved.Sign("x", &out));
  CHECK_FALSE(key->Sign("x", &out));
}

TEST_CASE("HmacKey gives the same answers from many threads at once") {
  Result<HmacKey> key = HmacKey::Create(Repeat('\x0b', 20));
  REQUIRE(key.ok());
  const HmacKey& shared = *key;
  std::vector<int> wrong(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&shared, &wrong, t] {
      for (int i = 0; i < 2000; ++i) {
        Sha256Digest d;
        if (!shared.Sign("Hi There", &d) ||
            HexEncode(std::string(d.begin(), d.end())) !=
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7") {
          ++wrong[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int w : wrong) CHECK(w == 0);
}

TEST_CASE("ConstantTimeEqual compares contents and lengths") {
  CHECK(ConstantTimeEqual("", ""));
  CHECK(ConstantTimeEqual("abc", "abc"));
  CHECK_FALSE(ConstantTimeEqual("abc", "abd"));
  CHECK_FALSE(ConstantTimeEqual("abc", "xbc"));
  CHECK_FALSE(ConstantTimeEqual("abc", "abcd"));
  CHECK_FALSE(ConstantTimeEqual("abcd", "abc"));
  CHECK_FALSE(ConstantTimeEqual("", "a"));
  CHECK(ConstantTimeEqual(std::string("a\0b", 3), std::string("a\0b", 3)));
  CHECK_FALSE(ConstantTimeEqual(std::string("a\0b", 3), std::string("a\0c", 3)));
}

// RFC 5869 appendix A: test cases 1-3 (SHA-256).
TEST_CASE("HKDF-SHA256 matches RFC 5869 test cases") {
  Result<std::string> okm1 =
      Hkdf(Repeat('\x0b', 22), Range(0x00, 0x0c), Range(0xf0, 0xf9), 42);
  REQUIRE(okm1.ok());
  CHECK(HexEncode(*okm1) ==
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");

  Result<std::string> okm2 = Hkdf(Range(0x00, 0x4f), Range(0x60, 0xaf), Range(0xb0, 0xff), 82);
  REQUIRE(okm2.ok());
  CHECK(HexEncode(*okm2) ==
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e5"
        "90e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");

  Result<std::string> okm3 = Hkdf(Repeat('\x0b', 22), "", "", 42);
  REQUIRE(okm3.ok());
  CHECK(HexEncode(*okm3) ==
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST_CASE("HKDF rejects empty key material and out-of-range lengths") {
  CHECK_FALSE(Hkdf("", "salt", "info", 32).ok());
  CHECK_FALSE(Hkdf("ikm", "salt", "info", 0).ok());
  CHECK_FALSE(Hkdf("ikm", "salt", "info", 255 * 32 + 1).ok());
  Result<std::string> longest = Hkdf("ikm", "salt", "info", 255 * 32);
  REQUIRE(longest.ok());
  CHECK(longest->size() == 255 * 32);
}

TEST_CASE("RandomBytes returns the requested length and fresh bytes") {
  Result<std::string> a = RandomBytes(32);
  Result<std::string> b = RandomBytes(32);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->size() == 32);
  CHECK(*a != *b);
  Result<std::string> none = RandomBytes(0);
  REQUIRE(none.ok());
  CHECK(none->empty());
}

// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13, 14
// and 16 (AES-256, 96-bit IV).
TEST_CASE("AES-256-GCM matches the GCM specification test vectors") {
  const std::string zero_key = Repeat('\0', 32);
  const std::string zero_iv = Repeat('\0', 12);
  Result<std::string> tc13 = SealWithNonce(zero_key, zero_iv, "", "");
  REQUIRE(tc13.ok());
  CHECK(HexEncode(*tc13) == "000000000000000000000000" "530f8afbc74536b9a963b4f1c4cb738b");

  Result<std::string> tc14 = SealWithNonce(zero_key, zero_iv, "", Repeat('\0', 16));
  REQUIRE(tc14.ok());
  CHECK(HexEncode(*tc14) == "000000000000000000000000"
                            "cea7403d4d606b6e074ec5d3baf39d18"
                            "d0d1c8a799996bf0265b98b5d48ab919");

  const std::string key =
      Unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  const std::string iv = Unhex("cafebabefacedbaddecaf888");
  const std::string aad = Unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const std::string plaintext = Unhex(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
  const std::string expected_ct =
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662";
  const std::string expected_tag = "76fc6ece0f4e1768cddf8853bb2d551b";
  Result<std::string> tc16 = SealWithNonce(key, iv, aad, plaintext);
  REQUIRE(tc16.ok());
  CHECK(HexEncode(*tc16) == "cafebabefacedbaddecaf888" + expected_ct + expected_tag);

  Result<std::string> opened = Open(key, aad, *tc16);
  REQUIRE(opened.ok());
  CHECK(*opened == plaintext);

  // The thread's context switches between directions; a second seal after an
  // open must still give the published answer.
  Result<std::string> again = SealWithNonce(key, iv, aad, plaintext);
  REQUIRE(again.ok());
  CHECK(*again == *tc16);
}

TEST_CASE("AES-GCM Open rejects any tampering, wrong key or wrong AAD") {
  const std::string key = Repeat('k', 32);
  Result<std::string> sealed = Seal(key, "aad", "attack at dawn");
  REQUIRE(sealed.ok());
  REQUIRE(sealed->size() == kAeadOverhead + 14);

  for (size_t i = 0; i < sealed->size(); ++i) {
    std::string bad = *sealed;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    CHECK_FALSE(Open(key, "aad", bad).ok());  // nonce, ciphertext or tag
  }
  CHECK_FALSE(Open(key, "aae", *sealed).ok());
  CHECK_FALSE(Open(key, "", *sealed).ok());
  CHECK_FALSE(Open(Repeat('K', 32), "aad", *sealed).ok());
  CHECK_FALSE(Open(key, "aad", sealed->substr(0, sealed->size() - 1)).ok());
  CHECK_FALSE(Open(key, "aad", sealed->substr(0, kAeadOverhead - 1)).ok());
  CHECK_FALSE(Open(key, "aad", *sealed + "x").ok());
  Result<std::string> good = Open(key, "aad", *sealed);
  REQUIRE(good.ok());
  CHECK(*good == "attack at dawn");
}

TEST_CASE("AES-GCM Seal uses a fresh nonce each time and checks key and nonce sizes") {
  const std::string key = Repeat('k', 32);
  Result<std::string> a = Seal(key, "", "same");
  Result<std::string> b = Seal(key, "", "same");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->substr(0, kAeadNonceSize) != b->substr(0, kAeadNonceSize));
  CHECK(*a != *b);
  CHECK_FALSE(Seal(Repeat('k', 31), "", "x").ok());
  CHECK_FALSE(SealWithNonce(key, Repeat('n', 16), "", "x").ok());
  CHECK_FALSE(Open(Repeat('k', 16), "", *a).ok());
}

TEST_CASE("AES-GCM gives correct results when calls alternate keys and directions") {
  // Each thread keeps its key schedule between calls; a change of key must
  // never reuse the previous one.
  const std::string key_a = Repeat('a', 32);
  const std::string key_b = Repeat('b', 32);
  const std::string nonce = Repeat('n', 12);
  Result<std::string> a1 = SealWithNonce(key_a, nonce, "", "message");
  Result<std::string> b1 = SealWithNonce(key_b, nonce, "", "message");
  REQUIRE(a1.ok());
  REQUIRE(b1.ok());
  CHECK(*a1 != *b1);
  CHECK(Open(key_a, "", *a1).ok());
  CHECK_FALSE(Open(key_a, "", *b1).ok());
  CHECK(Open(key_b, "", *b1).ok());
  CHECK_FALSE(Open(key_b, "", *a1).ok());
  Result<std::string> a2 = SealWithNonce(key_a, nonce, "", "message");
  REQUIRE(a2.ok());
  CHECK(*a2 == *a1);
  Result<std::string> opened = Open(key_a, "", *a2);
  REQUIRE(opened.ok());
  CHECK(*opened == "message");
  // Keys that differ in one byte only, anywhere in the 32.
  for (size_t at : {size_t{0}, size_t{7}, size_t{8}, size_t{15}, size_t{24}, size_t{31}}) {
    CAPTURE(at);
    std::string near_a = key_a;
    near_a[at] = 'c';
    Result<std::string> n1 = SealWithNonce(near_a, nonce, "", "message");
    REQUIRE(n1.ok());
    CHECK(*n1 != *a1);
    CHECK_FALSE(Open(key_a, "", *n1).ok());
    CHECK(Open(near_a, "", *n1).ok());
    CHECK_FALSE(Open(near_a, "", *a1).ok());
  }
}

TEST_CASE("AES-GCM works from many threads at once") {
  const std::string key = Repeat('t', 32);
  std::vector<int> wrong(6, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&key, &wrong, t] {
      const std::string message = "thread " + std::to_string(t);
      for (int i = 0; i < 500; ++i) {
        Result<std::string> sealed = Seal(key, "aad", message);
        Result<std::string> opened = sealed.ok() ? Open(key, "aad", *sealed) : sealed;
        if (!opened.ok() || *opened != message) ++wrong[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int w : wrong) CHECK(w == 0);
}

// RFC 4648 section 10 vectors, in the URL alphabet and without padding.
TEST_CASE("Base64url encodes the RFC 4648 vectors without padding") {
  CHECK(Base64UrlEncode("") == "");
  CHECK(Base64UrlEncode("f") == "Zg");
  CHECK(Base64UrlEncode("fo") == "Zm8");
  CHECK(Base64UrlEncode("foo") == "Zm9v");
  CHECK(Base64UrlEncode("foob") == "Zm9vYg");
  CHECK(Base64UrlEncode("fooba") == "Zm9vYmE");
  CHECK(Base64UrlEncode("foobar") == "Zm9vYmFy");
  CHECK(Base64UrlEncode("\xfb\xff") == "-_8");  // "+/8=" in standard base64
  for (size_t n = 0; n < 10; ++n) CHECK(Base64UrlEncode(Repeat('x', n)).size() == Base64UrlEncodedSize(n));
}

TEST_CASE("Base64url round-trips every length") {
  for (size_t n = 0; n <= 100; ++n) {
    Result<std::string> bytes = RandomBytes(n);
    REQUIRE(bytes.ok());
    std::string decoded;
    REQUIRE(Base64UrlDecode(Base64UrlEncode(*bytes), &decoded));
    CHECK(decoded == *bytes);
  }
}

TEST_CASE("Base64url decoding is strict") {
  std::string out;
  CHECK(Base64UrlDecode("Zm9vYmE", &out));
  CHECK(out == "fooba");
  CHECK(Base64UrlDecode("", &out));
  CHECK(out.empty());
  CHECK_FALSE(Base64UrlDecode("Zg==", &out));     // padding
  CHECK_FALSE(Base64UrlDecode("Zm8=", &out));     // padding
  CHECK_FALSE(Base64UrlDecode("Zm+v", &out));     // standard alphabet
  CHECK_FALSE(Base64UrlDecode("Zm/v", &out));     // standard alphabet
  CHECK_FALSE(Base64UrlDecode("Zm9 v", &out));    // whitespace
  CHECK_FALSE(Base64UrlDecode("Zm9v\n", &out));   // whitespace
  CHECK_FALSE(Base64UrlDecode("Z", &out));        // length 1 mod 4
  CHECK_FALSE(Base64UrlDecode("Zm9vY", &out));    // length 1 mod 4
  CHECK_FALSE(Base64UrlDecode("Zh", &out));       // nonzero unused bits ("Zg" is canonical)
  CHECK_FALSE(Base64UrlDecode("Zm9", &out));      // nonzero unused bits ("Zm8" is canonical)
  CHECK_FALSE(Base64UrlDecode("-_9", &out));      // nonzero unused bits ("-_8" is canonical)
  CHECK_FALSE(Base64UrlDecode(std::string("Zm\0v", 4), &out));
  CHECK_FALSE(Base64UrlDecode("Zm\x80v", &out));
  CHECK_FALSE(Base64UrlDecode("Zm9v.", &out));
}

TEST_CASE("HexEncode is lowercase and two characters per byte") {
  CHECK(HexEncode("") == "");
  CHECK(HexEncode(std::string("\x00\xff\x10\xab", 4)) == "00ff10ab");
}

TEST_CASE("DeriveKeySet gives four independent 32-byte keys from HKDF") {
  const std::string secret = "an example secret that is long enough!!";
  Result<KeySet> keys = DeriveKeySet(secret);
  REQUIRE(keys.ok());
  const std::vector<const std::string*> all = {&keys->cookie_mac, &keys->cookie_enc,
                                               &keys->store_hash, &keys->public_id};
  std::set<std::string> distinct;
  for (const std::string* k : all) {
    CHECK(k->size() == kDerivedKeySize);
    CHECK(k->find(secret) == std::string::npos);
    distinct.insert(*k);
  }
  CHECK(distinct.size() == 4);

  Result<std::string> expected_mac = Hkdf(secret, kKeySalt, kInfoCookieMac, 32);
  Result<std::string> expected_enc = Hkdf(secret, kKeySalt, kInfoCookieEnc, 32);
  REQUIRE(expected_mac.ok());
  REQUIRE(expected_enc.ok());
  CHECK(keys->cookie_mac == *expected_mac);
  CHECK(keys->cookie_enc == *expected_enc);

  // The precomputed MAC states belong to the raw keys beside them.
  Sha256Digest d;
  REQUIRE(keys->store_hash_key.Sign("id", &d));
  CHECK(std::string(d.begin(), d.end()) == *HmacSha256(keys->store_hash, "id"));
  REQUIRE(keys->public_id_key.Sign("id", &d));
  CHECK(std::string(d.begin(), d.end()) == *HmacSha256(keys->public_id, "id"));
  REQUIRE(keys->cookie_mac_key.Sign("id", &d));
  CHECK(std::string(d.begin(), d.end()) == *HmacSha256(keys->cookie_mac, "id"));
}

TEST_CASE("DeriveKeySet is deterministic per secret and refuses an empty one") {
  Result<KeySet> a = DeriveKeySet("secret one, at least 32 bytes long....");
  Result<KeySet> a2 = DeriveKeySet("secret one, at least 32 bytes long....");
  Result<KeySet> b = DeriveKeySet("secret two, at least 32 bytes long....");
  REQUIRE(a.ok());
  REQUIRE(a2.ok());
  REQUIRE(b.ok());
  CHECK(a->cookie_mac == a2->cookie_mac);
  CHECK(a->cookie_enc == a2->cookie_enc);
  CHECK(a->cookie_mac != b->cookie_mac);
  CHECK(a->store_hash != b->store_hash);
  CHECK_FALSE(DeriveKeySet("").ok());
}


TEST_CASE("Seal and Open into caller buffers: same format, capacity reused, failures leave nothing") {
  const std::string key = Repeat('k', 32);
  std::string sealed, plain;
  REQUIRE(Seal(key, "aad", "first plaintext", &sealed).ok());
  CHECK(sealed.size() == kAeadOverhead + 15);
  // The buffer form and the Result form read each other.
  Result<std::string> opened = Open(key, "aad", sealed);
  REQUIRE(opened.ok());
  CHECK(*opened == "first plaintext");
  Result<std::string> other = Seal(key, "aad", "second");
  REQUIRE(other.ok());
  REQUIRE(Open(key, "aad", *other, &plain));
  CHECK(plain == "second");

  // A buffer that has grown is reused: no new memory for a smaller message.
  std::string big(4000, 'x');
  REQUIRE(Seal(key, "aad", big, &sealed).ok());
  REQUIRE(Open(key, "aad", sealed, &plain));
  CHECK(plain == big);
  const char* sealed_storage = sealed.data();
  const char* plain_storage = plain.data();
  REQUIRE(Seal(key, "aad", "small", &sealed).ok());
  REQUIRE(Open(key, "aad", sealed, &plain));
  CHECK(plain == "small");
  CHECK(sealed.data() == sealed_storage);
  CHECK(plain.data() == plain_storage);

  // Every failure: false, and no (unauthenticated) plaintext is left behind.
  std::string tampered = sealed;
  tampered[kAeadNonceSize] ^= 1;
  plain = "stale";
  CHECK_FALSE(Open(key, "aad", tampered, &plain));
  CHECK(plain.empty());
  plain = "stale";
  CHECK_FALSE(Open(key, "aae", sealed, &plain));
  CHECK(plain.empty());
  CHECK_FALSE(Open(Repeat('j', 32), "aad", sealed, &plain));
  CHECK_FALSE(Open(Repeat('k', 16), "aad", sealed, &plain));
  CHECK_FALSE(Open(key, "aad", sealed.substr(0, kAeadOverhead - 1), &plain));
  CHECK(plain.empty());
  // The thread's context recovers after failures.
  REQUIRE(Open(key, "aad", sealed, &plain));
  CHECK(plain == "small");
  sealed = "stale";
  CHECK_FALSE(Seal(Repeat('k', 31), "aad", "x", &sealed).ok());
  CHECK(sealed.empty());
}

TEST_CASE("Base64url decoding into caller memory agrees with the string form") {
  for (size_t n = 0; n <= 64; ++n) {
    Result<std::string> bytes = RandomBytes(n);
    REQUIRE(bytes.ok());
    const std::string text = Base64UrlEncode(*bytes);
    CHECK(Base64UrlDecodedSize(text.size()) == n);
    std::vector<unsigned char> out(n + 1, 0xAA);  // one guard byte
    REQUIRE(Base64UrlDecode(text, out.data()));
    CHECK(std::string(out.begin(), out.begin() + static_cast<long>(n)) == *bytes);
    CHECK(out[n] == 0xAA);
  }
  unsigned char out[8];
  CHECK_FALSE(Base64UrlDecode("Zm9v.mFy", out));  // a bad character in a full group
  CHECK_FALSE(Base64UrlDecode("Zh", out));        // nonzero unused bits
  CHECK_FALSE(Base64UrlDecode("Zm9", out));
  CHECK_FALSE(Base64UrlDecode("Z", out));
  std::string reused = "longer than the result";
  REQUIRE(Base64UrlDecode("Zm9v", &reused));
  CHECK(reused == "foo");
}

TEST_CASE("Base64url decoding rejects every byte outside the alphabet in every position") {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  for (int c = 0; c < 256; ++c) {
    if (alphabet.find(static_cast<char>(c)) != std::string::npos) continue;
    for (size_t pos = 0; pos < 8; ++pos) {
      std::string text = "Zm9vYmFy";
      text[pos] = static_cast<char>(c);
      CAPTURE(c);
      CAPTURE(pos);
      CHECK_FALSE(Base64UrlDecode(text, &out));
    }
  }
}

}  // namespace
}  // namespace sessiond::crypto
