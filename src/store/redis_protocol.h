// The Redis wire protocol as the redis store uses it: hiredis where it serves
// (redisFormatCommandArgv writes commands, redisReader parses replies), plus
// the small pieces hiredis 0.14 lacks: bounds on what a reply may make us
// allocate, the redirect and error replies of Redis Cluster and Sentinel,
// and the cluster's key slots (CRC16 with hash tags).
//
// Nothing here does I/O. Replies come from a server that may be broken or
// not Redis at all, so every parse here is bounded and checks types.
#pragma once

#include <hiredis/hiredis.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sessiond {

// A reply owned by its holder (freeReplyObject).
struct ReplyDeleter {
  void operator()(redisReply* r) const;
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// One command in RESP form, ready to append to a connection's output.
// Copies share the bytes (a command may be kept for a retry).
class RedisCommand {
 public:
  RedisCommand() = default;
  // Formats argv with redisFormatCommandArgv.
  static RedisCommand Format(const std::vector<std::string_view>& argv);
  static RedisCommand Format(std::initializer_list<std::string_view> argv);
  // MULTI, the commands, EXEC: one unit for the connection, answered by
  // EXEC's reply (the +OK and +QUEUED before it are consumed).
  static RedisCommand Transaction(const std::vector<RedisCommand>& commands);
  std::string_view bytes() const { return bytes_ ? std::string_view(*bytes_) : std::string_view(); }
  bool empty() const { return !bytes_ || bytes_->empty(); }
  // The replies Redis sends for these bytes; the last one is the answer.
  int replies() const { return replies_; }

  // The EVAL form of an EVALSHA command: the same arguments after the
  // script text instead of its SHA1 (the script cache of the node was
  // empty). An empty command when this is not an EVALSHA.
  RedisCommand WithScript(std::string_view script) const;

 private:
  std::shared_ptr<const std::string> bytes_;
  int replies_ = 1;
};

// Incremental reply parser over hiredis's redisReader, with limits: at most
// kMaxPending bytes buffered for one reply (a bulk string of 2 GB announced
// by a broken server is refused once that much is buffered, not allocated)
// and at most kMaxElements elements per array.
class RedisReplyReader {
 public:
  static constexpr size_t kMaxPending = 64u << 20;
  static constexpr int kMaxElements = 1 << 20;

  RedisReplyReader();
  ~RedisReplyReader();
  RedisReplyReader(const RedisReplyReader&) = delete;
  RedisReplyReader& operator=(const RedisReplyReader&) = delete;

  // Adds bytes read from the server. False on a protocol error (error()).
  bool Feed(const char* data, size_t len);
  // The next complete reply, or nullptr when more bytes are needed or on a
  // protocol error (then error() is set and the stream is unusable).
  ReplyPtr Next();
  const std::string& error() const { return error_; }

 private:
  void* reader_;  // redisReader
  std::string error_;
};

// ---- Replies -------------------------------------------------------------------

// A reply's text (error, status or string) as one short printable line,
// for messages: at most 200 bytes, control characters replaced.
std::string ReplyText(const redisReply* r);
bool IsStringReply(const redisReply* r);  // bulk string or status
bool IsErrorReply(const redisReply* r);
// True when r is an error reply whose first word is `prefix` (e.g. "MOVED").
bool ErrorIs(const redisReply* r, std::string_view prefix);

// The address of a Redis node: host (a name or an address literal, IPv6
// without brackets) and port, or a unix socket path.
struct RedisEndpoint {
  std::string host;
  uint16_t port = 0;
  std::string unix_path;  // set for a unix socket; host and port unused

  bool unix_socket() const { return !unix_path.empty(); }
  // "host:port", "[v6]:port" or the socket path: the node's name in logs
  // and metrics.
  std::string Text() const;
  bool operator==(const RedisEndpoint& o) const {
    return host == o.host && port == o.port && unix_path == o.unix_path;
  }
  bool operator!=(const RedisEndpoint& o) const { return !(*this == o); }
};

// "host:port", "[v6]:port" or "v6:port" (the last colon splits: Redis writes
// IPv6 node addresses without brackets). Port 1..65535.
std::optional<RedisEndpoint> ParseEndpoint(std::string_view text);

// A cluster redirect: -MOVED <slot> <host:port> or -ASK <slot> <host:port>.
struct Redirect {
  bool ask = false;
  uint16_t slot = 0;
  RedisEndpoint target;
};
// nullopt when r is not a well-formed MOVED or ASK error. An empty host
// ("MOVED 3999 :6380", a node that does not know its own address) means the
// node that sent it: `from` supplies the host then.
std::optional<Redirect> ParseRedirect(const redisReply* r, const RedisEndpoint& from);

// ---- Cluster slots ----------------------------------------------------------------

inline constexpr int kClusterSlots = 16384;

// CRC16/XMODEM (polynomial 0x1021, initial 0), the checksum Redis Cluster
// hashes keys with: Crc16("123456789") == 0x31C3.
uint16_t Crc16(std::string_view data);

// The slot of a key: CRC16 of its hash tag, mod 16384. The hash tag is what
// lies between the first '{' and the first '}' after it, when that is not
// empty; otherwise the whole key is hashed.
uint16_t KeySlot(std::string_view key);

// One range of slots and the master that serves it (CLUSTER SLOTS).
struct SlotRange {
  uint16_t first = 0;
  uint16_t last = 0;
  RedisEndpoint master;
  std::vector<RedisEndpoint> replicas;
};

// Parses a CLUSTER SLOTS reply. Each entry is [first, last, master,
// replica...], each node [host, port, id, ...]; fields beyond the port
// (Redis 7 adds a map of hostnames) are ignored. An empty host means the
// node that answered (`from`). Fails on anything malformed.
Result<std::vector<SlotRange>> ParseClusterSlots(const redisReply* r, const RedisEndpoint& from);

}  // namespace sessiond
