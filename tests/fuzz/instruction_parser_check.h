// The instruction_parser fuzz target: upstream X-Session-* instruction headers
// through InstructionParser, then into a session (ApplyChanges) and back out
// as X-Session-Data (SerializeSession).
//
// Input: records separated by '\n' (a header value can never hold a LF). The
// first byte of a record picks the header name, the rest is its value:
//   S X-Session-Set      D X-Session-Delete    X X-Session-Destroy
//   R X-Session-Regenerate                     s x_session_set (folded)
//   d X-SESSION-delete   I X-Session-Data (echoed, ignored)
//   P X-Session- (the bare prefix)             O Content-Type (not ours)
//   : a literal name up to the next ':', then the value
//   any other byte: one of the above, by its value.
//
// Invariants: errors are sticky, safe to show (printable, no JSON from the
// value) and identical in the one-shot ParseInstructions; a batch holds only
// valid keys and canonical ASCII JSON values; applying it to a session gives
// exactly the contract's Destroy/Delete/Set result, and the serialized
// session is valid ASCII JSON whose size SerializedSize predicts.
// Differential: every X-Session-Set value, read alone, gives exactly what
// the nlohmann-based reader sessiond had before session/set_json.h (kept
// below as ReferenceSet): the same error message (byte offsets included) or
// the same keys and stored values.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_check.h"
#include "session/header_protocol.h"
#include "store/session_data.h"

namespace sessiond {
namespace fuzz {

inline HeaderPairs InstructionRecords(std::string_view input) {
  static const char* const kNames[] = {"X-Session-Set",  "X-Session-Delete", "X-Session-Destroy",
                                       "X-Session-Regenerate", "x_session_set", "X-SESSION-delete",
                                       "X-Session-Data", "X-Session-",       "Content-Type"};
  static const std::string_view kPicks = "SDXRsdIPO";
  HeaderPairs out;
  for (std::string_view record : SplitOn(input, '\n')) {
    if (record.empty()) continue;
    const char pick = record[0];
    std::string_view rest = record.substr(1);
    if (pick == ':') {
      const size_t colon = rest.find(':');
      out.emplace_back(std::string(rest.substr(0, colon)),
                       colon == std::string_view::npos ? std::string() : std::string(rest.substr(colon + 1)));
      continue;
    }
    size_t index = kPicks.find(pick);
    if (index == std::string_view::npos) index = static_cast<unsigned char>(pick) % kPicks.size();
    out.emplace_back(kNames[index], std::string(rest));
  }
  return out;
}

// An error fit for a 502 body and a log line: it names the header and never
// echoes JSON from a value.
inline bool CheckInstructionError(const Status& s) {
  FUZZ_CHECK(s.code() == Status::Code::kInvalid);
  const std::string& m = s.message();
  FUZZ_CHECK(m.rfind("X-Session-", 0) == 0);
  FUZZ_CHECK(IsPrintableAscii(m));
  FUZZ_CHECK(m.size() <= 200);
  FUZZ_CHECK(m.find('"') == std::string::npos && m.find('{') == std::string::npos);
  return true;
}

inline bool IsValidSessionKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxSessionKeyBytes) return false;
  for (char c : key) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return false;
  }
  return true;
}

// A stored value: compact ASCII JSON that re-serializes to itself.
inline bool CheckStoredValue(const std::string& value) {
  FUZZ_CHECK(IsPrintableAscii(value));
  const nlohmann::json j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!j.is_discarded());
  FUZZ_CHECK(j.dump(-1, ' ', /*ensure_ascii=*/true) == value);
  return true;
}

// X-Session-Data of `data`: valid ASCII JSON, holding exactly `data`.
inline bool CheckSerialized(const SessionData& data) {
  const std::string json = SerializeSession(data);
  FUZZ_CHECK(SerializedSize(data) == json.size());
  FUZZ_CHECK(IsPrintableAscii(json));
  const nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!j.is_discarded() && j.is_object());
  FUZZ_CHECK(j.size() == data.size());
  for (const auto& [key, value] : data) {
    const auto it = j.find(key);
    FUZZ_CHECK(it != j.end());
    FUZZ_CHECK(it->dump(-1, ' ', /*ensure_ascii=*/true) == value);
  }
  return true;
}

// ApplyChanges against the contract's order: Destroy, then Delete, then Set.
inline bool CheckApplied(const SessionData& base, const ChangeBatch& batch) {
  SessionData next = base;
  ApplyChanges(&next, batch.destroy, batch.deletes, batch.sets);
  for (const auto& [key, value] : batch.sets) {
    if (value) FUZZ_CHECK(next.count(key) && next.at(key) == *value);
    else FUZZ_CHECK(!next.count(key));
  }
  for (const std::string& key : batch.deletes) FUZZ_CHECK(batch.sets.count(key) || !next.count(key));
  for (const auto& [key, value] : base) {
    const bool touched = batch.destroy || batch.sets.count(key) ||
                         std::find(batch.deletes.begin(), batch.deletes.end(), key) != batch.deletes.end();
    if (!touched) FUZZ_CHECK(next.count(key) && next.at(key) == value);
  }
  for (const auto& [key, value] : next) FUZZ_CHECK(base.count(key) || batch.sets.count(key));
  FUZZ_TRY(CheckSerialized(next));
  constexpr uint64_t kMax = 4096;
  FUZZ_CHECK(CheckBatchFits(base, batch, kMax).ok() == (SerializedSize(next) <= kMax));

  const InjectedSession injected{"cHVibGljLWlk", &next, 2000000000, {}};
  for (const auto& [name, value] : FormatRequestHeaders(SessionStatus::kActive, &injected)) {
    FUZZ_CHECK(IsPrintableAscii(value));
    if (name == kHeaderData) FUZZ_CHECK(value == SerializeSession(next));
  }
  return true;
}

