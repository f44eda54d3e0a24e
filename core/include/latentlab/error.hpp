#pragma once
// Exceptions thrown across the SDK. Messages are meant for a person: they name the bad value, what
// is allowed, and how to fix it.
#include <stdexcept>
#include <string>

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

}  // namespace latentlab
