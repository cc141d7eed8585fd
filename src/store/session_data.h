// SessionData and ChangeBatch: what a session holds and how a response
// changes it.
//
// A session is a flat JSON object. We keep it as key -> value where each value
// is already serialized as compact, ASCII-only JSON text (non-ASCII and control
// characters \u-escaped). Keeping values serialized means stores (Redis hash
// fields, files, memory) hold exactly the bytes we emit in X-Session-Data, and
// the size limit `max_session_bytes` is the length of that serialized object.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sessiond {

using SessionData = std::map<std::string, std::string>;

// The instructions of one upstream response, already merged and validated.
// Application order is fixed by the contract: Destroy, Regenerate, Delete, Set.
struct ChangeBatch {
  bool destroy = false;     // X-Session-Destroy: true
  bool regenerate = false;  // X-Session-Regenerate: true
  std::vector<std::string> deletes;  // X-Session-Delete, in order
  // Every X-Session-Set header merged in order: a later header's key replaces an
  // earlier one; nullopt is a JSON null (delete the key).
  std::map<std::string, std::optional<std::string>> sets;

  bool empty() const { return !destroy && !regenerate && deletes.empty() && sets.empty(); }
};

}  // namespace sessiond

namespace sessiond {

// The session as one compact ASCII-only JSON object: exactly the value of the
// X-Session-Data request header, and the bytes counted by max_session_bytes.
std::string SerializeSession(const SessionData& data);

// Length of SerializeSession(data), without building it.
uint64_t SerializedSize(const SessionData& data);


// Applies clear, then deletes, then sets (nullopt deletes) to `data`: the
// in-memory half of ApplyRequest, shared by the memory and file stores and by
// the cookie manager.
void ApplyChanges(SessionData* data, bool clear, const std::vector<std::string>& deletes,
                  const std::map<std::string, std::optional<std::string>>& sets);

}  // namespace sessiond
