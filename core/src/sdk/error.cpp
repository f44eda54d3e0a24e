#include "latentlab/error.hpp"

namespace latentlab {

// Out-of-line so the type information has one home: the core library.
Error::Error(const std::string& message) : std::runtime_error(message) {}
Error::~Error() = default;

ConfigError::ConfigError(const std::string& message) : Error(message) {}
ConfigError::~ConfigError() = default;

}  // namespace latentlab
