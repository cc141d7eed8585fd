// HeadParser (see head_parser.h): one resumable, table-driven pass over a
// request or response head.
//
// The scan is a state machine whose state is a Phase and a few offsets, so a
// call that runs out of bytes stops anywhere (inside a method, a name, a
// value, between CR and LF) and the next call continues at the next byte.
// Within a call each phase is a tight loop over its own byte class: runs of
// plain value or target bytes are skipped 16 at a time with SSE2 (any
// other byte ends the run and is looked at on its own), and common
// field-name bytes likewise. Each field name is classified (HeaderId) as soon
// as its ':' is seen, by length and first letter and one case-folded compare
// of at most a few words, and each field is appended to the HeaderList and
// checked against the framing rules the moment its line ends.
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
enum : uint8_t {
  kTchar = 1,   // token characters (RFC 9110 section 5.6.2)
  kValue = 2,   // field-value bytes: HTAB, SP, VCHAR, obs-text; no CR, LF, NUL, other CTLs, DEL
  kTarget = 4,  // request-target bytes: VCHAR and (like nginx) obs-text
};

constexpr std::array<uint8_t, 256> MakeClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t v = 0;
    bool tchar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    for (char x : std::string_view("!#$%&'*+-.^_`|~")) tchar = tchar || c == x;
    if (tchar) v |= kTchar;
    if (c == '\t' || (c >= 0x20 && c != 0x7F)) v |= kValue;
    if (c > 0x20 && c != 0x7F) v |= kTarget;
    t[c] = v;
  }
  return t;
}
constexpr std::array<uint8_t, 256> kClasses = MakeClasses();

inline bool Is(unsigned char c, uint8_t cls) { return (kClasses[c] & cls) != 0; }
inline bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }

// Skips whole 16-byte blocks of bytes >= `min` other than DEL (`min` is 0x20
// for values, 0x21 for targets). Returns the first byte outside the class,
// or where fewer than 16 bytes are left: the caller looks at the rest one by
// one. Without SSE2 it skips nothing.
inline const unsigned char* SkipPlain(const unsigned char* p, const unsigned char* e, unsigned char min) {
#if defined(__SSE2__)
  const __m128i low = _mm_set1_epi8(static_cast<char>(min));
  const __m128i del = _mm_set1_epi8(0x7F);
  while (e - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i at_least_low = _mm_cmpeq_epi8(_mm_max_epu8(v, low), v);
    const __m128i ok = _mm_andnot_si128(_mm_cmpeq_epi8(v, del), at_least_low);
    const unsigned bad = ~static_cast<unsigned>(_mm_movemask_epi8(ok)) & 0xFFFFu;
    if (bad != 0) return p + __builtin_ctz(bad);
    p += 16;
  }
#else
  (void)e;
  (void)min;
#endif
  return p;
}

// Skips whole 16-byte blocks of letters, digits and '-' (the bytes of almost
// every field name); the other token bytes are looked at one by one.
inline const unsigned char* SkipNameBytes(const unsigned char* p, const unsigned char* e) {
#if defined(__SSE2__)
  // Unsigned ranges through signed compares: x + (0x80 - lo) < 0x80 + n
  // holds exactly for lo <= x < lo + n.
  const __m128i fold = _mm_set1_epi8(0x20);
  const __m128i letter_bias = _mm_set1_epi8(static_cast<char>(0x80 - 'a'));
  const __m128i letter_end = _mm_set1_epi8(static_cast<char>(0x80 + 26));
  const __m128i digit_bias = _mm_set1_epi8(static_cast<char>(0x80 - '0'));
  const __m128i digit_end = _mm_set1_epi8(static_cast<char>(0x80 + 10));
  const __m128i dash = _mm_set1_epi8('-');
  while (e - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // OR 0x20 maps exactly 'A'-'Z' and 'a'-'z' onto 'a'-'z'.
    const __m128i letter = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(v, fold), letter_bias), letter_end);
    const __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(v, digit_bias), digit_end);
    const __m128i ok = _mm_or_si128(_mm_or_si128(letter, digit), _mm_cmpeq_epi8(v, dash));
    const unsigned bad = ~static_cast<unsigned>(_mm_movemask_epi8(ok)) & 0xFFFFu;
    if (bad != 0) return p + __builtin_ctz(bad);
    p += 16;
  }
