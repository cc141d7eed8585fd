#include "config/numbers.h"

#include <limits>

#include "config/config.h"

namespace sessiond {

namespace {

constexpr uint64_t kMillisPerMinute = 60 * 1000;
// "More than 100 years" is certainly a typo; it also keeps every duration
// far from overflowing when added to a time point.
constexpr uint64_t kMaxMillis = uint64_t{36525} * 24 * 60 * kMillisPerMinute;

}  // namespace

namespace config_internal {

std::optional<uint64_t> ParseDecimal(const std::string& text) {
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

std::optional<uint16_t> ParsePort(const std::string& text) {
  std::optional<uint64_t> port = ParseDecimal(text);
  if (!port || *port < 1 || *port > 65535) return std::nullopt;
  return static_cast<uint16_t>(*port);
}

}  // namespace config_internal

std::optional<Millis> ParseDuration(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::optional<uint64_t> count = config_internal::ParseDecimal(text.substr(0, digits));
  if (!count) return std::nullopt;

  const std::string unit = text.substr(digits);
  uint64_t millis_per_unit;
  if (unit.empty() || unit == "m") {
    millis_per_unit = kMillisPerMinute;  // a bare number means minutes
  } else if (unit == "ms") {
    millis_per_unit = 1;
  } else if (unit == "s") {
    millis_per_unit = 1000;
  } else if (unit == "h") {
    millis_per_unit = 60 * kMillisPerMinute;
  } else if (unit == "d") {
    millis_per_unit = 24 * 60 * kMillisPerMinute;
  } else {
    return std::nullopt;
  }
  if (*count > kMaxMillis / millis_per_unit) return std::nullopt;
  return Millis(static_cast<Millis::rep>(*count * millis_per_unit));
}

}  // namespace sessiond
