#pragma once
// Where a call's time goes, operator by operator, for `bench denoiser --profile` (docs/benchmarks.md).
// Built on LibTorch's RecordFunction observers, which its own profiler uses: every outermost operator a
// thread runs (an aten op in the forward pass, an autograd node in the backward pass, LatentLab's
// two-core products `latentlab::linear` / `latentlab::bmm`) is timed; the operators it calls are
// inside its time. What no operator covers (module code, autocast bookkeeping, the optimizer's loop) is
// the call's wall time minus theirs.
#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace latentlab::host {

class OpProfile {
 public:
  // Profiles `calls` calls of `fn` (after the caller's warm-up); the `top` operators by time, each with
  // its milliseconds per call, its share of the wall time and its calls per call, then "(other
  // operators)" and "(outside operators)".
  template <class Fn>
  static nlohmann::json measure(Fn&& fn, int calls, std::size_t top) {
    {
      std::lock_guard<std::mutex> lock(mutex());
      totals().clear();
    }
    const auto handle = at::addGlobalCallback(at::RecordFunctionCallback(&on_start, &on_end));
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) fn();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    at::removeCallback(handle);

    std::vector<std::pair<std::string, Total>> rows;
    {
      std::lock_guard<std::mutex> lock(mutex());
      rows.assign(totals().begin(), totals().end());
    }
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
    const double n = static_cast<double>(calls);
    nlohmann::json out = nlohmann::json::array();
    double covered = 0, other = 0;
    std::int64_t other_count = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& [name, total] = rows[i];
      covered += total.seconds;
      if (i >= top) {
        other += total.seconds;
        other_count += total.count;
        continue;
      }
      out.push_back({{"op", name},
                     {"ms", 1e3 * total.seconds / n},
                     {"share", total.seconds / wall},
                     {"calls", static_cast<double>(total.count) / n}});
    }
    if (other > 0)
      out.push_back({{"op", "(other operators)"},
                     {"ms", 1e3 * other / n},
                     {"share", other / wall},
                     {"calls", static_cast<double>(other_count) / n}});
    out.push_back({{"op", "(outside operators)"},
                   {"ms", 1e3 * std::max(0.0, wall - covered) / n},
                   {"share", std::max(0.0, wall - covered) / wall},
                   {"calls", 0}});
    return out;
  }

 private:
  struct Total {
    double seconds = 0;
    std::int64_t count = 0;
  };
  struct Started : at::ObserverContext {
    std::chrono::steady_clock::time_point at = std::chrono::steady_clock::now();
  };

  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::map<std::string, Total>& totals() {
    static std::map<std::string, Total> t;
    return t;
  }
  static int& depth() {
    thread_local int d = 0;
    return d;
  }

  // "autograd::engine::evaluate_function: ConvolutionBackward0" -> "backward: ConvolutionBackward0";
  // "...CppNode<latentlab::nn::(anonymous namespace)::Linear>" -> "...latentlab::Linear".
  static std::string short_name(std::string name) {
    const std::string engine = "autograd::engine::evaluate_function: ";
    if (name.rfind(engine, 0) == 0) name = "backward: " + name.substr(engine.size());
    const std::string node = "torch::autograd::CppNode<";
    if (const auto at = name.find(node); at != std::string::npos && name.back() == '>') {
      auto inner = name.substr(at + node.size(), name.size() - at - node.size() - 1);
      if (const auto last = inner.rfind("::");
          last != std::string::npos && inner.rfind("latentlab::", 0) == 0)
        inner = "latentlab::" + inner.substr(last + 2);
      name = name.substr(0, at) + inner;
    }
    return name;
  }

  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction&) {
    return depth()++ == 0 ? std::make_unique<Started>() : nullptr;
  }
  static void on_end(const at::RecordFunction& fn, at::ObserverContext* context) {
    --depth();
    if (context == nullptr) return;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - static_cast<Started*>(context)->at)
            .count();
    std::lock_guard<std::mutex> lock(mutex());
    auto& total = totals()[short_name(fn.name())];
    total.seconds += seconds;
    ++total.count;
  }
};

}  // namespace latentlab::host
