#include "store/redis_protocol.h"

#include <hiredis/read.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace sessiond {

namespace {

constexpr size_t kMaxErrorText = 200;

// Reply objects built exactly as hiredis builds its own (calloc'd
// redisReply, malloc'd strings and element arrays), so freeReplyObject frees
// them; ours differ only in refusing arrays over kMaxElements.
void AttachToParent(const redisReadTask* task, redisReply* r) {
  if (task->parent) {
    auto* parent = static_cast<redisReply*>(task->parent->obj);
    parent->element[task->idx] = r;
  }
}

void* CreateString(const redisReadTask* task, char* str, size_t len) {
  auto* r = static_cast<redisReply*>(calloc(1, sizeof(redisReply)));
  if (!r) return nullptr;
  r->type = task->type;
  r->str = static_cast<char*>(malloc(len + 1));
  if (!r->str) {
    free(r);
    return nullptr;
  }
  memcpy(r->str, str, len);
  r->str[len] = '\0';
  r->len = len;
  AttachToParent(task, r);
  return r;
}

void* CreateArray(const redisReadTask* task, int elements) {
  if (elements < 0 || elements > RedisReplyReader::kMaxElements) return nullptr;
  auto* r = static_cast<redisReply*>(calloc(1, sizeof(redisReply)));
  if (!r) return nullptr;
  r->type = REDIS_REPLY_ARRAY;
  if (elements > 0) {
    r->element = static_cast<redisReply**>(calloc(static_cast<size_t>(elements), sizeof(redisReply*)));
    if (!r->element) {
      free(r);
      return nullptr;
    }
  }
  r->elements = static_cast<size_t>(elements);
  AttachToParent(task, r);
  return r;
}

void* CreateInteger(const redisReadTask* task, long long value) {
  auto* r = static_cast<redisReply*>(calloc(1, sizeof(redisReply)));
  if (!r) return nullptr;
  r->type = REDIS_REPLY_INTEGER;
  r->integer = value;
  AttachToParent(task, r);
  return r;
}

void* CreateNil(const redisReadTask* task) {
  auto* r = static_cast<redisReply*>(calloc(1, sizeof(redisReply)));
  if (!r) return nullptr;
  r->type = REDIS_REPLY_NIL;
  AttachToParent(task, r);
  return r;
}

void FreeObject(void* r) { freeReplyObject(r); }

redisReplyObjectFunctions kBoundedFunctions = {CreateString, CreateArray, CreateInteger, CreateNil, FreeObject};

redisReader* AsReader(void* p) { return static_cast<redisReader*>(p); }

bool ParsePort(std::string_view text, uint16_t* port) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

bool ParseNumber(std::string_view text, uint64_t max, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
    if (value > max) return false;
  }
  *out = value;
  return true;
}

// A host as Redis reports it: printable, no spaces, bounded.
bool PlausibleHost(std::string_view host) {
  if (host.size() > 255) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '[' && c != ']' && c != '/';
  });
}

// One node of a CLUSTER SLOTS entry: [host, port, id, ...].
bool ParseSlotNode(const redisReply* n, const RedisEndpoint& from, RedisEndpoint* out) {
  if (n->type != REDIS_REPLY_ARRAY || n->elements < 2) return false;
  const redisReply* host = n->element[0];
  const redisReply* port = n->element[1];
  if (!IsStringReply(host) || port->type != REDIS_REPLY_INTEGER) return false;
  if (port->integer <= 0 || port->integer > 65535) return false;
  std::string_view h(host->str, host->len);
  if (h == "?") h = "";  // a node that does not know its address yet
  if (!PlausibleHost(h)) return false;
  out->host = h.empty() ? from.host : std::string(h);
  out->port = static_cast<uint16_t>(port->integer);
  out->unix_path.clear();
  return !out->host.empty();
}

}  // namespace

void ReplyDeleter::operator()(redisReply* r) const { freeReplyObject(r); }

