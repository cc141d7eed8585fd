// The head_split fuzz target: "split at every position = one-shot result".
//
// Input: one control byte, then the bytes. Control bit 0: a response head
// (else a request head); bit 1: the response is to a HEAD request; bit 2:
// tight limits (a 64-byte head, an 8-byte body).
//
// The bytes are parsed in one call, then again in two calls split at every
// position, then one byte per call with the bytes in place, then one byte
// per call with the bytes copied to a fresh buffer of exactly the bytes
// passed before every call (the old one scribbled over and freed). Every way
// must give the one-shot result exactly: state, status, reason, head size
// and the whole parsed head. A resumed scan that completes examines each byte
// as often as the one-shot scan (bytes_examined() equal: nothing is read
// again); with moving bytes the views point into the last buffer.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "head_check.h"

namespace sessiond {
namespace fuzz {

inline constexpr size_t kSplitMaxBytes = 1024;  // every split is O(n): bounds the work per input

// Everything a parse produced, owned, for comparisons.
inline std::string DescribeParse(HeadParser::State state, const HeadParser& parser, const RequestHead& h) {
  std::string s = std::to_string(static_cast<int>(state)) + "|" + std::to_string(parser.error_status()) + "|" +
                  parser.error() + "|" + std::to_string(parser.head_size()) + "|" +
                  std::to_string(parser.is_head_request());
  if (state != HeadParser::State::kDone) return s;
  s += "|" + std::string(h.method) + "|" + std::string(h.target) + "|" + std::to_string(h.minor_version) + "|" +
       std::string(h.host) + "|" + std::to_string(static_cast<int>(h.framing)) + "|" +
       std::to_string(h.content_length) + "|" + std::to_string(h.keep_alive) + std::to_string(h.expect_continue) +
       std::to_string(h.is_head);
  for (const Header& f : h.headers.fields()) {
    s += "|" + std::string(f.name) + ":" + std::string(f.value) + "#" + std::to_string(static_cast<int>(f.id));
  }
  return s;
}

inline std::string DescribeParse(HeadParser::State state, const HeadParser& parser, const ResponseHead& h) {
  std::string s = std::to_string(static_cast<int>(state)) + "|" + std::to_string(parser.error_status()) + "|" +
                  parser.error() + "|" + std::to_string(parser.head_size());
  if (state != HeadParser::State::kDone) return s;
  s += "|" + std::to_string(h.status) + "|" + std::string(h.reason) + "|" + std::to_string(h.minor_version) + "|" +
       std::to_string(static_cast<int>(h.framing)) + "|" + std::to_string(h.content_length) + "|" +
       std::to_string(h.keep_alive);
  for (const Header& f : h.headers.fields()) {
    s += "|" + std::string(f.name) + ":" + std::string(f.value) + "#" + std::to_string(static_cast<int>(f.id));
  }
  return s;
}

struct SplitConfig {
  bool response = false;
  bool request_was_head = false;
  size_t max_head = 4096;
  uint64_t max_body = 65536;
};

inline void StartParse(HeadParser* p, const SplitConfig& c, RequestHead*) { p->StartRequest(c.max_head, c.max_body); }
inline void StartParse(HeadParser* p, const SplitConfig& c, ResponseHead*) {
  p->StartResponse(c.max_head, c.request_was_head);
}

inline bool ViewsInside(const RequestHead& h, std::string_view bytes) {
  FUZZ_CHECK(ViewInside(h.method, bytes));
  if (h.rewritten_target.empty()) FUZZ_CHECK(ViewInside(h.target, bytes));
  FUZZ_CHECK(ViewInside(h.host, bytes));
  for (const Header& f : h.headers.fields()) {
    FUZZ_CHECK(ViewInside(f.value, bytes));
    FUZZ_CHECK(ViewInside(f.name, bytes) || f.name == "Host");
  }
  return true;
}

inline bool ViewsInside(const ResponseHead& h, std::string_view bytes) {
  FUZZ_CHECK(ViewInside(h.reason, bytes));
  for (const Header& f : h.headers.fields()) {
    FUZZ_CHECK(ViewInside(f.name, bytes));
    FUZZ_CHECK(ViewInside(f.value, bytes));
  }
  return true;
}

template <class Head>
bool CheckSplits(std::string_view bytes, const SplitConfig& config) {
  HeadParser once;
  Head once_head;
  StartParse(&once, config, &once_head);
  const HeadParser::State once_state = once.Parse(bytes.data(), bytes.size(), &once_head);
  const std::string want = DescribeParse(once_state, once, once_head);
  if (once_state == HeadParser::State::kDone) {
    FUZZ_TRY(ViewsInside(once_head, bytes.substr(0, once.head_size())));
  }

  // Two pieces, at every position.
  for (size_t split = 0; split <= bytes.size(); ++split) {
    HeadParser parser;
    Head head;
    StartParse(&parser, config, &head);
    HeadParser::State state = parser.Parse(bytes.data(), split, &head);
    if (state == HeadParser::State::kIncomplete) state = parser.Parse(bytes.data(), bytes.size(), &head);
    FUZZ_CHECK(DescribeParse(state, parser, head) == want);
    if (state == HeadParser::State::kDone) FUZZ_CHECK(parser.bytes_examined() == once.bytes_examined());
  }

  // One byte per call, in place.
  {
    HeadParser parser;
    Head head;
    StartParse(&parser, config, &head);
    HeadParser::State state = HeadParser::State::kIncomplete;
    for (size_t n = 0; n <= bytes.size() && state == HeadParser::State::kIncomplete; ++n) {
      state = parser.Parse(bytes.data(), n, &head);
    }
    FUZZ_CHECK(DescribeParse(state, parser, head) == want);
    if (state == HeadParser::State::kDone) FUZZ_CHECK(parser.bytes_examined() == once.bytes_examined());
  }

  // One byte per call, the bytes moving before every call.
  {
    HeadParser parser;
    Head head;
    StartParse(&parser, config, &head);
    HeadParser::State state = HeadParser::State::kIncomplete;
    std::unique_ptr<char[]> buffer;
    size_t n = 0;
    for (; n <= bytes.size() && state == HeadParser::State::kIncomplete; ++n) {
      std::unique_ptr<char[]> fresh(new char[n + 1]);  // +1: never a zero-size array
      memcpy(fresh.get(), bytes.data(), n);
      if (buffer) memset(buffer.get(), '#', n);  // the old buffer held n - 1 bytes (+1)
      buffer = std::move(fresh);
      state = parser.Parse(buffer.get(), n, &head);
    }
    FUZZ_CHECK(DescribeParse(state, parser, head) == want);
    if (state == HeadParser::State::kDone) FUZZ_TRY(ViewsInside(head, std::string_view(buffer.get(), n - 1)));
  }
  return true;
}

inline bool CheckHeadSplit(std::string_view input) {
  if (input.empty()) return true;
  const uint8_t control = static_cast<uint8_t>(input[0]);
  std::string_view bytes = input.substr(1);
  if (bytes.size() > kSplitMaxBytes) bytes = bytes.substr(0, kSplitMaxBytes);
  SplitConfig config;
  config.response = control & 1;
  config.request_was_head = control & 2;
  if (control & 4) {
    config.max_head = 64;
    config.max_body = 8;
  }
  return config.response ? CheckSplits<ResponseHead>(bytes, config) : CheckSplits<RequestHead>(bytes, config);
}

}  // namespace fuzz
}  // namespace sessiond
