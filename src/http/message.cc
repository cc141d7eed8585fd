#include "http/message.h"

#include <http_parser.h>

#include <array>
#include <cstring>

namespace sessiond {

namespace {

// Byte classes, one table lookup per byte on the hot path.
enum : uint8_t {
  kTchar = 1,   // token characters (RFC 9110 section 5.6.2)
  kValue = 2,   // field-value bytes: HTAB, SP, VCHAR, obs-text; no CR, LF, NUL, other CTLs, DEL
  kTarget = 4,  // request-target bytes: visible ASCII and (like nginx) obs-text
};

constexpr std::array<uint8_t, 256> MakeClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t v = 0;
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    bool tchar = alnum;
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
bool IsTchar(unsigned char c) { return Is(c, kTchar); }
bool IsFieldValueChar(unsigned char c) { return Is(c, kValue); }
bool IsTargetChar(unsigned char c) { return Is(c, kTarget); }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool ScanVersion(std::string_view s) {
  return s.size() == 8 && s.substr(0, 5) == "HTTP/" && IsDigit(s[5]) && s[6] == '.' && IsDigit(s[7]);
}

bool ScanRequestLine(std::string_view line, const char** why) {
  size_t i = 0;
  while (i < line.size() && IsTchar(static_cast<unsigned char>(line[i]))) ++i;
  if (i == 0 || i >= line.size() || line[i] != ' ') {
    *why = "malformed method";
    return false;
  }
  size_t t = ++i;
  while (i < line.size() && IsTargetChar(static_cast<unsigned char>(line[i]))) ++i;
  if (i == t || i >= line.size() || line[i] != ' ') {
    *why = "malformed request target or missing HTTP version";
    return false;
  }
  if (!ScanVersion(line.substr(i + 1))) {
    *why = "malformed HTTP version";
    return false;
  }
  return true;
}

bool ScanStatusLine(std::string_view line, const char** why) {
  if (line.size() < 12 || !ScanVersion(line.substr(0, 8)) || line[8] != ' ' || !IsDigit(line[9]) ||
      !IsDigit(line[10]) || !IsDigit(line[11])) {
    *why = "malformed status line";
    return false;
  }
  if (line.size() == 12) return true;  // no reason phrase (tolerated)
  if (line[12] != ' ') {
    *why = "malformed status line";
    return false;
  }
  for (size_t i = 13; i < line.size(); ++i) {
    if (!IsFieldValueChar(static_cast<unsigned char>(line[i]))) {
      *why = "invalid byte in reason phrase";
      return false;
    }
  }
  return true;
}

// Validates one header line starting at raw[pos]; on success sets *next to
// the start of the following line. The line ends at the first byte that is
// not a field-value byte, which must be CR followed by LF: this one pass also
// finds bare CR, bare LF and NUL.
bool ScanField(std::string_view raw, size_t pos, size_t* next, const char** why) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(raw.data());
  const size_t n = raw.size();
  size_t i = pos;
  while (i < n && Is(p[i], kTchar)) ++i;
  if (i == pos) {
    *why = (p[pos] == ' ' || p[pos] == '\t') ? "obsolete line folding" : "malformed header name";
    return false;
  }
  if (i >= n || p[i] != ':') {
    *why = "malformed header line";
    return false;
  }
  ++i;
  while (i < n && Is(p[i], kValue)) ++i;
  if (i + 1 >= n || p[i] != '\r' || p[i + 1] != '\n') {
    *why = (i < n && p[i] == '\r') ? "bare CR" : (i < n && p[i] == '\n') ? "bare LF" : "invalid byte in header value";
    return false;
  }
  *next = i + 2;
  return true;
}

// http-parser glue: collects the tokens of one head into a HeaderList.
struct ParseState {
  HeaderList* headers;
  const char* url = nullptr;
  size_t url_len = 0;
  const char* reason = nullptr;
  size_t reason_len = 0;
  const char* field = nullptr;
  size_t field_len = 0;
};

int OnUrl(http_parser* p, const char* at, size_t len) {
  auto* s = static_cast<ParseState*>(p->data);
  if (!s->url) s->url = at;
  s->url_len += len;
  return 0;
}

int OnStatus(http_parser* p, const char* at, size_t len) {
  auto* s = static_cast<ParseState*>(p->data);
  if (!s->reason) s->reason = at;
  s->reason_len += len;
  return 0;
}

// The whole head is fed in one call, so each field and value arrives in one
// piece. A field with an empty value gets no on_header_value call, so a field
// still pending when the next one (or the end of the head) arrives is empty.
void FlushEmptyValue(ParseState* s) {
  if (s->field) {
    s->headers->Append(std::string_view(s->field, s->field_len), std::string_view());
    s->field = nullptr;
  }
}

int OnHeaderField(http_parser* p, const char* at, size_t len) {
  auto* s = static_cast<ParseState*>(p->data);
  FlushEmptyValue(s);
  s->field = at;
  s->field_len = len;
  return 0;
}

int OnHeaderValue(http_parser* p, const char* at, size_t len) {
  auto* s = static_cast<ParseState*>(p->data);
  if (!s->field) return 1;  // a second piece: the parser and ScanHead disagree
  s->headers->Append(std::string_view(s->field, s->field_len), TrimOws(std::string_view(at, len)));
  s->field = nullptr;
  return 0;
}

int OnHeadersComplete(http_parser* p) {
  FlushEmptyValue(static_cast<ParseState*>(p->data));
  return 0;
}

const http_parser_settings& Settings() {
  static const http_parser_settings settings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_url = OnUrl;
    s.on_status = OnStatus;
    s.on_header_field = OnHeaderField;
    s.on_header_value = OnHeaderValue;
    s.on_headers_complete = OnHeadersComplete;
    // The head may be as large as max_header_bytes (up to 1 MiB); our own
    // limit is enforced before parsing.
    http_parser_set_max_header_size(2u << 20);
    return s;
  }();
  return settings;
}

