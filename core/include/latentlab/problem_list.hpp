#pragma once
// Collecting the problems of a config's independent parts (its sections, its plugins' parameters), so
// that a user hears of all of them at once rather than one per run (docs/spec.md, Validation).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "latentlab/error.hpp"

namespace latentlab {

class ProblemList {
 public:
  // Runs `body`; a ConfigError it throws is kept (each of its problems), and false returned.
  template <class Body>
  bool check(Body&& body) {
    try {
      std::forward<Body>(body)();
      return true;
    } catch (const ConfigError& e) {
      for (auto& problem : problems_of(e))  // each once (two parts may find one missing key)
        if (std::find(problems_.begin(), problems_.end(), problem) == problems_.end())
          problems_.push_back(std::move(problem));
      return false;
    }
  }

  bool empty() const { return problems_.empty(); }

  // Throws what was kept: a ConfigError for one problem, a ConfigErrors for several.
  void throw_if_any() const {
    if (problems_.size() == 1) throw ConfigError(problems_.front());
    if (!problems_.empty()) throw ConfigErrors(problems_);
  }

 private:
  std::vector<std::string> problems_;
};

}  // namespace latentlab
