// HeadWriter: writes one message head straight into an output evbuffer with
// a single reservation: no temporary string, no printf. Callers first add up
// an upper bound of the size (Reserve), then Put the pieces, then Commit.
#pragma once

#include <event2/buffer.h>

#include <cstdint>
#include <cstring>
#include <string_view>

#include "http/headers.h"

namespace sessiond {

class HeadWriter {
 public:
  static constexpr size_t kMaxNumber = 20;  // digits of a uint64_t

  static size_t HeadersSize(const HeaderList& headers) {
    size_t n = 0;
    for (const Header& h : headers.fields()) n += h.name.size() + h.value.size() + 4;
    return n;
  }

  // Reserves `max_size` contiguous bytes at the end of `out`.
  HeadWriter(evbuffer* out, size_t max_size) : out_(out) {
    if (evbuffer_reserve_space(out_, static_cast<ev_ssize_t>(max_size), &vec_, 1) == 1 &&
        vec_.iov_len >= max_size) {
      begin_ = p_ = static_cast<char*>(vec_.iov_base);
      end_ = begin_ + max_size;
    }
  }
  HeadWriter(const HeadWriter&) = delete;
  HeadWriter& operator=(const HeadWriter&) = delete;

  bool ok() const { return begin_ != nullptr; }

  void Put(std::string_view s) {
    if (s.size() > static_cast<size_t>(end_ - p_)) return;  // cannot happen with a correct bound
    memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void PutNumber(uint64_t v) {
    char digits[kMaxNumber];
    char* q = digits + sizeof(digits);
    do {
      *--q = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    Put(std::string_view(q, static_cast<size_t>(digits + sizeof(digits) - q)));
  }
  void PutHeaders(const HeaderList& headers) {
    for (const Header& h : headers.fields()) {
      Put(h.name);
      Put(": ");
      Put(h.value);
      Put("\r\n");
    }
  }
  // Hands the written bytes to the buffer (and so to the socket).
  void Commit() {
    if (!begin_) return;
    vec_.iov_len = static_cast<size_t>(p_ - begin_);
    evbuffer_commit_space(out_, &vec_, 1);
    begin_ = nullptr;
  }

 private:
  evbuffer* out_;
  evbuffer_iovec vec_{};
  char* begin_ = nullptr;
  char* p_ = nullptr;
  char* end_ = nullptr;
};

}  // namespace sessiond
