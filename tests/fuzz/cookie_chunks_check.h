// The cookie_chunks fuzz target: putting a chunked session cookie back
// together (session/cookie_chunks.h; docs/COOKIES.md, Chunked cookies).
//
// Input, by its first byte:
//   even  the rest is a Cookie header value, split for the name "sid"; every
//         session value is handed to AssembleChunks. Oracle: kSingle exactly
//         when it does not start with "3c"; kAssembled exactly when the head
//         announces N in 2..8, has a non-empty first piece and NAME.1 ..
//         NAME.(N-1) each came once, non-empty, and then the output is "3."
//         + the first piece + the chunks in order; kInvalid otherwise.
//   odd   byte 1 sizes a session (byte * 48 bytes of data), which the real
//         codec seals and splits over its cookies; each following pair of
//         bytes is an edit of the jar (drop, duplicate, swap with the next,
//         change one byte of a chunk, or a chunk of another session of the
//         same size). Oracle: the value opens, with the sealed data, exactly
//         when the jar ends up holding the original head (NAME; heads may
//         come several times, as same-name cookies of several paths do) and
//         the original chunks NAME.k, each exactly once; anything else is
//         invalid. The chunks are authenticated as one value: no edit the
//         fuzzer finds may open.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "fuzz_check.h"
#include "session/cookie_chunks.h"
#include "session/cookie_codec.h"
#include "session/cookie_header.h"

