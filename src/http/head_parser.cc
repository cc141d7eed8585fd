// Interim HeadParser over the two-pass parser in message.cc: it finds the end
// of the head, then parses the complete head in one go. Replaced by the
// single-pass parser (docs/ARCHITECTURE.md).
#include "http/head_parser.h"

#include <cstring>
#include <string>
#include <string_view>

namespace sessiond {

namespace {

constexpr int kMaxLeadingEmptyLines = 4;

// Length of the leading CRLF pairs to skip (RFC 9112 section 2.2), at most
// kMaxLeadingEmptyLines of them.
size_t LeadingEmptyLines(const char* data, size_t len) {
  size_t i = 0;
  for (int n = 0; n < kMaxLeadingEmptyLines && i + 1 < len && data[i] == '\r' && data[i + 1] == '\n'; ++n) i += 2;
  return i;
}

// False when a complete request line is not "... HTTP/d.d".
bool RequestLineLooksValid(std::string_view head) {
  size_t lf = head.find('\n');
  if (lf == std::string_view::npos) return true;
  if (lf < 10) return false;
  std::string_view tail = head.substr(lf - 10, 10);
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  return tail[0] == ' ' && tail.substr(1, 5) == "HTTP/" && digit(tail[6]) && tail[7] == '.' && digit(tail[8]) &&
         tail[9] == '\r';
}

bool HasBareLf(std::string_view s, size_t from) {
  for (size_t i = from; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
  }
  return false;
}

}  // namespace

void HeadParser::StartRequest(size_t max_head_bytes, uint64_t max_body_bytes) {
  *this = HeadParser();
  request_ = true;
  max_head_bytes_ = max_head_bytes;
  max_body_bytes_ = max_body_bytes;
}

void HeadParser::StartResponse(size_t max_head_bytes, bool request_was_head) {
  *this = HeadParser();
  request_ = false;
  max_head_bytes_ = max_head_bytes;
  request_was_head_ = request_was_head;
}

HeadParser::State HeadParser::Fail(int status, const char* why) {
  error_status_ = status;
  error_ = why;
  return State::kError;
}

HeadParser::State HeadParser::Parse(const char* data, size_t len, RequestHead* out) {
  const size_t skip = LeadingEmptyLines(data, len);
  std::string_view head(data + skip, len - skip);
  is_head_request_ = head.substr(0, 5) == "HEAD ";
  size_t from = scanned_ > skip + 3 ? scanned_ - skip - 3 : 0;
  size_t end = head.find("\r\n\r\n", from);
  if (end == std::string_view::npos) {
    scanned_ = len;
    if (!RequestLineLooksValid(head)) return Fail(400, "malformed request line");
    if (len > max_head_bytes_) return Fail(431, "request head over max_header_bytes");
    return State::kIncomplete;
  }
  head_size_ = skip + end + 4;
  if (head_size_ > max_head_bytes_) return Fail(431, "request head over max_header_bytes");
  const char* why = "";
  int status = ParseRequestHead(std::string(head.substr(0, end + 4)), max_body_bytes_, out, &why);
  if (status != 0) return Fail(status, why);
  return State::kDone;
}

HeadParser::State HeadParser::Parse(const char* data, size_t len, ResponseHead* out) {
  std::string_view head(data, len);
  size_t from = scanned_ > 3 ? scanned_ - 3 : 0;
  size_t end = head.find("\r\n\r\n", from);
  if (end == std::string_view::npos) {
    const size_t scanned = scanned_;
    scanned_ = len;
    if (len > max_head_bytes_) return Fail(502, "upstream response head too large");
    if (HasBareLf(head, scanned)) return Fail(502, "upstream response head with a bare LF");
    return State::kIncomplete;
  }
  head_size_ = end + 4;
  if (head_size_ > max_head_bytes_) return Fail(502, "upstream response head too large");
  const char* why = "";
  if (!ParseResponseHead(std::string(head.substr(0, head_size_)), request_was_head_, out, &why)) {
    return Fail(502, why);
  }
  return State::kDone;
}

}  // namespace sessiond