// The X-Session-Set reading sessiond had before session/set_json.h, kept as
// the oracle: nlohmann parses, keys are checked in its (sorted) order.
inline Result<std::map<std::string, std::optional<std::string>>> ReferenceSet(std::string_view value) {
  using Json = nlohmann::json;
  const auto fail = [](const std::string& reason) { return Status::Invalid("X-Session-Set: " + reason); };
  std::string_view trimmed = value;
  while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\t')) trimmed.remove_prefix(1);
  while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\t')) trimmed.remove_suffix(1);
  if (trimmed.empty()) return fail("empty value");
  if (const size_t nul = value.find('\0'); nul != std::string_view::npos) {
    return fail("invalid JSON at byte " + std::to_string(nul + 1));
  }
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxSetDepth) return fail("JSON nested deeper than " + std::to_string(kMaxSetDepth));
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  std::map<std::string, std::optional<std::string>> sets;
  try {
    Json json = Json::parse(value.begin(), value.end());
    if (!json.is_object()) return fail("not a JSON object");
    for (auto& [key, item] : json.get_ref<Json::object_t&>()) {
      if (key.empty()) return fail("empty key");
      if (key.size() > kMaxSessionKeyBytes) return fail("key longer than " + std::to_string(kMaxSessionKeyBytes) + " bytes");
      for (char ch : key) {
        const unsigned char c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F) return fail("control character in key");
      }
      if (item.is_null()) {
        sets[key] = std::nullopt;
      } else {
        sets[key] = item.dump(-1, ' ', /*ensure_ascii=*/true);
      }
    }
  } catch (const Json::parse_error& e) {
    return fail("invalid JSON at byte " + std::to_string(e.byte));
  } catch (const Json::out_of_range&) {
    return fail("number out of range");
  }
  return sets;
}

inline bool CheckSetAgainstReference(std::string_view value) {
  const Result<ChangeBatch> ours = ParseInstructions({{"X-Session-Set", std::string(value)}});
  const auto reference = ReferenceSet(value);
  FUZZ_CHECK(ours.ok() == reference.ok());
  if (!ours.ok()) {
    FUZZ_CHECK(ours.status().message() == reference.status().message());
    return true;
  }
  FUZZ_CHECK(ours->sets == *reference);
  return true;
}

inline bool CheckInstructions(std::string_view input) {
  const HeaderPairs records = InstructionRecords(input);
  InstructionParser parser;
  Status first_error;
  for (const auto& [name, value] : records) {
    if (ClassifyInstruction(name) == InstructionKind::kSet && value.size() <= kMaxInstructionValueBytes) {
      FUZZ_TRY(CheckSetAgainstReference(value));
    }
  }
  for (const auto& [name, value] : records) {
    const bool ours = IsSessionHeader(name);
    FUZZ_CHECK(ClassifyInstruction(name) == InstructionKind::kIgnored || ours);
    const Status s = parser.Add(name, value);
    if (!first_error.ok()) {
      FUZZ_CHECK(s.code() == first_error.code() && s.message() == first_error.message());
    } else if (!s.ok()) {
      FUZZ_CHECK(ours);  // names without the prefix are ignored
      FUZZ_TRY(CheckInstructionError(s));
      first_error = s;
    }
  }
  Result<ChangeBatch> result = parser.Finish();
  const Result<ChangeBatch> one_shot = ParseInstructions(records);
  FUZZ_CHECK(result.ok() == first_error.ok());
  FUZZ_CHECK(one_shot.ok() == result.ok());
  if (!result.ok()) {
    FUZZ_CHECK(result.status().message() == first_error.message());
    FUZZ_CHECK(one_shot.status().message() == first_error.message());
    return true;
  }
  const ChangeBatch& batch = *result;
  FUZZ_CHECK(batch.destroy == one_shot->destroy && batch.regenerate == one_shot->regenerate);
  FUZZ_CHECK(batch.deletes == one_shot->deletes && batch.sets == one_shot->sets);
  for (const std::string& key : batch.deletes) FUZZ_CHECK(IsValidSessionKey(key));
  for (const auto& [key, value] : batch.sets) {
    FUZZ_CHECK(IsValidSessionKey(key));
    if (value) FUZZ_TRY(CheckStoredValue(*value));
  }
  FUZZ_CHECK(batch.empty() == (!batch.destroy && !batch.regenerate && batch.deletes.empty() && batch.sets.empty()));

  const SessionData base = {{"user", "\"ada\""}, {"cart", "[1,2]"}, {"flash", "\"hi\""}};
  FUZZ_TRY(CheckApplied(SessionData(), batch));
  return CheckApplied(base, batch);
}

}  // namespace fuzz
}  // namespace sessiond