namespace sessiond {
namespace fuzz {

inline constexpr int64_t kChunkFuzzNow = 1700000000;

inline const CookieCodec* ChunkCodec() {
  static const std::shared_ptr<const CookieCodec> codec = [] {
    Config c;
    c.secret_key = "chunk-fuzz-secret-0123456789abcdef-0123456789";
    c.session.manager = StoreKind::kCookie;
    c.session.cookie_name = "sid";
    c.session.max_cookie_chunks = 8;
    c.session.max_session_bytes = 1 << 20;
    auto r = CookieCodec::Create(c);
    return r.ok() ? *r : nullptr;
  }();
  return codec.get();
}

inline bool CheckAssembleHeader(std::string_view header) {
  SessionCookieViews views;
  std::string forwarded;
  SplitCookieHeader(header, "sid", &views, &forwarded);
  std::string out;
  for (size_t i = 0; i < views.count; ++i) {
    const std::string_view head = views.values[i];
    const ChunkAssembly got = AssembleChunks(head, views, &out);
    const bool chunked = head.size() >= 2 && head.substr(0, 2) == "3c";
    if (!chunked) {
      FUZZ_CHECK(got == ChunkAssembly::kSingle);
      continue;
    }
    const size_t n = AnnouncedChunks(head);
    bool complete = n >= 2 && head.size() > 4;
    std::string want = "3.";
    if (complete) want.append(head.substr(4));
    for (size_t k = 1; complete && k < n; ++k) {
      complete = views.chunk_counts[k] == 1 && !views.chunks[k].empty();
      if (complete) want.append(views.chunks[k]);
    }
    FUZZ_CHECK(got == (complete ? ChunkAssembly::kAssembled : ChunkAssembly::kInvalid));
    if (got == ChunkAssembly::kAssembled) FUZZ_CHECK(out == want);
  }
  return true;
}

// name=value pairs of the Set-Cookie lines that carry `value`.
inline std::vector<std::pair<std::string, std::string>> ChunkPairs(const CookieCodec& codec, const std::string& value) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::string buf;
  codec.EmitSetCookies(value, kChunkFuzzNow + 3600, kChunkFuzzNow, &buf, [&](std::string_view line) {
    const std::string_view pair = line.substr(0, line.find(';'));
    const size_t eq = pair.find('=');
    pairs.emplace_back(std::string(pair.substr(0, eq)), std::string(pair.substr(eq + 1)));
  });
  return pairs;
}

inline bool CheckEditedJar(std::string_view input) {
  const CookieCodec* codec = ChunkCodec();
  FUZZ_CHECK(codec != nullptr);
  const size_t size = 1 + static_cast<unsigned char>(input[1]) * 48;
  const SessionData data = {{"d", "\"" + std::string(size, 'q') + "\""}};
  const SessionData other_data = {{"d", "\"" + std::string(size, 'r') + "\""}};
  const std::string id(CookieCodec::kIdSize, 'i'), other_id(CookieCodec::kIdSize, 'o');
  Result<std::string> sealed = codec->Seal(id, kChunkFuzzNow + 3600, data);
  Result<std::string> other = codec->Seal(other_id, kChunkFuzzNow + 3600, other_data);
  if (!sealed.ok()) {
    FUZZ_CHECK(sealed.status().code() == Status::Code::kTooLarge);
    return true;
  }
  FUZZ_CHECK(other.ok());
  const auto original = ChunkPairs(*codec, *sealed);
  const auto foreign = ChunkPairs(*codec, *other);
  FUZZ_CHECK(!original.empty() && original.size() <= kMaxCookieChunks);
  for (const auto& [name, value] : original) FUZZ_CHECK(12 + name.size() + 1 + value.size() <= 4096);
  std::vector<std::pair<std::string, std::string>> jar = original;
  for (size_t i = 2; i + 1 < input.size(); i += 2) {
    if (jar.empty()) break;
    const unsigned op = static_cast<unsigned char>(input[i]) % 5;
    const size_t k = static_cast<unsigned char>(input[i + 1]) % jar.size();
    switch (op) {
      case 0: jar.erase(jar.begin() + static_cast<long>(k)); break;
      case 1: jar.push_back(jar[k]); break;
      case 2:
        if (k + 1 < jar.size()) std::swap(jar[k].second, jar[k + 1].second);
        break;
      case 3: {
        std::string& v = jar[k].second;
        const size_t at = (static_cast<unsigned char>(input[i + 1]) * 7u) % v.size();
        v[at] = v[at] == 'A' ? 'B' : 'A';
        break;
      }
      default:
        for (const auto& f : foreign) {
          if (f.first == jar[k].first) jar[k].second = f.second;
        }
        break;
    }
  }
  std::string header = "a=1";
  for (const auto& [name, value] : jar) header += "; " + name + "=" + value;
  SessionCookieViews views;
  std::string forwarded;
  SplitCookieHeader(header, "sid", &views, &forwarded);
  FUZZ_CHECK(forwarded == "a=1");
  // A session opens exactly when its head is among the heads and its chunks
  // (not the head) are in the jar as sent, each once. Editing the only
  // cookie of a one-cookie session into the other session's makes that one.
  // Only the first kMaxSessionCookies heads are looked at (cookie_header.h).
  auto whole = [&](const std::vector<std::pair<std::string, std::string>>& sent) {
    std::vector<std::pair<std::string, std::string>> jar_chunks, sent_chunks;
    bool head_present = false;
    size_t heads = 0;
    for (const auto& p : jar) {
      if (p.first == "sid") {
        head_present = head_present || (heads < kMaxSessionCookies && p.second == sent[0].second);
        ++heads;
      } else {
        jar_chunks.push_back(p);
      }
    }
    for (const auto& p : sent) {
      if (p.first != "sid") sent_chunks.push_back(p);
    }
    std::sort(jar_chunks.begin(), jar_chunks.end());
    std::sort(sent_chunks.begin(), sent_chunks.end());
    return head_present && jar_chunks == sent_chunks;
  };
  const bool mine = whole(original), theirs = whole(foreign);
  bool opened_mine = false, opened_theirs = false;
  std::string assembled;
  for (size_t i = 0; i < views.count; ++i) {
    std::string_view value = views.values[i];
    const ChunkAssembly a = AssembleChunks(value, views, &assembled);
    if (a == ChunkAssembly::kInvalid) continue;
    if (a == ChunkAssembly::kAssembled) value = assembled;
    const DecodedCookie d = codec->Open(value, kChunkFuzzNow);
    if (d.verdict != CookieVerdict::kValid) continue;
    FUZZ_CHECK((d.data == data && d.id == id) || (d.data == other_data && d.id == other_id));
    if (d.id == id) opened_mine = true;
    else opened_theirs = true;
  }
  FUZZ_CHECK(opened_mine == mine);
  FUZZ_CHECK(opened_theirs == theirs);
  return true;
}

inline bool CheckCookieChunks(std::string_view input) {
  if (input.empty()) return true;
  if ((static_cast<unsigned char>(input[0]) & 1) == 0) return CheckAssembleHeader(input.substr(1));
  if (input.size() < 2) return true;
  return CheckEditedJar(input);
}

}  // namespace fuzz
}  // namespace sessiond
