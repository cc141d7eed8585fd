#include "session/header_protocol.h"

#include <optional>

#include "session/set_json.h"

namespace sessiond {

namespace {

// Header-name folding: ASCII lower case, '_' read as '-'. Not std::tolower:
// that depends on the locale and is undefined for negative chars.
char FoldNameByte(char c) {
  if (c >= 'A' && c <= 'Z') return static_cast<char>(c - 'A' + 'a');
  return c == '_' ? '-' : c;
}

// True when `name` folds to `lower`, which is already folded.
bool FoldedEquals(std::string_view name, std::string_view lower) {
  if (name.size() != lower.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (FoldNameByte(name[i]) != lower[i]) return false;
  }
  return true;
}

bool IsOws(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// Header names cannot carry whitespace or control bytes; if one ever does,
// matching what is left keeps IsSessionHeader on the stripping (safe) side.
std::string_view TrimNameJunk(std::string_view s) {
  const auto junk = [](char c) { return static_cast<unsigned char>(c) <= 0x20; };
  while (!s.empty() && junk(s.front())) s.remove_prefix(1);
  while (!s.empty() && junk(s.back())) s.remove_suffix(1);
  return s;
}

constexpr std::string_view kFoldedPrefix = "x-session-";

// What follows the "X-Session-" prefix, or nullopt when `name` lacks it.
std::optional<std::string_view> SessionSuffix(std::string_view name) {
  name = TrimNameJunk(name);
  if (name.size() < kFoldedPrefix.size() ||
      !FoldedEquals(name.substr(0, kFoldedPrefix.size()), kFoldedPrefix)) {
    return std::nullopt;
  }
  return name.substr(kFoldedPrefix.size());
}

InstructionKind ClassifySuffix(std::string_view suffix) {
  if (FoldedEquals(suffix, "set")) return InstructionKind::kSet;
  if (FoldedEquals(suffix, "delete")) return InstructionKind::kDelete;
  if (FoldedEquals(suffix, "destroy")) return InstructionKind::kDestroy;
  if (FoldedEquals(suffix, "regenerate")) return InstructionKind::kRegenerate;
  if (FoldedEquals(suffix, "revoke")) return InstructionKind::kRevoke;
  return InstructionKind::kIgnored;
}

std::string Message(std::string_view header, std::string_view reason) {
  std::string out(header);
  out.append(": ");
  out.append(reason);
  return out;
}

// False when `text` nests arrays/objects deeper than `limit`. Brackets are
// counted outside strings with the same string rules as a JSON lexer, so up
// to the first byte a JSON parser would reject, this depth equals the
// parser's: the parser therefore never goes deeper than `limit`.
bool NestingWithin(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '{':
      case '[':
        if (++depth > limit) return false;
        break;
      case '}':
      case ']':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return true;
}

Status ValidateKey(std::string_view header, std::string_view key) {
  if (key.empty()) return Status::Invalid(Message(header, "empty key"));
  if (key.size() > kMaxSessionKeyBytes) {
    return Status::Invalid(
        Message(header, "key longer than " + std::to_string(kMaxSessionKeyBytes) + " bytes"));
  }
  for (const char ch : key) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) return Status::Invalid(Message(header, "control character in key"));
  }
  return Status::OK();
}

// The members of one X-Session-Set object, merged into the batch as they are
// read (later ones win). Keys are checked as nlohmann's document would have
// been: once the whole text is valid, distinct keys in sorted order, the
// first invalid one reported.
class SetMembers final : public SetJsonMembers {
 public:
  explicit SetMembers(ChangeBatch* batch) : batch_(batch) {}

  void Member(std::string_view key, std::string_view value) override {
    if (!ValidateKey(kHeaderSet, key).ok()) {
      if (!bad_key_ || key < *bad_key_) bad_key_ = std::string(key);
      return;
    }
    // Only a JSON null has the stored form "null".
    if (value == "null") {
      batch_->sets.insert_or_assign(std::string(key), std::nullopt);
    } else {
      batch_->sets.insert_or_assign(std::string(key), std::string(value));
    }
  }

  Status KeyStatus() const { return bad_key_ ? ValidateKey(kHeaderSet, *bad_key_) : Status::OK(); }

 private:
  ChangeBatch* batch_;
  std::optional<std::string> bad_key_;  // the smallest invalid key
};

Status ParseSet(std::string_view value, ChangeBatch* batch, std::string* scratch) {
  if (TrimOws(value).empty()) return Status::Invalid(Message(kHeaderSet, "empty value"));
  // A NUL byte is where nlohmann's lexer, which set_json.h follows, would
  // see the end of input, silently accepting `{"a":1}<NUL>anything`.
  if (const size_t nul = value.find('\0'); nul != std::string_view::npos) {
    return Status::Invalid(Message(kHeaderSet, "invalid JSON at byte " + std::to_string(nul + 1)));
  }
  if (!NestingWithin(value, kMaxSetDepth)) {
    return Status::Invalid(
        Message(kHeaderSet, "JSON nested deeper than " + std::to_string(kMaxSetDepth)));
  }
  // Only the byte offset of a syntax error may reach the message, never the
  // offending text. A batch that fails half-way is discarded whole by the
  // caller, so merging into `batch` as we go is safe.
  SetMembers members(batch);
  const SetJsonResult result = ReadSetJson(value, &members, scratch);
  switch (result.kind) {
    case SetJsonResult::Kind::kOk: return members.KeyStatus();
    case SetJsonResult::Kind::kSyntax:
      return Status::Invalid(Message(kHeaderSet, "invalid JSON at byte " + std::to_string(result.byte)));
    case SetJsonResult::Kind::kRange: return Status::Invalid(Message(kHeaderSet, "number out of range"));
    case SetJsonResult::Kind::kNotObject: return Status::Invalid(Message(kHeaderSet, "not a JSON object"));
  }
  return Status::Invalid(Message(kHeaderSet, "invalid JSON"));
}

Status ParseDelete(std::string_view value, ChangeBatch* batch) {
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    const std::string_view key = TrimOws(value.substr(start, comma - start));
    if (!key.empty()) {
      Status status = ValidateKey(kHeaderDelete, key);
      if (!status.ok()) return status;
      batch->deletes.emplace_back(key);
    }
    start = comma + 1;
  }
  return Status::OK();
}

