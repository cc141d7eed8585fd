// The request path as access rules see it and as the backend receives it
// (docs/HTTP.md, Path normalisation).
//
// An access rule is only as good as the agreement between the path it was
// matched against and the path the backend acts on. Backends disagree about
// "/a/../b", "%2e%2e", "//a", "/a;x" or "/A", so sessiond normalises the
// path once, matches rules against the result, and forwards exactly that
// result. What cannot be normalised into one unambiguous path is refused
// (the filter answers 400):
//
//   - "%XX" with XX not two hex digits;
//   - an encoded "/" (%2F), an encoded or raw "\" (%5C), an encoded NUL
//     (%00): backends split, or do not split, segments on them;
//   - an encoded ";" (%3B): a backend that decodes before it strips segment
//     parameters would read "/admin%3Bx" as "/admin";
//   - a double encoding: an encoded "%" (%25) followed by two hex digits,
//     however those were spelled ("%252e", "%25%32%65"): a backend that
//     decodes twice would read them as ".";
//   - a raw "#" in the path (a fragment marker for some backends);
//   - an overlong UTF-8 sequence, raw or percent-encoded (C0, C1; E0 followed
//     by 80..9F; F0 followed by 80..8F): lenient decoders read "%C0%AE" as ".";
//   - a segment whose name ends in "." or an encoded space (other than "."
//     and ".."): Windows file systems drop them, so "/admin." is "/admin" there.
//
// Otherwise, on the path (the query is kept byte for byte):
//   - percent-encoded unreserved bytes (ALPHA DIGIT - . _ ~) are decoded;
//     every other encoding is written with upper-case hex, and raw bytes
//     0x80-0xFF are percent-encoded, so each byte string has one spelling;
//   - empty segments are dropped ("//a" is "/a"), and so are segments with
//     an empty name and only parameters ("/;x/a" is "/a"); a trailing "/"
//     is kept;
//   - dot segments are resolved (RFC 3986 section 5.2.4); a segment whose
//     name (the part before its first ";") is "." or ".." is a dot segment,
//     so "..;x" is one too, as servlet containers read it; ".." at the root
//     stays at the root.
// The match key is the normalised path with each segment's parameters
// (";..." up to the next "/") removed and ASCII letters lower-cased: rules
// ignore case and parameters, because some backends do ("/ADMIN;x" reaches
// "/admin" on a case-insensitive servlet container).
//
// Used by the session filter and by the configuration (rule paths). Pure,
// thread-safe; the output strings keep their capacity between calls,
// so a filter that reuses one NormalizedPath allocates nothing in steady state.
#pragma once

#include <string>
#include <string_view>

namespace sessiond {

struct NormalizedPath {
  // The target to forward: the normalised path, then "?query" when the
  // request had one.
  std::string target;
  // The length of the path part of `target`.
  size_t path_size = 0;
  // What rules are matched against (see above). Always starts with "/".
  std::string match_key;

  std::string_view path() const { return std::string_view(target).substr(0, path_size); }
};

enum class PathResult {
  kOk,        // *out holds the normalised target and its match key
  kNotAPath,  // the asterisk-form "*" (OPTIONS *): no path, no rule applies
  kRefused,   // ambiguous or malformed: answer 400; *reason says why
};

// Normalises an origin-form request target ("/path?query") or "*".
// `reason` (may be null) gets a static description for the debug log.
PathResult NormalizeTarget(std::string_view target, NormalizedPath* out, const char** reason);

// True when `path` (no query) is already in normalised form and holds no
// segment parameters: the form the paths of access rules are written in
// (docs/CONFIGURATION.md, routes). Rules compare it lower-cased.
bool IsCanonicalRulePath(std::string_view path);

}  // namespace sessiond
