// The X-Session-* header protocol (docs/HEADER-PROTOCOL.md), as pure functions.
//
// Request side: which client headers to strip (IsSessionHeader) and the
// headers injected for the backend (FormatRequestHeaders). Response side: the
// upstream's instruction headers -> one validated ChangeBatch
// (InstructionParser / ParseInstructions). Nothing here does I/O, logs, or
// throws.
//
// Header-name matching is ASCII case-insensitive and treats '_' and '-' as the
// same byte everywhere in the name, so "X_SESSION_set" is X-Session-Set. The
// reason: some servers (and CGI-style backends) turn '-' into '_' in header
// names, and a client must not be able to smuggle a session header past the
// stripping step by spelling it with underscores.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/session_data.h"
#include "base/status.h"

namespace sessiond {

// ---- Header names -----------------------------------------------------------

inline constexpr std::string_view kSessionHeaderPrefix = "X-Session-";
// Injected into the forwarded request.
inline constexpr std::string_view kHeaderStatus = "X-Session-Status";
inline constexpr std::string_view kHeaderId = "X-Session-Id";
inline constexpr std::string_view kHeaderData = "X-Session-Data";
inline constexpr std::string_view kHeaderExpires = "X-Session-Expires";
// Instructions read from the upstream response.
inline constexpr std::string_view kHeaderSet = "X-Session-Set";
inline constexpr std::string_view kHeaderDelete = "X-Session-Delete";
inline constexpr std::string_view kHeaderDestroy = "X-Session-Destroy";
inline constexpr std::string_view kHeaderRegenerate = "X-Session-Regenerate";
inline constexpr std::string_view kHeaderRevoke = "X-Session-Revoke";

// True when `name` starts with "X-Session-" (case-insensitive, '_' == '-'),
// including a name that is exactly the prefix. Surrounding whitespace and
// control bytes are ignored: if such a name ever reached us, stripping it is
// the safe answer. Used both to strip every client-sent session header and to
// pick out (and strip) every upstream instruction header.
bool IsSessionHeader(std::string_view name);

// ---- Request side -----------------------------------------------------------

enum class SessionStatus { kNone, kNew, kActive, kExpired, kInvalid };

// "none", "new", "active", "expired", "invalid": the X-Session-Status value.
const char* ToString(SessionStatus status);

// The session as the backend sees it. Views only: the caller keeps the
// referenced id and data alive for the call.
struct InjectedSession {
  std::string_view public_id;  // the stable public id, never the cookie token
  const SessionData* data = nullptr;  // null is the same as empty
  int64_t expires_at = 0;             // Unix time, seconds
  // When non-empty, used as the X-Session-Data value instead of serializing
  // `data`: the caller vouches that it is SerializeSession of the session
  // (the cookie manager's sealed JSON, which was produced that way).
  std::string_view data_json;
};

using HeaderPairs = std::vector<std::pair<std::string, std::string>>;

// The headers to add to the forwarded request, in this order: Status, Id,
// Data, Expires. Id and Expires appear only when `status` is kNew or kActive
// and `session` is non-null; Data is always present and is "{}" without a
// session (an expired or invalid session's data is never shown). The caller
// must already have removed every client-sent header for which
// IsSessionHeader() holds. `public_id` must be header-safe (the id generator
// emits base64url or hex); it is not re-checked here.
HeaderPairs FormatRequestHeaders(SessionStatus status, const InjectedSession* session);

// The same headers, handed one by one to emit(name, value) with no
// allocation beyond serializing the data; FormatRequestHeaders is built on it.
template <class Emit>
void EmitRequestHeaders(SessionStatus status, const InjectedSession* session, Emit&& emit) {
  const bool live = session != nullptr && (status == SessionStatus::kNew || status == SessionStatus::kActive);
  emit(kHeaderStatus, std::string_view(ToString(status)));
  if (live) emit(kHeaderId, session->public_id);
  if (live && !session->data_json.empty()) {
    emit(kHeaderData, session->data_json);
  } else if (live && session->data != nullptr) {
    const std::string json = SerializeSession(*session->data);
    emit(kHeaderData, std::string_view(json));
  } else {
    emit(kHeaderData, std::string_view("{}"));
  }
  if (live) {
    char digits[24];
    char* end = digits + sizeof(digits);
    char* p = end;
    uint64_t v = session->expires_at > 0 ? static_cast<uint64_t>(session->expires_at) : 0;
    do {
      *--p = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    emit(kHeaderExpires, std::string_view(p, static_cast<size_t>(end - p)));
  }
}

// ---- Response side: instructions --------------------------------------------

// Bounds on what one upstream response may ask for. They exist so that a
// broken or hostile backend cannot make one response cost unbounded CPU or
// memory; a well-behaved backend is nowhere near them.
inline constexpr size_t kMaxInstructionHeaders = 64;  // X-Session-* headers per response
inline constexpr size_t kMaxInstructionValueBytes = 64 * 1024;   // one header's value
inline constexpr size_t kMaxInstructionTotalBytes = 256 * 1024;  // all recognised values
// Nesting of X-Session-Set JSON, counting the top-level object as 1. Checked
// by a linear pre-scan before the JSON parser sees the text, so deeply nested
// input costs one pass and never reaches recursive code.
inline constexpr int kMaxSetDepth = 32;
// Session keys (from Set or Delete) are 1..256 bytes (UTF-8) and contain no
// control character (U+0000-U+001F, U+007F): keys end up as Redis hash fields,
// file contents and log-adjacent text, and no real application needs them.
inline constexpr size_t kMaxSessionKeyBytes = 256;

enum class InstructionKind { kSet, kDelete, kDestroy, kRegenerate, kRevoke, kIgnored };

// Which instruction a response header name is. kIgnored for every other name,
// including X-Session-* names that are not instructions (a backend echoing
// X-Session-Data or X-Session-Id back): those are stripped from the response
// like all X-Session-* headers, but never fail the response, because echoing
// request headers is common in debugging backends and carries no intent.
InstructionKind ClassifyInstruction(std::string_view name);

// Accumulates the instruction headers of one response, in arrival order, into
// one ChangeBatch:
//   X-Session-Set: a JSON object; each top-level key replaces the whole value,
//     null deletes the key. Several Set headers merge in order (later wins);
//     inside one object a duplicate key also resolves to the last occurrence.
//     Stored values are compact ASCII-only JSON (non-ASCII and control
//     characters \u-escaped), so they never hold raw CR, LF or NUL. Numbers
//     outside the 64-bit integer range are kept as doubles (precision may be
//     lost, as in any JavaScript backend); non-finite numbers are rejected.
//   X-Session-Delete: comma-separated keys, optional whitespace around each,
//     empty items ignored; keys are literal text (no quoting, no JSON).
//     Several Delete headers accumulate.
//   X-Session-Destroy / X-Session-Regenerate: "true" sets the flag, "false"
//     leaves it as it is (trimmed, case-insensitive); anything else is an
//     error.
//   X-Session-Revoke: "others" or "all" (trimmed, case-insensitive); with
//     several, the wider (all) wins. Anything else is an error. Whether the
//     configuration can carry it out (a subject_key) is the filter's check.
// Any malformed instruction makes the whole batch an error (the contract's
// all-or-nothing rule): Status::Invalid with a message of the form
// "<canonical header name>: <reason>", which is safe to send in a 502 body. It
// never contains a header value, a key or session data; at most a byte offset
// and the bounds above. The caller answers 502 for every non-OK status.
//
// Add() must only be given names for which IsSessionHeader() holds; any other
// name is ignored and not counted. After the first error every Add() returns
// that error and Finish() returns it.
class InstructionParser {
 public:
  Status Add(std::string_view name, std::string_view value);
  // The merged batch (possibly empty) or the first error. Call once.
  Result<ChangeBatch> Finish();

 private:
  Status Fail(Status status);

  ChangeBatch batch_;
  std::string scratch_;  // the stored form of the Set value being read
  Status error_;
  size_t headers_ = 0;
  size_t total_bytes_ = 0;
};

// One-shot form of InstructionParser over (name, value) pairs in arrival order.
Result<ChangeBatch> ParseInstructions(const HeaderPairs& headers);

// ---- Size limit -------------------------------------------------------------

// CheckSessionSize (store/session_data.h, the one size rule) of `current`
// with `batch` applied (Destroy clears, then Delete, then Set). Regenerate
// does not change the data. Because every non-null Set key survives into the
// result, CheckBatchFits(SessionData{}, batch, max) is a valid early rejection
// before the store is even asked.
Status CheckBatchFits(const SessionData& current, const ChangeBatch& batch, uint64_t max_bytes);

}  // namespace sessiond
