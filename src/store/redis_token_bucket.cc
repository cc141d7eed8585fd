#include "store/redis_token_bucket.h"

#include <openssl/evp.h>

#include <algorithm>
#include <string>

#include "store/redis_store.h"

namespace sessiond {

// The refill is computed in microseconds of the server's TIME, with Lua's
// doubles: exact for the clock (2^53 us is 285 years) and far finer than a
// token for any rate sessiond accepts. Numbers are written with
// string.format, since Redis turns a Lua number argument into text with 14
// digits only. A clock that went back is taken as no time passing.
// redis.replicate_commands: TIME before a write needs effects replication,
// the default from Redis 5 on (and the only mode of Redis 7).
const char kTokenBucketScript[] = R"lua(
if redis.replicate_commands then redis.replicate_commands() end
local k = KEYS[1]
local burst = tonumber(ARGV[3])
local per = tonumber(ARGV[1]) / (tonumber(ARGV[2]) * 1000)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local got = redis.call('HMGET', k, 't', 'n')
local n = burst
local last = tonumber(got[1])
local had = tonumber(got[2])
if last and had then
  if last > now then now = last end
  n = math.min(burst, had + (now - last) * per)
end
if n < 1 then
  return {0, math.max(1, math.ceil((1 - n) / per / 1000))}
end
n = n - 1
redis.call('HSET', k, 't', string.format('%.0f', now), 'n', string.format('%.17g', n))
redis.call('PEXPIRE', k, string.format('%.0f', math.ceil((burst - n) / per / 1000) + 1))
return {1, 0}
)lua";

namespace {

const std::string& TokenBucketSha() {
  static const std::string sha = [] {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(kTokenBucketScript, sizeof(kTokenBucketScript) - 1, digest, &len, EVP_sha1(), nullptr);
    static const char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) {
      hex.push_back(kHex[digest[i] >> 4]);
      hex.push_back(kHex[digest[i] & 0xF]);
    }
    return hex;
  }();
  return sha;
}

}  // namespace

std::string TokenBucketKey(std::string_view key_prefix, std::string_view name) {
  std::string key;
  key.reserve(key_prefix.size() + name.size() + 7);
  key.append(key_prefix);
  key += "rate:{";
  key.append(name);
  key += '}';
  return key;
}

RedisCommand TokenBucketCommand(std::string_view redis_key, const TokenBucketSpec& spec) {
  const std::string count = std::to_string(std::max<uint64_t>(spec.count, 1));
  const std::string period = std::to_string(std::max<int64_t>(spec.period_ms, 1));
  const std::string burst = std::to_string(std::max<uint64_t>(spec.burst, 1));
  return RedisCommand::Format({"EVALSHA", TokenBucketSha(), "1", redis_key, count, period, burst});
}

Result<TokenVerdict> ParseTokenBucketReply(const redisReply* r) {
  if (IsErrorReply(r)) return Status::Unavailable("redis: " + ReplyText(r));
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_INTEGER ||
      r->element[1]->type != REDIS_REPLY_INTEGER) {
    return Status::Unavailable("redis: unexpected reply");
  }
  TokenVerdict verdict;
  verdict.allowed = r->element[0]->integer == 1;
  if (!verdict.allowed) verdict.retry_after_ms = std::max<long long>(r->element[1]->integer, 1);
  return verdict;
}

// Marked idempotent: after a lost connection the script may have run, and
// running it again takes a second token - the limit errs on the strict
// side rather than failing the request. Not a kWrite: a bucket is not worth
// waiting for replicas (a failover may refill some buckets).
void RedisStore::TakeToken(std::string_view name, const TokenBucketSpec& spec, TakeCallback cb) {
  const std::string key = TokenBucketKey(config_.key_prefix, name);
  RunScript(key, kTokenBucketScript, TokenBucketCommand(key, spec), RedisRouter::kIdempotent,
            [cb = std::move(cb)](const Status& failure, redisReply* r) {
              if (!failure.ok()) {
                cb(failure, TokenVerdict{});
                return;
              }
              Result<TokenVerdict> verdict = ParseTokenBucketReply(r);
              if (!verdict.ok()) {
                cb(verdict.status(), TokenVerdict{});
                return;
              }
              cb(Status::OK(), *verdict);
            });
}

}  // namespace sessiond