// Runs http-parser over a whole head. Returns false on a parser error.
bool RunParser(std::string_view raw, http_parser_type type, HeaderList* headers, http_parser* p,
               ParseState* state) {
  state->headers = headers;
  http_parser_init(p, type);
  p->data = state;
  size_t n = http_parser_execute(p, &Settings(), raw.data(), raw.size());
  enum http_errno err = HTTP_PARSER_ERRNO(p);
  return err == HPE_OK && n == raw.size();
}

// Applies the message framing rules shared by requests and responses.
// Returns false with *why when the framing is ambiguous.
bool DecideFraming(const HeaderList& headers, BodyFraming* framing, uint64_t* length,
                   const char** why) {
  const std::string_view* cl = nullptr;
  const std::string_view* te = nullptr;
  for (const Header& h : headers.fields()) {
    if (h.id == HeaderId::kContentLength) {
      if (cl) {
        *why = "duplicate Content-Length";
        return false;
      }
      cl = &h.value;
    } else if (h.id == HeaderId::kTransferEncoding) {
      if (te) {
        *why = "duplicate Transfer-Encoding";
        return false;
      }
      te = &h.value;
    }
  }
  if (cl && te) {
    *why = "both Content-Length and Transfer-Encoding";
    return false;
  }
  if (te) {
    if (!EqualsIgnoreCase(*te, "chunked")) {
      *why = "unsupported Transfer-Encoding";
      return false;
    }
    *framing = BodyFraming::kChunked;
    return true;
  }
  if (cl) {
    if (!ParseContentLength(*cl, length)) {
      *why = "malformed Content-Length";
      return false;
    }
    *framing = *length > 0 ? BodyFraming::kLength : BodyFraming::kNone;
    return true;
  }
  *framing = BodyFraming::kNone;
  return true;
}

}  // namespace

bool IsValidHost(std::string_view host) {
  // uri-host [ ":" port ]: reg-name or IPv4 (unreserved, sub-delims but ',',
  // pct-encoded) or an IP-literal in brackets. No spaces, lists, paths or
  // userinfo: those would let a client point absolute URLs built from Host
  // somewhere else.
  size_t i = 0;
  if (!host.empty() && host[0] == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (i = 1; i < close; ++i) {
      char c = host[i];
      bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
      if (!ok) return false;
    }
    i = close + 1;
  } else {
    for (; i < host.size() && host[i] != ':'; ++i) {
      char c = host[i];
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                std::string_view("-._~!$&'()*+;=%").find(c) != std::string_view::npos;
      if (!ok) return false;
    }
    if (i == 0) return false;
  }
  if (i == host.size()) return true;
  if (host[i] != ':' || i + 1 == host.size() || host.size() - i - 1 > 5) return false;
  for (++i; i < host.size(); ++i) {
    if (!IsDigit(host[i])) return false;
  }
  return true;
}