RedisCommand RedisCommand::Format(const std::vector<std::string_view>& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (std::string_view a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  RedisCommand cmd;
  char* target = nullptr;
  const int n = redisFormatCommandArgv(&target, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  if (n > 0 && target) cmd.bytes_ = std::make_shared<const std::string>(target, static_cast<size_t>(n));
  if (target) redisFreeCommand(target);
  return cmd;
}

RedisCommand RedisCommand::Transaction(const std::vector<RedisCommand>& commands) {
  static const std::string kMulti = "*1\r\n$5\r\nMULTI\r\n";
  static const std::string kExec = "*1\r\n$4\r\nEXEC\r\n";
  size_t size = kMulti.size() + kExec.size();
  for (const RedisCommand& c : commands) size += c.bytes().size();
  std::string all;
  all.reserve(size);
  all.append(kMulti);
  for (const RedisCommand& c : commands) all.append(c.bytes());
  all.append(kExec);
  RedisCommand cmd;
  cmd.bytes_ = std::make_shared<const std::string>(std::move(all));
  cmd.replies_ = static_cast<int>(commands.size()) + 2;
  return cmd;
}

RedisCommand RedisCommand::WithScript(std::string_view script) const {
  // "*N\r\n" "$7\r\nEVALSHA\r\n" "$40\r\n" <sha1> "\r\n" <the arguments>
  static constexpr std::string_view kEvalsha = "$7\r\nEVALSHA\r\n$40\r\n";
  const std::string_view all = bytes();
  const size_t head = all.find("\r\n");
  if (head == std::string_view::npos) return RedisCommand();
  const size_t sha_at = head + 2 + kEvalsha.size();
  if (all.size() < sha_at + 42 || all.substr(head + 2, kEvalsha.size()) != kEvalsha ||
      all.substr(sha_at + 40, 2) != "\r\n") {
    return RedisCommand();
  }
  std::string eval;
  eval.reserve(all.size() + script.size());
  eval.append(all.substr(0, head + 2));
  eval.append("$4\r\nEVAL\r\n$");
  eval.append(std::to_string(script.size()));
  eval.append("\r\n");
  eval.append(script);
  eval.append("\r\n");
  eval.append(all.substr(sha_at + 42));
  RedisCommand cmd;
  cmd.bytes_ = std::make_shared<const std::string>(std::move(eval));
  return cmd;
}

RedisCommand RedisCommand::Format(std::initializer_list<std::string_view> argv) {
  return Format(std::vector<std::string_view>(argv));
}

RedisReplyReader::RedisReplyReader() : reader_(redisReaderCreateWithFunctions(&kBoundedFunctions)) {}

RedisReplyReader::~RedisReplyReader() {
  if (reader_) redisReaderFree(AsReader(reader_));
}

bool RedisReplyReader::Feed(const char* data, size_t len) {
  if (!error_.empty()) return false;
  if (!reader_) {
    error_ = "out of memory";
    return false;
  }
  redisReader* r = AsReader(reader_);
  if (redisReaderFeed(r, data, len) != REDIS_OK) {
    error_ = r->errstr[0] ? r->errstr : "protocol error";
    return false;
  }
  // Bytes that do not make a reply yet: a reply that big is not one of ours.
  if (r->len - r->pos > kMaxPending) {
    error_ = "reply larger than " + std::to_string(kMaxPending >> 20) + " MiB";
    return false;
  }
  return true;
}

ReplyPtr RedisReplyReader::Next() {
  if (!error_.empty() || !reader_) return nullptr;
  redisReader* r = AsReader(reader_);
  void* reply = nullptr;
  if (redisReaderGetReply(r, &reply) != REDIS_OK) {
    // Our CreateArray refusing an array shows as an out-of-memory error.
    error_ = r->err == REDIS_ERR_OOM ? "reply too large or out of memory"
                                     : (r->errstr[0] ? std::string(r->errstr) : "protocol error");
    return nullptr;
  }
  return ReplyPtr(static_cast<redisReply*>(reply));
}

std::string ReplyText(const redisReply* r) {
  if (!r || !r->str) return std::string();
  std::string text(r->str, std::min(r->len, kMaxErrorText));
  for (char& c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) c = ' ';
  }
  return text;
}

bool IsStringReply(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

bool IsErrorReply(const redisReply* r) { return r && r->type == REDIS_REPLY_ERROR; }

bool ErrorIs(const redisReply* r, std::string_view prefix) {
  if (!IsErrorReply(r) || !r->str || r->len < prefix.size()) return false;
  if (std::string_view(r->str, prefix.size()) != prefix) return false;
  return r->len == prefix.size() || r->str[prefix.size()] == ' ';
}

std::string RedisEndpoint::Text() const {
  if (unix_socket()) return unix_path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<RedisEndpoint> ParseEndpoint(std::string_view text) {
  RedisEndpoint ep;
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (!PlausibleHost(host) || !ParsePort(port, &ep.port)) return std::nullopt;
  ep.host = std::string(host);
  return ep;
}

std::optional<Redirect> ParseRedirect(const redisReply* r, const RedisEndpoint& from) {
  Redirect redirect;
  if (ErrorIs(r, "MOVED")) {
    redirect.ask = false;
  } else if (ErrorIs(r, "ASK")) {
    redirect.ask = true;
  } else {
    return std::nullopt;
  }
  std::string_view text(r->str, std::min<size_t>(r->len, 512));
  // "<MOVED|ASK> <slot> <host:port>" exactly: three words.
  const size_t sp1 = text.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  const size_t sp2 = text.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || text.find(' ', sp2 + 1) != std::string_view::npos) return std::nullopt;
  uint64_t slot = 0;
  if (!ParseNumber(text.substr(sp1 + 1, sp2 - sp1 - 1), kClusterSlots - 1, &slot)) return std::nullopt;
  redirect.slot = static_cast<uint16_t>(slot);
  std::string_view where = text.substr(sp2 + 1);
  if (!where.empty() && where.front() == ':' && where.find(':', 1) == std::string_view::npos) {
    // The sender does not know its own address: it means itself.
    RedisEndpoint ep;
    if (!ParsePort(where.substr(1), &ep.port) || from.host.empty()) return std::nullopt;
    ep.host = from.host;
    redirect.target = ep;
    return redirect;
  }
  std::optional<RedisEndpoint> target = ParseEndpoint(where);
  if (!target || target->host.empty()) return std::nullopt;
  redirect.target = *target;
  return redirect;
}

namespace {

// CRC16/XMODEM of every byte value, built at compile time: one lookup per
// byte instead of eight shifts (every command of a cluster hashes its key).
struct Crc16Table {
  uint16_t t[256];
  constexpr Crc16Table() : t() {
    for (int b = 0; b < 256; ++b) {
      uint16_t crc = static_cast<uint16_t>(b << 8);
      for (int i = 0; i < 8; ++i) {
        crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
      }
      t[b] = crc;
    }
  }
};
constexpr Crc16Table kCrc16;

}  // namespace

uint16_t Crc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char byte : data) {
    crc = static_cast<uint16_t>((crc << 8) ^ kCrc16.t[((crc >> 8) ^ byte) & 0xFF]);
  }
  return crc;
}

