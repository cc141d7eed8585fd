#include "store/session_data.h"

#include <algorithm>
#include <cstring>

#include "base/json_text.h"

namespace sessiond {

namespace {

// ---- Reading the JSON form ----------------------------------------------------

// Bytes inside a JSON string: most are copied as they are; these end the run.
enum StringByte : unsigned char { kPlainByte = 0, kQuoteByte, kBackslashByte, kControlByte };

struct ByteTables {
  unsigned char in_string[256];
  bool in_literal[256];  // [0-9+-.eEtrufalsn]: what a bare number or literal may hold
  constexpr ByteTables() : in_string(), in_literal() {
    for (int c = 0; c < 0x20; ++c) in_string[c] = kControlByte;
    in_string[static_cast<unsigned char>('"')] = kQuoteByte;
    in_string[static_cast<unsigned char>('\\')] = kBackslashByte;
    const char literal[] = "0123456789+-.eEtrufalsn";
    for (const char* p = literal; *p != '\0'; ++p) in_literal[static_cast<unsigned char>(*p)] = true;
  }
};
constexpr ByteTables kBytes;

// Walks the members of one session JSON object (the grammar is in the header
// comment of ParseSessionJson). Allocates only when asked to decode keys.
class MemberCursor {
 public:
  enum class Step { kMember, kEnd, kError };

  explicit MemberCursor(std::string_view text) : s_(text) {}

  // Decodes a whole JSON string literal (quotes included) into *out.
  static bool DecodeLiteral(std::string_view literal, std::string* out) {
    MemberCursor cursor(literal);
    return cursor.ReadString(out) && cursor.AtEnd();
  }

  // Consumes the opening brace (and an empty object whole).
  bool Begin() {
    if (!Consume('{')) return false;
    if (Consume('}')) {
      if (!AtEnd()) return false;
      done_ = true;
    }
    return true;
  }

  // The next member: its key decoded into *key (when not null; cleared
  // first), the key's literal with its quotes and the value's text.
  Step Next(std::string* key, std::string_view* raw_key, std::string_view* value) {
    if (done_) return Step::kEnd;
    if (key) key->clear();
    const size_t key_start = i_;
    if (!ReadString(key)) return Step::kError;
    *raw_key = s_.substr(key_start, i_ - key_start);
    if (!Consume(':')) return Step::kError;
    const size_t value_start = i_;
    if (!SkipValue()) return Step::kError;
    *value = s_.substr(value_start, i_ - value_start);
    if (Consume(',')) return Step::kMember;
    if (Consume('}') && AtEnd()) {
      done_ = true;
      return Step::kMember;
    }
    return Step::kError;
  }

 private:
  bool AtEnd() const { return i_ == s_.size(); }

  bool Consume(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  bool ReadHex4(uint32_t* out) {
    if (s_.size() - i_ < 4) return false;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      uint32_t d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return false;
      v = (v << 4) | d;
    }
    *out = v;
    return true;
  }

  // A JSON string at i_, decoded into *out (when not null). Runs of plain
  // bytes are found with one table lookup per byte and copied at once.
  bool ReadString(std::string* out) { return out ? ReadStringAs<true>(out) : ReadStringAs<false>(nullptr); }

  template <bool kDecode>
  bool ReadStringAs(std::string* out) {
    if (!Consume('"')) return false;
    for (;;) {
      const size_t run = i_;
      i_ = SkipPlain(i_);
      if constexpr (kDecode) {
        if (i_ > run) out->append(s_.data() + run, i_ - run);
      }
      if (i_ >= s_.size()) return false;  // unterminated
      const unsigned char kind = kBytes.in_string[static_cast<unsigned char>(s_[i_++])];
      if (kind == kQuoteByte) return true;
      if (kind == kControlByte) return false;
      if (i_ >= s_.size()) return false;
      const char e = s_[i_++];
      char plain = 0;
      switch (e) {
        case '"': case '\\': case '/': plain = e; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          if (!ReadHex4(&cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // must pair with a low surrogate
            uint32_t low = 0;
            if (!Consume('\\') || !Consume('u') || !ReadHex4(&low) || low < 0xDC00 || low > 0xDFFF) {
              return false;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return false;
          }
          if constexpr (kDecode) AppendUtf8(out, cp);
          continue;
        }
        default: return false;
      }
      if constexpr (kDecode) out->push_back(plain);
    }
  }

  // Advances over one value: a string, an object or array (brackets counted,
  // strings skipped whole), or a bare literal/number.
  bool SkipValue() {
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '"') return ReadStringAs<false>(nullptr);
    if (c == '{' || c == '[') {
      size_t depth = 0;
      const char* const d = s_.data();
      const size_t n = s_.size();
      size_t i = i_;
      while (i < n) {
        const char b = d[i];
        if (b == '"') {
          i_ = i;
          if (!ReadStringAs<false>(nullptr)) return false;
          i = i_;
          continue;
        }
        ++i;
        if (b == '{' || b == '[') {
          ++depth;
        } else if ((b == '}' || b == ']') && --depth == 0) {
          i_ = i;
          return true;
        }
      }
      i_ = i;
      return false;
    }
    const char* const d = s_.data();
    const size_t n = s_.size();
    const size_t start = i_;
    size_t i = start;
    while (i < n && d[i] != ',' && d[i] != '}') {
      if (!kBytes.in_literal[static_cast<unsigned char>(d[i])]) return false;
      ++i;
    }
    i_ = i;
    return i > start;
  }

