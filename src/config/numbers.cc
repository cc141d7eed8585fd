#include "config/numbers.h"

#include <limits>

#include "config/config.h"

namespace sessiond {

namespace {

constexpr uint64_t kMillisPerMinute = 60 * 1000;
// "More than 100 years" is certainly a typo; it also keeps every duration
// far from overflowing when added to a time point.
constexpr uint64_t kMaxMillis = uint64_t{36525} * 24 * 60 * kMillisPerMinute;

// Leading decimal digits of text[pos...]; advances pos past them.
std::optional<uint64_t> TakeDigits(const std::string& text, size_t* pos) {
  size_t end = *pos;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
  std::optional<uint64_t> n = config_internal::ParseDecimal(text.substr(*pos, end - *pos));
  *pos = end;
  return n;
}

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

std::optional<uint64_t> ParseSize(const std::string& text) {
  size_t pos = 0;
  std::optional<uint64_t> count = TakeDigits(text, &pos);
  if (!count) return std::nullopt;
  const std::string unit = text.substr(pos);
  uint64_t multiplier;
  if (unit.empty()) {
    multiplier = 1;
  } else if (unit == "KB") {
    multiplier = 1000;
  } else if (unit == "MB") {
    multiplier = 1000 * 1000;
  } else if (unit == "KiB") {
    multiplier = 1024;
  } else if (unit == "MiB") {
    multiplier = 1024 * 1024;
  } else {
    return std::nullopt;
  }
  if (*count > std::numeric_limits<uint64_t>::max() / multiplier) return std::nullopt;
  return *count * multiplier;
}

}  // namespace config_internal

// Terms "<digits><unit>", units strictly decreasing (d h m s ms), each at
// most once: "1h30m" and "1m30s" read as written, while "30m1h" or "1h1h" is
// more likely a slip than a wish, and is refused.
std::optional<Millis> ParseDuration(const std::string& text) {
  struct Unit {
    const char* suffix;
    uint64_t millis;
  };
  // Longest suffix first among those sharing a letter: "ms" before "m".
  static const Unit kUnits[] = {{"d", 24 * 60 * kMillisPerMinute},
                                {"h", 60 * kMillisPerMinute},
                                {"ms", 1},
                                {"m", kMillisPerMinute},
                                {"s", 1000}};
  if (text.empty()) return std::nullopt;
  uint64_t total = 0;
  uint64_t previous_unit = 0;  // millis of the last term's unit; 0 before the first
  size_t pos = 0;
  while (pos < text.size()) {
    std::optional<uint64_t> count = TakeDigits(text, &pos);
    if (!count) return std::nullopt;
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (text.compare(pos, std::string::traits_type::length(u.suffix), u.suffix) == 0) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr) return std::nullopt;  // a bare number, or an unknown unit
    pos += std::string::traits_type::length(unit->suffix);
    if (previous_unit != 0 && unit->millis >= previous_unit) return std::nullopt;
    previous_unit = unit->millis;
    if (*count > kMaxMillis / unit->millis) return std::nullopt;
    total += *count * unit->millis;
    if (total > kMaxMillis) return std::nullopt;
  }
  return Millis(static_cast<Millis::rep>(total));
}

std::optional<Millis> ParseMinutesOrDuration(const std::string& text) {
  std::optional<uint64_t> minutes = config_internal::ParseDecimal(text);
  if (!minutes) return ParseDuration(text);
  if (*minutes > kMaxMillis / kMillisPerMinute) return std::nullopt;
  return Millis(static_cast<Millis::rep>(*minutes * kMillisPerMinute));
}

}  // namespace sessiond
