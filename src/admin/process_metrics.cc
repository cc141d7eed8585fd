#include "admin/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "base/build_info.h"

namespace sessiond {

namespace {

void Gauge(std::string* out, const char* name, const char* type, const char* help, double value) {
  char line[320];
  snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, value);
  out->append(line);
}

// The fields of /proc/self/stat after "pid (comm)": comm may hold spaces
// and parentheses, so the split starts after the LAST ')'. fields[0] is the
// state (field 3 of proc(5)).
std::vector<std::string> SelfStatFields() {
  std::ifstream in("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(text.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

// Boot time (Unix seconds) from /proc/stat's btime line; 0 if unknown.
long long BootTime() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("btime ", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

// Open descriptors: the entries of /proc/self/fd less the one opendir holds.
long OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  long n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;
}

}  // namespace

std::string EscapeLabelValue(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void RenderProcessMetrics(std::string* out) {
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  const std::vector<std::string> f = SelfStatFields();
  // proc(5) numbering: utime 14, stime 15, starttime 22, rss 24; fields[0] is 3.
  if (f.size() > 21 && ticks > 0) {
    const double cpu = static_cast<double>(std::strtoull(f[11].c_str(), nullptr, 10) +
                                           std::strtoull(f[12].c_str(), nullptr, 10)) /
                       static_cast<double>(ticks);
    Gauge(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", cpu);
    Gauge(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
          static_cast<double>(std::strtoll(f[21].c_str(), nullptr, 10)) * static_cast<double>(page));
    const long long boot = BootTime();
    if (boot > 0) {
      Gauge(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
            static_cast<double>(boot) +
                static_cast<double>(std::strtoull(f[19].c_str(), nullptr, 10)) / static_cast<double>(ticks));
    }
  }
  const long fds = OpenFds();
  if (fds >= 0) Gauge(out, "process_open_fds", "gauge", "Number of open file descriptors.", static_cast<double>(fds));
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    Gauge(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
          limit.rlim_cur == RLIM_INFINITY ? -1.0 : static_cast<double>(limit.rlim_cur));
  }
  const BuildInfo& b = GetBuildInfo();
  out->append(
      "# HELP sessiond_build_info The version and git commit sessiond was built from; the value is always 1.\n"
      "# TYPE sessiond_build_info gauge\n");
  out->append("sessiond_build_info{version=\"" + EscapeLabelValue(b.version) + "\",commit=\"" +
              EscapeLabelValue(b.commit) + "\"} 1\n");
}

}  // namespace sessiond