bool ParseContentLength(std::string_view value, uint64_t* out) {
  if (value.empty() || value.size() > 18) return false;
  uint64_t n = 0;
  for (char c : value) {
    if (!IsDigit(c)) return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

bool ScanHead(std::string_view raw, bool request, const char** why) {
  size_t nl = raw.find('\n');
  if (nl == std::string_view::npos || nl == 0 || raw[nl - 1] != '\r') {
    *why = "bare LF or unterminated line";
    return false;
  }
  std::string_view first = raw.substr(0, nl - 1);
  if (first.find('\r') != std::string_view::npos) {
    *why = "bare CR";
    return false;
  }
  if (!(request ? ScanRequestLine(first, why) : ScanStatusLine(first, why))) return false;
  size_t pos = nl + 1;
  while (pos < raw.size()) {
    if (raw[pos] == '\r') {  // the blank line
      if (pos + 2 != raw.size() || raw[pos + 1] != '\n') {
        *why = pos + 1 < raw.size() && raw[pos + 1] == '\n' ? "data after the end of the head" : "bare CR";
        return false;
      }
      return true;
    }
    if (!ScanField(raw, pos, &pos, why)) return false;
  }
  *why = "unterminated head";
  return false;
}

int ParseRequestHead(std::string raw, uint64_t max_body_bytes, RequestHead* out, const char** why) {
  out->raw = std::move(raw);
  std::string_view view = out->raw;
  if (!ScanHead(view, /*request=*/true, why)) return 400;

  http_parser p;
  ParseState state;
  if (!RunParser(view, HTTP_REQUEST, &out->headers, &p, &state) || !state.url) {
    // http-parser rejects unknown methods and, e.g., "HTTP/12.0".
    *why = "request rejected by the HTTP parser";
    return 400;
  }
  if (p.http_major != 1 || p.http_minor > 1) {
    *why = "unsupported HTTP version";
    return 505;
  }
  out->minor_version = p.http_minor;
  out->method = view.substr(0, view.find(' '));
  out->is_head = p.method == HTTP_HEAD;
  if (p.method == HTTP_CONNECT) {
    *why = "CONNECT is not supported";
    return 405;
  }

  // Request target: origin-form, asterisk-form for OPTIONS, or absolute-form,
  // which is rewritten to origin-form with its authority as the Host.
  std::string_view target(state.url, state.url_len);
  std::string_view authority;
  if (target[0] == '/') {
    out->target = target;
  } else if (target == "*") {
    if (p.method != HTTP_OPTIONS) {
      *why = "asterisk-form target outside OPTIONS";
      return 400;
    }
    out->target = target;
  } else if (StartsWithIgnoreCase(target, "http://") || StartsWithIgnoreCase(target, "https://")) {
    http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(target.data(), target.size(), 0, &u) != 0 || !(u.field_set & (1 << UF_HOST)) ||
        (u.field_set & (1 << UF_USERINFO))) {
      *why = "malformed absolute-form target";
      return 400;
    }
    size_t host_start = u.field_data[UF_HOST].off;
    size_t host_end = host_start + u.field_data[UF_HOST].len;
    if (u.field_set & (1 << UF_PORT)) host_end = u.field_data[UF_PORT].off + u.field_data[UF_PORT].len;
    // Keep IPv6 brackets: the parser's host excludes them.
    if (host_start > 0 && target[host_start - 1] == '[') --host_start;
    authority = target.substr(host_start, host_end - host_start);
    std::string_view rest = target.substr(host_end);
    if (!rest.empty() && rest[0] == ']') rest.remove_prefix(1);
    if (!rest.empty() && rest[0] == ':') {  // port already included above; skip stray colon
      size_t slash = rest.find_first_of("/?");
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    }
    out->rewritten_target = rest.empty() || rest[0] != '/' ? "/" + std::string(rest) : std::string(rest);
    out->target = out->rewritten_target;
  } else {
    *why = "unsupported request-target form";
    return 400;
  }

  if (!DecideFraming(out->headers, &out->framing, &out->content_length, why)) return 400;
  if (out->framing == BodyFraming::kChunked && out->minor_version == 0) {
    *why = "Transfer-Encoding in an HTTP/1.0 request";
    return 400;
  }
  if (out->framing == BodyFraming::kLength && out->content_length > max_body_bytes) {
    *why = "request body over max_body_bytes";
    return 413;
  }

  size_t hosts = out->headers.Count(HeaderId::kHost);
  if (hosts > 1) {
    *why = "more than one Host";
    return 400;
  }
  if (hosts == 0 && out->minor_version == 1 && authority.empty()) {
    *why = "HTTP/1.1 request without Host";
    return 400;
  }
  if (!authority.empty()) {
    out->headers.Remove(HeaderId::kHost);
    out->headers.AppendCopy("Host", authority);
  }
  if (auto h = out->headers.Get(HeaderId::kHost)) out->host = *h;
  if (!out->host.empty() && !IsValidHost(out->host)) {
    *why = "malformed Host";
    return 400;
  }
  // Like nginx's default (underscores_in_headers off): a field name with an
  // underscore is dropped. Many backends (CGI, WSGI, PHP, Rack) fold '_' and
  // '-' into the same variable, so "Content_Length" or "X_Forwarded_For"
  // would otherwise smuggle a second value past our checks.
  out->headers.RemoveIf([](const Header& h) { return h.name.find('_') != std::string_view::npos; });

  bool close = false, keep = false;
  for (const Header& h : out->headers.fields()) {
    if (h.id == HeaderId::kConnection) {
      close = close || HasToken(h.value, "close");
      keep = keep || HasToken(h.value, "keep-alive");
    } else if (h.id == HeaderId::kExpect) {
      out->expect_continue = out->minor_version == 1 && EqualsIgnoreCase(h.value, "100-continue");
    }
  }
  out->keep_alive = out->minor_version == 1 ? !close : (keep && !close);
  return 0;
}

bool ParseResponseHead(std::string raw, bool request_was_head, ResponseHead* out, const char** why) {
  out->raw = std::move(raw);
  std::string_view view = out->raw;
  if (!ScanHead(view, /*request=*/false, why)) return false;
  http_parser p;
  ParseState state;
  if (!RunParser(view, HTTP_RESPONSE, &out->headers, &p, &state)) {
    *why = "response rejected by the HTTP parser";
    return false;
  }
  if (p.http_major != 1 || p.http_minor > 1) {
    *why = "unsupported HTTP version from upstream";
    return false;
  }
  out->status = p.status_code;
  out->minor_version = p.http_minor;
  if (state.reason) out->reason = std::string_view(state.reason, state.reason_len);
  if (out->status < 100 || out->status > 599) {
    *why = "status code out of range";
    return false;
  }
  if (!DecideFraming(out->headers, &out->framing, &out->content_length, why)) return false;
  const bool has_length = out->headers.Get(HeaderId::kContentLength).has_value();
  if (request_was_head || out->status < 200 || out->status == 204 || out->status == 304) {
    out->framing = BodyFraming::kNone;  // no body whatever the headers say
  } else if (out->framing == BodyFraming::kNone && !has_length) {
    out->framing = BodyFraming::kUntilClose;
  }

  bool close = false, keep = false;
  for (const Header& h : out->headers.fields()) {
    if (h.id == HeaderId::kConnection) {
      close = close || HasToken(h.value, "close");
      keep = keep || HasToken(h.value, "keep-alive");
    }
  }
  out->keep_alive = out->framing != BodyFraming::kUntilClose &&
                    (out->minor_version == 1 ? !close : (keep && !close));
  return true;
}

void RequestHead::Clear() {
  raw.clear();
  method = target = host = std::string_view();
  rewritten_target.clear();
  minor_version = 1;
  is_head = false;
  headers.Clear();
  framing = BodyFraming::kNone;
  content_length = 0;
  keep_alive = true;
  expect_continue = false;
}

void ResponseHead::Clear() {
  raw.clear();
  status = 0;
  reason = std::string_view();
  minor_version = 1;
  headers.Clear();
  framing = BodyFraming::kNone;
  content_length = 0;
  keep_alive = true;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

}  // namespace sessiond
