#include "base/build_info.h"

#ifndef SESSIOND_VERSION
#define SESSIOND_VERSION "0.1.0"
#endif
#ifndef SESSIOND_COMMIT
#define SESSIOND_COMMIT "unknown"
#endif
#ifndef SESSIOND_BUILD_DATE
#define SESSIOND_BUILD_DATE "unknown"
#endif
#ifndef SESSIOND_YAML_CPP_VERSION
#define SESSIOND_YAML_CPP_VERSION "unknown"
#endif

namespace sessiond {

const BuildInfo& GetBuildInfo() {
  static const BuildInfo kInfo{SESSIOND_VERSION, SESSIOND_COMMIT, SESSIOND_BUILD_DATE,
                               SESSIOND_YAML_CPP_VERSION};
  return kInfo;
}

}  // namespace sessiond
