// HeadParser (see head_parser.h): one resumable, table-driven pass over a
// request or response head.
//
// The scan is a state machine whose state is a Phase and a few offsets, so a
// call that runs out of bytes stops anywhere (inside a method, a name, a
// value, between CR and LF) and the next call continues at the next byte.
// Within a call each phase is a tight loop over its own byte class: with
// SSE2, runs of plain value or target bytes are skipped 16 at a time (32 in
// long values), and the letters, digits, '-' and '.' of field names likewise;
// any other byte ends the run and is looked at on its own. Each field name is
// classified (HeaderId) as soon as its ':' is seen, by first letter and
// length and one case-folded compare of a few words, and each field is
// appended to the HeaderList and checked against the framing rules the
// moment its line ends. The start line is Run's, the fields ScanFields'.
#include "http/head_parser.h"

#include <array>
#include <cstring>
#include <string_view>
#include <type_traits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sessiond {

namespace {

// RFC 9112 section 2.2 lets a server skip empty lines before a request line;
// more than this many are refused.
constexpr int kMaxLeadingEmptyLines = 4;

// Byte classes, one table lookup per byte where a byte is looked at alone.
// (Field-value bytes are HTAB, SP, VCHAR and obs-text; request-target bytes
// VCHAR and, like nginx, obs-text: FindBelow below.)
enum : uint8_t {
  kTchar = 1,  // token characters (RFC 9110 section 5.6.2)
};

constexpr std::array<uint8_t, 256> MakeClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    bool tchar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    for (char x : std::string_view("!#$%&'*+-.^_`|~")) tchar = tchar || c == x;
    t[c] = tchar ? kTchar : 0;
  }
  return t;
}
constexpr std::array<uint8_t, 256> kClasses = MakeClasses();

inline bool Is(unsigned char c, uint8_t cls) { return (kClasses[c] & cls) != 0; }
inline bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }

// The vector scans below look at 16 bytes at a time. When fewer than 16
// are left before `e`, they load the last 16 bytes before `e` instead and
// ignore those before `p` (`begin`, the start of the caller's bytes, says
// whether there are 16): a short tail costs one block too. Their constants
// are gathered in Scanner.
#if defined(__SSE2__)
struct Scanner {
  // FindBelow: min(v, min - 1) == v exactly when v < min.
  const __m128i below_sp = _mm_set1_epi8(0x1F);
  const __m128i below_vchar = _mm_set1_epi8(0x20);
  const __m128i del = _mm_set1_epi8(0x7F);
  // FindNotNameByte. Unsigned ranges through signed compares:
  // x + (0x80 - lo) < 0x80 + n holds exactly for lo <= x < lo + n.
  const __m128i fold = _mm_set1_epi8(0x20);
  const __m128i letter_bias = _mm_set1_epi8(static_cast<char>(0x80 - 'a'));
  const __m128i letter_end = _mm_set1_epi8(static_cast<char>(0x80 + 26));
  const __m128i range_bias = _mm_set1_epi8(static_cast<char>(0x80 - '-'));
  const __m128i range_end = _mm_set1_epi8(static_cast<char>(0x80 + ('9' - '-' + 1)));
  const __m128i slash = _mm_set1_epi8('/');

  // Bit i set: byte i of the block at `at` is below min (0x20 or 0x21) or DEL.
  __attribute__((always_inline)) unsigned Below(const unsigned char* at, bool vchar) const {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    const __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(v, vchar ? below_vchar : below_sp), v);
    return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(low, _mm_cmpeq_epi8(v, del))));
  }
  // Bit i set: byte i of the block at `at` is not a letter, digit, '-' or '.'.
  __attribute__((always_inline)) unsigned NotName(const unsigned char* at) const {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    // OR 0x20 maps exactly 'A'-'Z' and 'a'-'z' onto 'a'-'z'; '-' '.' '/'
    // and the digits are one range, less '/'.
    const __m128i letter = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(v, fold), letter_bias), letter_end);
    const __m128i range = _mm_cmplt_epi8(_mm_add_epi8(v, range_bias), range_end);
    const __m128i ok = _mm_or_si128(letter, _mm_andnot_si128(_mm_cmpeq_epi8(v, slash), range));
    return ~static_cast<unsigned>(_mm_movemask_epi8(ok)) & 0xFFFFu;
  }
  // The first byte of [p, e) whose bit `mask_of` sets, or e.
  // Needs 16 bytes before e.
  template <class MaskOf>
  __attribute__((always_inline)) static const unsigned char* Find(const unsigned char* p, const unsigned char* e,
                                                                  MaskOf mask_of) {
    for (const unsigned char* last = e - 16; p <= last; p += 16) {
      if (const unsigned mask = mask_of(p)) return p + __builtin_ctz(mask);
    }
    if (p == e) return e;
    const unsigned mask = mask_of(e - 16) >> (16 - (e - p));
    return mask != 0 ? p + __builtin_ctz(mask) : e;
  }
};
#else
struct Scanner {};
#endif

