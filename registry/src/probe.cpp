#include "probe.hpp"

#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "latentlab/plugin.hpp"

namespace latentlab::registry {
namespace {

// The child's own exit code when it came through; anything else was the library's doing.
constexpr int kProbeCameThrough = 117;

[[noreturn]] void child(const std::filesystem::path& file) {
  void* handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle) {
    if (auto* entry = reinterpret_cast<PluginEntryFn*>(::dlsym(handle, LATENTLAB_PLUGIN_ENTRY_SYMBOL))) {
      try {
        const PluginDescription* description = entry();
        if (description && description->api_version == LATENTLAB_SDK_API_VERSION &&
            description->struct_size == sizeof(PluginDescription) && description->register_factories) {
          Registrar registrar;
          description->register_factories(registrar);
        }
      } catch (...) {
        // Reported by the in-process load, with the message.
      }
    }
  }
  ::_exit(kProbeCameThrough);
}

}  // namespace

std::string probe_in_child(const std::filesystem::path& file, std::chrono::milliseconds timeout) {
  const pid_t pid = ::fork();
  if (pid < 0) return {};  // cannot fork: fall back to loading in-process only
  if (pid == 0) child(file);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0) return {};
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return "hung for more than " + std::to_string(timeout.count() / 1000) +
             " s while being loaded (in a probe process); its static initialisers or register function "
             "do not return";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (WIFSIGNALED(status))
    return "crashed with signal " + std::to_string(WTERMSIG(status)) + " (" + ::strsignal(WTERMSIG(status)) +
           ") while being loaded (in a probe process; the host is unharmed): its static initialisers or its "
           "register function crash, or it was built against a different LibTorch or LatentLab";
  if (WIFEXITED(status) && WEXITSTATUS(status) != kProbeCameThrough)
    return "called exit(" + std::to_string(WEXITSTATUS(status)) +
           ") while being loaded (in a probe process); a plugin must not end the process";
  return {};
}

}  // namespace latentlab::registry
