#include "store/redis_tls.h"

namespace sessiond {

RedisTls::RedisTls(const ClientTlsConfig& config) {
  options_.ca_pem = config.ca_pem;
  options_.server_name = config.server_name;
  options_.client_certificate_pem = config.client_certificate_pem;
  options_.client_key_pem = config.client_key_pem;
  options_.alpn.clear();
}

std::shared_ptr<RedisTls> RedisTls::New(const ClientTlsConfig& config) {
  return std::shared_ptr<RedisTls>(new RedisTls(config));
}

Result<std::shared_ptr<RedisTls>> RedisTls::Create(const ClientTlsConfig& config, const std::string& first_host) {
  std::shared_ptr<RedisTls> tls(new RedisTls(config));
  Result<std::shared_ptr<net::TlsClientContext>> first = tls->ContextFor(first_host);
  if (!first.ok()) return first.status();
  return tls;
}

Result<std::shared_ptr<net::TlsClientContext>> RedisTls::ContextFor(const std::string& host) {
  const std::string& name = options_.server_name.empty() ? host : options_.server_name;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_name_.find(name);
  if (it != by_name_.end()) return it->second;
  net::TlsClientOptions options = options_;
  options.server_name = name;
  Result<std::shared_ptr<net::TlsClientContext>> made = net::TlsClientContext::Create(options);
  if (!made.ok()) {
    return Status::Invalid("redis: TLS for " + (name.empty() ? std::string("(no host)") : name) + ": " +
                           made.status().message());
  }
  if (by_name_.size() >= kMaxContexts) by_name_.clear();
  by_name_.emplace(name, *made);
  return *made;
}

size_t RedisTls::contexts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_name_.size();
}

}  // namespace sessiond
