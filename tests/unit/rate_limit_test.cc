// Token buckets (src/session/rate_limit.h; docs/HTTP.md, Rate limits).
#include "session/rate_limit.h"

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace sessiond {
namespace {

constexpr int64_t kSecond = 1000000000;

std::unique_ptr<RateLimiter> Limiter(std::vector<std::pair<uint64_t, uint64_t>> count_burst,
                                     std::chrono::milliseconds period = std::chrono::seconds(1)) {
  std::vector<RateLimitRule> rules;
  for (auto [count, burst] : count_burst) {
    RateLimitRule r;
    r.count = count;
    r.period = period;
    r.burst = burst;
    rules.push_back(r);
  }
  Result<std::unique_ptr<RateLimiter>> limiter = RateLimiter::Create(rules);
  REQUIRE(limiter.ok());
  return std::move(*limiter);
}

TEST_CASE("SipHash-2-4 matches the reference test vector") {
  unsigned char key[16];
  for (int i = 0; i < 16; ++i) key[i] = static_cast<unsigned char>(i);
  std::string message;
  for (int i = 0; i < 15; ++i) message.push_back(static_cast<char>(i));
  CHECK(RateLimiter::SipHash24(key, message) == 0xa129ca6149be45e5ULL);
  CHECK(RateLimiter::SipHash24(key, "") == 0x726fdb47dd0e0e31ULL);
}

TEST_CASE("a bucket allows its burst, then refuses with Retry-After until tokens come back") {
  auto limiter = Limiter({{2, 3}});  // 2 per second, burst 3
  int64_t now = 100 * kSecond;
  for (int i = 0; i < 3; ++i) CHECK(limiter->Take(0, "k", now).allowed);
  RateDecision refused = limiter->Take(0, "k", now);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.retry_after_seconds == 1);  // half a second, rounded up
  CHECK_FALSE(limiter->Take(0, "k", now + kSecond / 4).allowed);
  CHECK(limiter->Take(0, "k", now + kSecond / 2).allowed);  // one token back
  CHECK_FALSE(limiter->Take(0, "k", now + kSecond / 2).allowed);
  // Never more than the burst, however long the pause.
  now += 3600 * kSecond;
  for (int i = 0; i < 3; ++i) CHECK(limiter->Take(0, "k", now).allowed);
  CHECK_FALSE(limiter->Take(0, "k", now).allowed);
}

TEST_CASE("Retry-After counts whole seconds up to the next token") {
  auto limiter = Limiter({{1, 1}}, std::chrono::minutes(1));  // 1 per minute
  CHECK(limiter->Take(0, "k", kSecond).allowed);
  RateDecision d = limiter->Take(0, "k", kSecond);
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after_seconds == 60);
  d = limiter->Take(0, "k", 31 * kSecond);
  CHECK(d.retry_after_seconds == 30);
}

TEST_CASE("keys and rules have their own buckets") {
  auto limiter = Limiter({{1, 1}, {1, 2}});
  CHECK(limiter->Take(0, "a", 0).allowed);
  CHECK_FALSE(limiter->Take(0, "a", 0).allowed);
  CHECK(limiter->Take(0, "b", 0).allowed);
  CHECK(limiter->Take(1, "a", 0).allowed);
  CHECK(limiter->Take(1, "a", 0).allowed);
  CHECK_FALSE(limiter->Take(1, "a", 0).allowed);
  CHECK(limiter->bucket_count(0) == 2);
  CHECK(limiter->bucket_count(1) == 1);
}

TEST_CASE("buckets that have refilled are dropped: memory follows the keys in use") {
  auto limiter = Limiter({{10, 10}});
  for (int i = 0; i < 1000; ++i) CHECK(limiter->Take(0, "key" + std::to_string(i), kSecond).allowed);
  CHECK(limiter->bucket_count(0) == 1000);
  // Two seconds later every bucket is full again: each shard sweeps when used.
  for (int i = 0; i < 200; ++i) limiter->Take(0, "later" + std::to_string(i), 3 * kSecond);
  CHECK(limiter->bucket_count(0) <= 200);
}

TEST_CASE("a flood of keys never holds more than kMaxBucketsPerRule buckets, and busy keys keep theirs") {
  auto limiter = Limiter({{1, 1}}, std::chrono::hours(1));
  CHECK(limiter->Take(0, "victim", 0).allowed);
  const size_t flood = RateLimiter::kMaxBucketsPerRule * 2;
  for (size_t i = 0; i < flood; ++i) {
    limiter->Take(0, "flood" + std::to_string(i), static_cast<int64_t>(i + 1));
    if (i % 1024 == 0) limiter->Take(0, "victim", static_cast<int64_t>(i + 1));  // keeps being seen
  }
  CHECK(limiter->bucket_count(0) <= RateLimiter::kMaxBucketsPerRule);
  // The victim's empty bucket is still there: its limit was not reset by the flood.
  CHECK_FALSE(limiter->Take(0, "victim", static_cast<int64_t>(flood + 2)).allowed);
}

TEST_CASE("one bucket shared by 8 threads allows exactly its burst") {
  auto limiter = Limiter({{1, 100}}, std::chrono::hours(1));
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (limiter->Take(0, "shared", kSecond).allowed) ++allowed;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(allowed.load() == 100);
}

}  // namespace
}  // namespace sessiond