// The first byte of [p, e) below SP (`vchar`: below or at SP) or DEL, or e:
// the end of a run of field-value bytes without HTAB (the caller skips
// those), or of request-target bytes.
__attribute__((always_inline)) inline const unsigned char* FindBelow(const Scanner& s, const unsigned char* begin,
                                                                    const unsigned char* p, const unsigned char* e,
                                                                    bool vchar) {
#if defined(__SSE2__)
  if (e - begin >= 16) {
    // Long values (cookies) two blocks at a time.
    for (const unsigned char* last = e - 32; p <= last; p += 32) {
      if (const unsigned mask = s.Below(p, vchar) | s.Below(p + 16, vchar) << 16) return p + __builtin_ctz(mask);
    }
    return Scanner::Find(p, e, [&](const unsigned char* at) { return s.Below(at, vchar); });
  }
#else
  (void)s;
  (void)begin;
#endif
  const unsigned char min = vchar ? 0x21 : 0x20;
  while (p < e && *p >= min && *p != 0x7F) ++p;
  return p;
}

// The first byte of [p, e) that is not a letter, a digit, '-' or '.', or e:
// the bytes of almost every field name and host name.
__attribute__((always_inline)) inline const unsigned char* FindNotNameByte(const Scanner& s,
                                                                          const unsigned char* begin,
                                                                          const unsigned char* p,
                                                                          const unsigned char* e) {
#if defined(__SSE2__)
  if (e - begin >= 16) return Scanner::Find(p, e, [&](const unsigned char* at) { return s.NotName(at); });
#else
  (void)s;
  (void)begin;
#endif
  auto name_byte = [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  };
  while (p < e && name_byte(*p)) ++p;
  return p;
}

// The end of the field-value bytes starting at d[p] (HTAB, SP, VCHAR,
// obs-text), at most e.
__attribute__((always_inline)) inline size_t ScanValue(const Scanner& s, const unsigned char* d, size_t p, size_t e) {
  while (true) {
    p = static_cast<size_t>(FindBelow(s, d, d + p, d + e, /*vchar=*/false) - d);
    if (p == e || d[p] != '\t') return p;  // usually at the CR
    ++p;
  }
}

// ---- field-name classification -----------------------------------------------
//
// The name is a token (validated before), so OR-ing 0x20 into its bytes folds
// the upper-case letters onto the lower-case ones and maps no other token
// byte onto a letter, digit or '-' (only CR and 0x10-0x19 would, and they
// are not token bytes): one compare per word is an exact case-insensitive
// match against a lower-case literal.

inline bool Word8(const unsigned char* p, const char* lit) {
  uint64_t a, b;
  memcpy(&a, p, 8);
  memcpy(&b, lit, 8);
  return (a | 0x2020202020202020ULL) == b;
}
inline bool Word4(const unsigned char* p, const char* lit) {
  uint32_t a, b;
  memcpy(&a, p, 4);
  memcpy(&b, lit, 4);
  return (a | 0x20202020U) == b;
}
inline bool Word2(const unsigned char* p, const char* lit) {
  uint16_t a, b;
  memcpy(&a, p, 2);
  memcpy(&b, lit, 2);
  return static_cast<uint16_t>(a | 0x2020U) == b;
}

// The N-1 bytes at p equal `lit` (lower case letters, digits, '-'), case
// folded. Overlapping words cover lengths that are not multiples of a word.
template <size_t N>
inline bool NameIs(const unsigned char* p, const char (&lit)[N]) {
  constexpr size_t n = N - 1;
  static_assert(n >= 2, "names of at least two bytes");
  if constexpr (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      if (!Word8(p + i, lit + i)) return false;
    }
    return Word8(p + n - 8, lit + n - 8);
  } else if constexpr (n >= 4) {
    return Word4(p, lit) && Word4(p + n - 4, lit + n - 4);
  } else {
    return Word2(p, lit) && Word2(p + n - 2, lit + n - 2);
  }
}

