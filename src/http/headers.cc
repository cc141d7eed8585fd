#include "http/headers.h"

namespace sessiond {

namespace {
inline char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
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

void HeaderList::AppendCopy(std::string_view name, std::string_view value) {
  storage_.emplace_back(name);
  std::string_view n = storage_.back();
  storage_.emplace_back(value);
  std::string_view v = storage_.back();
  fields_.push_back({n, v});
}

std::optional<std::string_view> HeaderList::Get(std::string_view name) const {
  for (const Header& h : fields_) {
    if (EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return std::nullopt;
}

size_t HeaderList::Count(std::string_view name) const {
  size_t n = 0;
  for (const Header& h : fields_) n += EqualsIgnoreCase(h.name, name) ? 1 : 0;
  return n;
}

size_t HeaderList::Remove(std::string_view name) {
  return RemoveIf([name](const Header& h) { return EqualsIgnoreCase(h.name, name); });
}

}  // namespace sessiond
