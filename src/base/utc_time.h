// Calendar fields of a Unix time in UTC, by arithmetic alone.
//
// gmtime_r takes glibc's process-wide time-zone lock on every call (even for
// UTC), which every worker would contend for on each Set-Cookie Expires or
// access-log line; UTC needs no time zone at all. The proleptic Gregorian
// calendar, as gmtime_r computes it, for any time from year 0 to 9999.
#pragma once

#include <cstdint>

namespace sessiond {

struct UtcTime {
  int64_t year;
  int month;    // 1..12
  int day;      // 1..31
  int hour;     // 0..23
  int minute;   // 0..59
  int second;   // 0..59
  int weekday;  // 0 = Sunday .. 6 = Saturday
};

UtcTime ToUtc(int64_t unix_seconds);

}  // namespace sessiond
