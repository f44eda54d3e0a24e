#pragma once
// Loading a plugin library in a throwaway child process first, so that a library whose static
// initialisers or register function crash, abort, exit or hang cannot take the host down.
//
// The child is forked, not spawned: the host has LibTorch loaded already, so a forked probe costs
// milliseconds where a fresh process would reload LibTorch for every library. Forking is safe while
// the process has a single thread, which is how the host loads its plugins (before any compute);
// a program embedding the registry should likewise load plugins before starting threads, or a probe
// may deadlock on a lock another thread held and be reported as hung after the timeout.
#include <chrono>
#include <filesystem>
#include <string>

namespace latentlab::registry {

// Forks; the child dlopens `file`, calls its entry point and register function into a throwaway
// registrar, and reports back through a pipe. Returns "" when the child came through (exceptions
// included: the in-process load reports those properly), else why it did not ("crashed with signal
// 11 (Segmentation fault) while being loaded ...", "called exit(3) ...", "hung ..."), with the tail
// of what the library wrote to stderr. The child's stdout goes to /dev/null.
std::string probe_in_child(const std::filesystem::path& file, std::chrono::milliseconds timeout);

}  // namespace latentlab::registry