// "true" -> *flag = true; "false" -> unchanged; else an error.
Status ParseFlag(std::string_view header, std::string_view value, bool* flag) {
  value = TrimOws(value);
  if (FoldedEquals(value, "true")) {
    *flag = true;
    return Status::OK();
  }
  if (FoldedEquals(value, "false")) return Status::OK();
  return Status::Invalid(Message(header, "expected true or false"));
}

// "others" | "all" -> the wider of that and *scope; else an error.
Status ParseRevoke(std::string_view header, std::string_view value, RevokeScope* scope) {
  value = TrimOws(value);
  if (FoldedEquals(value, "all")) {
    *scope = RevokeScope::kAll;
    return Status::OK();
  }
  if (FoldedEquals(value, "others")) {
    if (*scope == RevokeScope::kNone) *scope = RevokeScope::kOthers;
    return Status::OK();
  }
  return Status::Invalid(Message(header, "expected others or all"));
}

std::string_view CanonicalName(InstructionKind kind) {
  switch (kind) {
    case InstructionKind::kSet: return kHeaderSet;
    case InstructionKind::kDelete: return kHeaderDelete;
    case InstructionKind::kDestroy: return kHeaderDestroy;
    case InstructionKind::kRegenerate: return kHeaderRegenerate;
    case InstructionKind::kRevoke: return kHeaderRevoke;
    case InstructionKind::kIgnored: break;
  }
  return "X-Session-*";
}

}  // namespace

bool IsSessionHeader(std::string_view name) { return SessionSuffix(name).has_value(); }

const char* ToString(SessionStatus status) {
  switch (status) {
    case SessionStatus::kNone: return "none";
    case SessionStatus::kNew: return "new";
    case SessionStatus::kActive: return "active";
    case SessionStatus::kExpired: return "expired";
    case SessionStatus::kInvalid: return "invalid";
  }
  return "none";
}

HeaderPairs FormatRequestHeaders(SessionStatus status, const InjectedSession* session) {
  HeaderPairs headers;
  headers.reserve(4);
  EmitRequestHeaders(status, session, [&](std::string_view name, std::string_view value) {
    headers.emplace_back(std::string(name), std::string(value));
  });
  return headers;
}

InstructionKind ClassifyInstruction(std::string_view name) {
  const std::optional<std::string_view> suffix = SessionSuffix(name);
  return suffix ? ClassifySuffix(*suffix) : InstructionKind::kIgnored;
}

Status InstructionParser::Fail(Status status) {
  error_ = std::move(status);
  return error_;
}

Status InstructionParser::Add(std::string_view name, std::string_view value) {
  if (!error_.ok()) return error_;
  const std::optional<std::string_view> suffix = SessionSuffix(name);
  if (!suffix) return Status::OK();
  if (++headers_ > kMaxInstructionHeaders) {
    return Fail(Status::Invalid("X-Session-*: more than " +
                                std::to_string(kMaxInstructionHeaders) + " headers"));
  }
  const InstructionKind kind = ClassifySuffix(*suffix);
  if (kind == InstructionKind::kIgnored) return Status::OK();
  const std::string_view header = CanonicalName(kind);
  if (value.size() > kMaxInstructionValueBytes) {
    return Fail(Status::Invalid(Message(
        header, "value over " + std::to_string(kMaxInstructionValueBytes) + " bytes")));
  }
  total_bytes_ += value.size();
  if (total_bytes_ > kMaxInstructionTotalBytes) {
    return Fail(Status::Invalid(Message(
        header, "instructions over " + std::to_string(kMaxInstructionTotalBytes) +
                    " bytes in total")));
  }
  Status status;
  switch (kind) {
    case InstructionKind::kSet: status = ParseSet(value, &batch_, &scratch_); break;
    case InstructionKind::kDelete: status = ParseDelete(value, &batch_); break;
    case InstructionKind::kDestroy: status = ParseFlag(header, value, &batch_.destroy); break;
    case InstructionKind::kRegenerate:
      status = ParseFlag(header, value, &batch_.regenerate);
      break;
    case InstructionKind::kRevoke: status = ParseRevoke(header, value, &batch_.revoke); break;
    case InstructionKind::kIgnored: break;
  }
  if (!status.ok()) return Fail(std::move(status));
  return Status::OK();
}

Result<ChangeBatch> InstructionParser::Finish() {
  if (!error_.ok()) return error_;
  return std::move(batch_);
}

Result<ChangeBatch> ParseInstructions(const HeaderPairs& headers) {
  InstructionParser parser;
  for (const auto& [name, value] : headers) {
    if (!parser.Add(name, value).ok()) break;
  }
  return parser.Finish();
}

Status CheckBatchFits(const SessionData& current, const ChangeBatch& batch, uint64_t max_bytes) {
  SessionData next = current;
  ApplyChanges(&next, batch.destroy, batch.deletes, batch.sets);
  return CheckSessionSize(SerializedSize(next), max_bytes);
}

}  // namespace sessiond
