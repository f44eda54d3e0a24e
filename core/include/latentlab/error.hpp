#pragma once
// Exceptions thrown across the SDK. Messages are meant for a person: they name the bad value, what
// is allowed, and how to fix it.
#include <stdexcept>
#include <string>
#include <vector>

#include "latentlab/export.hpp"

namespace latentlab {

// Any LatentLab failure at run time.
class LATENTLAB_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message);
  ~Error() override;
};

// A mistake in what the user asked for (spec, parameter, command line); the host exits with 2.
class LATENTLAB_API ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& message);
  ~ConfigError() override;
};

// Several independent mistakes found at once (every bad parameter of one object, say), so a user
// fixes them in one go. what() is the problems, one per line. A class of its own, so ConfigError's
// layout (thrown by plugins built against earlier SDK headers) stays as it was.
class LATENTLAB_API ConfigErrors : public ConfigError {
 public:
  explicit ConfigErrors(std::vector<std::string> problems);
  ~ConfigErrors() override;
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// The problems a ConfigError names: ConfigErrors' list, or the one message.
LATENTLAB_API std::vector<std::string> problems_of(const ConfigError& error);

// Throws `error` again with `prefix` (a JSON path and its dot, say) before each of its problems that
// does not start with it already; a ConfigErrors stays one, with all its problems.
[[noreturn]] LATENTLAB_API void rethrow_prefixed(const ConfigError& error, const std::string& prefix);

}  // namespace latentlab
