// Status and Result<T>: the one error path of sessiond.
//
// A Status is either OK (cheap: no allocation) or carries a code and a short
// human message. Messages are safe to log and, for the codes that map to HTTP
// errors, safe to show a client: callers must never put secrets, cookie values
// or session data into them. No exceptions cross an event-loop callback; code
// that calls a throwing library (yaml-cpp, nlohmann-json) catches at its edge
// and converts to a Status.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace sessiond {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalid,      // bad input: config, cookie, instruction header, request
    kNotFound,     // an ordinary miss (e.g. session not in the store)
    kTooLarge,     // a size limit was exceeded
    kIOError,      // an OS call failed
    kUnavailable,  // a dependency (store, upstream) cannot be reached
    kTimeout,      // a deadline passed
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status Invalid(std::string msg) { return Status(Code::kInvalid, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status TooLarge(std::string msg) { return Status(Code::kTooLarge, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status Timeout(std::string msg) { return Status(Code::kTimeout, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  const std::string& message() const { return msg_; }
  // "invalid: <message>" style, for logs.
  std::string ToString() const;

 private:
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string msg_;
};

// A value or the Status explaining why there is none.
template <class T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: must not be OK
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

inline std::string Status::ToString() const {
  const char* name = "ok";
  switch (code_) {
    case Code::kOk: return "ok";
    case Code::kInvalid: name = "invalid"; break;
    case Code::kNotFound: name = "not found"; break;
    case Code::kTooLarge: name = "too large"; break;
    case Code::kIOError: name = "io error"; break;
    case Code::kUnavailable: name = "unavailable"; break;
    case Code::kTimeout: name = "timeout"; break;
  }
  return std::string(name) + ": " + msg_;
}

}  // namespace sessiond
