// The contents of the TLS files a configuration names (docs/CONFIGURATION.md,
// tls and upstream_tls), checked when it loads so that a bad file is a
// configuration error with its position, at start and on reload, rather than
// a failure when the first connection arrives. OpenSSL parses them here; the
// TLS contexts are built from the same bytes later (src/net/tls_context.h).
// Internal to src/config/.
//
// Each check returns "" when the text is fine, else what is wrong (no file
// name, no key name: the caller adds both; never any of the key's bytes).
#pragma once

#include <string>

namespace sessiond {
namespace config_internal {

// At least one PEM certificate.
std::string CheckCertificatesPem(const std::string& pem);
// One unencrypted PEM private key.
std::string CheckPrivateKeyPem(const std::string& pem);
// `key_pem` is the private key of the first certificate of `cert_pem`.
std::string CheckKeyMatchesCertificate(const std::string& cert_pem, const std::string& key_pem);

}  // namespace config_internal
}  // namespace sessiond
