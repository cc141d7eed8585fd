// sessiond: command line, then hand-off to the Server (docs/CONFIGURATION.md, Command line).
//
//   sessiond [-c FILE]                          run (FILE: -c, else $SESSIOND_CONFIG, else ./sessiond.yaml)
//   sessiond --check-config|-t [-c FILE]        validate and summarise; exit 0 valid, 2 invalid
//   sessiond --check-config=FILE                the same
//   sessiond gen-secret [--help]                print a fresh random secret
//   sessiond --version | --help
//
// Exit codes: 0 clean shutdown, 1 runtime failure (e.g. port in use),
// 2 usage or configuration error. Every error line starts with "sessiond: ";
// a configuration error is "sessiond: FILE:LINE:COL: message", one per line,
// all of a file's errors at once.
#include <errno.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <string>

#include "base/build_info.h"
#include "base/log.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "server/libevent_memory.h"
#include "server/server.h"
#include "session/session_filter.h"

namespace {

const char kUsage[] =
    "usage: sessiond [-c FILE]                  run the session proxy\n"
    "       sessiond -t|--check-config [-c FILE]\n"
    "                                           validate FILE, print a summary (secrets masked)\n"
    "       sessiond --check-config=FILE        the same\n"
    "       sessiond gen-secret                 print a new random secret_key\n"
    "       sessiond --version | --help\n"
    "\n"
    "  -c, --config FILE   the configuration (also --config=FILE); default\n"
    "                      $SESSIOND_CONFIG, else ./sessiond.yaml\n"
    "  -t, --check-config  check the configuration and exit (as nginx -t)\n"
    "  -V, --version       version, commit, build date and library versions\n"
    "  -h, --help          this text\n"
    "\n"
    "Signals: SIGTERM/SIGINT drain and exit 0, SIGHUP reloads the configuration.\n"
    "Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.\n"
    "Manual: man sessiond, man 5 sessiond.yaml.\n";

const char kGenSecretUsage[] =
    "usage: sessiond gen-secret\n"
    "\n"
    "Prints a new random secret_key: 32 bytes from the system CSPRNG, base64url\n"
    "(43 characters), on one line. Keep it out of the configuration file:\n"
    "  export SESSIOND_SECRET=$(sessiond gen-secret)     with  secret_key: ${SESSIOND_SECRET}\n"
    "  sessiond gen-secret > /etc/sessiond/secret && chmod 600 /etc/sessiond/secret\n"
    "                                                    with  secret_key_file: /etc/sessiond/secret\n"
    "To rotate, move the old key to secret_key_fallbacks.\n";

int UsageError(const std::string& message) {
  fprintf(stderr, "sessiond: %s\n%s", message.c_str(), kUsage);
  return 2;
}

int GenSecret(int argc, char** argv) {
  if (argc == 3 && (std::string(argv[2]) == "--help" || std::string(argv[2]) == "-h")) {
    fputs(kGenSecretUsage, stdout);
    return 0;
  }
  if (argc > 2) {
    fprintf(stderr, "sessiond: gen-secret takes no arguments (got '%s')\n%s", argv[2], kGenSecretUsage);
    return 2;
  }
  sessiond::Result<std::string> bytes = sessiond::crypto::RandomBytes(32);
  if (!bytes.ok()) {
    fprintf(stderr, "sessiond: %s\n", bytes.status().message().c_str());
    return 1;
  }
  printf("%s\n", sessiond::crypto::Base64UrlEncode(*bytes).c_str());
  return 0;
}

// Runtime versions where the library offers one (libevent, OpenSSL), else
// the version compiled against.
void PrintVersion() {
  const sessiond::BuildInfo& b = sessiond::GetBuildInfo();
  printf("sessiond %s\n", b.version);
  printf("commit    %s\n", b.commit);
  printf("built     %s\n", b.date);
  printf("libevent  %s\n", event_get_version());
  printf("OpenSSL   %s\n", OpenSSL_version(OPENSSL_VERSION));
  printf("hiredis   %d.%d.%d (compile time)\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
  printf("yaml-cpp  %s (compile time)\n", b.yaml_cpp_version);
}

// Each line of a (possibly multi-line) error message, prefixed.
void PrintErrorLines(const std::string& message) {
  size_t start = 0;
  while (start <= message.size()) {
    size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    fprintf(stderr, "sessiond: %.*s\n", static_cast<int>(end - start), message.c_str() + start);
    start = end + 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "gen-secret") return GenSecret(argc, argv);
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--version" || arg == "-V") {
      PrintVersion();
      return 0;
    }
    if (arg == "--check-config" || arg == "-t") {
      check_only = true;
    } else if (arg.rfind("--check-config=", 0) == 0) {
      check_only = true;
      config_path = arg.substr(15);
      if (config_path.empty()) return UsageError("--check-config= needs a file name");
    } else if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc) return UsageError(arg + " needs a file name");
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
      if (config_path.empty()) return UsageError("--config= needs a file name");
    } else if (arg == "gen-secret") {
      return UsageError("gen-secret is a command of its own: sessiond gen-secret");
    } else {
      return UsageError("unknown argument '" + arg + "'");
    }
  }
  bool defaulted = false;
  if (config_path.empty()) {
    const char* env = getenv("SESSIOND_CONFIG");
    defaulted = !(env && *env);
    config_path = defaulted ? "sessiond.yaml" : env;
  }

  sessiond::Result<std::shared_ptr<const sessiond::Config>> config = sessiond::LoadConfig(config_path);
  if (!config.ok()) {
    PrintErrorLines(config.status().message());
    struct stat st;
    if (defaulted && stat(config_path.c_str(), &st) != 0 && errno == ENOENT) {
      fputs("sessiond: hint: without -c FILE or $SESSIOND_CONFIG sessiond reads ./sessiond.yaml; "
            "start from the example: cp sessiond.yaml.example sessiond.yaml (in the source tree, "
            "or under /usr/share/doc/sessiond/ or /usr/local/share/doc/sessiond/), then "
            "sessiond -t to check it\n",
            stderr);
    }
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
  sessiond::SetLogFormat(cfg.log.format);
  sessiond::InstallLibeventAllocator();
  sessiond::Result<sessiond::SessionRuntime> sessions = sessiond::MakeSessionRuntime(*config);
  if (!sessions.ok()) {
    fprintf(stderr, "sessiond: %s\n", sessions.status().message().c_str());
    return 1;
  }
  sessiond::Server server(*config, std::move(*sessions));
  return server.Run();
}
