// LocalReply: the one format of every response sessiond writes itself: a
// refused request head (400, 413, 431, 505...), a timeout (408, 504), an
// upstream failure (502) and a session step's own answer (docs/HTTP.md).
//
//   HTTP/1.1 <status> <reason>\r\n
//   Content-Type: text/plain; charset=utf-8\r\n   (or content_type)
//   Content-Length: <body size>\r\n
//   [extra_headers]                   a session step's Location, Retry-After ...
//   [X-Request-Id: <id>\r\n]          when the request got an id
//   [Connection: close\r\n]           when the connection ends after it
//   \r\n
//   <body>                            not for a HEAD request
//
// The body is short plain text; by default the reason phrase and a newline.
#pragma once

#include <cstddef>
#include <string_view>

namespace sessiond {

struct LocalReply {
  int status = 500;
  // Null data: the reason phrase and "\n".
  std::string_view body;
  std::string_view request_id;  // empty: no X-Request-Id field
  std::string_view content_type;   // empty: text/plain; charset=utf-8
  // Whole header lines, each ending in CRLF, written as they are.
  std::string_view extra_headers;
  bool close = true;
  bool head_request = false;    // a response to HEAD carries no body

  // The body the reply carries (or would carry, for HEAD).
  size_t body_size() const;
  // At least the size of the whole reply.
  size_t MaxSize() const;
  // Writes the reply into dst (MaxSize() bytes available); returns its size.
  size_t Write(char* dst) const;
  // Bytes of the body that Write() puts on the wire (0 for HEAD).
  size_t body_bytes_sent() const { return head_request ? 0 : body_size(); }
};

}  // namespace sessiond
