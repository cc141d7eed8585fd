// Reading the request policy settings (policy_config.h) out of the YAML
// tree. Internal to src/config/: config.cc opens the sections (so the schema
// of every mapping stays in one file) and hands them here.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "config/policy_config.h"
#include "config/yaml_reader.h"

namespace sessiond {
namespace config_internal {

// The keys of one entry of routes: and rate_limits:, and of on_denied:.
#define SESSIOND_ROUTE_KEYS "path", "match", "methods", "require", "on_denied"
#define SESSIOND_ON_DENIED_KEYS "redirect"
#define SESSIOND_RATE_LIMIT_KEYS "key", "rate", "burst", "paths", "shared"

// Reads routes: and rate_limits: from `root`, and the csrf: and
// upstream_signature: sections config.cc opened, into *policy. Errors go to
// the sections, like every other key's. `session` (read before) is what
// the policy keys are checked against (rate_limits[].shared needs the redis
// manager, key: subject needs session.subject_key).
void ReadPolicy(Section& root, Section& csrf, Section& signature, const SessionConfig& session,
                PolicyConfig* policy);

// The --check-config summary lines of the policy settings as (key, value);
// the signature key only as its length.
std::vector<std::pair<std::string, std::string>> DescribePolicy(const PolicyConfig& policy);

}  // namespace config_internal
}  // namespace sessiond