// ClassifyHeader (http/headers.cc) for a name known to be a token.
__attribute__((always_inline)) inline HeaderId ClassifyTokenName(const unsigned char* p, size_t n) {
  switch (p[0] | 0x20) {
    case 'c':
      if (n == 6 && NameIs(p, "cookie")) return HeaderId::kCookie;
      if (n == 10 && NameIs(p, "connection")) return HeaderId::kConnection;
      if (n == 14 && NameIs(p, "content-length")) return HeaderId::kContentLength;
      break;
    case 'e':
      if (n == 6 && NameIs(p, "expect")) return HeaderId::kExpect;
      break;
    case 'f':
      if (n == 9 && NameIs(p, "forwarded")) return HeaderId::kForwarded;
      break;
    case 'h':
      if (n == 4 && NameIs(p, "host")) return HeaderId::kHost;
      break;
    case 'k':
      if (n == 10 && NameIs(p, "keep-alive")) return HeaderId::kKeepAlive;
      break;
    case 'o':
      if (n == 6 && NameIs(p, "origin")) return HeaderId::kOrigin;
      break;
    case 'p':
      if (n >= 6 && NameIs(p, "proxy-")) return HeaderId::kProxyAny;
      break;
    case 'r':
      if (n == 7 && NameIs(p, "referer")) return HeaderId::kReferer;
      break;
    case 's':
      if (n == 10 && NameIs(p, "set-cookie")) return HeaderId::kSetCookie;
      break;
    case 't':
      if (n == 2 && NameIs(p, "te")) return HeaderId::kTe;
      if (n == 7 && NameIs(p, "trailer")) return HeaderId::kTrailer;
      if (n == 17 && NameIs(p, "transfer-encoding")) return HeaderId::kTransferEncoding;
      break;
    case 'u':
      if (n == 7 && NameIs(p, "upgrade")) return HeaderId::kUpgrade;
      if (n == 10 && NameIs(p, "user-agent")) return HeaderId::kUserAgent;
      break;
    case 'v':
      if (n == 3 && NameIs(p, "via")) return HeaderId::kVia;
      break;
    case 'x':
      // "X-Session-*" with '-' or '_' as either separator.
      if (n >= 10 && (p[1] == '-' || p[1] == '_') && (p[9] == '-' || p[9] == '_') && NameIs(p + 2, "session")) {
        return HeaderId::kSessionAny;
      }
      if (n == 12 && NameIs(p, "x-request-id")) return HeaderId::kXRequestId;
      if (n == 15 && NameIs(p, "x-forwarded-for")) return HeaderId::kXForwardedFor;
      if (n == 16 && NameIs(p, "x-forwarded-host")) return HeaderId::kXForwardedHost;
      if (n == 16 && NameIs(p, "x-forwarded-port")) return HeaderId::kXForwardedPort;
      if (n == 17 && NameIs(p, "x-forwarded-proto")) return HeaderId::kXForwardedProto;
      break;
    default:
      break;
  }
  return HeaderId::kOther;
}

inline bool Literal(const unsigned char* p, const char* lit, size_t n) { return memcmp(p, lit, n) == 0; }

// ParseContentLength (http/message.h), inline: 1..18 plain digits.
inline bool ParseDigits(std::string_view value, uint64_t* out) {
  if (value.empty() || value.size() > 18) return false;
  uint64_t n = 0;
  for (const char ch : value) {
    const unsigned digit = static_cast<unsigned char>(ch) - static_cast<unsigned>('0');
    if (digit > 9) return false;
    n = n * 10 + digit;
  }
  *out = n;
  return true;
}

// The fields HeadParser::OnField looks at: framing, Host, Connection, Expect.
inline bool IsFramingField(HeaderId id) {
  constexpr uint32_t kMask = 1u << static_cast<int>(HeaderId::kContentLength) |
                             1u << static_cast<int>(HeaderId::kTransferEncoding) |
                             1u << static_cast<int>(HeaderId::kConnection) | 1u << static_cast<int>(HeaderId::kHost) |
                             1u << static_cast<int>(HeaderId::kExpect);
  static_assert(static_cast<int>(HeaderId::kSessionAny) < 32, "HeaderId fits a 32-bit mask");
  return (kMask >> static_cast<int>(id)) & 1u;
}

// HasToken(list, "close") and HasToken(list, "keep-alive") in one pass:
// comma-separated items, OWS around them ignored, any case. The word
// compares of NameIs are exact here too: a field value holds no CR and no
// byte below SP but HTAB, so only letters fold onto letters.
void ScanConnectionTokens(std::string_view list, bool* close, bool* keep_alive) {
  const unsigned char* s = reinterpret_cast<const unsigned char*>(list.data());
  const size_t n = list.size();
  // The usual values, whole.
  if (n == 10 && NameIs(s, "keep-alive")) {
    *keep_alive = true;
    return;
  }
  if (n == 5 && Word4(s, "clos") && (s[4] | 0x20) == 'e') {
    *close = true;
    return;
  }
  size_t i = 0;
  while (i < n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) ++i;
    const size_t start = i;
    while (i < n && s[i] != ',') ++i;
    size_t end = i;
    while (end > start && s[end - 1] <= ' ') --end;
    if (end - start == 5 && Word4(s + start, "clos") && (s[start + 4] | 0x20) == 'e') *close = true;
    if (end - start == 10 && NameIs(s + start, "keep-alive")) *keep_alive = true;
  }
}