uint16_t KeySlot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return static_cast<uint16_t>(Crc16(key) & (kClusterSlots - 1));
}

Result<std::vector<SlotRange>> ParseClusterSlots(const redisReply* r, const RedisEndpoint& from) {
  const Status bad = Status::Unavailable("redis: malformed CLUSTER SLOTS reply from " + from.Text());
  if (!r || r->type != REDIS_REPLY_ARRAY) return bad;
  std::vector<SlotRange> ranges;
  ranges.reserve(r->elements);
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3) return bad;
    const redisReply* first = e->element[0];
    const redisReply* last = e->element[1];
    if (first->type != REDIS_REPLY_INTEGER || last->type != REDIS_REPLY_INTEGER) return bad;
    if (first->integer < 0 || last->integer < first->integer || last->integer >= kClusterSlots) return bad;
    SlotRange range;
    range.first = static_cast<uint16_t>(first->integer);
    range.last = static_cast<uint16_t>(last->integer);
    if (!ParseSlotNode(e->element[2], from, &range.master)) return bad;
    for (size_t j = 3; j < e->elements; ++j) {
      RedisEndpoint replica;
      if (ParseSlotNode(e->element[j], from, &replica)) range.replicas.push_back(std::move(replica));
    }
    ranges.push_back(std::move(range));
  }
  return ranges;
}

}  // namespace sessiond
