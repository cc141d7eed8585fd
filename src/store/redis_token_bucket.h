// Shared rate-limit buckets in Redis (docs/HTTP.md, Shared rate limits): the
// pieces of RedisStore::TakeToken, exposed for their tests.
//
// A bucket is a HASH at key_prefix + "rate:{" + name + "}" with two fields:
// t, the Redis server's clock (microseconds) when it was last taken from,
// and n, the tokens it held then. The hash tag makes Cluster route the key by
// the name alone; "rate:" keeps it apart from the sessions' keys (64 hex
// digits after the prefix). One script (EVALSHA, EVAL after NOSCRIPT) reads
// the server's TIME, refills, takes a token when there is one and then sets
// a PEXPIRE of the time until the bucket is full again: a full bucket is
// the same as none, so idle buckets vanish by themselves. A refusal writes
// nothing. Every instance uses the clock of the Redis that holds the
// bucket, so instances' clocks need not agree.
#pragma once

#include <string>
#include <string_view>

#include "store/redis_protocol.h"
#include "store/token_bucket.h"

namespace sessiond {

// The script's text (KEYS[1] the bucket; ARGV count, period in ms, burst;
// answers {1, 0} for a token taken, {0, ms} for none, ms until one is back).
extern const char kTokenBucketScript[];

// The Redis key of bucket `name`.
std::string TokenBucketKey(std::string_view key_prefix, std::string_view name);

// EVALSHA of the script on `redis_key` with `spec`'s arguments.
RedisCommand TokenBucketCommand(std::string_view redis_key, const TokenBucketSpec& spec);

// Reads the script's answer; Unavailable for anything else (an error reply
// says which).
Result<TokenVerdict> ParseTokenBucketReply(const redisReply* reply);

}  // namespace sessiond
