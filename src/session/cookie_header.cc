#include "session/cookie_header.h"

#include <utility>

namespace sessiond {

namespace {

bool IsWsp(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimWsp(std::string_view s) {
  while (!s.empty() && IsWsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsWsp(s.back())) s.remove_suffix(1);
  return s;
}

// A plain loop: string_view::find_first_of runs memchr over the needle set
// once per haystack byte, which made it the single biggest cost of a split.
bool HasLineBreakOrNul(std::string_view s) {
  for (const char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return true;
  }
  return false;
}

}  // namespace

namespace {

// For a cookie named NAME "." DIGITS: the chunk index (1..kMaxCookieChunks-1
// in canonical decimal), 0 for any other digits. -1 when `cookie_name` is
// not of that form.
int ChunkIndexOf(std::string_view cookie_name, std::string_view name) {
  if (cookie_name.size() < name.size() + 2 || cookie_name.compare(0, name.size(), name) != 0 ||
      cookie_name[name.size()] != '.') {
    return -1;
  }
  const std::string_view digits = cookie_name.substr(name.size() + 1);
  for (const char c : digits) {
    if (c < '0' || c > '9') return -1;
  }
  if (digits.size() == 1 && digits[0] >= '1' && static_cast<size_t>(digits[0] - '0') < kMaxCookieChunks) {
    return digits[0] - '0';
  }
  return 0;
}

std::string_view CookieValue(std::string_view raw) {
  std::string_view value = TrimWsp(raw);
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
  return value;
}

void AddPair(std::string_view pair, std::string_view name, SessionCookieViews* found, std::string* forwarded) {
  pair = TrimWsp(pair);
  if (pair.empty()) return;
  const size_t eq = pair.find('=');
  if (eq != std::string_view::npos && !name.empty()) {
    const std::string_view cookie_name = TrimWsp(pair.substr(0, eq));
    if (cookie_name == name) {
      const std::string_view value = CookieValue(pair.substr(eq + 1));
      if (value.empty()) return;
      if (value.size() > kMaxSessionCookieBytes || found->count >= kMaxSessionCookies) {
        ++found->ignored;
        return;
      }
      found->values[found->count++] = value;
      return;
    }
    const int chunk = ChunkIndexOf(cookie_name, name);
    if (chunk >= 0) {  // part of the session cookie: never forwarded
      const std::string_view value = CookieValue(pair.substr(eq + 1));
      if (chunk == 0 || value.empty() || value.size() > kMaxSessionCookieBytes) {
        ++found->ignored;
        return;
      }
      found->chunks[chunk] = value;
      if (found->chunk_counts[chunk] < 255) ++found->chunk_counts[chunk];
      return;
    }
  }
  if (HasLineBreakOrNul(pair)) return;
  if (!forwarded->empty()) forwarded->append("; ");
  forwarded->append(pair);
}

}  // namespace

void SplitCookieHeader(std::string_view header, std::string_view name, SessionCookieViews* found,
                       std::string* forwarded) {
  size_t start = 0;
  while (start < header.size()) {
    size_t end = header.find(';', start);
    if (end == std::string_view::npos) end = header.size();
    AddPair(header.substr(start, end - start), name, found, forwarded);
    start = end + 1;
  }
}

CookieSplitter::CookieSplitter(std::string_view session_cookie_name)
    : name_(session_cookie_name) {}

void CookieSplitter::Add(std::string_view header) {
  // Usually one header whose pairs are mostly kept: one allocation.
  split_.forwarded.reserve(split_.forwarded.size() + header.size() + 2);
  const size_t before = found_.count;
  // Chunk values are views into this header: copy the ones it brought now.
  const std::array<uint8_t, kMaxCookieChunks> counts_before = found_.chunk_counts;
  found_.chunks.fill(std::string_view());
  SplitCookieHeader(header, name_, &found_, &split_.forwarded);
  for (size_t i = before; i < found_.count; ++i) split_.session_values.emplace_back(found_.values[i]);
  split_.ignored_session_cookies = found_.ignored;
  for (size_t k = 1; k < kMaxCookieChunks; ++k) {
    split_.chunk_counts[k] = found_.chunk_counts[k];
    if (found_.chunk_counts[k] != counts_before[k]) split_.chunks[k].assign(found_.chunks[k]);
  }
}

CookieSplit CookieSplitter::Finish() { return std::move(split_); }

CookieSplit SplitCookies(const std::vector<std::string_view>& cookie_header_values,
                         std::string_view session_cookie_name) {
  CookieSplitter splitter(session_cookie_name);
  for (const std::string_view value : cookie_header_values) splitter.Add(value);
  return splitter.Finish();
}

}  // namespace sessiond
