// HeaderList: the header fields of one HTTP message, in order.
//
// Names and values are string_views. Fields parsed from the wire point into
// the message's raw head buffer (owned by RequestHead/ResponseHead, which are
// never moved while the list is alive); fields added by sessiond are copied
// into storage owned by the list. Lookups are case-insensitive.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sessiond {

struct Header {
  std::string_view name;
  std::string_view value;
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b);
bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix);
std::string_view TrimOws(std::string_view s);  // strips SP and HTAB both ends

// True when the comma-separated list `list` contains `token` (case-insensitive,
// surrounding whitespace ignored), e.g. HasToken("keep-alive, Upgrade", "upgrade").
bool HasToken(std::string_view list, std::string_view token);

class HeaderList {
 public:
  HeaderList() = default;
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;

  // The views must outlive the list (they point into the raw head).
  void Append(std::string_view name, std::string_view value) { fields_.push_back({name, value}); }
  // Copies both strings into the list's own storage.
  void AppendCopy(std::string_view name, std::string_view value);

  const std::vector<Header>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }

  // The first field with this name, or nullopt.
  std::optional<std::string_view> Get(std::string_view name) const;
  size_t Count(std::string_view name) const;
  // Removes every field with this name; returns how many.
  size_t Remove(std::string_view name);
  template <class Pred>
  size_t RemoveIf(Pred pred) {
    size_t before = fields_.size();
    size_t out = 0;
    for (size_t i = 0; i < fields_.size(); ++i) {
      if (!pred(fields_[i])) fields_[out++] = fields_[i];
    }
    fields_.resize(out);
    return before - out;
  }

 private:
  std::vector<Header> fields_;
  std::deque<std::string> storage_;  // deque: growth never moves existing strings
};

}  // namespace sessiond
