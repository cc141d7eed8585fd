// store/session_meta_json.h: the one reader of the stores' metadata JSON.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "store/session_meta_json.h"

namespace sessiond {
namespace {

TEST_CASE("session meta json: every member sessiond writes is read back") {
  SessionMeta m;
  ReadSessionMetaText(R"({"created":1700000000000,"refreshed":1700000001000,"expires":1700000060000,)"
                      R"("public_id":"p-1","client":"203.0.113.7","user_agent":"curl/8"})",
                      &m);
  CHECK(m.created_at == 1700000000000);
  CHECK(m.refreshed_at == 1700000001000);
  CHECK(m.expires_at == 1700000060000);
  CHECK(m.public_id == "p-1");
  CHECK(m.client == "203.0.113.7");
  CHECK(m.user_agent == "curl/8");
  CHECK(m.subject.empty());  // the file store reads its own "subject"
}

TEST_CASE("session meta json: mistyped, unknown and missing members leave the value as it was") {
  SessionMeta m;
  m.created_at = 5;
  m.client = "kept";
  m.public_id = "kept-id";
  ReadSessionMeta(nlohmann::json::parse(R"({"created":"12","client":7,"refreshed":1.5,"expires":9,"extra":{}})"), &m);
  CHECK(m.created_at == 5);
  CHECK(m.client == "kept");
  CHECK(m.refreshed_at == 0);
  CHECK(m.expires_at == 9);
  CHECK(m.public_id == "kept-id");
}

TEST_CASE("session meta json: text that is not a JSON object changes nothing") {
  for (const char* text : {"", "{", "[1,2]", "\"created\"", "null", "{\"created\":1", "\xff\xfe"}) {
    SessionMeta m;
    m.expires_at = 42;
    ReadSessionMetaText(text, &m);
    CHECK_MESSAGE(m.expires_at == 42, text);
    CHECK(m.created_at == 0);
  }
}

}  // namespace
}  // namespace sessiond
