#include "http/local_reply.h"

#include <cstring>

#include "http/head_writer.h"
#include "http/message.h"

namespace sessiond {

namespace {

constexpr std::string_view kFixed =
    "HTTP/1.1 000 \r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \r\nX-Request-Id: \r\n"
    "Connection: close\r\n\r\n";

}  // namespace

size_t LocalReply::body_size() const {
  return body.data() ? body.size() : strlen(ReasonPhrase(status)) + 1;
}

size_t LocalReply::MaxSize() const {
  return kFixed.size() + strlen(ReasonPhrase(status)) + HeadWriter::kMaxNumber * 2 + request_id.size() +
         content_type.size() + extra_headers.size() + body_size();
}

size_t LocalReply::Write(char* dst) const {
  const char* reason = ReasonPhrase(status);
  HeadWriter w(dst, MaxSize());
  w.Put("HTTP/1.1 ");
  w.PutNumber(static_cast<uint64_t>(status));
  w.Put(" ");
  w.Put(reason);
  w.Put("\r\nContent-Type: ");
  w.Put(content_type.empty() ? std::string_view("text/plain; charset=utf-8") : content_type);
  w.Put("\r\nContent-Length: ");
  w.PutNumber(body_size());
  w.Put("\r\n");
  if (!extra_headers.empty()) w.Put(extra_headers);  // a default view's data is null: no memcpy from it
  if (!request_id.empty()) {
    w.Put("X-Request-Id: ");
    w.Put(request_id);
    w.Put("\r\n");
  }
  if (close) w.Put("Connection: close\r\n");
  w.Put("\r\n");
  if (!head_request) {
    if (body.data()) {
      w.Put(body);
    } else {
      w.Put(reason);
      w.Put("\n");
    }
  }
  return w.size();
}

}  // namespace sessiond
