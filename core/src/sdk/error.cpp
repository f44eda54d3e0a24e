#include "latentlab/error.hpp"

#include <utility>

namespace latentlab {

// Out-of-line so the type information has one home: the core library.
Error::Error(const std::string& message) : std::runtime_error(message) {}
Error::~Error() = default;

ConfigError::ConfigError(const std::string& message) : Error(message) {}
ConfigError::~ConfigError() = default;

namespace {

std::string lines(const std::vector<std::string>& problems) {
  std::string out;
  for (const auto& problem : problems) out += (out.empty() ? "" : "\n") + problem;
  return out;
}

}  // namespace

ConfigErrors::ConfigErrors(std::vector<std::string> problems)
    : ConfigError(lines(problems)), problems_(std::move(problems)) {}
ConfigErrors::~ConfigErrors() = default;

std::vector<std::string> problems_of(const ConfigError& error) {
  if (const auto* many = dynamic_cast<const ConfigErrors*>(&error)) return many->problems();
  return {error.what()};
}

void rethrow_prefixed(const ConfigError& error, const std::string& prefix) {
  auto problems = problems_of(error);
  for (auto& problem : problems)
    if (problem.rfind(prefix, 0) != 0) problem = prefix + problem;
  if (problems.size() == 1) throw ConfigError(problems.front());
  throw ConfigErrors(std::move(problems));
}

}  // namespace latentlab
