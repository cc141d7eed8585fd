#include "net/tls_context.h"

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sessiond {
namespace net {

namespace {

// TLS 1.2: forward secrecy (ECDHE) and an AEAD only, as Mozilla's
// "intermediate" profile without the finite-field DHE suites. TLS 1.3 suites
// are all AEADs; the order prefers AES-GCM (hardware) and keeps ChaCha20 for
// clients without AES instructions.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr char kTls13Suites[] = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr char kGroups[] = "X25519:P-256:P-384";
// ALPN: HTTP/1.1 is all sessiond speaks.
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
// How long a ticket's session may be resumed: two rotation periods, the most
// a ticket key is accepted.
constexpr long kSessionLifetimeSeconds = 2 * 3600;

// A PEM password callback that refuses: an encrypted key is an error, never
// a prompt on the terminal.
int NoPassword(char*, int, int, void*) { return -1; }

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr MemBio(const std::string& pem) { return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

int TicketKeysIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int ClientContextIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Seals (enc = 1) or opens (enc = 0) a session ticket with the process's
// keys (SSL_CTX_set_tlsext_ticket_key_evp_cb): 1 sealed or opened with the
// current key, 2 opened and to be renewed (the previous key, or TLS 1.3), 0
// no ticket / unknown key (a full handshake follows), -1 an internal error.
int TicketKeyCb(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
                int enc) {
  auto* keys = static_cast<TicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), TicketKeysIndex()));
  if (!keys) return 0;
  TicketKeys::Key key;
  int result = 1;
  if (enc) {
    if (!keys->Current(&key)) return 0;
    if (RAND_bytes(iv, EVP_CIPHER_iv_length(EVP_aes_256_cbc())) != 1) return -1;
    memcpy(key_name, key.name, sizeof(key.name));
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv) != 1) return -1;
  } else {
    switch (keys->Find(key_name, &key)) {
      case TicketKeys::Match::kNone:
        return 0;
      case TicketKeys::Match::kCurrent:
        // TLS 1.3 clients use a ticket once (RFC 8446 section 4.6.1; OpenSSL
        // marks it spent): a resumed session gets a fresh one, or the next
        // connection would run a full handshake.
        if (SSL_version(ssl) == TLS1_3_VERSION) result = 2;
        break;
      case TicketKeys::Match::kPrevious:
        result = 2;
        break;
    }
    if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv) != 1) return -1;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac, sizeof(key.hmac)),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  OPENSSL_cleanse(&key, sizeof(key));
  return result;
}

// ALPN: http/1.1 when the client offers it. A client that offers protocols
// but not http/1.1 (an h2-only client) gets the no_application_protocol
// alert (RFC 7301 section 3.2) rather than a connection that speaks the
// wrong protocol.
int AlpnSelectCb(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                 void*) {
  unsigned char* selected = nullptr;
  unsigned char selected_len = 0;
  if (SSL_select_next_proto(&selected, &selected_len, kAlpnHttp11, sizeof(kAlpnHttp11), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  *outlen = selected_len;
  return SSL_TLSEXT_ERR_OK;
}

// Loads the certificate (the first PEM block) and its chain (the rest).
Status UseCertificateChain(SSL_CTX* ctx, const std::string& pem) {
  BioPtr bio = MemBio(pem);
  X509* leaf = PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr);
  if (!leaf) return Status::Invalid("no PEM certificate: " + TlsErrorReason("unreadable"));
  const int used = SSL_CTX_use_certificate(ctx, leaf);
  X509_free(leaf);
  if (used != 1) return Status::Invalid("certificate refused: " + TlsErrorReason("unusable"));
  while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      return Status::Invalid("chain certificate refused: " + TlsErrorReason("unusable"));
    }
  }
  ERR_clear_error();  // the end of the PEM stream
  return Status::OK();
}

Status UsePrivateKey(SSL_CTX* ctx, const std::string& pem) {
  BioPtr bio = MemBio(pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr);
  if (!key) return Status::Invalid("no unencrypted PEM private key");
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert && X509_check_private_key(cert, key) != 1) {
    EVP_PKEY_free(key);
    ERR_clear_error();
    return Status::Invalid("the private key does not match the certificate");
  }
  const int used = SSL_CTX_use_PrivateKey(ctx, key);
  EVP_PKEY_free(key);
  if (used != 1) return Status::Invalid("private key refused: " + TlsErrorReason("unusable"));
  if (SSL_CTX_check_private_key(ctx) != 1) return Status::Invalid("the private key does not match the certificate");
  return Status::OK();
}

// Adds every certificate of a PEM bundle to `store`; the number added.
int AddCertificates(X509_STORE* store, const std::string& pem, STACK_OF(X509_NAME)* names) {
  BioPtr bio = MemBio(pem);
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr)) {
    if (X509_STORE_add_cert(store, cert) == 1) ++added;
    if (names) {
      if (X509_NAME* name = X509_NAME_dup(X509_get_subject_name(cert))) sk_X509_NAME_push(names, name);
    }
    X509_free(cert);
  }
  ERR_clear_error();
  return added;
}

