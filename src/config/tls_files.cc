#include "config/tls_files.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

namespace sessiond {
namespace config_internal {

namespace {

// An encrypted key is refused, never prompted for on the terminal.
int NoPassword(char*, int, int, void*) { return -1; }

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr MemBio(const std::string& pem) { return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

X509* FirstCertificate(const std::string& pem) {
  BioPtr bio = MemBio(pem);
  return bio ? PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr) : nullptr;
}

EVP_PKEY* PrivateKey(const std::string& pem) {
  BioPtr bio = MemBio(pem);
  return bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr) : nullptr;
}

}  // namespace

std::string CheckCertificatesPem(const std::string& pem) {
  X509* cert = FirstCertificate(pem);
  ERR_clear_error();
  if (!cert) return "no PEM certificate (-----BEGIN CERTIFICATE-----) in it";
  X509_free(cert);
  return "";
}

std::string CheckPrivateKeyPem(const std::string& pem) {
  EVP_PKEY* key = PrivateKey(pem);
  ERR_clear_error();
  if (!key) {
    return pem.find("ENCRYPTED") != std::string::npos
               ? "the private key is encrypted (a passphrase is not supported; decrypt it with openssl pkey)"
               : "no PEM private key in it";
  }
  EVP_PKEY_free(key);
  return "";
}

std::string CheckKeyMatchesCertificate(const std::string& cert_pem, const std::string& key_pem) {
  X509* cert = FirstCertificate(cert_pem);
  EVP_PKEY* key = PrivateKey(key_pem);
  std::string out;
  if (cert && key && X509_check_private_key(cert, key) != 1) out = "it is not the private key of the certificate";
  X509_free(cert);
  EVP_PKEY_free(key);
  ERR_clear_error();
  return out;
}

}  // namespace config_internal
}  // namespace sessiond
