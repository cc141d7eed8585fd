// TLS contexts: what every TLS connection of one side is made from
// (docs/HTTP.md, TLS; docs/ARCHITECTURE.md, TLS).
//
// TlsServerContext is the listener's: certificate and key, protocol floor
// (TLS 1.2 or 1.3; never below), a modern cipher list (ECDHE with an AEAD for
// TLS 1.2; the TLS 1.3 suites), ALPN "http/1.1" only, optional client
// certificates (mutual TLS), and stateless session resumption through
// tickets sealed with the process's TicketKeys. It is immutable once made; a
// reload (SIGHUP) makes a new one and new connections use it, while the
// connections already open keep the one they started with (each transport
// holds a reference), so nothing is dropped.
//
// TlsClientContext is for connections sessiond opens: the HTTPS upstream,
// and any other client (the rediss:// store) that hands a
// TlsTransport::NewClient(context) to its net::Connection. It verifies the
// peer against the system CAs or a given CA bundle, checks the name (or the
// IP address) of the peer, sends SNI for a name, may present a client
// certificate, and keeps the latest session the peer offered, so a new
// connection resumes instead of running a full handshake.
//
// Every context may be shared by any number of threads: OpenSSL's SSL_CTX is
// thread-safe for making connections, the ticket keys and the client's
// session slot have their own locks, and no lock is taken per byte.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "base/status.h"

namespace sessiond {
namespace net {

// The keys that seal session tickets: one set per process, shared by every
// worker and by every server context the process makes (so a ticket survives
// a certificate reload). Rotate() makes a fresh key current; the one it
// replaces still opens tickets until the next rotation (its tickets are then
// renewed), so a ticket lives at most two rotation periods. The keys are
// random, never written anywhere, and die with the process.
class TicketKeys {
 public:
  static constexpr std::chrono::hours kRotateEvery{1};

  struct Key {
    unsigned char name[16];
    unsigned char aes[32];   // AES-256-CBC
    unsigned char hmac[32];  // HMAC-SHA256
  };
  enum class Match { kNone, kCurrent, kPrevious };

  // Draws the first key from the CSPRNG.
  TicketKeys();
  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;

  // False when the CSPRNG failed; tickets are then neither issued nor taken.
  bool ok() const;
  // A fresh current key; the current one becomes the previous one.
  void Rotate();
  // The key new tickets are sealed with.
  bool Current(Key* out) const;
  // The key named `name` (16 bytes), if it is still accepted.
  Match Find(const unsigned char* name, Key* out) const;
  // How many times Rotate() ran (for tests).
  uint64_t rotations() const;

 private:
  mutable std::mutex mu_;
  Key current_{};
  Key previous_{};
  bool ok_ = false;
  bool has_previous_ = false;
  uint64_t rotations_ = 0;
};

// The listener's TLS, as PEM text already read from the files (and checked)
// when the configuration loaded (docs/CONFIGURATION.md, tls).
struct TlsServerOptions {
  std::string certificate_pem;  // the certificate, then its chain
  std::string private_key_pem;  // secret: never logged
  int min_version = 12;         // 12: TLS 1.2 and 1.3; 13: TLS 1.3 only
  std::string client_ca_pem;    // set: every client must present a certificate it signed
};

class TlsServerContext {
 public:
  // Builds the context; the message of an error names what is wrong
  // (never the key's bytes).
  static Result<std::shared_ptr<TlsServerContext>> Create(const TlsServerOptions& options,
                                                          std::shared_ptr<TicketKeys> keys);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  bool mutual() const { return mutual_; }

 private:
  TlsServerContext() = default;

  SSL_CTX* ctx_ = nullptr;
  std::shared_ptr<TicketKeys> keys_;  // read by the ticket callback through the SSL_CTX
  bool mutual_ = false;
};

// A client's TLS (docs/CONFIGURATION.md, upstream_tls).
struct TlsClientOptions {
  std::string ca_pem;       // empty: the system's trusted CAs
  // The name the peer's certificate must carry, also sent as SNI. An IPv4 or
  // IPv6 address literal is verified against the certificate's IP addresses
  // instead, and no SNI is sent (RFC 6066 section 3).
  std::string server_name;
  std::string client_certificate_pem;  // both or neither
  std::string client_key_pem;          // secret: never logged
  // The one application protocol offered by ALPN; empty: no ALPN extension
  // (a Redis client: nothing on the path should take it for HTTP).
  std::string alpn = "http/1.1";

  bool operator==(const TlsClientOptions& o) const {
    return ca_pem == o.ca_pem && server_name == o.server_name &&
           client_certificate_pem == o.client_certificate_pem && client_key_pem == o.client_key_pem &&
           alpn == o.alpn;
  }
  bool operator!=(const TlsClientOptions& o) const { return !(*this == o); }
};

// The options for files named by path (an empty path: not set), for a client
// whose configuration names files rather than holding their text. Reads each file whole (at most 1 MiB); an error names the
// file and the reason, never its contents.
Result<TlsClientOptions> TlsClientOptionsFromFiles(const std::string& ca_file, const std::string& server_name,
                                                   const std::string& client_certificate,
                                                   const std::string& client_key);

class TlsClientContext {
 public:
  static Result<std::shared_ptr<TlsClientContext>> Create(const TlsClientOptions& options);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  // A new client SSL: SNI, the verification target, and the latest session
  // to resume. Null when OpenSSL cannot allocate one.
  SSL* NewSsl() const;
  const TlsClientOptions& options() const { return options_; }
  // Sessions the peer handed out so far (for tests).
  uint64_t sessions_received() const;

 private:
  TlsClientContext() = default;
  static int NewSessionCb(SSL* ssl, SSL_SESSION* session);

  SSL_CTX* ctx_ = nullptr;
  TlsClientOptions options_;
  bool ip_literal_ = false;
  mutable std::mutex mu_;
  SSL_SESSION* latest_ = nullptr;  // one reference, under mu_
  uint64_t sessions_received_ = 0;
};

// The OpenSSL error queue's last reason, or `fallback` (for messages).
std::string TlsErrorReason(const char* fallback);

}  // namespace net
}  // namespace sessiond