void SetCommonOptions(SSL_CTX* ctx) {
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Partial writes and a moving buffer: a write the socket did not take is
  // retried with the same bytes from wherever the output buffer now holds
  // them (net/tls_transport.h). Released buffers: an idle connection holds
  // no read or write buffer (about 34 KiB otherwise).
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // One read() takes whatever the socket holds, not a record header and then
  // its body in two system calls.
  SSL_CTX_set_read_ahead(ctx, 1);
}

bool IsIpLiteral(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

}  // namespace

std::string TlsErrorReason(const char* fallback) {
  unsigned long last = 0;
  while (unsigned long e = ERR_get_error()) last = e;
  if (last == 0) return fallback;
  const char* reason = ERR_reason_error_string(last);
  return reason ? reason : fallback;
}

// ---- TicketKeys ----

namespace {
bool NewKey(TicketKeys::Key* key) { return RAND_bytes(reinterpret_cast<unsigned char*>(key), sizeof(*key)) == 1; }
}  // namespace

TicketKeys::TicketKeys() { ok_ = NewKey(&current_); }

bool TicketKeys::ok() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ok_;
}

void TicketKeys::Rotate() {
  Key fresh;
  const bool made = NewKey(&fresh);
  std::lock_guard<std::mutex> lock(mu_);
  ++rotations_;
  if (!made) return;  // keep the current key rather than none
  if (ok_) {
    previous_ = current_;
    has_previous_ = true;
  }
  current_ = fresh;
  ok_ = true;
  OPENSSL_cleanse(&fresh, sizeof(fresh));
}

bool TicketKeys::Current(Key* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ok_) return false;
  *out = current_;
  return true;
}

TicketKeys::Match TicketKeys::Find(const unsigned char* name, Key* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ok_) return Match::kNone;
  if (memcmp(name, current_.name, sizeof(current_.name)) == 0) {
    *out = current_;
    return Match::kCurrent;
  }
  if (has_previous_ && memcmp(name, previous_.name, sizeof(previous_.name)) == 0) {
    *out = previous_;
    return Match::kPrevious;
  }
  return Match::kNone;
}

uint64_t TicketKeys::rotations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rotations_;
}

// ---- TlsServerContext ----

Result<std::shared_ptr<TlsServerContext>> TlsServerContext::Create(const TlsServerOptions& options,
                                                                   std::shared_ptr<TicketKeys> keys) {
  ERR_clear_error();
  std::shared_ptr<TlsServerContext> out(new TlsServerContext());
  SSL_CTX* ctx = out->ctx_ = SSL_CTX_new(TLS_server_method());
  if (!ctx) return Status::IOError("cannot create a TLS context: " + TlsErrorReason("out of memory"));
  SetCommonOptions(ctx);
  SSL_CTX_set_min_proto_version(ctx, options.min_version >= 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 || SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1 ||
      SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
    return Status::IOError("this OpenSSL lacks the required ciphers: " + TlsErrorReason("unknown"));
  }
  SSL_CTX_set_alpn_select_cb(ctx, AlpnSelectCb, nullptr);
  if (Status s = UseCertificateChain(ctx, options.certificate_pem); !s.ok()) return s;
  if (Status s = UsePrivateKey(ctx, options.private_key_pem); !s.ok()) return s;

  // Resumption is stateless: tickets sealed with the process's keys, no
  // server-side session cache (nothing to share between workers or to bound).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_timeout(ctx, kSessionLifetimeSeconds);
  SSL_CTX_set_num_tickets(ctx, 1);
  static const unsigned char kSessionIdContext[] = "sessiond";
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof(kSessionIdContext) - 1);
  out->keys_ = std::move(keys);
  if (out->keys_) {
    SSL_CTX_set_ex_data(ctx, TicketKeysIndex(), out->keys_.get());
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, TicketKeyCb);
  } else {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  }

  if (!options.client_ca_pem.empty()) {
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    if (AddCertificates(SSL_CTX_get_cert_store(ctx), options.client_ca_pem, names) == 0) {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      return Status::Invalid("no PEM certificate in the client CA bundle");
    }
    SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    out->mutual_ = true;
  }
  ERR_clear_error();
  return out;
}

TlsServerContext::~TlsServerContext() {
  if (ctx_) SSL_CTX_free(ctx_);
}

// ---- TlsClientContext ----

namespace {

Status ReadPemFile(const std::string& path, std::string* out) {
  constexpr size_t kMaxBytes = 1 << 20;
  FILE* f = fopen(path.c_str(), "rbe");
  if (!f) return Status::IOError("cannot read " + path + ": " + strerror(errno));
  out->clear();
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
    out->append(buf, n);
    if (out->size() > kMaxBytes) {
      fclose(f);
      return Status::Invalid("cannot read " + path + ": larger than 1 MiB");
    }
  }
  const bool failed = ferror(f) != 0;
  fclose(f);
  if (failed) return Status::IOError("cannot read " + path);
  return Status::OK();
}

}  // namespace

