// The JSON reader of X-Session-Set values (docs/HEADER-PROTOCOL.md,
// Instructions): one pass over the text that validates it and writes each
// top-level member's value in its stored form, without building a document.
//
// Acceptance is exactly that of nlohmann::json::parse(text) (strict: one
// value and nothing after it but whitespace; no comments), which sessiond
// used before and which the instruction_parser fuzz target keeps as an
// oracle: RFC 8259 JSON, whitespace being space, tab, LF and CR; strings of
// well-formed UTF-8 (no overlong forms, no encoded surrogates, nothing above
// U+10FFFF), no raw control characters, escapes \" \\ \/ \b \f \n \r \t and
// \uXXXX with surrogates paired; a UTF-8 byte order mark skipped at the very
// start; numbers whose value overflows a double refused. A syntax error is
// reported at nlohmann's byte offset: 1-based, of the byte that made the text
// invalid (one past the end when the text ends too early, after the token
// for a token that cannot come where it stands).
//
// The stored form of a value is nlohmann's dump(-1, ' ', ensure_ascii): no
// whitespace; strings with '"', '\\' and the control characters escaped
// (\b \f \n \r \t, else \u00xx), DEL and every non-ASCII code point as
// lowercase \uxxxx (surrogate pairs above U+FFFF), '/' unescaped; integers
// within the 64-bit range in decimal ("-0" is 0); other numbers as nlohmann
// prints the double the C library's strtod reads. A value holding an object
// (whose keys nlohmann sorts and deduplicates) and every number that is not
// a 64-bit integer are formatted by nlohmann itself, so they are stored
// byte for byte as before; the common values (strings, integers, literals
// and arrays of them) never reach it and allocate nothing but their output.
//
// The caller (header_protocol.cc) has already refused a NUL byte and nesting
// deeper than kMaxSetDepth; the reader does not rely on either for safety
// (it is bounded on any input) but its nesting bound is kMaxSetNesting.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sessiond {

// Containers deeper than this are refused as a syntax error; callers refuse
// anything deeper than kMaxSetDepth (32) before the reader runs.
inline constexpr int kMaxSetNesting = 64;

struct SetJsonResult {
  enum class Kind {
    kOk,
    kSyntax,     // invalid JSON; `byte` is nlohmann's offset
    kRange,      // a number whose value is not finite as a double
    kNotObject,  // valid JSON, but not an object
  };
  Kind kind = Kind::kOk;
  size_t byte = 0;

  bool ok() const { return kind == Kind::kOk; }
};

// Receives the members of the top-level object in document order (a repeated
// key comes again: the last one wins). `key` is decoded (UTF-8); `value` is
// the stored form. Both are valid only during the call. Members are reported
// as they are read, before the whole text is known to be valid: the receiver
// keeps them only when ReadSetJson returns kOk.
class SetJsonMembers {
 public:
  virtual void Member(std::string_view key, std::string_view value) = 0;

 protected:
  ~SetJsonMembers() = default;
};

// Reads `text`; `scratch` holds the value being written (its capacity is
// reused across calls).
SetJsonResult ReadSetJson(std::string_view text, SetJsonMembers* members, std::string* scratch);

}  // namespace sessiond
