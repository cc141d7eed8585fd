// HeaderList: the header fields of one HTTP message, in order.
//
// Names and values are string_views. Fields parsed from the wire point into
// the message's raw head buffer (owned by RequestHead/ResponseHead, which are
// never moved while the list is alive); fields added by sessiond are copied
// into a small bump arena owned by the list (one allocation for a typical
// request). Every name is classified once, when it is appended, into a
// HeaderId, so the per-request lookups (framing, hop-by-hop, session headers)
// compare one byte instead of strings.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sessiond {

// The header names sessiond acts on. kProxyAny and kSessionAny are prefixes
// ("Proxy-*", and "X-Session-*" in any case with '_' or '-' separators).
enum class HeaderId : uint8_t {
  kOther = 0,
  kHost,
  kContentLength,
  kTransferEncoding,
  kConnection,
  kKeepAlive,
  kTe,
  kTrailer,
  kUpgrade,
  kProxyAny,
  kExpect,
  kCookie,
  kSetCookie,
  kXForwardedFor,
  kXForwardedProto,
  kXForwardedHost,
  kXForwardedPort,
  kForwarded,
  kVia,
  kOrigin,
  kXRequestId,
  kReferer,
  kUserAgent,
  kSessionAny,
};

// Classifies a field name (case-insensitive).
HeaderId ClassifyHeader(std::string_view name);

struct Header {
  std::string_view name;
  std::string_view value;
  HeaderId id = HeaderId::kOther;
};

// A field name sessiond writes itself, with its id, so appending it costs no
// classification (headers_test checks each id against ClassifyHeader).
struct KnownField {
  std::string_view name;
  HeaderId id;
};
inline constexpr KnownField kFieldHost{"Host", HeaderId::kHost};
inline constexpr KnownField kFieldCookie{"Cookie", HeaderId::kCookie};
inline constexpr KnownField kFieldSetCookie{"Set-Cookie", HeaderId::kSetCookie};
inline constexpr KnownField kFieldXForwardedFor{"X-Forwarded-For", HeaderId::kXForwardedFor};
inline constexpr KnownField kFieldXForwardedProto{"X-Forwarded-Proto", HeaderId::kXForwardedProto};
inline constexpr KnownField kFieldXForwardedHost{"X-Forwarded-Host", HeaderId::kXForwardedHost};
inline constexpr KnownField kFieldXForwardedPort{"X-Forwarded-Port", HeaderId::kXForwardedPort};
inline constexpr KnownField kFieldXRequestId{"X-Request-Id", HeaderId::kXRequestId};

bool EqualsIgnoreCase(std::string_view a, std::string_view b);
bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix);
std::string_view TrimOws(std::string_view s);  // strips SP and HTAB both ends

// True when the comma-separated list `list` contains `token` (case-insensitive,
// surrounding whitespace ignored), e.g. HasToken("keep-alive, Upgrade", "upgrade").
bool HasToken(std::string_view list, std::string_view token);

class HeaderList {
 public:
  HeaderList() { fields_.reserve(16); }
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;

  // The views must outlive the list (they point into the raw head).
  void Append(std::string_view name, std::string_view value) {
    fields_.push_back({name, value, ClassifyHeader(name)});
  }
  // The same, for a name the caller has already classified (the head parser
  // does it while validating the name): `id` must be ClassifyHeader(name).
  void AppendClassified(std::string_view name, std::string_view value, HeaderId id) {
    fields_.push_back({name, value, id});
  }
  // The same for a known field (its name a literal, its id ClassifyHeader's).
  void Append(KnownField field, std::string_view value) { fields_.push_back({field.name, value, field.id}); }
  // The bytes every field points into moved from address `old_base` to
  // `new_base` (a parser's input buffer grew): shifts every view by the same
  // distance. Only for a list whose fields all point into that buffer.
  void MoveViews(uintptr_t old_base, const char* new_base);
  // Copies both strings into the list's own storage.
  void AppendCopy(std::string_view name, std::string_view value);
  // Copies only the value: `name` must outlive the list (a literal).
  void AppendValueCopy(std::string_view static_name, std::string_view value);
  // The same for a field whose id the caller knows: `field.id` must be
  // ClassifyHeader(field.name), and the name must outlive the list.
  void AppendValueCopy(KnownField field, std::string_view value) {
    fields_.push_back({field.name, Store(value), field.id});
  }
  // Copies `s` into the list's storage and returns the stored view.
  std::string_view Store(std::string_view s);
  // Empties the list for the next message, keeping its capacity and arena
  // blocks: a list reused for message after message stops allocating.
  void Clear();

  const std::vector<Header>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }

  // The first field with this name (or id), or nullopt.
  std::optional<std::string_view> Get(std::string_view name) const;
  std::optional<std::string_view> Get(HeaderId id) const;
  size_t Count(std::string_view name) const;
  size_t Count(HeaderId id) const;
  // Removes every field with this name (or id); returns how many.
  size_t Remove(std::string_view name);
  size_t Remove(HeaderId id);
  template <class Pred>
  size_t RemoveIf(Pred pred) {
    // Most calls remove nothing: fields move only from the first match on.
    const size_t before = fields_.size();
    size_t i = 0;
    while (i < before && !pred(fields_[i])) ++i;
    if (i == before) return 0;
    size_t out = i;
    for (++i; i < before; ++i) {
      if (!pred(fields_[i])) fields_[out++] = fields_[i];
    }
    fields_.resize(out);
    return before - out;
  }

 private:
  std::vector<Header> fields_;
  // Bump arena: blocks never move once allocated, so stored views stay valid
  // until Clear(), which rewinds to the first block and keeps them all.
  struct ArenaBlock {
    std::unique_ptr<char[]> data;
    size_t size = 0;
  };
  std::vector<ArenaBlock> blocks_;
  size_t block_ = 0;  // the block being filled
  size_t block_used_ = 0;
};

}  // namespace sessiond