// The bytes at p equal one of the literals (all of the same length).
template <size_t N, class... Rest>
inline bool OneOf(const unsigned char* p, const char (&first)[N], const Rest&... rest) {
  if (memcmp(p, first, N - 1) == 0) return true;
  if constexpr (sizeof...(rest) > 0) {
    return OneOf(p, rest...);
  } else {
    return false;
  }
}

}  // namespace

// The methods http-parser knows (case-sensitive), the set sessiond has always
// accepted: anything else is 400 (docs/HTTP.md, "Parsing").
HeadParser::Method HeadParser::MatchMethod(const unsigned char* p, size_t n) {
  switch (n) {
    case 3:
      if (OneOf(p, "GET", "PUT", "ACL")) return Method::kOther;
      break;
    case 4:
      if (Literal(p, "HEAD", 4)) return Method::kHead;
      if (OneOf(p, "POST", "COPY", "LOCK", "MOVE", "BIND", "LINK")) return Method::kOther;
      break;
    case 5:
      if (OneOf(p, "PATCH", "TRACE", "MKCOL", "PURGE", "MERGE")) return Method::kOther;
      break;
    case 6:
      if (OneOf(p, "DELETE", "SEARCH", "UNLOCK", "REBIND", "UNBIND", "REPORT", "NOTIFY", "UNLINK", "SOURCE")) {
        return Method::kOther;
      }
      break;
    case 7:
      if (Literal(p, "OPTIONS", 7)) return Method::kOptions;
      if (Literal(p, "CONNECT", 7)) return Method::kConnect;
      break;
    case 8:
      if (OneOf(p, "PROPFIND", "CHECKOUT", "M-SEARCH")) return Method::kOther;
      break;
    case 9:
      if (OneOf(p, "PROPPATCH", "SUBSCRIBE")) return Method::kOther;
      break;
    case 10:
      if (OneOf(p, "MKACTIVITY", "MKCALENDAR")) return Method::kOther;
      break;
    case 11:
      if (Literal(p, "UNSUBSCRIBE", 11)) return Method::kOther;
      break;
    default:
      break;
  }
  return Method::kNone;
}

namespace {

// A parser as constructed: Start copies it (a few wide moves).
static_assert(std::is_trivially_copyable_v<HeadParser>, "Start copies a fresh parser");
constexpr HeadParser kFreshParser{};

}  // namespace

void HeadParser::StartRequest(size_t max_head_bytes, uint64_t max_body_bytes) {
  *this = kFreshParser;
  request_ = true;
  max_head_bytes_ = max_head_bytes;
  max_body_bytes_ = max_body_bytes;
  phase_ = Phase::kLeadingLine;
  limit_ = SIZE_MAX;  // set once the request line starts
  result_ = State::kIncomplete;
  error_status_ = 0;
  error_ = "";
}

void HeadParser::StartResponse(size_t max_head_bytes, bool request_was_head) {
  *this = kFreshParser;
  request_ = false;
  max_head_bytes_ = max_head_bytes;
  request_was_head_ = request_was_head;
  phase_ = Phase::kStatusVersion;
  limit_ = max_head_bytes;
  result_ = State::kIncomplete;
  error_status_ = 0;
  error_ = "";
}

bool HeadParser::Reject(int status, const char* why) {
  Fail(status, why);
  return false;
}

HeadParser::State HeadParser::Fail(int status, const char* why) {
  error_status_ = status;
  error_ = why;
  phase_ = Phase::kFinished;
  result_ = State::kError;
  return State::kError;
}

HeadParser::State HeadParser::Parse(const char* data, size_t len, RequestHead* out) { return Run(data, len, out); }

HeadParser::State HeadParser::Parse(const char* data, size_t len, ResponseHead* out) { return Run(data, len, out); }

