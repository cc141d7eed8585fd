// ToUtc (src/base/utc_time.h) against the C library's gmtime_r.
#include "base/utc_time.h"

#include <doctest/doctest.h>

#include <ctime>
#include <random>

namespace sessiond {

namespace {

void CheckAgainstGmtime(int64_t t) {
  CAPTURE(t);
  const time_t tt = static_cast<time_t>(t);
  struct tm want {};
  REQUIRE(gmtime_r(&tt, &want) != nullptr);
  const UtcTime got = ToUtc(t);
  CHECK(got.year == int64_t{want.tm_year} + 1900);
  CHECK(got.month == want.tm_mon + 1);
  CHECK(got.day == want.tm_mday);
  CHECK(got.hour == want.tm_hour);
  CHECK(got.minute == want.tm_min);
  CHECK(got.second == want.tm_sec);
  CHECK(got.weekday == want.tm_wday);
}

}  // namespace

TEST_CASE("ToUtc agrees with gmtime_r") {
  // Edges: the epoch, leap days, century and 400-year leap rules, the
  // largest expiry sessiond writes, times before 1970.
  for (int64_t t : {int64_t{0}, int64_t{-1}, int64_t{86399}, int64_t{86400}, int64_t{951782400} /* 2000-02-29 */,
                    int64_t{951868800} /* 2000-03-01 */, int64_t{4107456000} /* 2100-02-28 */,
                    int64_t{4107542400} /* 2100-03-01 */, int64_t{1709164800} /* 2024-02-29 */,
                    int64_t{253402300799} /* 9999-12-31T23:59:59 */, int64_t{-62167219200} /* 0000-01-01 */,
                    int64_t{-2208988800} /* 1900-01-01 */, int64_t{2147483647}, int64_t{2147483648}}) {
    CheckAgainstGmtime(t);
  }
  std::mt19937_64 rng(19700101);
  for (int i = 0; i < 20000; ++i) {
    CheckAgainstGmtime(static_cast<int64_t>(rng() % 315537897600ULL) - 62167219200LL);  // years 0..9999
    CheckAgainstGmtime(static_cast<int64_t>(rng() % 2000000000000ULL));                    // 1970..about 65000
  }
}

TEST_CASE("ToUtc walks every day of four centuries in order") {
  int64_t year = 1600;
  int month = 1, day = 1, weekday = 6;  // 1600-01-01 was a Saturday
  for (int64_t d = 0; d < 146097; ++d) {
    const int64_t t = (d - 135140) * 86400 + 43200;  // 135,140 days from 1600-01-01 to 1970-01-01
    const UtcTime u = ToUtc(t);
    REQUIRE(u.year == year);
    REQUIRE(u.month == month);
    REQUIRE(u.day == day);
    REQUIRE(u.weekday == weekday);
    REQUIRE(u.hour == 12);
    static const int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const int in_month = kDays[month - 1] + (month == 2 && leap ? 1 : 0);
    weekday = (weekday + 1) % 7;
    if (++day > in_month) {
      day = 1;
      if (++month > 12) {
        month = 1;
        ++year;
      }
    }
  }
}

}  // namespace sessiond
