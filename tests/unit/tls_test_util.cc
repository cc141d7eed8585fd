#include "tls_test_util.h"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace sessiond {
namespace testing {

namespace {

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  return BioText(bio);
}

std::string CertPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_X509(bio, cert) == 1);
  return BioText(bio);
}

EVP_PKEY* ReadKey(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  REQUIRE(key != nullptr);
  return key;
}

X509* ReadCert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  REQUIRE(cert != nullptr);
  return cert;
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  REQUIRE(ext != nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// An unsigned certificate for `key` named `cn`, issued by `issuer` (itself
// when null), valid between the two offsets from now (seconds).
X509* MakeCert(EVP_PKEY* key, const std::string& cn, X509* issuer, long not_before, long not_after) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  unsigned char serial[8];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert), not_before);
  X509_gmtime_adj(X509_getm_notAfter(cert), not_after);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
  return cert;
}

}  // namespace

TestCa::TestCa(const std::string& name) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  REQUIRE(key != nullptr);
  X509* cert = MakeCert(key, name, nullptr, -3600, 86400 * 2);
  AddExtension(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert, cert, NID_subject_key_identifier, "hash");
  REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
  ca_.cert = CertPem(cert);
  ca_.key = KeyPem(key);
  X509_free(cert);
  EVP_PKEY_free(key);
}

PemPair TestCa::Issue(const std::string& common_name, const std::vector<std::string>& dns,
                      const std::vector<std::string>& ips, bool expired) const {
  EVP_PKEY* ca_key = ReadKey(ca_.key);
  X509* ca_cert = ReadCert(ca_.cert);
  EVP_PKEY* key = EVP_EC_gen("P-256");
  REQUIRE(key != nullptr);
  X509* cert = expired ? MakeCert(key, common_name, ca_cert, -86400 * 3, -86400)
                       : MakeCert(key, common_name, ca_cert, -3600, 86400);
  std::string san;
  for (const std::string& d : dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  for (const std::string& ip : ips) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) AddExtension(cert, ca_cert, NID_subject_alt_name, san);
  AddExtension(cert, ca_cert, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert, ca_cert, NID_ext_key_usage, "serverAuth,clientAuth");
  AddExtension(cert, ca_cert, NID_authority_key_identifier, "keyid:always");
  REQUIRE(X509_sign(cert, ca_key, EVP_sha256()) > 0);
  PemPair out{CertPem(cert), KeyPem(key)};
  X509_free(cert);
  EVP_PKEY_free(key);
  X509_free(ca_cert);
  EVP_PKEY_free(ca_key);
  return out;
}

std::string EncryptedKeyPem(const std::string& key_pem, const std::string& passphrase) {
  EVP_PKEY* key = ReadKey(key_pem);
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), passphrase.data(),
                                        static_cast<int>(passphrase.size()), nullptr, nullptr) == 1);
  EVP_PKEY_free(key);
  return BioText(bio);
}

}  // namespace testing
}  // namespace sessiond