Result<TlsClientOptions> TlsClientOptionsFromFiles(const std::string& ca_file, const std::string& server_name,
                                                   const std::string& client_certificate,
                                                   const std::string& client_key) {
  TlsClientOptions o;
  o.server_name = server_name;
  if (!ca_file.empty()) {
    if (Status s = ReadPemFile(ca_file, &o.ca_pem); !s.ok()) return s;
  }
  if (client_certificate.empty() != client_key.empty()) {
    return Status::Invalid("a client certificate and its key go together");
  }
  if (!client_certificate.empty()) {
    if (Status s = ReadPemFile(client_certificate, &o.client_certificate_pem); !s.ok()) return s;
    if (Status s = ReadPemFile(client_key, &o.client_key_pem); !s.ok()) return s;
  }
  return o;
}

Result<std::shared_ptr<TlsClientContext>> TlsClientContext::Create(const TlsClientOptions& options) {
  ERR_clear_error();
  std::shared_ptr<TlsClientContext> out(new TlsClientContext());
  out->options_ = options;
  SSL_CTX* ctx = out->ctx_ = SSL_CTX_new(TLS_client_method());
  if (!ctx) return Status::IOError("cannot create a TLS context: " + TlsErrorReason("out of memory"));
  SetCommonOptions(ctx);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 || SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1) {
    return Status::IOError("this OpenSSL lacks the required ciphers: " + TlsErrorReason("unknown"));
  }
  if (!options.alpn.empty()) {
    if (options.alpn.size() > 255) return Status::Invalid("an ALPN protocol name is at most 255 bytes");
    std::string wire(1, static_cast<char>(options.alpn.size()));
    wire += options.alpn;
    // 0 is success here, unlike the rest of OpenSSL.
    if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned int>(wire.size())) != 0) {
      return Status::IOError("cannot set ALPN: " + TlsErrorReason("unknown"));
    }
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (options.ca_pem.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return Status::IOError("cannot load the system's CA certificates: " + TlsErrorReason("unknown"));
    }
  } else if (AddCertificates(SSL_CTX_get_cert_store(ctx), options.ca_pem, nullptr) == 0) {
    return Status::Invalid("no PEM certificate in the CA bundle");
  }
  if (options.server_name.empty()) return Status::Invalid("a server name to verify is required");
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
  out->ip_literal_ = IsIpLiteral(options.server_name);
  if (out->ip_literal_) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, options.server_name.c_str()) != 1) {
      return Status::Invalid("not a usable IP address: " + options.server_name);
    }
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(param, options.server_name.c_str(), options.server_name.size()) != 1) {
      return Status::Invalid("not a usable host name: " + options.server_name);
    }
  }
  if (!options.client_certificate_pem.empty() || !options.client_key_pem.empty()) {
    if (Status s = UseCertificateChain(ctx, options.client_certificate_pem); !s.ok()) return s;
    if (Status s = UsePrivateKey(ctx, options.client_key_pem); !s.ok()) return s;
  }
  // Sessions are kept by this object (the latest one), not by OpenSSL's
  // internal cache, which a client would have to look up by peer itself.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_set_ex_data(ctx, ClientContextIndex(), out.get());
  SSL_CTX_sess_set_new_cb(ctx, NewSessionCb);
  ERR_clear_error();
  return out;
}

TlsClientContext::~TlsClientContext() {
  if (latest_) SSL_SESSION_free(latest_);
  if (ctx_) {
    // A connection still alive after this (it holds its own reference to the
    // SSL_CTX) must not reach a freed object through the callback.
    SSL_CTX_set_ex_data(ctx_, ClientContextIndex(), nullptr);
    SSL_CTX_free(ctx_);
  }
}

int TlsClientContext::NewSessionCb(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<TlsClientContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ClientContextIndex()));
  if (!self || !SSL_SESSION_is_resumable(session)) return 0;
  std::lock_guard<std::mutex> lock(self->mu_);
  if (self->latest_) SSL_SESSION_free(self->latest_);
  self->latest_ = session;  // returning 1 keeps the reference OpenSSL gave us
  ++self->sessions_received_;
  return 1;
}

SSL* TlsClientContext::NewSsl() const {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) return nullptr;
  SSL_set_connect_state(ssl);
  if (!ip_literal_) SSL_set_tlsext_host_name(ssl, options_.server_name.c_str());
  std::lock_guard<std::mutex> lock(mu_);
  if (latest_) SSL_set_session(ssl, latest_);
  return ssl;
}

uint64_t TlsClientContext::sessions_received() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_received_;
}

}  // namespace net
}  // namespace sessiond
