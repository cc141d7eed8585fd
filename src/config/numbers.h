// Numbers as written in a config file: plain decimal integers, TCP ports,
// sizes and durations (ParseDuration, declared in config.h). Internal to
// src/config/.
//
// Only unsigned decimal digits are numbers here: no sign, no spaces, no 0x,
// no YAML 1.1 underscores or sexagesimal forms, no floats. A config value that
// looks like anything else is an error rather than a surprise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sessiond {
namespace config_internal {

// Digits only, at least one, fits in uint64_t.
std::optional<uint64_t> ParseDecimal(const std::string& text);

// A TCP port: 1..65535.
std::optional<uint16_t> ParsePort(const std::string& text);

// A size in bytes (docs/CONFIGURATION.md, Sizes): a bare byte count, or a
// whole number followed by KB or MB (1000-based) or KiB or MiB (1024-based),
// without a space: "4096", "512KB", "10MB", "10MiB". nullopt when malformed
// or when it does not fit in uint64_t.
std::optional<uint64_t> ParseSize(const std::string& text);

}  // namespace config_internal
}  // namespace sessiond
