#include "session/cookie_chunks.h"

namespace sessiond {

namespace {

constexpr std::string_view kChunkedPrefix = "3c";
constexpr std::string_view kWholePrefix = "3.";

}  // namespace

size_t AnnouncedChunks(std::string_view head) {
  if (head.size() < kChunkedPrefix.size() + 2 || head.compare(0, kChunkedPrefix.size(), kChunkedPrefix) != 0 ||
      head[kChunkedPrefix.size() + 1] != '.') {
    return 1;
  }
  const char digit = head[kChunkedPrefix.size()];
  if (digit < '2' || static_cast<size_t>(digit - '0') > kMaxCookieChunks) return 1;
  return static_cast<size_t>(digit - '0');
}

ChunkAssembly AssembleChunks(std::string_view head, const SessionCookieViews& cookies, std::string* out) {
  if (head.compare(0, kChunkedPrefix.size(), kChunkedPrefix) != 0) return ChunkAssembly::kSingle;
  const size_t n = AnnouncedChunks(head);
  if (n < 2) return ChunkAssembly::kInvalid;
  const std::string_view first = head.substr(kChunkedPrefix.size() + 2);
  if (first.empty()) return ChunkAssembly::kInvalid;
  size_t total = kWholePrefix.size() + first.size();
  for (size_t k = 1; k < n; ++k) {
    if (cookies.chunk_counts[k] != 1 || cookies.chunks[k].empty()) return ChunkAssembly::kInvalid;
    total += cookies.chunks[k].size();
  }
  out->clear();
  out->reserve(total);
  out->append(kWholePrefix);
  out->append(first);
  for (size_t k = 1; k < n; ++k) out->append(cookies.chunks[k]);
  return ChunkAssembly::kAssembled;
}

}  // namespace sessiond
