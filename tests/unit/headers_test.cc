#include "http/headers.h"

#include <doctest/doctest.h>

#include <string>

using namespace sessiond;

TEST_CASE("HeaderList::Clear keeps stored values usable for the next message") {
  HeaderList list;
  std::string big(3000, 'x');  // larger than one arena block
  for (int round = 0; round < 3; ++round) {
    list.Clear();
    CHECK(list.size() == 0);
    std::string value = "v" + std::to_string(round);
    list.AppendCopy("X-Small", value);
    list.AppendValueCopy("X-Big", big);
    list.AppendCopy("X-After", "after");
    REQUIRE(list.size() == 3);
    CHECK(*list.Get("X-Small") == value);
    CHECK(*list.Get("X-Big") == big);
    CHECK(*list.Get("X-After") == "after");
  }
}

TEST_CASE("HeaderList stores many values across blocks without corrupting earlier ones") {
  HeaderList list;
  for (int i = 0; i < 200; ++i) list.AppendCopy("X-N", std::string(static_cast<size_t>(i % 50 + 1), char('a' + i % 26)));
  size_t i = 0;
  for (const Header& h : list.fields()) {
    CHECK(h.value == std::string(i % 50 + 1, char('a' + i % 26)));
    ++i;
  }
  CHECK(i == 200);
}

TEST_CASE("The known fields sessiond appends carry ClassifyHeader's id") {
  for (const KnownField& f : {kFieldHost, kFieldCookie, kFieldSetCookie, kFieldXForwardedFor, kFieldXForwardedProto,
                              kFieldXForwardedHost, kFieldXForwardedPort, kFieldXRequestId}) {
    CAPTURE(f.name);
    CHECK(ClassifyHeader(f.name) == f.id);
  }
  HeaderList list;
  list.AppendValueCopy(kFieldXRequestId, "abc");
  REQUIRE(list.size() == 1);
  CHECK(list.Get(HeaderId::kXRequestId) == std::optional<std::string_view>("abc"));
  CHECK(list.fields()[0].name == "X-Request-Id");
}

TEST_CASE("HeaderList::RemoveIf removes every match and keeps the rest in order") {
  const std::vector<std::string> names = {"A", "x", "B", "x", "x", "C", "x"};
  // Every subset of positions marked "x" by the predicate, by bit mask.
  for (unsigned mask = 0; mask < (1u << names.size()); ++mask) {
    HeaderList list;
    for (size_t i = 0; i < names.size(); ++i) list.AppendCopy(names[i], std::to_string(i));
    std::vector<std::string> kept;
    for (size_t i = 0; i < names.size(); ++i) {
      if (!(mask & (1u << i))) kept.push_back(std::to_string(i));
    }
    CAPTURE(mask);
    const size_t removed = list.RemoveIf([&](const Header& h) {
      return (mask & (1u << static_cast<unsigned>(std::stoi(std::string(h.value))))) != 0;
    });
    CHECK(removed == names.size() - kept.size());
    std::vector<std::string> values;
    for (const Header& h : list.fields()) values.emplace_back(h.value);
    CHECK(values == kept);
  }
}
