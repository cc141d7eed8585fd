// TlsTransport (src/net/tls_transport.h) behind net::Connection over
// socketpairs on a real event_base: the handshake on both sides, data both
// ways through the read limit and partial writes, the first-byte sniffing
// (TLS, plain HTTP, garbage), verification failures, close_notify and
// truncation, resumption with tickets across key rotations, mutual TLS.
#include "net/tls_transport.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "net/connection.h"
#include "net/tls_context.h"
#include "tls_test_util.h"

using sessiond::net::BlockPool;
using sessiond::net::ClassifyFirstBytes;
using sessiond::net::Connection;
using sessiond::net::FirstBytes;
using sessiond::net::TicketKeys;
using sessiond::net::TlsClientContext;
using sessiond::net::TlsClientOptions;
using sessiond::net::TlsServerContext;
using sessiond::net::TlsServerOptions;
using sessiond::net::TlsTransport;
using sessiond::testing::PemPair;
using sessiond::testing::TestCa;

namespace {

// OpenSSL writes with write(2): a peer that is gone must be an EPIPE, not a
// signal (sessiond itself ignores SIGPIPE for the same reason).
const bool kSigpipeIgnored = (signal(SIGPIPE, SIG_IGN), true);

struct Pki {
  TestCa ca{"transport test CA"};
  PemPair server = ca.Issue("localhost", {"localhost"}, {"127.0.0.1"});
  PemPair client = ca.Issue("client", {"client"}, {});
};

const Pki& TestPki() {
  static const Pki pki;
  return pki;
}

std::shared_ptr<TlsServerContext> ServerContext(int min_version = 12, bool mutual = false,
                                                std::shared_ptr<TicketKeys> keys = std::make_shared<TicketKeys>()) {
  TlsServerOptions o;
  o.certificate_pem = TestPki().server.cert;
  o.private_key_pem = TestPki().server.key;
  o.min_version = min_version;
  if (mutual) o.client_ca_pem = TestPki().ca.ca().cert;
  auto r = TlsServerContext::Create(o, std::move(keys));
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return *r;
}

std::shared_ptr<TlsClientContext> ClientContext(const std::string& name = "localhost", bool with_cert = false,
                                                const std::string& ca = TestPki().ca.ca().cert) {
  TlsClientOptions o;
  o.ca_pem = ca;
  o.server_name = name;
  if (with_cert) {
    o.client_certificate_pem = TestPki().client.cert;
    o.client_key_pem = TestPki().client.key;
  }
  auto r = TlsClientContext::Create(o);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return *r;
}

struct Recorder : Connection::Handler {
  int readable = 0, eof = 0, writable = 0, connected = 0, errors = 0, established = 0, plain = 0;
  int last_error = 0;
  std::function<void(Connection*)> on_readable;
  void OnReadable(Connection* c) override {
    ++readable;
    if (on_readable) on_readable(c);
  }
  void OnPeerEof(Connection*) override { ++eof; }
  void OnWritable(Connection*) override { ++writable; }
  void OnConnected(Connection*) override { ++connected; }
  void OnError(Connection*, int err) override {
    ++errors;
    last_error = err;
  }
  void OnTlsEstablished(Connection*) override { ++established; }
  void OnPlainHttpOnTls(Connection*) override { ++plain; }
};

event_base* NewBase() {
  event_config* cfg = event_config_new();
  event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
  event_base* base = event_base_new_with_config(cfg);
  event_config_free(cfg);
  return base;
}

// A server Connection on one end of a socketpair; the other end is either a
// client Connection (Connect()) or driven raw by the test (peer).
struct Pair {
  event_base* base = NewBase();
  BlockPool pool;
  Recorder srec, crec;
  Connection* server = nullptr;
  Connection* client = nullptr;
  int peer = -1;

