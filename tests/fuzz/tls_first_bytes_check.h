// The TLS listener's first bytes (src/net/tls_transport.h): what a client
// sends before anything else, as one piece, then nothing more (its side
// shut). ClassifyFirstBytes decides between a TLS handshake, a plain-HTTP
// request and anything else, and a server TlsTransport runs its handshake on
// the bytes over a socketpair.
//
// Invariants: kTls exactly when the first byte is 22; kPlainHttp only for an
// upper-case first letter, and every prefix of such an input classifies the
// same; the handshake never completes (no input can finish one without the
// keys) and ends as the classification says: kEof for nothing at all,
// kPlainHttp (nothing consumed) for a plain request, otherwise kFailed with
// a printable reason, and saw_bytes(). A failed transport's Shutdown sends
// nothing and nothing crashes.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "net/tls_context.h"
#include "net/tls_transport.h"

namespace sessiond {
namespace fuzz {

// A server context with a self-signed ECDSA P-256 certificate, made once.
inline std::shared_ptr<const net::TlsServerContext> FirstBytesServerContext() {
  static const std::shared_ptr<const net::TlsServerContext> context = [] {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("fuzz"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    auto pem = [](auto write) {
      BIO* bio = BIO_new(BIO_s_mem());
      write(bio);
      char* data = nullptr;
      const long n = BIO_get_mem_data(bio, &data);
      std::string out(data, static_cast<size_t>(n));
      BIO_free(bio);
      return out;
    };
    net::TlsServerOptions options;
    options.certificate_pem = pem([&](BIO* b) { PEM_write_bio_X509(b, cert); });
    options.private_key_pem =
        pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
    X509_free(cert);
    EVP_PKEY_free(key);
    Result<std::shared_ptr<net::TlsServerContext>> made =
        net::TlsServerContext::Create(options, std::make_shared<net::TicketKeys>());
    if (!made.ok()) {
      std::fprintf(stderr, "fuzz: cannot make a TLS context: %s\n", made.status().message().c_str());
      std::abort();
    }
    return std::shared_ptr<const net::TlsServerContext>(*made);
  }();
  return context;
}

inline bool CheckTlsFirstBytes(std::string_view in) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const net::FirstBytes kind = net::ClassifyFirstBytes(p, in.size());
  if (in.empty()) {
    FUZZ_CHECK(kind == net::FirstBytes::kOther);
  } else {
    FUZZ_CHECK((kind == net::FirstBytes::kTls) == (p[0] == 0x16));
  }
  if (kind == net::FirstBytes::kPlainHttp) {
    FUZZ_CHECK(p[0] >= 'A' && p[0] <= 'Z');
    for (size_t n = 1; n <= in.size() && n <= 16; ++n) {
      FUZZ_CHECK(net::ClassifyFirstBytes(p, n) == net::FirstBytes::kPlainHttp);
    }
  }

  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return true;  // out of fds
  size_t written = 0;
  while (written < in.size()) {
    const ssize_t n = write(fds[1], in.data() + written, in.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  FUZZ_CHECK(written == in.size());
  shutdown(fds[1], SHUT_WR);
  std::unique_ptr<net::TlsTransport> t = net::TlsTransport::NewServer(FirstBytesServerContext());
  FUZZ_CHECK(t != nullptr);
  t->Attach(fds[0]);
  net::TlsTransport::Step step;
  int rounds = 0;
  char sink[65536];
  do {
    step = t->Handshake();
    while (read(fds[1], sink, sizeof(sink)) > 0) {
    }
  } while ((step == net::TlsTransport::Step::kWantRead || step == net::TlsTransport::Step::kWantWrite) &&
           ++rounds < 64);
  bool ok = true;
  if (in.empty()) {
    ok = step == net::TlsTransport::Step::kEof;
  } else if (kind == net::FirstBytes::kPlainHttp) {
    ok = step == net::TlsTransport::Step::kPlainHttp;
  } else {
    ok = step == net::TlsTransport::Step::kFailed && !t->failure().empty() && IsPrintableAscii(t->failure()) &&
         t->saw_bytes() && !t->open();
  }
  t->Shutdown();
  t.reset();
  close(fds[0]);
  close(fds[1]);
  FUZZ_CHECK(ok);
  return true;
}

}  // namespace fuzz
}  // namespace sessiond
