// What was built: the version, the git commit and the build date, fixed at
// compile time by the Makefile (-D flags on build_info.cc only, so a new
// commit recompiles one file). Shown by `sessiond --version` and exported as
// the sessiond_build_info metric (docs/OPERATIONS.md, Metrics).
#pragma once

namespace sessiond {

struct BuildInfo {
  const char* version;           // VERSION file, e.g. "0.1.0"
  const char* commit;            // git commit (12 hex digits, "-dirty" with local changes) or "unknown"
  const char* date;              // UTC, ISO 8601 (SOURCE_DATE_EPOCH when set) or "unknown"
  const char* yaml_cpp_version;  // yaml-cpp offers no runtime version: pkg-config's at build time
};

const BuildInfo& GetBuildInfo();

}  // namespace sessiond