#else
  (void)e;
#endif
  return p;
}

// The end of the field-value bytes starting at d[p] (HTAB, SP, VCHAR,
// obs-text), at most e.
inline size_t ScanValue(const unsigned char* d, size_t p, size_t e) {
  while (true) {
    p = static_cast<size_t>(SkipPlain(d + p, d + e, 0x20) - d);
    if (e - p >= 16 && d[p] == '\t') {  // a tab inside a long value: keep skipping blocks
      ++p;
      continue;
    }
    break;
  }
  while (p < e && Is(d[p], kValue)) ++p;
  return p;
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
HeaderId ClassifyTokenName(const unsigned char* p, size_t n) {
  switch (p[0] | 0x20) {
    case 'c':
      if (n == 6 && NameIs(p, "cookie")) return HeaderId::kCookie;
      if (n == 10 && NameIs(p, "connection")) return HeaderId::kConnection;
      if (n == 14 && NameIs(p, "content-length")) return HeaderId::kContentLength;
      break;
    case 'e':
      if (n == 6 && NameIs(p, "expect")) return HeaderId::kExpect;
      break;
    case 'h':
      if (n == 4 && NameIs(p, "host")) return HeaderId::kHost;
      break;
    case 'k':
      if (n == 10 && NameIs(p, "keep-alive")) return HeaderId::kKeepAlive;
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
    case 'x':
      // "X-Session-*" with '-' or '_' as either separator.
      if (n >= 10 && (p[1] == '-' || p[1] == '_') && (p[9] == '-' || p[9] == '_') && NameIs(p + 2, "session")) {
        return HeaderId::kSessionAny;
      }
      if (n == 12 && NameIs(p, "x-request-id")) return HeaderId::kXRequestId;
      if (n == 15 && NameIs(p, "x-forwarded-for")) return HeaderId::kXForwardedFor;
      if (n == 16 && NameIs(p, "x-forwarded-host")) return HeaderId::kXForwardedHost;
      if (n == 17 && NameIs(p, "x-forwarded-proto")) return HeaderId::kXForwardedProto;
      break;
    default:
      break;
  }
  return HeaderId::kOther;
}

inline bool Literal(const unsigned char* p, const char* lit, size_t n) { return memcmp(p, lit, n) == 0; }

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

void HeadParser::StartRequest(size_t max_head_bytes, uint64_t max_body_bytes) {
  *this = HeadParser();
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
  *this = HeadParser();
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
    out->Clear();
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

  while (true) {
    switch (phase_) {
      // ---- request line ----
      case Phase::kLeadingLine:
        if (p == e) goto need_more;
        if (d[p] == '\r') {
          if (leading_lines_ == kMaxLeadingEmptyLines) return Fail(400, "too many empty lines before the request line");
          ++p;
          phase_ = Phase::kLeadingLf;
          continue;
        }
        start_ = token_ = p;
        limit_ = start_ + max_head_bytes_;
        e = len < limit_ ? len : limit_;
        phase_ = Phase::kMethod;
        [[fallthrough]];

      case Phase::kMethod:
        while (p < e && Is(d[p], kTchar)) ++p;
        if (p == e) goto need_more;
        if (d[p] != ' ' || p == token_) return Fail(400, "malformed method");
        method_len_ = p - token_;
        method_ = MatchMethod(d + token_, method_len_);
        examined_ += method_len_;
        if (method_ == Method::kNone) return Fail(400, "unknown method");
        token_ = ++p;
        phase_ = Phase::kTarget;
        [[fallthrough]];

      case Phase::kTarget:
        p = static_cast<size_t>(SkipPlain(d + p, d + e, 0x21) - d);
        while (p < e && Is(d[p], kTarget)) ++p;
        if (p == e) goto need_more;
        // A CR or LF here is an HTTP/0.9 request (no version): answered now.
        if (d[p] != ' ' || p == token_) return Fail(400, "malformed request target or missing HTTP version");
        target_ = token_;
        target_len_ = p - token_;
        if (!OnTarget(d)) return State::kError;
        token_ = ++p;
        phase_ = Phase::kVersion;
        [[fallthrough]];

      case Phase::kVersion:
        if (p == token_ && e - p >= 9 &&
            (Literal(d + p, "HTTP/1.1\r", 9) || Literal(d + p, "HTTP/1.0\r", 9))) {
          p += 9;
        } else {
          // "HTTP/" DIGIT "." DIGIT CR, one byte at a time.
          for (; p < e; ++p) {
            const size_t i = p - token_;
            const unsigned char c = d[p];
            if (i == 8) {
              if (c != '\r') return Fail(400, "malformed HTTP version");
              break;
            }
            const bool ok = i < 5 ? c == static_cast<unsigned char>("HTTP/"[i]) : i == 6 ? c == '.' : IsDigit(c);
            if (!ok) return Fail(400, "malformed HTTP version");
          }
          if (p == e) goto need_more;
          ++p;  // the CR
        }
        if (d[token_ + 5] != '1' || d[token_ + 7] > '1') return Fail(505, "unsupported HTTP version");
        minor_version_ = d[token_ + 7] - '0';
        phase_ = Phase::kStartLineLf;
        [[fallthrough]];

      case Phase::kStartLineLf:
        if (p == e) goto need_more;
        if (d[p] != '\n') return Fail(kBad, "bare CR");
        ++p;
        if (kRequest && method_ == Method::kConnect) return Fail(405, "CONNECT is not supported");
        phase_ = Phase::kFieldStart;
        [[fallthrough]];

      // ---- fields ----
      case Phase::kFieldStart: {
        if (p == e) goto need_more;
        const unsigned char c = d[p];
        if (c == '\r') {
          ++p;
          phase_ = Phase::kEndLf;
          continue;
        }
        if (!Is(c, kTchar)) {
          return Fail(kBad, c == ' ' || c == '\t' ? "obsolete line folding"
                            : c == '\n'           ? "bare LF"
                                                  : "malformed header name");
        }
        token_ = p;
        field_underscore_ = false;
        phase_ = Phase::kName;
        [[fallthrough]];
      }

      case Phase::kName:
        p = static_cast<size_t>(SkipNameBytes(d + p, d + e) - d);
        while (p < e && Is(d[p], kTchar)) {
          field_underscore_ = field_underscore_ || d[p] == '_';
          ++p;
        }
        if (p == e) goto need_more;
        if (d[p] != ':') return Fail(kBad, "malformed header line");  // e.g. whitespace before the colon
        name_len_ = p - token_;
        field_id_ = ClassifyTokenName(d + token_, name_len_);
        examined_ += name_len_;  // at most, read again by the classification
        ++p;
        phase_ = Phase::kValueOws;
        [[fallthrough]];

      case Phase::kValueOws:
        while (p < e && (d[p] == ' ' || d[p] == '\t')) ++p;
        if (p == e) goto need_more;
        value_ = p;
        phase_ = Phase::kValue;
        [[fallthrough]];

      case Phase::kValue:
        p = ScanValue(d, p, e);
        if (p == e) goto need_more;
        if (d[p] != '\r') return Fail(kBad, d[p] == '\n' ? "bare LF" : "invalid byte in header value");
        value_end_ = p++;
        phase_ = Phase::kValueLf;
        [[fallthrough]];

      case Phase::kValueLf:
        if (p == e) goto need_more;
        if (d[p] != '\n') return Fail(kBad, "bare CR");
        ++p;
        if (!OnField(d, out)) return State::kError;
        phase_ = Phase::kFieldStart;
        continue;

      case Phase::kEndLf:
        if (p == e) goto need_more;
        if (d[p] != '\n') return Fail(kBad, "bare CR");
        ++p;
        examined_ += p - entry;
        pos_ = head_size_ = p;
        if constexpr (kRequest) {
          return FinishRequest(data, out);
        } else {
          return FinishResponse(data, out);
        }

      case Phase::kLeadingLf:
        if (p == e) goto need_more;
        if (d[p] != '\n') return Fail(400, "bare CR");
        ++p;
        ++leading_lines_;
        phase_ = Phase::kLeadingLine;
        continue;

      // ---- status line ----
      case Phase::kStatusVersion:
        if (p == 0 && e >= 9 && (Literal(d, "HTTP/1.1 ", 9) || Literal(d, "HTTP/1.0 ", 9))) {
          p = 9;
        } else {
          for (; p < e; ++p) {
            const unsigned char c = d[p];
            if (p == 8) {
              if (c != ' ') return Fail(502, "malformed status line");
              break;
            }
            const bool ok = p < 5 ? c == static_cast<unsigned char>("HTTP/"[p]) : p == 6 ? c == '.' : IsDigit(c);
            if (!ok) return Fail(502, "malformed status line");
          }
          if (p == e) goto need_more;
          ++p;  // the SP
        }
        if (d[5] != '1' || d[7] > '1') return Fail(502, "unsupported HTTP version from upstream");
        minor_version_ = d[7] - '0';
        token_ = p;
        phase_ = Phase::kStatusCode;
        [[fallthrough]];

      case Phase::kStatusCode: {
        for (; p < e && p - token_ < 3; ++p) {
          if (!IsDigit(d[p])) return Fail(502, "malformed status line");
        }
        if (p == e) goto need_more;
        status_ = (d[token_] - '0') * 100 + (d[token_ + 1] - '0') * 10 + (d[token_ + 2] - '0');
        if (status_ < 100 || status_ > 599) return Fail(502, "status code out of range");
        const unsigned char c = d[p];
        if (c == '\r') {  // no reason phrase (tolerated)
          reason_ = p++;
          phase_ = Phase::kStartLineLf;
          continue;
        }
        if (c != ' ') return Fail(502, "malformed status line");
        token_ = ++p;
        phase_ = Phase::kReason;
        [[fallthrough]];
      }

      case Phase::kReason:
        p = ScanValue(d, p, e);
        if (p == e) goto need_more;
        if (d[p] != '\r') return Fail(502, d[p] == '\n' ? "bare LF" : "invalid byte in reason phrase");
        reason_ = token_;
        reason_len_ = p - token_;
        ++p;
        phase_ = Phase::kStartLineLf;
        continue;

      case Phase::kFinished:
        return result_;
    }
  }

need_more:
  examined_ += p - entry;
  pos_ = p;
  if (p >= limit_) {
    return kRequest ? Fail(431, "request head over max_header_bytes") : Fail(502, "upstream response head too large");
  }
  return State::kIncomplete;
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

// A complete field line: appended to `out` and checked at once.
template <class Head>
bool HeadParser::OnField(const unsigned char* d, Head* out) {
  constexpr bool kRequest = std::is_same_v<Head, RequestHead>;
  constexpr int kBad = kRequest ? 400 : 502;
  size_t end = value_end_;
  while (end > value_ && (d[end - 1] == ' ' || d[end - 1] == '\t')) --end;
  examined_ += value_end_ - end;
  // Like nginx's default (underscores_in_headers off): a request field name
  // with an underscore is dropped. Many backends (CGI, WSGI, PHP, Rack) fold
  // '_' and '-' into the same variable, so "Content_Length" or
  // "X_Forwarded_For" would otherwise smuggle a second value past our checks.
  if (kRequest && field_underscore_) return true;
  const char* base = reinterpret_cast<const char*>(d);
  const std::string_view value(base + value_, end - value_);
  out->headers.AppendClassified(std::string_view(base + token_, name_len_), value, field_id_);
  switch (field_id_) {
    case HeaderId::kContentLength:
      examined_ += value.size();
      if (has_length_) return Reject(kBad, "duplicate Content-Length");
      if (chunked_) return Reject(kBad, "both Content-Length and Transfer-Encoding");
      if (!ParseContentLength(value, &content_length_)) return Reject(kBad, "malformed Content-Length");
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
      close_ = close_ || HasToken(value, "close");
      keep_alive_token_ = keep_alive_token_ || HasToken(value, "keep-alive");
      break;
    case HeaderId::kHost:
      if constexpr (kRequest) {
        examined_ += value.size();
        if (++hosts_ > 1) return Reject(400, "more than one Host");
        // An absolute-form target's authority replaces Host (RFC 9112
        // section 3.2.2), so only a Host that will be used is checked.
        if (!absolute_ && !value.empty() && !IsValidHost(value)) return Reject(400, "malformed Host");
        host_ = value_;
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
