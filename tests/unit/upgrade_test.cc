// The request-side rules of upgrades and loops (src/http/upgrade.h,
// docs/HTTP.md "Upgrades and WebSockets" and "Loops").
#include "http/upgrade.h"

#include <doctest/doctest.h>

#include <string>

using namespace sessiond;

namespace {

struct Request {
  RequestHead head;
  Request(std::initializer_list<std::pair<const char*, const char*>> headers, int minor = 1,
          BodyFraming framing = BodyFraming::kNone, bool keep_alive = true) {
    for (const auto& [n, v] : headers) head.headers.Append(n, v);
    head.minor_version = minor;
    head.framing = framing;
    head.keep_alive = keep_alive;
  }
};

bool Asks(const Request& r) { return UpgradeRequested(r.head).has_value(); }

}  // namespace

TEST_CASE("which requests ask to upgrade") {
  CHECK(*UpgradeRequested(Request({{"Connection", "Upgrade"}, {"Upgrade", "websocket"}}).head) == "websocket");
  CHECK(Asks(Request({{"Connection", "keep-alive, UPGRADE"}, {"Upgrade", "websocket"}})));
  CHECK(Asks(Request({{"Connection", "keep-alive"}, {"Connection", "upgrade"}, {"Upgrade", "foo/2, bar"}})));
  CHECK_FALSE(Asks(Request({{"Upgrade", "websocket"}})));                            // no Connection token
  CHECK_FALSE(Asks(Request({{"Connection", "Upgrade"}})));                           // no Upgrade
  CHECK_FALSE(Asks(Request({{"Connection", "upgraded"}, {"Upgrade", "websocket"}})));  // not the token
  CHECK_FALSE(Asks(Request({{"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Upgrade", "websocket"}})));
  CHECK_FALSE(Asks(Request({{"Connection", "Upgrade"}, {"Upgrade", " , "}})));
  CHECK_FALSE(Asks(Request({{"Connection", "Upgrade"}, {"Upgrade", "websocket"}}, 0)));  // HTTP/1.0
  CHECK_FALSE(Asks(Request({{"Connection", "Upgrade"}, {"Upgrade", "websocket"}}, 1, BodyFraming::kLength)));
  CHECK_FALSE(Asks(Request({{"Connection", "Upgrade"}, {"Upgrade", "websocket"}}, 1, BodyFraming::kNone, false)));
  // h2c is never honoured, alone or in a list.
  CHECK_FALSE(Asks(Request({{"Connection", "Upgrade, HTTP2-Settings"}, {"Upgrade", "h2c"}})));
  CHECK_FALSE(Asks(Request({{"Connection", "Upgrade"}, {"Upgrade", "websocket, H2C"}})));
}

TEST_CASE("which 101 accepts the upgrade") {
  CHECK(UpgradeAccepted("websocket", "websocket"));
  CHECK(UpgradeAccepted("websocket", "WebSocket"));
  CHECK(UpgradeAccepted("foo/2, websocket", "websocket"));
  CHECK(UpgradeAccepted("foo/2, websocket", "FOO/2"));
  CHECK_FALSE(UpgradeAccepted("foo/2", "foo/3"));
  CHECK_FALSE(UpgradeAccepted("foo/2", "foo"));
  CHECK_FALSE(UpgradeAccepted("websocket", "h2c"));
  CHECK_FALSE(UpgradeAccepted("websocket", "websocket, h2c"));
  CHECK_FALSE(UpgradeAccepted("websocket", ""));
  CHECK_FALSE(UpgradeAccepted("websocket", " ,"));
  CHECK(IsWebSocketUpgrade("WebSocket"));
  CHECK_FALSE(IsWebSocketUpgrade("websockets"));
}

TEST_CASE("Origin: absent, the request's own host, or listed") {
  const std::vector<std::string> none;
  const std::vector<std::string> listed = {"https://app.example"};
  auto allowed = [](std::initializer_list<const char*> origins, std::string_view host,
                    const std::vector<std::string>& list) {
    HeaderList h;
    for (const char* o : origins) h.Append("Origin", o);
    return OriginAllowed(h, host, "", list);
  };
  CHECK(allowed({}, "site.example", none));
  CHECK(allowed({"https://site.example"}, "site.example", none));
  CHECK_FALSE(allowed({"https://evil.example"}, "site.example", none));
  CHECK_FALSE(allowed({"null"}, "site.example", none));
  CHECK_FALSE(allowed({"https://site.example", "https://site.example"}, "site.example", none));
  CHECK(allowed({"https://app.example:443"}, "site.example", listed));
  CHECK_FALSE(allowed({"http://app.example"}, "site.example", listed));
  CHECK_FALSE(allowed({"garbage"}, "site.example", listed));
}

TEST_CASE("Origin: a known scheme is part of the request's own origin") {
  const std::vector<std::string> none;
  const std::vector<std::string> listed = {"http://site.example:8443"};
  auto allowed = [](const char* origin, std::string_view host, std::string_view scheme,
                    const std::vector<std::string>& list) {
    HeaderList h;
    h.Append("Origin", origin);
    return OriginAllowed(h, host, scheme, list);
  };
  // Unknown (a plain listener, no trusted X-Forwarded-Proto): either scheme.
  CHECK(allowed("https://site.example:8443", "site.example:8443", "", none));
  CHECK(allowed("http://site.example:8443", "site.example:8443", "", none));
  // Known https (sessiond's TLS listener, or a trusted X-Forwarded-Proto).
  CHECK(allowed("https://site.example:8443", "site.example:8443", "https", none));
  CHECK(allowed("HTTPS://SITE.example:8443", "site.example:8443", "https", none));
  CHECK_FALSE(allowed("http://site.example:8443", "site.example:8443", "https", none));
  CHECK_FALSE(allowed("wss://site.example:8443", "site.example:8443", "https", none));
  CHECK(allowed("https://site.example", "site.example", "https", none));  // default ports
  CHECK_FALSE(allowed("https://site.example:80", "site.example", "https", none));
  // Known http.
  CHECK(allowed("http://site.example", "site.example", "http", none));
  CHECK_FALSE(allowed("https://site.example", "site.example", "http", none));
  // The list still applies, whatever the request's scheme.
  CHECK(allowed("http://site.example:8443", "site.example:8443", "https", listed));
  CHECK_FALSE(allowed("https://other.example", "site.example", "https", listed));
}

TEST_CASE("Via names this process only as a received-by entry") {
  HeaderList h;
  h.Append("Via", "1.0 fred, 1.1 p.example (Apache/1.1)");
  CHECK_FALSE(ViaNames(h, "sessiond-00ff"));
  h.Append("Via", "1.1 sessiond-00ff");
  CHECK(ViaNames(h, "sessiond-00ff"));
  HeaderList comment;
  comment.Append("Via", "1.1 other (sessiond-00ff)");
  CHECK_FALSE(ViaNames(comment, "sessiond-00ff"));
  HeaderList longer;
  longer.Append("Via", "HTTP/1.1 sessiond-00ffee, 1.1 x");
  CHECK_FALSE(ViaNames(longer, "sessiond-00ff"));
  HeaderList listed;
  listed.Append("Via", "1.1 a, 1.1  sessiond-00ff  (sessiond)");
  CHECK(ViaNames(listed, "sessiond-00ff"));
}
