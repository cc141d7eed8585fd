// http-parser (Debian's libhttp-parser 2.9, built non-strict) as a
// differential oracle for HeadParser. sessiond no longer uses it; only the
// request_head and response_head fuzz targets link it.
//
// The rule: a head HeadParser accepts must parse the same under http-parser
// (method, target, version, status, reason, each field's name and trimmed
// value in order). http-parser is lenient, so it may accept heads we refuse,
// never the reverse, but for one bug of its own: a field name that merely
// starts with "Transfer-Encoding" ("Transfer-Encodingx", "Transfer-Encoding_a")
// sets its Transfer-Encoding flag, so it refuses such a request unless the
// field says chunked (HPE_INVALID_TRANSFER_ENCODING), and such a head with
// a Content-Length (HPE_UNEXPECTED_CONTENT_LENGTH). And it takes only SP,
// not HTAB, as whitespace after a Content-Length or Transfer-Encoding value
// (HPE_INVALID_CONTENT_LENGTH, HPE_INVALID_TRANSFER_ENCODING), where RFC 9110
// section 5.5 allows both around any field value (and the hostile corpus
// accepts either answer). For a head that shows one of these, exactly the
// matching refusal is not a disagreement.
#pragma once

#include <http_parser.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "head_check.h"

namespace sessiond {
namespace fuzz {

struct OracleHead {
  bool accepted = false;
  http_errno error = HPE_OK;
  std::string method;
  std::string url;
  int major = 0, minor = 0;
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> fields;
};

struct OracleState {
  OracleHead* out;
  bool in_value = false;  // the current field has its value
  bool complete = false;  // on_headers_complete ran
};

inline int OracleOnUrl(http_parser* p, const char* at, size_t len) {
  static_cast<OracleState*>(p->data)->out->url.append(at, len);
  return 0;
}

inline int OracleOnStatus(http_parser* p, const char* at, size_t len) {
  static_cast<OracleState*>(p->data)->out->reason.append(at, len);
  return 0;
}

// The whole head is fed in one call, so each name and each value arrives in
// one piece; a field with an empty value gets no value callback.
inline int OracleOnField(http_parser* p, const char* at, size_t len) {
  auto* s = static_cast<OracleState*>(p->data);
  s->out->fields.emplace_back(std::string(at, len), std::string());
  s->in_value = false;
  return 0;
}

inline int OracleOnValue(http_parser* p, const char* at, size_t len) {
  auto* s = static_cast<OracleState*>(p->data);
  if (s->out->fields.empty() || s->in_value) return 1;  // not one piece: report a disagreement
  s->in_value = true;
  s->out->fields.back().second.assign(at, len);
  return 0;
}

inline int OracleOnHeadersComplete(http_parser* p) {
  static_cast<OracleState*>(p->data)->complete = true;
  return 0;
}

inline OracleHead RunOracle(std::string_view head, http_parser_type type) {
  static const http_parser_settings settings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_url = OracleOnUrl;
    s.on_status = OracleOnStatus;
    s.on_header_field = OracleOnField;
    s.on_header_value = OracleOnValue;
    s.on_headers_complete = OracleOnHeadersComplete;
    http_parser_set_max_header_size(2u << 20);  // our own limits are smaller
    return s;
  }();
  OracleHead out;
  OracleState state{&out};
  http_parser p;
  http_parser_init(&p, type);
  p.data = &state;
  const size_t n = http_parser_execute(&p, &settings, head.data(), head.size());
  // An upgrade (Connection: upgrade with Upgrade) stops right after the head.
  out.error = HTTP_PARSER_ERRNO(&p);
  out.accepted = out.error == HPE_OK && state.complete && (n == head.size() || p.upgrade);
  out.major = p.http_major;
  out.minor = p.http_minor;
  if (type == HTTP_REQUEST) out.method = http_method_str(static_cast<http_method>(p.method));
  out.status = static_cast<int>(p.status_code);
  for (auto& f : out.fields) f.second = std::string(TrimSpTab(f.second));
  return out;
}

// http-parser's Transfer-Encoding prefix bug (see the top) explains its
// refusal of `head`.
inline bool TransferEncodingPrefixBug(std::string_view head, const OracleHead& o) {
  if (o.error != HPE_INVALID_TRANSFER_ENCODING && o.error != HPE_UNEXPECTED_CONTENT_LENGTH) return false;
  for (const auto& field : ReadHeadLines(head.substr(SkippedLines(head))).fields) {
    if (field.first.size() > 17 && SameIgnoringCase(field.first.substr(0, 17), "transfer-encoding")) return true;
  }
  return false;
}

// http-parser's refusal of a HTAB after a Content-Length or
// Transfer-Encoding value (see the top) explains its refusal of `head`.
inline bool TrailingTabBug(std::string_view head, const OracleHead& o) {
  if (o.error != HPE_INVALID_CONTENT_LENGTH && o.error != HPE_INVALID_TRANSFER_ENCODING) return false;
  for (std::string_view line : SplitOn(head.substr(SkippedLines(head)), '\n')) {
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    if (!SameIgnoringCase(name, "content-length") && !SameIgnoringCase(name, "transfer-encoding")) continue;
    std::string_view value = line.substr(colon + 1);
    if (!value.empty() && value.back() == '\r') value.remove_suffix(1);
    const std::string_view trimmed = TrimSpTab(value);
    if (trimmed.empty()) continue;
    const std::string_view after = value.substr(value.rfind(trimmed.back()) + 1);
    if (after.find('\t') != std::string_view::npos) return true;
  }
  return false;
}

inline bool KnownOracleBug(std::string_view head, const OracleHead& o) {
  return TransferEncodingPrefixBug(head, o) || TrailingTabBug(head, o);
}

// `head`: the head bytes HeadParser accepted into `req` (leading empty lines
// included).
inline bool CompareWithOracle(std::string_view head, const RequestHead& req) {
  const OracleHead o = RunOracle(head, HTTP_REQUEST);
  if (!o.accepted && KnownOracleBug(head, o)) return true;
  FUZZ_CHECK(o.accepted);
  FUZZ_CHECK(o.method == req.method);
  FUZZ_CHECK(o.major == 1 && o.minor == req.minor_version);
  // The target as sent: between the request line's spaces.
  std::string_view line = head.substr(SkippedLines(head));
  line = line.substr(0, line.find("\r\n"));
  const std::string_view target = line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1);
  FUZZ_CHECK(o.url == target);
  if (req.rewritten_target.empty()) FUZZ_CHECK(o.url == req.target);
  // Our fields are http-parser's, less the names with '_', and with the
  // authority of an absolute-form target as the only Host.
  std::vector<std::pair<std::string, std::string>> expected;
  const bool absolute = !req.rewritten_target.empty();
  for (const auto& f : o.fields) {
    if (f.first.find('_') != std::string::npos) continue;
    if (absolute && SameIgnoringCase(f.first, "host")) continue;
    expected.push_back(f);
  }
  if (absolute) expected.emplace_back("Host", std::string(req.host));
  FUZZ_CHECK(expected.size() == req.headers.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    FUZZ_CHECK(expected[i].first == req.headers.fields()[i].name);
    FUZZ_CHECK(expected[i].second == req.headers.fields()[i].value);
  }
  return true;
}

inline bool CompareWithOracle(std::string_view head, const ResponseHead& resp) {
  const OracleHead o = RunOracle(head, HTTP_RESPONSE);
  if (!o.accepted && KnownOracleBug(head, o)) return true;
  FUZZ_CHECK(o.accepted);
  FUZZ_CHECK(o.major == 1 && o.minor == resp.minor_version);
  FUZZ_CHECK(o.status == resp.status);
  FUZZ_CHECK(o.reason == resp.reason);
  FUZZ_CHECK(o.fields.size() == resp.headers.size());
  for (size_t i = 0; i < o.fields.size(); ++i) {
    FUZZ_CHECK(o.fields[i].first == resp.headers.fields()[i].name);
    FUZZ_CHECK(o.fields[i].second == resp.headers.fields()[i].value);
  }
  return true;
}

}  // namespace fuzz
}  // namespace sessiond