template <class Head>
HeadParser::State HeadParser::Run(const char* data, size_t len, Head* out) {
  constexpr bool kRequest = std::is_same_v<Head, RequestHead>;
  constexpr int kBad = kRequest ? 400 : 502;
  if (phase_ == Phase::kFinished) return result_;
  if (kRequest != request_) return Fail(500, "head parser fed the other kind of head");
  if (len < pos_) return Fail(500, "head bytes shrank between calls");
  const uintptr_t base = reinterpret_cast<uintptr_t>(data);
  if (!cleared_out_) {
    // Only the list is filled as the scan goes; Finish sets everything else.
    out->headers.Clear();
    cleared_out_ = true;
  } else if (base != base_ && out->headers.size() > 0) {
    out->headers.MoveViews(base_, data);  // the caller's bytes moved
    examined_ += out->headers.size();
  }
  base_ = base;

  const unsigned char* const d = reinterpret_cast<const unsigned char*>(data);
  const size_t entry = pos_;
  size_t p = pos_;
  size_t e = len < limit_ ? len : limit_;  // bytes past limit_ can only make the head too large
  size_t token = token_;
  unsigned char c = 0;

  // Out of bytes in the start line (the fields: ScanFields).
  auto suspend = [this, entry](Phase phase, size_t at, size_t token) {
    phase_ = phase;
    pos_ = at;
    token_ = token;
    examined_ += at - entry;
    if (at >= limit_) {
      return kRequest ? Fail(431, "request head over max_header_bytes") : Fail(502, "upstream response head too large");
    }
    return State::kIncomplete;
  };

  switch (phase_) {
    case Phase::kLeadingLine: goto leading_line;
    case Phase::kLeadingLf: goto leading_lf;
    case Phase::kMethod: goto method;
    case Phase::kTarget: goto target;
    case Phase::kVersion: goto version;
    case Phase::kStatusVersion: goto status_version;
    case Phase::kStatusCode: goto status_code;
    case Phase::kReason: goto reason;
    case Phase::kStartLineLf: goto start_line_lf;
    case Phase::kFieldStart:
    case Phase::kName:
    case Phase::kValue:
    case Phase::kValueLf:
    case Phase::kEndLf: goto fields;
    case Phase::kFinished: return result_;
  }
  return result_;

  // ---- request line ----
leading_line:
  if (p == e) return suspend(Phase::kLeadingLine, p, token);
  if (d[p] == '\r') {
    if (leading_lines_ == kMaxLeadingEmptyLines) return Fail(400, "too many empty lines before the request line");
    ++p;
    goto leading_lf;
  }
  start_ = token = p;
  limit_ = start_ + max_head_bytes_;
  e = len < limit_ ? len : limit_;
  goto method;

leading_lf:
  if (p == e) return suspend(Phase::kLeadingLf, p, token);
  if (d[p] != '\n') return Fail(400, "bare CR");
  ++p;
  ++leading_lines_;
  goto leading_line;

method:
  while (p < e && Is(d[p], kTchar)) ++p;
  if (p == e) return suspend(Phase::kMethod, p, token);
  if (d[p] != ' ' || p == token) return Fail(400, "malformed method");
  method_len_ = p - token;
  method_ = method_len_ == 3 && Literal(d + token, "GET", 3) ? Method::kOther : MatchMethod(d + token, method_len_);
  examined_ += method_len_;
  if (method_ == Method::kNone) return Fail(400, "unknown method");
  token = ++p;

target:
  p = static_cast<size_t>(FindBelow(Scanner(), d, d + p, d + e, /*vchar=*/true) - d);
  if (p == e) return suspend(Phase::kTarget, p, token);
  // A CR or LF here is an HTTP/0.9 request (no version): answered now.
  if (d[p] != ' ' || p == token) return Fail(400, "malformed request target or missing HTTP version");
  target_ = token;
  target_len_ = p - token;
  if (d[token] != '/' && !OnTarget(d)) return State::kError;  // origin-form needs no more
  token = ++p;

version:
  if (p == token && e - p >= 9 && (Literal(d + p, "HTTP/1.1\r", 9) || Literal(d + p, "HTTP/1.0\r", 9))) {
    p += 9;
  } else {
    // "HTTP/" DIGIT "." DIGIT CR, one byte at a time.
    for (; p < e; ++p) {
      const size_t i = p - token;
      c = d[p];
      if (i == 8) {
        if (c != '\r') return Fail(400, "malformed HTTP version");
        break;
      }
      const bool ok = i < 5 ? c == static_cast<unsigned char>("HTTP/"[i]) : i == 6 ? c == '.' : IsDigit(c);
      if (!ok) return Fail(400, "malformed HTTP version");
    }
    if (p == e) return suspend(Phase::kVersion, p, token);
    ++p;  // the CR
  }
  if (d[token + 5] != '1' || d[token + 7] > '1') return Fail(505, "unsupported HTTP version");
  minor_version_ = d[token + 7] - '0';

start_line_lf:
  if (p == e) return suspend(Phase::kStartLineLf, p, token);
  if (d[p] != '\n') return Fail(kBad, "bare CR");
  ++p;
  if (kRequest && method_ == Method::kConnect) return Fail(405, "CONNECT is not supported");
  phase_ = Phase::kFieldStart;

fields: {
  const State state = ScanFields<kRequest>(data, p, e, entry, &out->headers);
  if (state != State::kDone) return state;
  if constexpr (kRequest) {
    return FinishRequest(data, out);
  } else {
    return FinishResponse(data, out);
  }
}

  // ---- status line ----
status_version:
  if (p == 0 && e >= 9 && (Literal(d, "HTTP/1.1 ", 9) || Literal(d, "HTTP/1.0 ", 9))) {
    p = 9;
  } else {
    for (; p < e; ++p) {
      c = d[p];
      if (p == 8) {
        if (c != ' ') return Fail(502, "malformed status line");
        break;
      }
      const bool ok = p < 5 ? c == static_cast<unsigned char>("HTTP/"[p]) : p == 6 ? c == '.' : IsDigit(c);
      if (!ok) return Fail(502, "malformed status line");
    }
    if (p == e) return suspend(Phase::kStatusVersion, p, token);
    ++p;  // the SP
  }
  if (d[5] != '1' || d[7] > '1') return Fail(502, "unsupported HTTP version from upstream");
  minor_version_ = d[7] - '0';
  token = p;

status_code:
  if (p == token && e - p > 3 && IsDigit(d[p]) && IsDigit(d[p + 1]) && IsDigit(d[p + 2])) {
    p += 3;
  } else {
    for (; p < e && p - token < 3; ++p) {
      if (!IsDigit(d[p])) return Fail(502, "malformed status line");
    }
    if (p == e) return suspend(Phase::kStatusCode, p, token);
  }
  status_ = (d[token] - '0') * 100 + (d[token + 1] - '0') * 10 + (d[token + 2] - '0');
  if (status_ < 100 || status_ > 599) return Fail(502, "status code out of range");
  if (d[p] == '\r') {  // no reason phrase (tolerated)
    reason_ = p++;
    reason_len_ = 0;
    goto start_line_lf;
  }
  if (d[p] != ' ') return Fail(502, "malformed status line");
  token = ++p;

reason:
  p = ScanValue(Scanner(), d, p, e);
  if (p == e) return suspend(Phase::kReason, p, token);
  if (d[p] != '\r') return Fail(502, d[p] == '\n' ? "bare LF" : "invalid byte in reason phrase");
  reason_ = token;
  reason_len_ = p - token;
  ++p;
  goto start_line_lf;
}

