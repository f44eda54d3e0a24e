#pragma once
// What the sweep runner and the sweep's reports share (private to latentlab_sweep): file locks, the
// stages' logs, and how a stage is named in messages.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/sweep/plan.hpp"

namespace latentlab::sweep::detail {

namespace fs = std::filesystem;
using nlohmann::json;

class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    fs::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("cannot open lock file " + path.string() + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The last line of a log that says what went wrong: its last "error" line, else its last line.
inline std::string failure_line(const fs::path& log) {
  std::ifstream in(log);
  std::string line, last, error;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    last = line;
    if (line.find("error") != std::string::npos || line.find("Error") != std::string::npos) error = line;
  }
  return !error.empty() ? error : last;
}

// The last progress line of a running stage's log ("step 150/300 ... ETA 1m2s", "16/64 samples ..."),
// read from the log's last 64 KiB.
inline std::string progress_line(const fs::path& log) {
  std::ifstream in(log, std::ios::binary | std::ios::ate);
  if (!in) return "";
  const auto size = static_cast<std::streamoff>(in.tellg());
  in.seekg(std::max<std::streamoff>(0, size - 65536));
  static const std::regex progress(R"((step \d+/\d+|\d+/\d+ samples))");
  std::string line, last;
  while (std::getline(in, line))
    if (std::regex_search(line, progress)) last = line;
  const auto bracket = last.rfind("] ");
  return bracket == std::string::npos ? last : last.substr(bracket + 2);
}

// The plugins a job names, for failure messages: "sampler 'ddim'".
inline std::string job_plugins(const StageJob& job) {
  std::vector<std::string> parts;
  const auto& c = job.config;
  const auto name_of = [](const json& choice) {
    return choice.is_string() ? choice.get<std::string>() : choice.value("name", std::string("?"));
  };
  if (job.kind == "sample") {
    parts.push_back("sampler '" + name_of(c.value("sampler", json("ddim"))) + "'");
    parts.push_back("guider '" + name_of(c.value("guider", json("none"))) + "'");
  } else if (job.kind == "autoencoder" && c.contains("import")) {
    parts.push_back("import '" + c.value("import", std::string()) + "'");
  } else if (job.kind == "autoencoder") {
    parts.push_back("autoencoder '" + name_of(c.value("autoencoder", json("kl"))) + "'");
  } else if (job.kind == "denoiser") {
    parts.push_back("weighting '" + name_of(c.value("weighting", json("unweighted"))) + "'");
  } else if (job.kind == "eval") {
    parts.push_back("features '" +
                    name_of(c.value("features", json::object()).value("name", json("classifier"))) + "'");
  }
  return parts.empty() ? "" : " (" + join(parts) + ")";
}

inline std::string describe(const StageJob& job) {
  return job.kind + " stage " + job.key.substr(0, 10) + " of " + job.path + job_plugins(job);
}

inline std::string now_text() {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

inline std::string duration_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<std::int64_t>(seconds + 0.5);
  if (s >= 3600) return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
  if (s >= 60) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s) + "s";
}

}  // namespace latentlab::sweep::detail
