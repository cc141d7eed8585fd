// JSON text helpers shared by the session data model and the JSON access log.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sessiond {

// Appends `s` as a JSON string literal, ASCII only: '"', '\\' and control
// characters escaped, every non-ASCII code point as \uXXXX (surrogate pairs
// above U+FFFF). Invalid UTF-8 bytes become U+FFFD, so the output is always
// valid JSON and never contains CR, LF or NUL.
void AppendJsonString(std::string* out, std::string_view s);

// Appends the UTF-8 encoding of code point `cp` (at most U+10FFFF; the
// caller has already checked it, surrogates included).
void AppendUtf8(std::string* out, uint32_t cp);

}  // namespace sessiond
