// X-Session-Signature (src/session/upstream_signature.h;
// docs/HEADER-PROTOCOL.md, Signed session headers).
#include "session/upstream_signature.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "crypto/crypto.h"

namespace sessiond {
namespace {

const std::string kKey = "upstream signature key, 0123456789abcdef";

void Fill(HeaderList* h) {
  h->Append("Host", "shop.example");
  h->Append("X-Session-Status", "active");
  h->Append("Cookie", "theme=dark");
  h->Append("X-Session-Id", "hWecg-0qZRyHycGzLKi_Yg");
  h->Append("X-Session-Data", "{\"user\":\"ada\"}");
  h->Append("X-Session-Expires", "1795783387");
  h->Append("X-Session-Csrf", "tok");
}

TEST_CASE("the canonical text: version, time, method, target, then the X-Session-* headers sorted") {
  HeaderList h;
  Fill(&h);
  h.Append("X-Session-Signature", "t=1,v1=00");  // never part of what is signed
  std::string text;
  UpstreamSigner::AppendCanonical(&text, 1700000000, "POST", "/cart?x=1", h);
  CHECK(text ==
        "sessiond-signature-v1\n1700000000\nPOST\n/cart?x=1\n"
        "x-session-csrf:tok\n"
        "x-session-data:{\"user\":\"ada\"}\n"
        "x-session-expires:1795783387\n"
        "x-session-id:hWecg-0qZRyHycGzLKi_Yg\n"
        "x-session-status:active\n");
}

TEST_CASE("the signature is t=TIME,v1=hex HMAC-SHA256 of the canonical text under the configured key") {
  Result<std::unique_ptr<UpstreamSigner>> signer = UpstreamSigner::Create(kKey);
  REQUIRE(signer.ok());
  HeaderList h;
  Fill(&h);
  std::string scratch, value;
  REQUIRE((*signer)->Sign(1700000000, "GET", "/a", h, &scratch, &value));
  std::string text;
  UpstreamSigner::AppendCanonical(&text, 1700000000, "GET", "/a", h);
  Result<std::string> mac = crypto::HmacSha256(kKey, text);
  REQUIRE(mac.ok());
  CHECK(value == "t=1700000000,v1=" + crypto::HexEncode(*mac));
  CHECK(value.size() == 16 + 64);

  // Anything signed changes it: time, method, target, a header's value, a
  // header added; other headers do not.
  auto sign = [&](int64_t t, std::string_view method, std::string_view target, const HeaderList& headers) {
    std::string v;
    REQUIRE((*signer)->Sign(t, method, target, headers, &scratch, &v));
    return v;
  };
  CHECK(sign(1700000001, "GET", "/a", h) != value);
  CHECK(sign(1700000000, "POST", "/a", h) != value);
  CHECK(sign(1700000000, "GET", "/b", h) != value);
  HeaderList changed;
  changed.Append("X-Session-Status", "active");
  changed.Append("X-Session-Id", "hWecg-0qZRyHycGzLKi_Yg");
  changed.Append("X-Session-Data", "{\"user\":\"eve\"}");
  changed.Append("X-Session-Expires", "1795783387");
  changed.Append("X-Session-Csrf", "tok");
  CHECK(sign(1700000000, "GET", "/a", changed) != value);
  HeaderList more;
  Fill(&more);
  more.Append("X-Session-Extra", "1");
  CHECK(sign(1700000000, "GET", "/a", more) != value);
  HeaderList other;
  Fill(&other);
  other.Append("Accept", "*/*");
  CHECK(sign(1700000000, "GET", "/a", other) == value);
}

TEST_CASE("more X-Session-* headers than fit inline are all signed, in name order") {
  HeaderList h;
  std::string expected = "sessiond-signature-v1\n5\nGET\n/\n";
  for (int i = 40; i > 0; --i) {
    char name[32];
    snprintf(name, sizeof(name), "X-Session-H%02d", i);
    h.AppendCopy(name, std::to_string(i));
  }
  for (int i = 1; i <= 40; ++i) {
    char line[40];
    snprintf(line, sizeof(line), "x-session-h%02d:%d\n", i, i);
    expected += line;
  }
  std::string text;
  UpstreamSigner::AppendCanonical(&text, 5, "GET", "/", h);
  CHECK(text == expected);
}

TEST_CASE("an empty key is refused") { CHECK_FALSE(UpstreamSigner::Create("").ok()); }

}  // namespace
}  // namespace sessiond
