// Putting a chunked session cookie back together (docs/COOKIES.md, Chunked
// cookies).
//
// The cookie manager's sealed value "3." B is sent whole when its Set-Cookie
// line fits 4096 bytes, otherwise split over N cookies (2 <= N <= 8):
//
//   NAME   = "3c" N "." B[0, p)
//   NAME.1 = B[p, 2p)   ...   NAME.(N-1) = the rest
//
// The pieces carry no authentication of their own: the AEAD tag at the end
// of B covers all of them at once, so a piece changed, missing, swapped with
// another or taken from another session's cookie makes the whole value fail
// to open. What the reassembler itself refuses is what would make the value
// ambiguous: a count outside 2..kMaxCookieChunks, an empty piece, or a chunk
// NAME.k (k < N) that came other than exactly once. Chunks NAME.k with
// k >= N are stale leftovers of a larger session: ignored here, cleared by
// the response.
//
// Pure: no allocation beyond *out's growth, no I/O. Fuzzed by
// tests/fuzz/cookie_chunks_fuzz.cc.
#pragma once

#include <string>
#include <string_view>

#include "session/cookie_header.h"

namespace sessiond {

enum class ChunkAssembly {
  kSingle,     // `head` is not a chunked head: verify it as it is
  kAssembled,  // *out holds "3." B put back together
  kInvalid,    // a chunked head whose chunks do not add up
};

// `head` is one value of the session cookie NAME; `cookies` what the request
// held of NAME.1 .. NAME.7. *out is replaced (its capacity kept).
ChunkAssembly AssembleChunks(std::string_view head, const SessionCookieViews& cookies, std::string* out);

// The number of cookies a chunked head announces (2..kMaxCookieChunks), or 1
// for any other value.
size_t AnnouncedChunks(std::string_view head);

}  // namespace sessiond
