// The session data model: what a session holds, its one JSON form, the JSON
// reader for that form, how a response changes it, and the size rule.
//
// A session is a flat JSON object. We keep it as key -> value where each value
// is already serialized as compact, ASCII-only JSON text (non-ASCII and control
// characters \u-escaped). Keeping values serialized means stores (Redis hash
// fields, files, memory), the cookie manager's sealed cookie and the
// X-Session-Data header all hold exactly the bytes SerializeSession emits, and
// max_session_bytes is the length of that serialized object
// (docs/HEADER-PROTOCOL.md, Request headers; docs/CONFIGURATION.md,
// session.max_session_bytes).
//
// Nothing here does I/O or logs; every function is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sessiond {

using SessionData = std::map<std::string, std::string>;

// X-Session-Revoke (docs/HEADER-PROTOCOL.md, Instructions): which sessions of
// the response's subject end with it. kAll includes the session itself.
enum class RevokeScope { kNone, kOthers, kAll };

// The instructions of one upstream response, already merged and validated.
// Application order is fixed (docs/HEADER-PROTOCOL.md, Order of application):
// Destroy, Regenerate, Delete, Set.
struct ChangeBatch {
  bool destroy = false;     // X-Session-Destroy: true
  bool regenerate = false;  // X-Session-Regenerate: true
  RevokeScope revoke = RevokeScope::kNone;  // X-Session-Revoke: others | all (the wider wins)
  std::vector<std::string> deletes;  // X-Session-Delete, in order
  // Every X-Session-Set header merged in order: a later header's key replaces an
  // earlier one; nullopt is a JSON null (delete the key).
  std::map<std::string, std::optional<std::string>> sets;

  bool empty() const {
    return !destroy && !regenerate && revoke == RevokeScope::kNone && deletes.empty() && sets.empty();
  }
  // Deletes or Sets: the batch changes keys (not only the session's identity).
  bool changes_keys() const { return !deletes.empty() || !sets.empty(); }
  // Some Set gives a key a value (a null Set only deletes).
  bool sets_a_value() const;
};

// ---- The JSON form ------------------------------------------------------------

// The session as one compact ASCII-only JSON object, keys in the map's
// (bytewise) order: exactly the value of the X-Session-Data request header,
// and the bytes counted by max_session_bytes.
std::string SerializeSession(const SessionData& data);
// The same, appended to *out (so a caller can reuse one buffer).
void AppendSession(std::string* out, const SessionData& data);

// Length of SerializeSession(data), without building it.
uint64_t SerializedSize(const SessionData& data);

// Reads the JSON form back into SessionData: the inverse of SerializeSession.
// Keys are decoded (JSON escapes to UTF-8); values are kept verbatim, since
// SerializeSession wrote each value as it was, already compact ASCII-only JSON.
//
// The input is our own output that came back authenticated (a sealed cookie)
// or from our own store, so the reader checks only as much structure as it
// needs to split it safely: one object; strings with valid escapes, no raw
// control characters and no lone surrogates; values that are a string, a
// bracketed array/object (brackets counted outside strings) or a bare
// literal/number made of [0-9+-.eEtrufalsn]. Anything else makes the whole
// text invalid. Every index is bounds-checked, so a forged input cannot make
// it misbehave. A duplicated key keeps its last value.
//
// False (and *out empty) when `json` is not one such object.
bool ParseSessionJson(std::string_view json, SessionData* out);

// The subject of a session (docs/HEADER-PROTOCOL.md, Subjects): the value of
// data[subject_key] when it is a JSON string (decoded; 1 to 256 bytes of
// UTF-8 without control characters) or a JSON integer (its digits, with a
// leading '-' if negative). Empty for anything else, a missing key or an
// empty subject_key: such a session is not indexed.
std::string SubjectOf(const SessionData& data, std::string_view subject_key);
// The same rule for one stored value (its JSON text).
std::string SubjectOfValue(std::string_view json_value);
// Calls fn(key, value) for each member of session JSON, in order: the key
// as its literal, quotes included, exactly as it appears (for our own JSON
// that is AppendJsonString of the decoded key), and the value's text.
// Allocates nothing. False (after calling fn for the members before the
// fault) when `json` is not session JSON; an empty `json` is the empty session.
bool ForEachSessionMember(std::string_view json,
                          const std::function<void(std::string_view key, std::string_view value)>& fn);

// True exactly when ParseSessionJson would succeed. Allocates nothing: the
// cookie manager's read path validates the sealed JSON with it and passes the
// text on as X-Session-Data unparsed.
bool IsSessionJson(std::string_view json);

// True when `json` (session JSON, as IsSessionJson accepts) has a top-level
// member named `key` (compared decoded). Allocates only when a key of the
// session holds escapes. False for text that is not session JSON.
bool SessionJsonHasKey(std::string_view json, std::string_view key);

// ---- Changing a session -------------------------------------------------------

// Applies clear, then deletes, then sets (nullopt deletes) to `data`: the
// in-memory half of an ApplyRequest, shared by the memory and file stores.
void ApplyChanges(SessionData* data, bool clear, const std::vector<std::string>& deletes,
                  const std::map<std::string, std::optional<std::string>>& sets);

// Writes SerializeSession of (ParseSessionJson(current) changed by
// ApplyChanges(clear, deletes, sets)) into *out, replacing its contents and
// keeping its capacity, without building a SessionData: the JSON of a session
// is sorted by key and so are `sets`, so the result is one merge of the two.
// An empty `current` is the empty session. False (and *out empty) when
// `current` is not session JSON. The cookie manager's write path.
bool MergeSessionJson(std::string_view current, bool clear, const std::vector<std::string>& deletes,
                      const std::map<std::string, std::optional<std::string>>& sets, std::string* out);

// ---- The size rule ------------------------------------------------------------

// THE limit on a session (docs/CONFIGURATION.md, session.max_session_bytes), for every
// store and for the cookie manager: OK when the serialized session
// (SerializedSize, or the length of its JSON form) is at most max_bytes, else
// TooLarge "session would be N bytes, over max_session_bytes (M)". The message
// names no key and no value, so it may be logged.
Status CheckSessionSize(uint64_t serialized_size, uint64_t max_bytes);

}  // namespace sessiond