  // The end of the run of plain string bytes starting at i. Locals, not
  // members, in the loop: a member would be stored on every byte, since the
  // compiler must assume the bytes read may alias it.
  size_t SkipPlain(size_t i) const {
    const char* const d = s_.data();
    const size_t n = s_.size();
    while (i < n && kBytes.in_string[static_cast<unsigned char>(d[i])] == kPlainByte) ++i;
    return i;
  }

  std::string_view s_;
  size_t i_ = 0;
  bool done_ = false;
};

// True when AppendJsonString(decoded key) would reproduce `literal` (the
// key's text with its quotes) byte for byte: printable ASCII, no escapes.
// The decoded key is then the literal without its quotes.
bool IsVerbatimKeyLiteral(std::string_view literal) {
  for (const char ch : literal.substr(1, literal.size() - 2)) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7E || c == '\\') return false;
  }
  return true;
}

// The key a string literal that MemberCursor accepted stands for: a view of
// the literal itself when it has no escapes, else decoded into *scratch.
std::string_view KeyOf(std::string_view literal, std::string* scratch) {
  if (IsVerbatimKeyLiteral(literal)) return literal.substr(1, literal.size() - 2);
  scratch->clear();
  (void)MemberCursor::DecodeLiteral(literal, scratch);  // accepted once already: cannot fail
  return *scratch;
}

void AppendMember(std::string* out, bool* first, std::string_view key, std::string_view value) {
  if (!*first) out->push_back(',');
  *first = false;
  AppendJsonString(out, key);
  out->push_back(':');
  out->append(value);
}

// The general path of MergeSessionJson, for input that is not strictly sorted
// by key (never our own output, which comes from a std::map).
bool MergeViaMap(std::string_view current, bool clear, const std::vector<std::string>& deletes,
                 const std::map<std::string, std::optional<std::string>>& sets, std::string* out) {
  out->clear();
  SessionData data;
  if (!ParseSessionJson(current, &data)) return false;
  ApplyChanges(&data, clear, deletes, sets);
  AppendSession(out, data);
  return true;
}

}  // namespace

bool ChangeBatch::sets_a_value() const {
  for (const auto& [key, value] : sets) {
    if (value) return true;
  }
  return false;
}

std::string SerializeSession(const SessionData& data) {
  std::string out;
  out.reserve(SerializedSize(data));
  AppendSession(&out, data);
  return out;
}

void AppendSession(std::string* out, const SessionData& data) {
  out->push_back('{');
  bool first = true;
  for (const auto& [key, value] : data) AppendMember(out, &first, key, value);
  out->push_back('}');
}

uint64_t SerializedSize(const SessionData& data) {
  uint64_t size = 2;  // {}
  std::string scratch;
  for (const auto& [key, value] : data) {
    scratch.clear();
    AppendJsonString(&scratch, key);
    size += scratch.size() + 1 + value.size();  // "key":value
  }
  if (data.size() > 1) size += data.size() - 1;  // commas
  return size;
}

bool ParseSessionJson(std::string_view json, SessionData* out) {
  out->clear();
  MemberCursor cursor(json);
  if (!cursor.Begin()) return false;
  std::string key;
  std::string_view raw_key, value;
  for (;;) {
    switch (cursor.Next(&key, &raw_key, &value)) {
      case MemberCursor::Step::kMember: (*out)[key].assign(value); break;
      case MemberCursor::Step::kEnd: return true;
      case MemberCursor::Step::kError: out->clear(); return false;
    }
  }
}

std::string SubjectOfValue(std::string_view v) {
  if (v.empty()) return std::string();
  if (v.front() == '"') {
    std::string decoded;
    if (!MemberCursor::DecodeLiteral(v, &decoded) || decoded.empty() || decoded.size() > 256) return std::string();
    for (const char ch : decoded) {
      const unsigned char c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c == 0x7F) return std::string();
    }
    return decoded;
  }
  size_t i = v.front() == '-' ? 1 : 0;
  if (i >= v.size() || v.size() > 20) return std::string();
  for (; i < v.size(); ++i) {
    if (v[i] < '0' || v[i] > '9') return std::string();
  }
  return std::string(v);
}

