// A throw-away PKI for the TLS unit tests: an ECDSA P-256 CA and the
// certificates it issues, as PEM text, made in memory with OpenSSL (nothing
// is read from or written to disk unless a test does it).
#pragma once

#include <string>
#include <vector>

namespace sessiond {
namespace testing {

struct PemPair {
  std::string cert;
  std::string key;
};

class TestCa {
 public:
  // A self-signed CA named `name`.
  explicit TestCa(const std::string& name);
  const PemPair& ca() const { return ca_; }
  // A leaf certificate for `dns` names and `ips` addresses (server and client
  // use), valid from an hour ago for a day unless `expired`.
  PemPair Issue(const std::string& common_name, const std::vector<std::string>& dns,
                const std::vector<std::string>& ips, bool expired = false) const;

 private:
  PemPair ca_;
};

// `key_pem` encrypted with `passphrase` (AES-256-CBC), as `openssl pkey -aes256` writes it.
std::string EncryptedKeyPem(const std::string& key_pem, const std::string& passphrase);

}  // namespace testing
}  // namespace sessiond
