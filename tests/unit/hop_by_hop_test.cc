// Header filtering at the proxy boundary.
#include "http/hop_by_hop.h"

#include <doctest/doctest.h>

using namespace sessiond;

TEST_CASE("hop-by-hop fields and the fields Connection names are removed") {
  HeaderList h;
  h.Append("Host", "a");
  h.Append("Connection", "keep-alive, X-Secret-Hop, host");
  h.Append("Keep-Alive", "timeout=5");
  h.Append("TE", "trailers");
  h.Append("Trailer", "X");
  h.Append("Transfer-Encoding", "chunked");
  h.Append("Content-Length", "5");
  h.Append("Upgrade", "websocket");
  h.Append("Proxy-Authorization", "Basic x");
  h.Append("proxy-connection", "keep-alive");
  h.Append("X-Secret-Hop", "1");
  h.Append("X-Kept", "2");
  RemoveHopByHop(&h);
  REQUIRE(h.size() == 2);
  CHECK(h.fields()[0].name == "Host");  // named by Connection, but Host is end-to-end
  CHECK(h.fields()[1].name == "X-Kept");
}

TEST_CASE("HasToken and case-insensitive lookups") {
  CHECK(HasToken("a, Keep-Alive ,b", "keep-alive"));
  CHECK_FALSE(HasToken("keep-alivex", "keep-alive"));
  HeaderList h;
  h.AppendCopy("X-Copy", std::string(100, 'v'));
  CHECK(h.Get("x-COPY")->size() == 100);
  CHECK(h.Remove("X-COPY") == 1);
  CHECK(h.size() == 0);
}

TEST_CASE("Connection: close removes a field named Close too") {
  HeaderList h;
  h.Append("Connection", "close");
  h.Append("Close", "x");
  h.Append("X-Kept", "1");
  RemoveHopByHop(&h);
  REQUIRE(h.size() == 1);
  CHECK(h.fields()[0].name == "X-Kept");
}
