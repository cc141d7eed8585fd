#include "store/session_data.h"

#include "base/json_text.h"

namespace sessiond {

std::string SerializeSession(const SessionData& data) {
  std::string out;
  out.reserve(SerializedSize(data));
  out.push_back('{');
  bool first = true;
  for (const auto& [key, value] : data) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(&out, key);
    out.push_back(':');
    out.append(value);
  }
  out.push_back('}');
  return out;
}

uint64_t SerializedSize(const SessionData& data) {
  uint64_t size = 2;  // {}
  std::string scratch;
  for (const auto& [key, value] : data) {
    scratch.clear();
    AppendJsonString(&scratch, key);
    size += scratch.size() + 1 + value.size();  // "key":value
  }
  if (data.size() > 1) size += data.size() - 1;  // commas
  return size;
}

void ApplyChanges(SessionData* data, bool clear, const std::vector<std::string>& deletes,
                  const std::map<std::string, std::optional<std::string>>& sets) {
  if (clear) data->clear();
  for (const auto& key : deletes) data->erase(key);
  for (const auto& [key, value] : sets) {
    if (value) (*data)[key] = *value;
    else data->erase(key);
  }
}

}  // namespace sessiond