// The field lines, from phase_ at d[p] (a function of its own: its few
// locals stay in registers). kDone: the blank line ended the head at
// head_size_; the fields are in `headers`.
template <bool kRequest>
HeadParser::State HeadParser::ScanFields(const char* data, size_t p, size_t e, size_t entry, HeaderList* headers) {
  constexpr int kBad = kRequest ? 400 : 502;
  const unsigned char* const d = reinterpret_cast<const unsigned char*>(data);
  // The field being scanned lives in locals; the members hold it only while
  // the parse is suspended.
  size_t token = token_, name_len = name_len_, value = value_, value_end = value_end_;
  HeaderId id = field_id_;
  bool underscore = field_underscore_;
  unsigned char c = 0;
  const Scanner scan;

  // Out of bytes: remember where, and answer 431/502 when the limit is what
  // ran out. (Everything by value: locals whose address is taken would live
  // in memory for the whole scan.)
  auto suspend = [this, entry](Phase phase, size_t at, size_t token, size_t name_len, size_t value, size_t value_end,
                               HeaderId id, bool underscore) {
    phase_ = phase;
    pos_ = at;
    token_ = token;
    name_len_ = name_len;
    value_ = value;
    value_end_ = value_end;
    field_id_ = id;
    field_underscore_ = underscore;
    examined_ += at - entry;
    if (at >= limit_) {
      return kRequest ? Fail(431, "request head over max_header_bytes") : Fail(502, "upstream response head too large");
    }
    return State::kIncomplete;
  };

  switch (phase_) {
    case Phase::kName: goto name;
    case Phase::kValue: goto value_bytes;
    case Phase::kValueLf: goto value_lf;
    case Phase::kEndLf: goto end_lf;
    default: goto field_start;
  }

field_start:
  if (p == e) return suspend(Phase::kFieldStart, p, token, name_len, value, value_end, id, underscore);
  c = d[p];
  if (c == '\r') {
    ++p;
    goto end_lf;
  }
  if (!Is(c, kTchar)) {
    return Fail(kBad, c == ' ' || c == '\t' ? "obsolete line folding" : c == '\n' ? "bare LF" : "malformed header name");
  }
  token = p;
  underscore = false;

name:
  p = static_cast<size_t>(FindNotNameByte(scan, d, d + p, d + e) - d);
  if (p == e || d[p] != ':') {
    while (p < e && Is(d[p], kTchar)) {
      underscore = underscore || d[p] == '_';
      ++p;
    }
    if (p == e) return suspend(Phase::kName, p, token, name_len, value, value_end, id, underscore);
    if (d[p] != ':') return Fail(kBad, "malformed header line");  // e.g. whitespace before the colon
  }
  name_len = p - token;
  id = ClassifyTokenName(d + token, name_len);
  value = ++p;

value_bytes:
  p = ScanValue(scan, d, p, e);
  if (p == e) return suspend(Phase::kValue, p, token, name_len, value, value_end, id, underscore);
  if (d[p] != '\r') return Fail(kBad, d[p] == '\n' ? "bare LF" : "invalid byte in header value");
  value_end = p++;

value_lf:
  if (p == e) return suspend(Phase::kValueLf, p, token, name_len, value, value_end, id, underscore);
  if (d[p] != '\n') return Fail(kBad, "bare CR");
  ++p;
  {
    // A complete field: OWS off both ends (value bytes are HTAB, SP or
    // above SP, so "<= SP" is exactly SP or HTAB; d[value_end] is the CR,
    // so the first loop stops there), appended, checked.
    while (d[value] <= ' ' && value < value_end) ++value;
    size_t end = value_end;
    while (end > value && d[end - 1] <= ' ') --end;
    // Like nginx's default (underscores_in_headers off): a request field
    // name with an underscore is dropped. Many backends (CGI, WSGI, PHP,
    // Rack) fold '_' and '-' into the same variable, so "Content_Length" or
    // "X_Forwarded_For" would otherwise smuggle a second value past our
    // checks. (It never frames a body nor names the host either.)
    if (!(kRequest && underscore)) {
      headers->AppendClassified(std::string_view(data + token, name_len), std::string_view(data + value, end - value), id);
      if (IsFramingField(id) && !OnField<kRequest>(id, d, value, end)) return State::kError;
    }
  }
  goto field_start;

end_lf:
  if (p == e) return suspend(Phase::kEndLf, p, token, name_len, value, value_end, id, underscore);
  if (d[p] != '\n') return Fail(kBad, "bare CR");
  ++p;
  examined_ += p - entry;
  pos_ = head_size_ = p;
  return State::kDone;
}