std::string SubjectOf(const SessionData& data, std::string_view subject_key) {
  if (subject_key.empty()) return std::string();
  auto it = data.find(std::string(subject_key));
  return it == data.end() ? std::string() : SubjectOfValue(it->second);
}

bool ForEachSessionMember(std::string_view json,
                          const std::function<void(std::string_view key, std::string_view value)>& fn) {
  if (json.empty()) return true;
  MemberCursor cursor(json);
  if (!cursor.Begin()) return false;
  std::string_view raw_key, value;
  for (;;) {
    switch (cursor.Next(nullptr, &raw_key, &value)) {
      case MemberCursor::Step::kMember: fn(raw_key, value); break;
      case MemberCursor::Step::kEnd: return true;
      case MemberCursor::Step::kError: return false;
    }
  }
}

bool IsSessionJson(std::string_view json) {
  MemberCursor cursor(json);
  if (!cursor.Begin()) return false;
  std::string_view raw_key, value;
  for (;;) {
    switch (cursor.Next(nullptr, &raw_key, &value)) {
      case MemberCursor::Step::kMember: break;
      case MemberCursor::Step::kEnd: return true;
      case MemberCursor::Step::kError: return false;
    }
  }
}

bool SessionJsonHasKey(std::string_view json, std::string_view key) {
  MemberCursor cursor(json);
  if (!cursor.Begin()) return false;
  std::string scratch;
  std::string_view raw_key, value;
  for (;;) {
    switch (cursor.Next(nullptr, &raw_key, &value)) {
      case MemberCursor::Step::kMember:
        if (KeyOf(raw_key, &scratch) == key) return true;
        break;
      case MemberCursor::Step::kEnd:
      case MemberCursor::Step::kError:
        return false;
    }
  }
}

void ApplyChanges(SessionData* data, bool clear, const std::vector<std::string>& deletes,
                  const std::map<std::string, std::optional<std::string>>& sets) {
  if (clear) data->clear();
  for (const auto& key : deletes) data->erase(key);
  for (const auto& [key, value] : sets) {
    if (value) (*data)[key] = *value;
    else data->erase(key);
  }
}

bool MergeSessionJson(std::string_view current, bool clear, const std::vector<std::string>& deletes,
                      const std::map<std::string, std::optional<std::string>>& sets, std::string* out) {
  out->clear();
  if (current.empty()) current = "{}";
  MemberCursor cursor(current);
  if (!cursor.Begin()) return false;
  // Deletes are looked up once per current key; they are usually none.
  std::vector<std::string_view> deleted(deletes.begin(), deletes.end());
  std::sort(deleted.begin(), deleted.end());

  out->push_back('{');
  bool first = true;
  auto next_set = sets.begin();
  // Sets ordered before `key` (all remaining ones when key is null).
  const auto flush_sets_before = [&](std::optional<std::string_view> key) {
    for (; next_set != sets.end() && (!key || std::string_view(next_set->first) < *key); ++next_set) {
      if (next_set->second) AppendMember(out, &first, next_set->first, *next_set->second);
    }
  };
  // Keys are compared decoded; most need no decoding (KeyOf). Two scratch
  // buffers alternate so that `previous` survives decoding the next key.
  std::string scratch[2];
  int next_scratch = 0;
  std::string_view key, previous;
  bool have_previous = false;
  std::string_view raw_key, value;
  for (;;) {
    const MemberCursor::Step step = cursor.Next(nullptr, &raw_key, &value);
    if (step == MemberCursor::Step::kError) {
      out->clear();
      return false;
    }
    if (step == MemberCursor::Step::kEnd) break;
    key = KeyOf(raw_key, &scratch[next_scratch]);
    const bool verbatim = key.data() != scratch[next_scratch].data();
    if (!verbatim) next_scratch ^= 1;
    if (have_previous && !(previous < key)) return MergeViaMap(current, clear, deletes, sets, out);
    previous = key;
    have_previous = true;
    flush_sets_before(key);
    if (next_set != sets.end() && next_set->first == key) {  // Set replaces (or null deletes) it
      if (next_set->second) AppendMember(out, &first, key, *next_set->second);
      ++next_set;
      continue;
    }
    if (clear || std::binary_search(deleted.begin(), deleted.end(), key)) continue;
    if (!verbatim) {
      AppendMember(out, &first, key, value);  // the key in its one JSON form
      continue;
    }
    if (!first) out->push_back(',');
    first = false;
    out->append(raw_key);  // exactly what AppendJsonString(key) would write
    out->push_back(':');
    out->append(value);
  }
  flush_sets_before(std::nullopt);
  out->push_back('}');
  return true;
}

Status CheckSessionSize(uint64_t serialized_size, uint64_t max_bytes) {
  if (serialized_size <= max_bytes) return Status::OK();
  return Status::TooLarge("session would be " + std::to_string(serialized_size) +
                          " bytes, over max_session_bytes (" + std::to_string(max_bytes) + ")");
}

}  // namespace sessiond
