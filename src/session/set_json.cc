#include "session/set_json.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>

#include <nlohmann/json.hpp>

namespace sessiond {

namespace {

using Json = nlohmann::json;

constexpr int kEof = -1;

// Bytes that stand for themselves inside a JSON string, in the text read and
// in the stored form: printable ASCII but '"' and '\\'.
struct PlainTable {
  bool plain[256];
  constexpr PlainTable() : plain() {
    for (int c = 0x20; c < 0x7F; ++c) plain[c] = c != '"' && c != '\\';
  }
};
constexpr PlainTable kPlain;

void AppendHex4(std::string* out, uint32_t unit) {
  static const char kHex[] = "0123456789abcdef";
  char buf[6] = {'\\', 'u', kHex[(unit >> 12) & 0xF], kHex[(unit >> 8) & 0xF], kHex[(unit >> 4) & 0xF],
                 kHex[unit & 0xF]};
  out->append(buf, sizeof(buf));
}

// One code point of a string in the stored form (nlohmann's dump_escaped
// with ensure_ascii).
void AppendStoredCodePoint(std::string* out, uint32_t cp) {
  switch (cp) {
    case 0x08: out->append("\\b", 2); return;
    case 0x09: out->append("\\t", 2); return;
    case 0x0A: out->append("\\n", 2); return;
    case 0x0C: out->append("\\f", 2); return;
    case 0x0D: out->append("\\r", 2); return;
    case 0x22: out->append("\\\"", 2); return;
    case 0x5C: out->append("\\\\", 2); return;
    default: break;
  }
  if (cp <= 0x1F || cp >= 0x7F) {
    if (cp <= 0xFFFF) {
      AppendHex4(out, cp);
    } else {
      AppendHex4(out, 0xD7C0 + (cp >> 10));
      AppendHex4(out, 0xDC00 + (cp & 0x3FF));
    }
    return;
  }
  out->push_back(static_cast<char>(cp));
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A port of nlohmann's lexer and (iterative) parser over a string_view. The
// read position follows nlohmann's exactly, including its reading of one
// byte past the end (EOF) and its "unget" after a number, so that an error's
// offset is the same: i_ is the count of bytes read (EOF counting as one).
class Reader {
 public:
  Reader(std::string_view text, SetJsonMembers* members, std::string* value)
      : s_(text.data()), n_(text.size()), members_(members), value_(value) {}

  SetJsonResult Read();

 private:
  enum class Token {
    kBeginObject,
    kEndObject,
    kBeginArray,
    kEndArray,
    kNameSeparator,
    kValueSeparator,
    kString,
    kNumber,
    kLiteral,
    kOutOfRange,  // a number that is not finite as a double
    kEnd,
    kError,
  };
  // What a string token is read for.
  enum class StringUse { kSkip, kKey, kValue };

  int Get() {
    const int c = i_ < n_ ? static_cast<unsigned char>(s_[i_]) : kEof;
    ++i_;
    return c;
  }
  void Unget() { --i_; }

  SetJsonResult Syntax() const { return SetJsonResult{SetJsonResult::Kind::kSyntax, i_}; }

  bool SkipBom();
  // The next token; a string is read for `use`.
  Token Scan(StringUse use);
  Token ScanLiteral(const char* rest);
  Token ScanString(StringUse use);
  bool ReadHex4(uint32_t* cp);
  // A multi-byte UTF-8 sequence whose lead byte `lead` was just read, checked
  // against nlohmann's ranges; its code point in *cp.
  bool ReadUtf8Tail(int lead, uint32_t* cp);
  Token ScanNumber();

  // The string use of the next token, from where the parser stands.
  StringUse ValueUse() const { return emitting_ ? StringUse::kValue : StringUse::kSkip; }
  StringUse KeyUse(int depth) const { return depth == 0 && top_object_ ? StringUse::kKey : StringUse::kSkip; }

  void BeginMember();
  bool EndMember();

  const char* const s_;
  const size_t n_;
  size_t i_ = 0;
  SetJsonMembers* const members_;
  std::string* const value_;  // the stored form of the current member's value

  bool top_object_ = false;
  // Inside a member's value, writing its stored form into value_.
  bool emitting_ = false;
  // The current member's value holds an object: nlohmann formats it whole.
  bool fallback_ = false;
  size_t token_start_ = 0;
  size_t value_start_ = 0;
  bool value_start_pending_ = false;
  std::string_view key_;     // the current member's key, decoded
  std::string key_scratch_;  // holds key_ when the key had escapes
};

bool Reader::SkipBom() {
  if (Get() == 0xEF) return Get() == 0xBB && Get() == 0xBF;
  Unget();
  return true;
}

Reader::Token Reader::Scan(StringUse use) {
  int c;
  do {
    c = Get();
  } while (c == ' ' || c == '\t' || c == '\n' || c == '\r');
  token_start_ = i_ - 1;
  if (value_start_pending_) {
    value_start_ = token_start_;
    value_start_pending_ = false;
  }
  switch (c) {
    case '[': return Token::kBeginArray;
    case ']': return Token::kEndArray;
    case '{': return Token::kBeginObject;
    case '}': return Token::kEndObject;
    case ':': return Token::kNameSeparator;
    case ',': return Token::kValueSeparator;
    case 't': return ScanLiteral("rue");
    case 'f': return ScanLiteral("alse");
    case 'n': return ScanLiteral("ull");
    case '"': return ScanString(use);
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      return ScanNumber();
    case 0:  // nlohmann's end of input; the caller refuses NUL bytes first
    case kEof:
      return Token::kEnd;
    default:
      return Token::kError;
  }
}

Reader::Token Reader::ScanLiteral(const char* rest) {
  const size_t start = i_ - 1;
  for (const char* p = rest; *p != '\0'; ++p) {
    if (Get() != static_cast<unsigned char>(*p)) return Token::kError;
  }
  if (emitting_) value_->append(s_ + start, i_ - start);
  return Token::kLiteral;
}

bool Reader::ReadHex4(uint32_t* cp) {
  uint32_t v = 0;
  for (int k = 0; k < 4; ++k) {
    const int c = Get();
    uint32_t d;
    if (c >= '0' && c <= '9') d = static_cast<uint32_t>(c - '0');
    else if (c >= 'A' && c <= 'F') d = static_cast<uint32_t>(c - 'A' + 10);
    else if (c >= 'a' && c <= 'f') d = static_cast<uint32_t>(c - 'a' + 10);
    else return false;
    v = (v << 4) | d;
  }
  *cp = v;
  return true;
}

bool Reader::ReadUtf8Tail(int lead, uint32_t* cp) {
  // nlohmann's next_byte_in_range tables (RFC 3629, section 4).
  int lo = 0x80, hi = 0xBF, more = 0;
  uint32_t v = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    more = 1;
    v = static_cast<uint32_t>(lead & 0x1F);
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    more = 2;
    v = static_cast<uint32_t>(lead & 0x0F);
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    more = 3;
    v = static_cast<uint32_t>(lead & 0x07);
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return false;  // 0x80..0xC1, 0xF5..0xFF
  }
  for (int k = 0; k < more; ++k) {
    const int c = Get();
    if (c < lo || c > hi) return false;
    v = (v << 6) | static_cast<uint32_t>(c & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  *cp = v;
  return true;
}

Reader::Token Reader::ScanString(StringUse use) {
  const size_t start = i_;  // the first byte after the opening quote
  bool decoded = false;     // key_scratch_ holds the key read so far
  if (use == StringUse::kValue) value_->push_back('"');
  for (;;) {
    // A run of plain bytes, copied at once.
    const size_t run = i_;
    while (i_ < n_ && kPlain.plain[static_cast<unsigned char>(s_[i_])]) ++i_;
    if (i_ > run) {
      if (use == StringUse::kValue) value_->append(s_ + run, i_ - run);
      if (decoded) key_scratch_.append(s_ + run, i_ - run);
    }
    const size_t at = i_;  // where the byte below starts
    const int c = Get();
    if (c == '"') {
      if (use == StringUse::kValue) value_->push_back('"');
      if (use == StringUse::kKey) key_ = decoded ? std::string_view(key_scratch_) : std::string_view(s_ + start, at - start);
      return Token::kString;
    }
    if (c == kEof || c < 0x20) return Token::kError;
    uint32_t cp = 0;
    if (c == '\\') {
      if (use == StringUse::kKey && !decoded) {
        key_scratch_.assign(s_ + start, at - start);
        decoded = true;
      }
      const int e = Get();
      switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
          if (!ReadHex4(&cp)) return Token::kError;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (!(Get() == '\\' && Get() == 'u')) return Token::kError;
            if (!ReadHex4(&low)) return Token::kError;
            if (low < 0xDC00 || low > 0xDFFF) return Token::kError;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Token::kError;
          }
          break;
        }
        default:
          return Token::kError;
      }
      if (use == StringUse::kValue) AppendStoredCodePoint(value_, cp);
      if (decoded) AppendUtf8(&key_scratch_, cp);
      continue;
    }
    if (c == 0x7F) {
      cp = 0x7F;
    } else if (!ReadUtf8Tail(c, &cp)) {
      return Token::kError;
    }
    if (use == StringUse::kValue) AppendStoredCodePoint(value_, cp);
    if (decoded) key_scratch_.append(s_ + at, i_ - at);  // well-formed UTF-8, as it came
  }
}

Reader::Token Reader::ScanNumber() {
  // nlohmann's scan_number state machine: an error is at the byte that
  // cannot continue the number; the byte that ends a good one is "ungot".
  const size_t start = i_ - 1;
  bool integer = true;
  int c = s_[start];
  if (c == '-') {
    c = Get();
    if (c < '0' || c > '9') return Token::kError;
  }
  if (c != '0') {
    do {
      c = Get();
    } while (c >= '0' && c <= '9');
  } else {
    c = Get();
  }
  if (c == '.') {
    integer = false;
    c = Get();
    if (c < '0' || c > '9') return Token::kError;
    do {
      c = Get();
    } while (c >= '0' && c <= '9');
  }
  if (c == 'e' || c == 'E') {
    integer = false;
    c = Get();
    if (c == '+' || c == '-') c = Get();
    if (c < '0' || c > '9') return Token::kError;
    do {
      c = Get();
    } while (c >= '0' && c <= '9');
  }
  Unget();
  const std::string_view token(s_ + start, i_ - start);

  if (integer) {
    // Within int64 (negative) or uint64: printed as it is read, but "-0".
    const bool negative = token[0] == '-';
    const std::string_view digits = token.substr(negative ? 1 : 0);
    const std::string_view max = negative ? "9223372036854775808" : "18446744073709551615";
    if (digits.size() < max.size() || (digits.size() == max.size() && digits <= max)) {
      if (emitting_) {
        if (token == "-0") {
          value_->push_back('0');
        } else {
          value_->append(token.data(), token.size());
        }
      }
      return Token::kNumber;
    }
  }
  // A double, as nlohmann reads it (strtod, in the C locale sessiond runs
  // in) and prints it.
  std::string text(token);
  const double d = std::strtod(text.c_str(), nullptr);
  // nlohmann refuses it where it stands for a value; anywhere else it is
  // just a token that cannot come there.
  if (!std::isfinite(d)) return Token::kOutOfRange;
  if (emitting_) value_->append(Json(d).dump(-1, ' ', /*ensure_ascii=*/true));
  return Token::kNumber;
}

void Reader::BeginMember() {
  value_->clear();
  emitting_ = true;
  fallback_ = false;
  value_start_pending_ = true;
}

bool Reader::EndMember() {
  emitting_ = false;
  if (fallback_) {
    // The value holds an object: nlohmann formats it (sorted, deduplicated
    // keys). The reader has validated it, so this cannot fail.
    const std::string_view text(s_ + value_start_, i_ - value_start_);
    try {
      *value_ = Json::parse(text.begin(), text.end()).dump(-1, ' ', /*ensure_ascii=*/true);
    } catch (const std::exception&) {
      return false;
    }
  }
  members_->Member(key_, *value_);
  return true;
}

SetJsonResult Reader::Read() {
  if (!SkipBom()) return Syntax();
  bool is_array[kMaxSetNesting];
  int depth = 0;
  Token token = Scan(StringUse::kSkip);
  bool closed = false;  // a container just closed: go straight to what follows a value
  for (;;) {
    if (!closed) {
      switch (token) {
        case Token::kBeginObject: {
          if (depth == 0) {
            top_object_ = true;
          } else if (emitting_) {
            emitting_ = false;
            fallback_ = true;
          }
          token = Scan(KeyUse(depth));
          if (token == Token::kEndObject) break;  // {}
          if (token != Token::kString) return Syntax();
          if (Scan(StringUse::kSkip) != Token::kNameSeparator) return Syntax();
          if (depth == kMaxSetNesting) return Syntax();
          is_array[depth++] = false;
          if (depth == 1 && top_object_) BeginMember();
          token = Scan(ValueUse());
          continue;
        }
        case Token::kBeginArray: {
          if (emitting_) value_->push_back('[');
          token = Scan(ValueUse());
          if (token == Token::kEndArray) {
            if (emitting_) value_->push_back(']');
            break;
          }
          if (depth == kMaxSetNesting) return Syntax();
          is_array[depth++] = true;
          continue;
        }
        case Token::kString:
        case Token::kNumber:
        case Token::kLiteral:
          break;
        case Token::kOutOfRange:
          return SetJsonResult{SetJsonResult::Kind::kRange, 0};
        default:
          return Syntax();  // a token that cannot start a value
      }
    }
    closed = false;
    // A value was read.
    if (depth == 0) break;
    if (depth == 1 && top_object_ && !EndMember()) return Syntax();
    if (is_array[depth - 1]) {
      token = Scan(StringUse::kSkip);
      if (token == Token::kValueSeparator) {
        if (emitting_) value_->push_back(',');
        token = Scan(ValueUse());
        continue;
      }
      if (token != Token::kEndArray) return Syntax();
      if (emitting_) value_->push_back(']');
      --depth;
      closed = true;
      continue;
    }
    token = Scan(StringUse::kSkip);
    if (token == Token::kValueSeparator) {
      if (Scan(KeyUse(depth - 1)) != Token::kString) return Syntax();
      if (Scan(StringUse::kSkip) != Token::kNameSeparator) return Syntax();
      if (depth == 1 && top_object_) BeginMember();
      token = Scan(ValueUse());
      continue;
    }
    if (token != Token::kEndObject) return Syntax();
    --depth;
    closed = true;
  }
  // Strict: nothing but whitespace after the value.
  if (Scan(StringUse::kSkip) != Token::kEnd) return Syntax();
  if (!top_object_) return SetJsonResult{SetJsonResult::Kind::kNotObject, 0};
  return SetJsonResult{};
}

}  // namespace

SetJsonResult ReadSetJson(std::string_view text, SetJsonMembers* members, std::string* scratch) {
  Reader reader(text, members, scratch);
  return reader.Read();
}

}  // namespace sessiond
