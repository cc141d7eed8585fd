// Reading session metadata (store.h, SessionMeta) back from the JSON object
// the stores keep it in: {"created":ms,"refreshed":ms,"expires":ms,
// "public_id":"...","client":"...","user_agent":"..."}. Each store writes the
// members it keeps (and the file store a "subject" it reads itself); this is
// the one reader for all of them.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string_view>

#include "store/store.h"

namespace sessiond {

// Sets the members of *m that `j` carries with the right type; unknown,
// missing or mistyped members leave *m as it was (metadata feeds listings
// and timeouts, never authorization). Anything but an object changes nothing.
void ReadSessionMeta(const nlohmann::json& j, SessionMeta* m);
// The same, from JSON text; text that does not parse changes nothing.
void ReadSessionMetaText(std::string_view text, SessionMeta* m);

}  // namespace sessiond
