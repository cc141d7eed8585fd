#include "store/session_meta_json.h"

#include <nlohmann/json.hpp>

namespace sessiond {

void ReadSessionMeta(const nlohmann::json& j, SessionMeta* m) {
  if (!j.is_object()) return;
  auto number = [&](const char* name, int64_t* out) {
    auto it = j.find(name);
    if (it != j.end() && it->is_number_integer()) *out = it->get<int64_t>();
  };
  auto string = [&](const char* name, std::string* out) {
    auto it = j.find(name);
    if (it != j.end() && it->is_string()) *out = it->get<std::string>();
  };
  number("created", &m->created_at);
  number("refreshed", &m->refreshed_at);
  number("expires", &m->expires_at);
  string("public_id", &m->public_id);
  string("client", &m->client);
  string("user_agent", &m->user_agent);
}

void ReadSessionMetaText(std::string_view text, SessionMeta* m) {
  ReadSessionMeta(nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false), m);
}

}  // namespace sessiond
