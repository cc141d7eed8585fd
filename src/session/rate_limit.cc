#include "session/rate_limit.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "crypto/crypto.h"

namespace sessiond {

namespace {

constexpr int64_t kSweepEveryNs = 1000000000;  // one second
constexpr size_t kMaxBucketsPerShard = RateLimiter::kMaxBucketsPerRule / RateLimiter::kShards;

uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

// Little-endian, as SipHash reads its words.
uint64_t Load64(const unsigned char* p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t v;
  memcpy(&v, p, sizeof(v));
  return v;
#else
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
#endif
}

struct SipState {
  uint64_t v0, v1, v2, v3;
  void Round() {
    v0 += v1;
    v1 = Rotl(v1, 13);
    v1 ^= v0;
    v0 = Rotl(v0, 32);
    v2 += v3;
    v3 = Rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = Rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = Rotl(v1, 17);
    v1 ^= v2;
    v2 = Rotl(v2, 32);
  }
  void Absorb(uint64_t m) {
    v3 ^= m;
    Round();
    Round();
    v0 ^= m;
  }
};

}  // namespace

// SipHash-2-4 (Aumasson and Bernstein, 2012): two rounds per 8-byte word,
// four to finish.
uint64_t RateLimiter::SipHash24(const unsigned char key[16], std::string_view data) {
  const uint64_t k0 = Load64(key);
  const uint64_t k1 = Load64(key + 8);
  SipState s{k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL, k0 ^ 0x6c7967656e657261ULL,
             k1 ^ 0x7465646279746573ULL};
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  const size_t whole = n - n % 8;
  for (size_t i = 0; i < whole; i += 8) s.Absorb(Load64(p + i));
  uint64_t last = static_cast<uint64_t>(n & 0xff) << 56;
  for (size_t i = 0; i < n % 8; ++i) last |= static_cast<uint64_t>(p[whole + i]) << (8 * i);
  s.Absorb(last);
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) s.Round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

Result<std::unique_ptr<RateLimiter>> RateLimiter::Create(const std::vector<RateLimitRule>& rules) {
  std::unique_ptr<RateLimiter> limiter(new RateLimiter());
  Result<std::string> seed = crypto::RandomBytes(sizeof(limiter->hash_key_));
  if (!seed.ok()) return seed.status();
  memcpy(limiter->hash_key_, seed->data(), sizeof(limiter->hash_key_));
  for (const RateLimitRule& r : rules) {
    Rule rule;
    const double period_ns = static_cast<double>(r.period.count()) * 1e6;
    rule.per_ns = static_cast<double>(r.count) / (period_ns > 0 ? period_ns : 1e9);
    rule.capacity = static_cast<double>(std::max<uint64_t>(r.burst, 1));
    rule.shards.reset(new Shard[kShards]);
    limiter->rules_.push_back(std::move(rule));
  }
  return limiter;
}

void RateLimiter::Sweep(const Rule& rule, Shard& shard, int64_t now_ns, bool over_cap) {
  for (auto it = shard.buckets.begin(); it != shard.buckets.end();) {
    const Bucket& b = it->second;
    const double refilled = b.tokens + static_cast<double>(now_ns - b.last_ns) * rule.per_ns;
    if (refilled >= rule.capacity) {
      it = shard.buckets.erase(it);
    } else {
      ++it;
    }
  }
  if (!over_cap || shard.buckets.size() < kMaxBucketsPerShard) return;
  // Still full of buckets in use: forget the least recently used eighth.
  std::vector<std::pair<int64_t, uint64_t>> by_age;
  by_age.reserve(shard.buckets.size());
  for (const auto& [hash, b] : shard.buckets) by_age.emplace_back(b.last_ns, hash);
  const size_t drop = std::max<size_t>(1, by_age.size() / 8);
  std::nth_element(by_age.begin(), by_age.begin() + static_cast<std::ptrdiff_t>(drop - 1), by_age.end());
  for (size_t i = 0; i < drop; ++i) shard.buckets.erase(by_age[i].second);
}

RateDecision RateLimiter::TakeHashed(size_t index, uint64_t hash, int64_t now_ns) {
  Rule& rule = rules_[index];
  Shard& shard = rule.shards[hash % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  if (now_ns >= shard.next_sweep_ns) {
    Sweep(rule, shard, now_ns, false);
    shard.next_sweep_ns = now_ns + kSweepEveryNs;
  }
  auto it = shard.buckets.find(hash);
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= kMaxBucketsPerShard) Sweep(rule, shard, now_ns, true);
    it = shard.buckets.emplace(hash, Bucket{rule.capacity, now_ns}).first;
  }
  Bucket& b = it->second;
  if (now_ns > b.last_ns) {
    b.tokens = std::min(rule.capacity, b.tokens + static_cast<double>(now_ns - b.last_ns) * rule.per_ns);
    b.last_ns = now_ns;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return RateDecision{true, 0};
  }
  const double wait_ns = (1.0 - b.tokens) / rule.per_ns;
  const int64_t seconds = static_cast<int64_t>(std::ceil(wait_ns / 1e9));
  return RateDecision{false, std::max<int64_t>(seconds, 1)};
}

size_t RateLimiter::bucket_count(size_t index) const {
  size_t n = 0;
  for (size_t i = 0; i < kShards; ++i) {
    std::lock_guard<std::mutex> lock(rules_[index].shards[i].mu);
    n += rules_[index].shards[i].buckets.size();
  }
  return n;
}

}  // namespace sessiond
