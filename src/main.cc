// sessiond: command line, then hand-off to the Server (docs/CONFIGURATION.md, Command line).
//
//   sessiond [-c FILE]                  run (FILE: -c, else $SESSIOND_CONFIG, else ./sessiond.yaml)
//   sessiond --check-config [-c FILE]   validate and summarise; exit 0 valid, 2 invalid
//   sessiond gen-secret                 print a fresh random secret
//   sessiond --version | --help
//
// Exit codes: 0 clean shutdown, 1 runtime failure (e.g. port in use),
// 2 usage or configuration error.
#include <stdio.h>
#include <stdlib.h>

#include <string>

#include "config/config.h"
#include "crypto/crypto.h"
#include "server/libevent_memory.h"
#include "server/server.h"
#include "session/session_filter.h"
#include "base/log.h"

#ifndef SESSIOND_VERSION
#define SESSIOND_VERSION "0.1.0"
#endif

namespace {

const char kUsage[] =
    "usage: sessiond [-c FILE]                 run the session sidecar\n"
    "       sessiond --check-config [-c FILE]  validate FILE and print a summary\n"
    "       sessiond gen-secret                print a new random secret_key\n"
    "       sessiond --version | --help\n"
    "\n"
    "FILE defaults to $SESSIOND_CONFIG, else ./sessiond.yaml.\n"
    "Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.\n";

int UsageError(const std::string& message) {
  fprintf(stderr, "sessiond: %s\n%s", message.c_str(), kUsage);
  return 2;
}

int GenSecret() {
  sessiond::Result<std::string> bytes = sessiond::crypto::RandomBytes(32);
  if (!bytes.ok()) {
    fprintf(stderr, "sessiond: %s\n", bytes.status().message().c_str());
    return 1;
  }
  printf("%s\n", sessiond::crypto::Base64UrlEncode(*bytes).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--version" || arg == "-V") {
      printf("sessiond %s\n", SESSIOND_VERSION);
      return 0;
    }
    if (arg == "gen-secret" && argc == 2) return GenSecret();
    if (arg == "--check-config" || arg == "-t") {
      check_only = true;
    } else if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc) return UsageError(arg + " needs a file name");
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else {
      return UsageError("unknown argument '" + arg + "'");
    }
  }
  if (config_path.empty()) {
    const char* env = getenv("SESSIOND_CONFIG");
    config_path = env && *env ? env : "sessiond.yaml";
  }

  sessiond::Result<std::shared_ptr<const sessiond::Config>> config = sessiond::LoadConfig(config_path);
  if (!config.ok()) {
    fprintf(stderr, "sessiond: %s\n", config.status().message().c_str());
    return 2;
  }
  const sessiond::Config& cfg = **config;
  if (cfg.secret_key_file_world_readable) {
    fprintf(stderr, "sessiond: warning: %s is readable by other users; chmod 600 it\n",
            cfg.secret_key_file.c_str());
  }
  if (check_only) {
    fputs(sessiond::DescribeConfig(cfg).c_str(), stdout);
    printf("configuration %s is valid\n", config_path.c_str());
    return 0;
  }

  sessiond::SetLogLevel(cfg.log.level);
  sessiond::InstallLibeventAllocator();
  sessiond::Result<sessiond::FilterFactoryMaker> sessions = sessiond::SessionFilterFactoryMaker(*config);
  if (!sessions.ok()) {
    fprintf(stderr, "sessiond: %s\n", sessions.status().message().c_str());
    return 1;
  }
  sessiond::Server server(*config, *sessions);
  return server.Run();
}
