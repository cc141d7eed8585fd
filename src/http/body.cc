#include "http/body.h"

#include <algorithm>
#include <string_view>

namespace sessiond {

namespace {
constexpr size_t kMaxExtensionBytes = 4096;
constexpr int kMaxSizeDigits = 15;  // < 2^60: no overflow, far beyond any real chunk

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsFieldChar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7F); }

bool IsTokenChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  for (char x : std::string_view("!#$%&'*+-.^_`|~")) {
    if (c == static_cast<unsigned char>(x)) return true;
  }
  return false;
}
}  // namespace

void BodyDecoder::Reset(BodyFraming framing, uint64_t content_length, uint64_t max_trailer_bytes,
                        uint64_t max_body_bytes) {
  max_body_bytes_ = max_body_bytes;
  too_large_ = false;
  framing_ = framing;
  remaining_ = content_length;
  body_bytes_ = 0;
  size_digits_ = 0;
  line_bytes_ = 0;
  trailer_bytes_ = 0;
  max_trailer_bytes_ = max_trailer_bytes;
  error_ = nullptr;
  switch (framing) {
    case BodyFraming::kNone: state_ = State::kDone; break;
    case BodyFraming::kLength: state_ = content_length ? State::kLength : State::kDone; break;
    case BodyFraming::kChunked: state_ = State::kSize; break;
    case BodyFraming::kUntilClose: state_ = State::kUntilClose; break;
  }
}

BodyDecoder::Step BodyDecoder::Fail(const char* why, Step step) {
  state_ = State::kError;
  error_ = why;
  return step;
}

void BodyDecoder::FinishOnEof() {
  if (state_ == State::kUntilClose) state_ = State::kDone;
}

BodyDecoder::Step BodyDecoder::Next(const char* in, size_t len, size_t max_data) {
  Step step;
  if (state_ == State::kLength || state_ == State::kUntilClose) {
    uint64_t n = std::min<uint64_t>(len, max_data);
    if (state_ == State::kLength) n = std::min(n, remaining_);
    step.data = static_cast<size_t>(n);
    body_bytes_ += n;
    if (state_ == State::kLength) {
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::kDone;
    }
    return step;
  }

  size_t i = 0;
  while (i < len && state_ != State::kDone && state_ != State::kError) {
    const char c = in[i];
    switch (state_) {
      case State::kSize: {
        int v = HexValue(c);
        if (v >= 0) {
          if (++size_digits_ > kMaxSizeDigits) return Fail("chunk size too large", step);
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
        } else if (size_digits_ == 0) {
          return Fail("malformed chunk size", step);
        } else if (c == ';') {
          state_ = State::kExt;
        } else if (c == ' ' || c == '\t') {
          state_ = State::kSizeBws;
        } else if (c == '\r') {
          state_ = State::kSizeLf;
        } else {
          return Fail("malformed chunk size", step);
        }
        ++i;
        break;
      }
      case State::kSizeBws:
        if (c == ';') state_ = State::kExt;
        else if (c != ' ' && c != '\t') return Fail("malformed chunk size", step);
        ++i;
        break;
      case State::kExt:
        if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (!IsFieldChar(static_cast<unsigned char>(c)) || ++line_bytes_ > kMaxExtensionBytes) {
          return Fail("malformed chunk extension", step);
        }
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n') return Fail("chunk size line not ended by CRLF", step);
        ++i;
        if (remaining_ > max_body_bytes_ - std::min(max_body_bytes_, body_bytes_)) {
          too_large_ = true;
          return Fail("chunked body over the size limit", step);
        }
        state_ = remaining_ == 0 ? State::kTrailerStart : State::kData;
        break;
      case State::kData: {
        step.framing = i;
        uint64_t n = std::min<uint64_t>({remaining_, len - i, max_data});
        step.data = static_cast<size_t>(n);
        remaining_ -= n;
        body_bytes_ += n;
        if (remaining_ == 0) state_ = State::kDataCr;
        return step;
      }
      case State::kDataCr:
        if (c != '\r') return Fail("chunk data not followed by CRLF", step);
        ++i;
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (c != '\n') return Fail("chunk data not followed by CRLF", step);
        ++i;
        state_ = State::kSize;
        size_digits_ = 0;
        line_bytes_ = 0;
        remaining_ = 0;
        break;
      case State::kTrailerStart:  // a trailer field is token ":" value, like a header
        if (c == '\r') state_ = State::kFinalLf;
        else if (!IsTokenChar(static_cast<unsigned char>(c))) return Fail("malformed trailer", step);
        else state_ = State::kTrailerName;
        if (++trailer_bytes_ > max_trailer_bytes_) return Fail("trailer section too large", step);
        ++i;
        break;
      case State::kTrailerName:
        if (c == ':') state_ = State::kTrailer;
        else if (!IsTokenChar(static_cast<unsigned char>(c))) return Fail("malformed trailer", step);
        if (++trailer_bytes_ > max_trailer_bytes_) return Fail("trailer section too large", step);
        ++i;
        break;
      case State::kTrailer:
        if (c == '\r') state_ = State::kTrailerLf;
        else if (!IsFieldChar(static_cast<unsigned char>(c))) return Fail("malformed trailer", step);
        if (++trailer_bytes_ > max_trailer_bytes_) return Fail("trailer section too large", step);
        ++i;
        break;
      case State::kTrailerLf:
        if (c != '\n') return Fail("malformed trailer", step);
        ++i;
        state_ = State::kTrailerStart;
        break;
      case State::kFinalLf:
        if (c != '\n') return Fail("chunked body not ended by CRLF", step);
        ++i;
        state_ = State::kDone;
        break;
      default:
        return Fail("internal decoder state", step);
    }
  }
  step.framing = i;
  return step;
}

}  // namespace sessiond
