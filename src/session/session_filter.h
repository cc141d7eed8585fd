// The session step of every exchange (CONTRACT sections 4 and 5).
#pragma once

#include <memory>

#include "config/config.h"
#include "server/worker.h"

namespace sessiond {

// Returns the per-worker factory maker for the configured session manager.
FilterFactoryMaker SessionFilterFactoryMaker(const std::shared_ptr<const Config>& config);

}  // namespace sessiond
