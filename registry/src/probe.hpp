#pragma once
// Loading a plugin library in a throwaway child process first, so that a library whose static
// initialisers or register function crash, abort, exit or hang cannot take the host down.
#include <chrono>
#include <filesystem>
#include <string>

namespace latentlab::registry {

// Forks; the child dlopens `file`, calls its entry point and register function into a throwaway
// registrar, and exits. Returns "" when the child came through (exceptions included: the in-process
// load reports those properly), else why it did not ("crashed with signal 11 (Segmentation fault)
// while being loaded", "called exit(3) ...", "hung ...").
std::string probe_in_child(const std::filesystem::path& file, std::chrono::milliseconds timeout);

}  // namespace latentlab::registry