// Checks the form of the request target (origin-form, asterisk-form for
// OPTIONS, absolute-form http(s)://authority[path]) as soon as it ends.
bool HeadParser::OnTarget(const unsigned char* d) {
  const unsigned char* t = d + target_;
  const size_t n = target_len_;
  if (t[0] == '/') return true;
  if (method_ == Method::kConnect) return true;  // 405 once the request line is complete
  if (n == 1 && t[0] == '*') {
    if (method_ == Method::kOptions) return true;
    return Reject(400, "asterisk-form target outside OPTIONS");
  }
  const std::string_view target(reinterpret_cast<const char*>(t), n);
  size_t scheme = 0;
  if (StartsWithIgnoreCase(target, "http://")) {
    scheme = 7;
  } else if (StartsWithIgnoreCase(target, "https://")) {
    scheme = 8;
  } else {
    return Reject(400, "unsupported request-target form");
  }
  // The authority runs to the path or the query. IsValidHost refuses
  // userinfo ('@'), an empty host and anything else but host[:port].
  size_t end = scheme;
  while (end < n && t[end] != '/' && t[end] != '?') ++end;
  examined_ += end;
  if (!IsValidHost(target.substr(scheme, end - scheme))) {
    return Reject(400, "malformed absolute-form target");
  }
  absolute_ = true;
  authority_ = target_ + scheme;
  authority_len_ = end - scheme;
  return true;
}