  explicit Pair(std::shared_ptr<TlsServerContext> sctx, int sndbuf = 0) {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    if (sndbuf) {
      setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
      setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    }
    server = new Connection(base, &pool);
    server->Adopt(fds[0]);
    server->UseTls(TlsTransport::NewServer(sctx));
    server->set_handler(&srec);
    server->EnableReading();
    peer = fds[1];
  }
  // Turns the peer end into a TLS client Connection.
  void Connect(std::shared_ptr<TlsClientContext> cctx) {
    client = new Connection(base, &pool);
    client->set_handler(&crec);
    client->Adopt(peer);
    peer = -1;
    client->UseTls(TlsTransport::NewClient(std::move(cctx)));
    client->EnableReading();
  }
  ~Pair() {
    delete server;
    delete client;
    if (peer >= 0) close(peer);
    event_base_free(base);
  }
  bool RunUntil(const std::function<bool()>& done) {
    for (int i = 0; i < 3000; ++i) {
      if (done()) return true;
      event_base_loop(base, EVLOOP_NONBLOCK);
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return done();
  }
  bool Handshake() {
    return RunUntil([&] { return (srec.established && crec.connected) || srec.errors || crec.errors; }) &&
           srec.established == 1 && crec.connected == 1;
  }
};

std::string Take(Connection* c) {
  std::string out;
  for (size_t i = 0; i < c->input().slice_count(); ++i) out.append(c->input().slice(i));
  c->input().Clear();
  return out;
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

}  // namespace

TEST_CASE("ClassifyFirstBytes: a handshake record, an HTTP method, or anything else") {
  auto classify = [](const std::string& s) {
    return ClassifyFirstBytes(reinterpret_cast<const unsigned char*>(s.data()), s.size());
  };
  CHECK(classify(std::string("\x16\x03\x01", 3)) == FirstBytes::kTls);
  CHECK(classify(std::string("\x16", 1)) == FirstBytes::kTls);
  CHECK(classify("GET / HTTP/1.1") == FirstBytes::kPlainHttp);
  CHECK(classify("G") == FirstBytes::kPlainHttp);  // a method still arriving
  CHECK(classify("POS") == FirstBytes::kPlainHttp);
  CHECK(classify("VERSION-CONTROL /") == FirstBytes::kPlainHttp);
  CHECK(classify("ABCDEFGHIJKLMNOPQ") == FirstBytes::kOther);  // no method is that long
  CHECK(classify("get / HTTP/1.1") == FirstBytes::kOther);
  CHECK(classify("GE\x01") == FirstBytes::kOther);
  CHECK(classify(std::string("\x80\x2e\x01", 3)) == FirstBytes::kOther);
  CHECK(classify(std::string("\x00", 1)) == FirstBytes::kOther);
  CHECK(ClassifyFirstBytes(nullptr, 0) == FirstBytes::kOther);
}

TEST_CASE("TLS over a socketpair: handshake, then data both ways") {
  Pair p(ServerContext());
  p.Connect(ClientContext());
  REQUIRE(p.Handshake());
  CHECK(p.server->tls()->open());
  CHECK(p.client->tls()->open());
  CHECK_FALSE(p.server->tls_handshaking());
  CHECK(std::string(p.client->tls()->version()) == "TLSv1.3");

  p.client->output().Append("GET / HTTP/1.1\r\n\r\n");
  p.client->Flush();
  REQUIRE(p.RunUntil([&] { return p.server->input().size() == 18; }));
  CHECK(Take(p.server) == "GET / HTTP/1.1\r\n\r\n");

  // Several small slices leave as one record; a large body as many.
  const std::string body = Pattern(3 << 20);
  p.server->output().Append("HTTP/1.1 200 OK\r\n");
  p.server->output().Append("Content-Length: 3145728\r\n\r\n");
  p.server->output().Append(body);
  p.server->Flush();
  std::string got;
  p.crec.on_readable = [&](Connection* c) { got += Take(c); };
  const size_t want = 17 + 27 + body.size();
  REQUIRE(p.RunUntil([&] { return got.size() >= want; }));
  CHECK(got.size() == want);
  CHECK(got.compare(44, std::string::npos, body) == 0);
  CHECK(p.server->output().empty());
  CHECK(p.srec.errors == 0);
  CHECK(p.crec.errors == 0);
}

TEST_CASE("TLS reads stop at the read limit and resume from the bytes OpenSSL kept") {
  Pair p(ServerContext());
  p.Connect(ClientContext());
  REQUIRE(p.Handshake());
  p.server->set_read_limit(4096);
  const std::string data = Pattern(200000);
  p.client->output().Append(data);
  p.client->Flush();
  std::string got;
  // The reader consumes only when asked; each read stops at the limit.
  REQUIRE(p.RunUntil([&] { return p.server->input().size() >= 4096; }));
  for (int i = 0; i < 10000 && got.size() < data.size(); ++i) {
    CHECK(p.server->input().size() <= 4096 + 16384);  // at most one record past the limit
    got += Take(p.server);
    p.server->RefreshReading();
    p.RunUntil([&] { return p.server->input().size() > 0 || got.size() == data.size(); });
  }
  CHECK(got == data);
}

TEST_CASE("TLS writes that fill the socket finish from the write event, with OnWritable") {
  Pair p(ServerContext(), /*sndbuf=*/4096);
  p.Connect(ClientContext());
  REQUIRE(p.Handshake());
  p.server->set_low_mark(0);
  const std::string body = Pattern(1 << 20);
  p.server->output().Append(body);
  p.server->Flush();
  CHECK(p.server->write_pending());  // the socket could not take a MiB at once
  std::string got;
  p.crec.on_readable = [&](Connection* c) { got += Take(c); };
  REQUIRE(p.RunUntil([&] { return got.size() == body.size(); }));
  CHECK(got == body);
  CHECK(p.srec.writable >= 1);
  CHECK_FALSE(p.server->write_pending());
}

TEST_CASE("TLS server: plain HTTP first bytes turn the connection plain, unread") {
  Pair p(ServerContext());
  const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(write(p.peer, req, sizeof(req) - 1) == static_cast<ssize_t>(sizeof(req) - 1));
  REQUIRE(p.RunUntil([&] { return p.srec.readable > 0; }));
  CHECK(p.srec.plain == 1);
  CHECK(p.server->tls() == nullptr);
  CHECK(Take(p.server) == req);
  // Plain writes from then on.
  p.server->output().Append("HTTP/1.1 400 Bad Request\r\n\r\n");
  p.server->Flush();
  char buf[64];
  REQUIRE(p.RunUntil([&] { return recv(p.peer, buf, sizeof(buf), MSG_PEEK) > 0; }));
  CHECK(std::string(buf, 12) == "HTTP/1.1 400");
}

TEST_CASE("TLS server: garbage fails the handshake (EPROTO, a reason); a bare close is an EOF") {
  {
    Pair p(ServerContext());
    const unsigned char junk[] = {0x16, 0x03, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'};
    REQUIRE(write(p.peer, junk, sizeof(junk)) == static_cast<ssize_t>(sizeof(junk)));
    REQUIRE(p.RunUntil([&] { return p.srec.errors > 0; }));
    CHECK(p.srec.last_error == EPROTO);
    CHECK_FALSE(p.server->tls()->failure().empty());
    CHECK(p.server->tls()->saw_bytes());
    CHECK_FALSE(p.server->tls()->closed_during_handshake());
  }
  {
    Pair p(ServerContext());
    const unsigned char partial[] = {0x16, 0x03, 0x01, 0x01, 0x00, 0x01};
    REQUIRE(write(p.peer, partial, sizeof(partial)) == static_cast<ssize_t>(sizeof(partial)));
    p.RunUntil([&] { return false; });  // nothing happens yet: the record is incomplete
    CHECK(p.srec.errors == 0);
    CHECK(p.server->tls_handshaking());
    shutdown(p.peer, SHUT_WR);
    REQUIRE(p.RunUntil([&] { return p.srec.errors > 0; }));
    CHECK(p.server->tls()->closed_during_handshake());
    CHECK(p.server->tls()->failure() == "connection closed during the handshake");
  }
  {
    Pair p(ServerContext());
    shutdown(p.peer, SHUT_WR);
    REQUIRE(p.RunUntil([&] { return p.srec.eof > 0; }));
    CHECK(p.srec.errors == 0);
    CHECK_FALSE(p.server->tls()->saw_bytes());
  }
}

TEST_CASE("TLS client: verification failures name the reason") {
  SUBCASE("unknown CA") {
    TestCa other("another CA");
    Pair p(ServerContext());
    p.Connect(ClientContext("localhost", false, other.ca().cert));
    REQUIRE(p.RunUntil([&] { return p.crec.errors > 0; }));
    CHECK(p.crec.last_error == EPROTO);
    CHECK(p.client->tls()->failure() == "certificate verify failed: unable to get local issuer certificate");
    CHECK(p.crec.connected == 0);
  }
  SUBCASE("a name the certificate does not carry") {
    Pair p(ServerContext());
    p.Connect(ClientContext("example.org"));
    REQUIRE(p.RunUntil([&] { return p.crec.errors > 0; }));
    CHECK(p.client->tls()->failure() == "certificate verify failed: hostname mismatch");
  }
  SUBCASE("an IP address the certificate carries") {
    Pair p(ServerContext());
    p.Connect(ClientContext("127.0.0.1"));
    CHECK(p.Handshake());
  }
}

TEST_CASE("TLS client ALPN: http/1.1 by default, another protocol, or none at all") {
  // The server (the listener's context) answers http/1.1 and refuses a
  // client that offers only other protocols: what the client offers shows.
  auto client_with = [](const char* alpn) {
    TlsClientOptions o;
    o.ca_pem = TestPki().ca.ca().cert;
    o.server_name = "localhost";
    if (alpn) o.alpn = alpn;
    auto r = TlsClientContext::Create(o);
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    return *r;
  };
  {
    Pair p(ServerContext());
    p.Connect(client_with(nullptr));
    CHECK(p.Handshake());
  }
  {
    Pair p(ServerContext());
    p.Connect(client_with("redis"));
    REQUIRE(p.RunUntil([&] { return p.crec.errors > 0 || p.srec.errors > 0; }));
    CHECK(p.crec.connected == 0);
  }
  {
    Pair p(ServerContext());
    p.Connect(client_with(""));  // no ALPN extension: the server's callback never runs
    CHECK(p.Handshake());
  }
  TlsClientOptions too_long;
  too_long.server_name = "localhost";
  too_long.alpn = std::string(256, 'x');
  CHECK_FALSE(TlsClientContext::Create(too_long).ok());
}

TEST_CASE("TLS close: close_notify is a clean EOF; a bare TCP close truncates only towards a client") {
  SUBCASE("client sends close_notify") {
    Pair p(ServerContext());
    p.Connect(ClientContext());
    REQUIRE(p.Handshake());
    p.client->ShutdownWrite();
    REQUIRE(p.RunUntil([&] { return p.srec.eof > 0; }));
    CHECK(p.srec.errors == 0);
  }
  SUBCASE("the server's socket closes without close_notify") {
    Pair p(ServerContext());
    p.Connect(ClientContext());
    REQUIRE(p.Handshake());
    shutdown(p.server->fd(), SHUT_WR);  // TCP FIN, no close_notify
    REQUIRE(p.RunUntil([&] { return p.crec.errors > 0 || p.crec.eof > 0; }));
    CHECK(p.crec.errors == 1);
    CHECK(p.crec.last_error == ECONNRESET);  // a response cut short is not a clean end
  }
  SUBCASE("data then close_notify in one flight: both delivered") {
    Pair p(ServerContext());
    p.Connect(ClientContext());
    REQUIRE(p.Handshake());
    p.client->output().Append("last words");
    p.client->Flush();
    p.client->ShutdownWrite();
    REQUIRE(p.RunUntil([&] { return p.srec.eof > 0; }));
    CHECK(Take(p.server) == "last words");
  }
}

TEST_CASE("TLS: an error after the handshake leaves it established (not a failed handshake)") {
  Pair p(ServerContext());
  p.Connect(ClientContext());
  REQUIRE(p.Handshake());
  CHECK(p.server->tls()->established());
  p.client->output().Append("data");
  p.client->Flush();
  // Then a record no TLS session produced, written past the transport.
  const char bogus[] = "\x17\x03\x03\x00\x05xxxxx";
  REQUIRE(write(p.client->fd(), bogus, sizeof(bogus) - 1) == static_cast<ssize_t>(sizeof(bogus) - 1));
  std::string got;
  p.srec.on_readable = [&](Connection* c) { got += Take(c); };
  REQUIRE(p.RunUntil([&] { return p.srec.errors > 0; }));
  CHECK(got == "data");
  CHECK(p.srec.last_error == EPROTO);
  CHECK_FALSE(p.server->tls()->open());
  CHECK(p.server->tls()->established());
  CHECK_FALSE(p.server->tls()->failure().empty());
}

TEST_CASE("TLS resumption: tickets from the process keys, across one rotation, not two") {
  auto keys = std::make_shared<TicketKeys>();
  REQUIRE(keys->ok());
  auto sctx = ServerContext(12, false, keys);
  auto cctx = ClientContext();
  auto connect = [&](bool* resumed) {
    Pair p(sctx);
    p.Connect(cctx);
    REQUIRE(p.Handshake());
    // TLS 1.3 tickets come after the handshake: exchange a little data so
    // the client reads them.
    p.server->output().Append("x");
    p.server->Flush();
    REQUIRE(p.RunUntil([&] { return p.client->input().size() == 1; }));
    *resumed = p.server->tls()->resumed();
    CHECK(p.client->tls()->resumed() == *resumed);
  };
  bool resumed = true;
  connect(&resumed);
  CHECK_FALSE(resumed);
  CHECK(cctx->sessions_received() >= 1);
  connect(&resumed);
  CHECK(resumed);
  keys->Rotate();
  connect(&resumed);
  CHECK(resumed);  // sealed with the previous key: accepted (and renewed)
  keys->Rotate();
  keys->Rotate();
  connect(&resumed);
  CHECK_FALSE(resumed);  // two rotations later: a full handshake
  CHECK(keys->rotations() == 3);
  // A context made later (a certificate reload) shares the keys: its
  // connections resume the sessions of the old one.
  auto reloaded = ServerContext(12, false, keys);
  Pair p(reloaded);
  p.Connect(cctx);
  REQUIRE(p.Handshake());
  CHECK(p.server->tls()->resumed());
}

TEST_CASE("TicketKeys: current and previous are found by name, older ones are not") {
  TicketKeys keys;
  TicketKeys::Key first, found;
  REQUIRE(keys.Current(&first));
  CHECK(keys.Find(first.name, &found) == TicketKeys::Match::kCurrent);
  keys.Rotate();
  TicketKeys::Key second;
  REQUIRE(keys.Current(&second));
  CHECK(memcmp(first.name, second.name, sizeof(first.name)) != 0);
  CHECK(keys.Find(first.name, &found) == TicketKeys::Match::kPrevious);
  CHECK(memcmp(found.aes, first.aes, sizeof(first.aes)) == 0);
  keys.Rotate();
  CHECK(keys.Find(first.name, &found) == TicketKeys::Match::kNone);
  CHECK(keys.Find(second.name, &found) == TicketKeys::Match::kPrevious);
}

TEST_CASE("mutual TLS: a client without a certificate fails the handshake, one with a good one passes") {
  {
    Pair p(ServerContext(12, /*mutual=*/true));
    p.Connect(ClientContext());
    REQUIRE(p.RunUntil([&] { return p.srec.errors > 0; }));
    CHECK(p.server->tls()->failure() == "peer did not return a certificate");
  }
  {
    Pair p(ServerContext(12, /*mutual=*/true));
    p.Connect(ClientContext("localhost", /*with_cert=*/true));
    REQUIRE(p.Handshake());
  }
}

TEST_CASE("TlsClientOptionsFromFiles: a client context from files (for clients other than the upstream)") {
  char dir[] = "/tmp/sessiond_tls_files_XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string ca = std::string(dir) + "/ca.pem", cert = std::string(dir) + "/c.pem",
                    key = std::string(dir) + "/c.key";
  for (auto [path, text] : {std::pair{ca, TestPki().ca.ca().cert}, std::pair{cert, TestPki().client.cert},
                            std::pair{key, TestPki().client.key}}) {
    FILE* f = fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    fputs(text.c_str(), f);
    fclose(f);
  }
  auto options = sessiond::net::TlsClientOptionsFromFiles(ca, "localhost", cert, key);
  REQUIRE(options.ok());
  CHECK(options->ca_pem == TestPki().ca.ca().cert);
  CHECK(options->client_key_pem == TestPki().client.key);
  auto context = TlsClientContext::Create(*options);
  REQUIRE(context.ok());
  Pair p(ServerContext(12, /*mutual=*/true));
  p.Connect(*context);
  CHECK(p.Handshake());  // verified with the CA file, authenticated with the files' certificate

  auto missing = sessiond::net::TlsClientOptionsFromFiles(std::string(dir) + "/nope.pem", "localhost", "", "");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message() == "cannot read " + std::string(dir) + "/nope.pem: No such file or directory");
  CHECK_FALSE(sessiond::net::TlsClientOptionsFromFiles("", "localhost", cert, "").ok());
  for (const std::string& f : {ca, cert, key}) unlink(f.c_str());
  rmdir(dir);
}

TEST_CASE("TLS contexts refuse what they cannot use") {
  TlsServerOptions o;
  o.certificate_pem = TestPki().server.cert;
  o.private_key_pem = TestPki().client.key;  // another key
  auto r = TlsServerContext::Create(o, nullptr);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("does not match") != std::string::npos);
  CHECK(r.status().message().find("PRIVATE") == std::string::npos);
  o.certificate_pem = "junk";
  CHECK_FALSE(TlsServerContext::Create(o, nullptr).ok());

  TlsClientOptions c;
  c.server_name = "localhost";
  c.ca_pem = "not a certificate";
  CHECK_FALSE(TlsClientContext::Create(c).ok());
  c.ca_pem.clear();  // the system's CAs
  CHECK(TlsClientContext::Create(c).ok());
  c.server_name.clear();
  CHECK_FALSE(TlsClientContext::Create(c).ok());
}
