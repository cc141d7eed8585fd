#include "base/utc_time.h"

namespace sessiond {

namespace {

// a / b rounded toward negative infinity (b > 0).
int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && (a < 0)); }

}  // namespace

UtcTime ToUtc(int64_t unix_seconds) {
  UtcTime t{};
  const int64_t days = FloorDiv(unix_seconds, 86400);
  const int64_t secs = unix_seconds - days * 86400;
  t.hour = static_cast<int>(secs / 3600);
  t.minute = static_cast<int>(secs / 60 % 60);
  t.second = static_cast<int>(secs % 60);
  // 1970-01-01 was a Thursday.
  t.weekday = static_cast<int>(days + 4 - FloorDiv(days + 4, 7) * 7);

  // Count in 400-year eras of 146,097 days that start on 1 March 0000, so
  // that the leap day closes each year: within an era the year, and within
  // the year (March first) the month, follow from divisions.
  const int64_t shifted = days + 719468;  // days from 0000-03-01 to 1970-01-01
  const int64_t era = FloorDiv(shifted, 146097);
  const int64_t day_of_era = shifted - era * 146097;                                              // 0..146096
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;         // 0..399
  const int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);  // 0..365
  const int64_t month_from_march = (5 * day_of_year + 2) / 153;                                   // 0..11
  t.day = static_cast<int>(day_of_year - (153 * month_from_march + 2) / 5 + 1);
  t.month = static_cast<int>(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
  t.year = year_of_era + era * 400 + (t.month <= 2 ? 1 : 0);
  return t;
}

}  // namespace sessiond
