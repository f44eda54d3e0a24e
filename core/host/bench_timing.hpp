#pragma once
// Timing for the `bench` commands: medians of repeated rounds.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace latentlab::host {

// Median seconds per call of `fn` over `repeats` rounds, each running at least `min_seconds`.
template <class Fn>
double median_seconds_per_call(Fn&& fn, int repeats, double min_seconds) {
  std::vector<double> per_call;
  for (int r = 0; r < repeats; ++r) {
    std::int64_t calls = 0;
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    do {
      fn();
      ++calls;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } while (elapsed < min_seconds);
    per_call.push_back(elapsed / static_cast<double>(calls));
  }
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

// Resets the process's peak resident set size (Linux: "5" to /proc/self/clear_refs), so that
// peak_rss_mib() measures from here on;
// false where it cannot (the figure would then be the peak since the process started).
inline bool reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  if (!clear) return false;
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

// The peak resident set size since the last reset_peak_rss() (VmHWM), in MiB; -1 where unknown.
inline double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // "VmHWM:  1234 kB"
  return -1;
}

// A measured value, or null where it could not be measured (negative).
inline nlohmann::json json_or_null(double value) {
  return value < 0 ? nlohmann::json() : nlohmann::json(value);
}

}  // namespace latentlab::host