// A complete field the head's framing, Host, Connection or Expect depend
// on (appended already), checked at once. `value` is d[value, end).
template <bool kRequest>
bool HeadParser::OnField(HeaderId id, const unsigned char* d, size_t value_off, size_t end) {
  constexpr int kBad = kRequest ? 400 : 502;
  const std::string_view value(reinterpret_cast<const char*>(d) + value_off, end - value_off);
  switch (id) {
    case HeaderId::kContentLength:
      examined_ += value.size();
      if (has_length_) return Reject(kBad, "duplicate Content-Length");
      if (chunked_) return Reject(kBad, "both Content-Length and Transfer-Encoding");
      if (!ParseDigits(value, &content_length_)) return Reject(kBad, "malformed Content-Length");
      has_length_ = true;
      break;
    case HeaderId::kTransferEncoding:
      examined_ += value.size();
      if (chunked_) return Reject(kBad, "duplicate Transfer-Encoding");
      if (has_length_) return Reject(kBad, "both Content-Length and Transfer-Encoding");
      if (!EqualsIgnoreCase(value, "chunked")) return Reject(kBad, "unsupported Transfer-Encoding");
      if (kRequest && minor_version_ == 0) return Reject(400, "Transfer-Encoding in an HTTP/1.0 request");
      chunked_ = true;
      break;
    case HeaderId::kConnection:
      examined_ += value.size();
      ScanConnectionTokens(value, &close_, &keep_alive_token_);
      break;
    case HeaderId::kHost:
      if constexpr (kRequest) {
        examined_ += value.size();
        if (++hosts_ > 1) return Reject(400, "more than one Host");
        // An absolute-form target's authority replaces Host (RFC 9112
        // section 3.2.2), so only a Host that will be used is checked.
        // Letters, digits, '-' and '.' only: a valid reg-name at a glance.
        if (!absolute_ && !value.empty() && FindNotNameByte(Scanner(), d, d + value_off, d + end) != d + end &&
            !IsValidHost(value)) {
          return Reject(400, "malformed Host");
        }
        host_ = value_off;
        host_len_ = value.size();
      }
      break;
    case HeaderId::kExpect:
      if constexpr (kRequest) {
        // RFC 9110 section 10.1.1: ignored in an HTTP/1.0 request.
        expect_continue_ = minor_version_ == 1 && EqualsIgnoreCase(value, "100-continue");
      }
      break;
    default:
      break;
  }
  return true;
}

HeadParser::State HeadParser::FinishRequest(const char* data, RequestHead* out) {
  if (has_length_ && content_length_ > max_body_bytes_) return Fail(413, "request body over max_body_bytes");
  if (hosts_ == 0 && minor_version_ == 1 && !absolute_) return Fail(400, "HTTP/1.1 request without Host");
  out->method = std::string_view(data + start_, method_len_);
  out->is_head = method_ == Method::kHead;
  out->minor_version = minor_version_;
  if (absolute_) {
    // Rewritten to origin-form; the authority becomes the only Host.
    const std::string_view authority(data + authority_, authority_len_);
    const std::string_view rest(data + authority_ + authority_len_, target_ + target_len_ - authority_ - authority_len_);
    out->rewritten_target.clear();
    if (rest.empty() || rest[0] != '/') out->rewritten_target.push_back('/');
    out->rewritten_target.append(rest);
    out->target = out->rewritten_target;
    if (hosts_ > 0) out->headers.Remove(HeaderId::kHost);
    out->headers.AppendClassified("Host", authority, HeaderId::kHost);
    out->host = authority;
  } else {
    out->rewritten_target.clear();
    out->target = std::string_view(data + target_, target_len_);
    out->host = std::string_view(data + host_, host_len_);
  }
  out->framing = chunked_ ? BodyFraming::kChunked
                 : has_length_ && content_length_ > 0 ? BodyFraming::kLength
                                                      : BodyFraming::kNone;
  out->content_length = content_length_;
  out->keep_alive = minor_version_ == 1 ? !close_ : keep_alive_token_ && !close_;
  out->expect_continue = expect_continue_;
  phase_ = Phase::kFinished;
  result_ = State::kDone;
  return State::kDone;
}

HeadParser::State HeadParser::FinishResponse(const char* data, ResponseHead* out) {
  out->status = status_;
  out->reason = std::string_view(data + reason_, reason_len_);
  out->minor_version = minor_version_;
  BodyFraming framing = chunked_ ? BodyFraming::kChunked
                        : has_length_ && content_length_ > 0 ? BodyFraming::kLength
                                                             : BodyFraming::kNone;
  // RFC 9112 section 6.3: no body whatever the headers say; otherwise a
  // response without framing headers runs until the upstream closes.
  if (request_was_head_ || status_ < 200 || status_ == 204 || status_ == 304) {
    framing = BodyFraming::kNone;
  } else if (framing == BodyFraming::kNone && !has_length_) {
    framing = BodyFraming::kUntilClose;
  }
  out->framing = framing;
  out->content_length = content_length_;
  out->keep_alive =
      framing != BodyFraming::kUntilClose && (minor_version_ == 1 ? !close_ : keep_alive_token_ && !close_);
  phase_ = Phase::kFinished;
  result_ = State::kDone;
  return State::kDone;
}

}  // namespace sessiond
