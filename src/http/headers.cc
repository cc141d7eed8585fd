#include "http/headers.h"

#include <algorithm>

#include <cstring>

namespace sessiond {

namespace {

inline char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// A typical request adds ~400 bytes of headers (X-Forwarded-*, X-Session-*,
// the rebuilt Cookie); larger values get a block of their own.
constexpr size_t kArenaBlock = 1024;

// `lower` must be lower case.
inline bool Is(std::string_view name, std::string_view lower) { return EqualsIgnoreCase(name, lower); }

bool IsSessionPrefix(std::string_view name) {
  if (name.size() < 10) return false;
  return Lower(name[0]) == 'x' && (name[1] == '-' || name[1] == '_') &&
         EqualsIgnoreCase(name.substr(2, 7), "session") && (name[9] == '-' || name[9] == '_');
}

}  // namespace

HeaderId ClassifyHeader(std::string_view name) {
  if (name.empty()) return HeaderId::kOther;
  if (IsSessionPrefix(name)) return HeaderId::kSessionAny;
  // Length and first letter pick at most one candidate, so a name costs at
  // most one full comparison.
  const char first = Lower(name[0]);
  switch (name.size()) {
    case 2:
      if (first == 't' && Is(name, "te")) return HeaderId::kTe;
      break;
    case 3:
      if (first == 'v' && Is(name, "via")) return HeaderId::kVia;
      break;
    case 4:
      if (first == 'h' && Is(name, "host")) return HeaderId::kHost;
      break;
    case 6:
      if (first == 'c' && Is(name, "cookie")) return HeaderId::kCookie;
      if (first == 'e' && Is(name, "expect")) return HeaderId::kExpect;
      if (first == 'o' && Is(name, "origin")) return HeaderId::kOrigin;
      break;
    case 7:
      if (first == 'u' && Is(name, "upgrade")) return HeaderId::kUpgrade;
      if (first == 't' && Is(name, "trailer")) return HeaderId::kTrailer;
      if (first == 'r' && Is(name, "referer")) return HeaderId::kReferer;
      break;
    case 10:
      if (first == 'c' && Is(name, "connection")) return HeaderId::kConnection;
      if (first == 'k' && Is(name, "keep-alive")) return HeaderId::kKeepAlive;
      if (first == 'u' && Is(name, "user-agent")) return HeaderId::kUserAgent;
      if (first == 's' && Is(name, "set-cookie")) return HeaderId::kSetCookie;
      break;
    case 9:
      if (first == 'f' && Is(name, "forwarded")) return HeaderId::kForwarded;
      break;
    case 12:
      if (first == 'x' && Is(name, "x-request-id")) return HeaderId::kXRequestId;
      break;
    case 14:
      if (first == 'c' && Is(name, "content-length")) return HeaderId::kContentLength;
      break;
    case 15:
      if (first == 'x' && Is(name, "x-forwarded-for")) return HeaderId::kXForwardedFor;
      break;
    case 16:
      if (first == 'x' && Is(name, "x-forwarded-host")) return HeaderId::kXForwardedHost;
      if (first == 'x' && Is(name, "x-forwarded-port")) return HeaderId::kXForwardedPort;
      break;
    case 17:
      if (first == 't' && Is(name, "transfer-encoding")) return HeaderId::kTransferEncoding;
      if (first == 'x' && Is(name, "x-forwarded-proto")) return HeaderId::kXForwardedProto;
      break;
    default:
      break;
  }
  if (first == 'p' && StartsWithIgnoreCase(name, "proxy-")) return HeaderId::kProxyAny;
  return HeaderId::kOther;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    // Equal bytes are the common case; only letters may differ by case.
    if (a[i] != b[i] && Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

std::string_view TrimOws(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

bool HasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = TrimOws(list.substr(0, comma));
    if (EqualsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::string_view HeaderList::Store(std::string_view s) {
  if (s.empty()) return std::string_view();
  if (blocks_.empty() || block_used_ + s.size() > blocks_[block_].size) {
    // The next kept block if it is big enough, else a new one in its place.
    size_t next = blocks_.empty() ? 0 : block_ + 1;
    if (next >= blocks_.size() || blocks_[next].size < s.size()) {
      size_t size = std::max(kArenaBlock, s.size());
      blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(next),
                     ArenaBlock{std::unique_ptr<char[]>(new char[size]), size});
    }
    block_ = next;
    block_used_ = 0;
  }
  char* p = blocks_[block_].data.get() + block_used_;
  memcpy(p, s.data(), s.size());
  block_used_ += s.size();
  return std::string_view(p, s.size());
}

void HeaderList::MoveViews(uintptr_t old_base, const char* new_base) {
  // Offsets are computed on integers: the old buffer may already be freed.
  auto move = [&](std::string_view v) {
    return std::string_view(new_base + (reinterpret_cast<uintptr_t>(v.data()) - old_base), v.size());
  };
  for (Header& h : fields_) {
    h.name = move(h.name);
    h.value = move(h.value);
  }
}

void HeaderList::Clear() {
  fields_.clear();
  block_ = 0;
  block_used_ = 0;
}

void HeaderList::AppendCopy(std::string_view name, std::string_view value) {
  std::string_view n = Store(name);
  fields_.push_back({n, Store(value), ClassifyHeader(name)});
}

void HeaderList::AppendValueCopy(std::string_view static_name, std::string_view value) {
  fields_.push_back({static_name, Store(value), ClassifyHeader(static_name)});
}

std::optional<std::string_view> HeaderList::Get(std::string_view name) const {
  for (const Header& h : fields_) {
    if (EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return std::nullopt;
}

std::optional<std::string_view> HeaderList::Get(HeaderId id) const {
  for (const Header& h : fields_) {
    if (h.id == id) return h.value;
  }
  return std::nullopt;
}

size_t HeaderList::Count(std::string_view name) const {
  size_t n = 0;
  for (const Header& h : fields_) n += EqualsIgnoreCase(h.name, name) ? 1 : 0;
  return n;
}

size_t HeaderList::Count(HeaderId id) const {
  size_t n = 0;
  for (const Header& h : fields_) n += h.id == id ? 1 : 0;
  return n;
}

size_t HeaderList::Remove(std::string_view name) {
  return RemoveIf([name](const Header& h) { return EqualsIgnoreCase(h.name, name); });
}

size_t HeaderList::Remove(HeaderId id) {
  return RemoveIf([id](const Header& h) { return h.id == id; });
}

}  // namespace sessiond
