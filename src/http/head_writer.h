// HeadWriter: writes one message head into memory the caller reserved (for
// example straight in a connection's output buffer): no temporary string, no
// printf. Callers first add up an upper bound of the size, reserve that much,
// then Put the pieces and read back size().
#pragma once

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

  // Writes into [dst, dst + capacity); dst may be null (then ok() is false
  // and nothing is written).
  HeadWriter(char* dst, size_t capacity) : begin_(dst), p_(dst), end_(dst ? dst + capacity : dst) {}

  bool ok() const { return begin_ != nullptr; }

  void Put(std::string_view s) {
    if (s.size() > static_cast<size_t>(end_ - p_)) return;  // cannot happen with a correct bound
    if (s.empty()) return;  // a default view's data is null, which memcpy must not get
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
  // Bytes written so far.
  size_t size() const { return static_cast<size_t>(p_ - begin_); }

 private:
  char* begin_ = nullptr;
  char* p_ = nullptr;
  char* end_ = nullptr;
};

}  // namespace sessiond
