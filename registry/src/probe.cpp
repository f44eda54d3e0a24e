#include "probe.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "latentlab/plugin.hpp"

namespace latentlab::registry {
namespace {

constexpr char kCameThrough = 'k';
constexpr std::size_t kStderrTail = 2000;  // characters of the child's stderr kept for the reason

[[noreturn]] void child(const std::filesystem::path& file, int status_fd, int stderr_fd) {
  // No core dumps from a crashing plugin, stdout away from the host's output, stderr to the parent.
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  ::setpgid(0, 0);  // so a timeout can kill whatever the plugin started too
  const int null_fd = ::open("/dev/null", O_WRONLY);
  if (null_fd >= 0) ::dup2(null_fd, STDOUT_FILENO);
  ::dup2(stderr_fd, STDERR_FILENO);

  void* handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle) {
    if (auto* entry = reinterpret_cast<PluginEntryFn*>(::dlsym(handle, LATENTLAB_PLUGIN_ENTRY_SYMBOL))) {
      try {
        const PluginDescription* description = entry();
        if (description && description->register_factories) {
          Registrar registrar;
          description->register_factories(registrar);
        }
      } catch (...) {
        // Reported by the in-process load, with the message.
      }
    }
  }
  // A load failure (dlopen returning null) also "comes through": the in-process load reports it.
  const char byte = kCameThrough;
  while (::write(status_fd, &byte, 1) < 0 && errno == EINTR) {
  }
  ::_exit(0);
}

std::string seconds_text(std::chrono::milliseconds timeout) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g s", static_cast<double>(timeout.count()) / 1000.0);
  return text;
}

enum class Drained { Data, Again, Eof };

// Reads what is available on `fd` (non-blocking) into `tail`, keeping the last kStderrTail characters.
Drained drain(int fd, std::string& tail) {
  char buffer[4096];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);
  if (n < 0) return errno == EINTR || errno == EAGAIN ? Drained::Again : Drained::Eof;
  if (n == 0) return Drained::Eof;
  tail.append(buffer, static_cast<std::size_t>(n));
  if (tail.size() > kStderrTail) tail.erase(0, tail.size() - kStderrTail);
  return Drained::Data;
}

std::string with_stderr(std::string reason, std::string tail) {
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  if (!tail.empty()) reason += "; its last output on stderr: " + tail;
  return reason;
}

}  // namespace

std::string probe_in_child(const std::filesystem::path& file, std::chrono::milliseconds timeout) {
  int status_pipe[2], stderr_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) return {};
  if (::pipe2(stderr_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(status_pipe[0]);
    ::close(status_pipe[1]);
    return {};
  }
  std::fflush(nullptr);  // nothing buffered may be written twice by a child that calls exit()
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(status_pipe[0]);
    ::close(stderr_pipe[0]);
    child(file, status_pipe[1], stderr_pipe[1]);
  }
  ::close(status_pipe[1]);
  ::close(stderr_pipe[1]);
  if (pid < 0) {
    ::close(status_pipe[0]);
    ::close(stderr_pipe[0]);
    spdlog::warn("cannot fork a probe process for {} ({}); loading it in-process only", file.string(),
                 std::strerror(errno));
    return {};
  }

  // Wait for the child's byte or its end (EOF on the status pipe), collecting its stderr meanwhile.
  // The pipe, not waitpid, says whether it came through: that works even where SIGCHLD is ignored
  // and the child is reaped by someone else.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool came_through = false, ended = false, timed_out = false;
  std::string tail;
  bool stderr_open = true;
  while (!ended) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[2] = {{status_pipe[0], POLLIN, 0}, {stderr_pipe[0], POLLIN, 0}};
    const int ready =
        ::poll(fds, stderr_open ? 2 : 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (stderr_open && (fds[1].revents & (POLLIN | POLLHUP)))
      stderr_open = drain(stderr_pipe[0], tail) != Drained::Eof;
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char byte = 0;
      const ssize_t n = ::read(status_pipe[0], &byte, 1);
      if (n < 0 && errno == EINTR) continue;
      came_through = n == 1 && byte == kCameThrough;
      ended = true;
    }
  }
  if (timed_out) {
    ::kill(-pid, SIGKILL);  // its process group: the child and anything it started
    ::kill(pid, SIGKILL);
  }
  // What is left in the pipe; never blocks, even if something the plugin started still holds it open.
  while (stderr_open && drain(stderr_pipe[0], tail) == Drained::Data) {
  }
  ::close(status_pipe[0]);
  ::close(stderr_pipe[0]);

  int status = 0;
  pid_t reaped;
  do reaped = ::waitpid(pid, &status, 0);
  while (reaped < 0 && errno == EINTR);
  const bool have_status = reaped == pid;

  if (timed_out)
    return with_stderr("hung for more than " + seconds_text(timeout) +
                           " while being loaded (in a probe process); its static initialisers or register "
                           "function do not return",
                       tail);
  if (came_through) return {};
  if (have_status && WIFSIGNALED(status))
    return with_stderr("crashed with signal " + std::to_string(WTERMSIG(status)) + " (" +
                           ::strsignal(WTERMSIG(status)) +
                           ") while being loaded (in a probe process; the host is unharmed): its static "
                           "initialisers or its register function crash, or it was built against a "
                           "different LibTorch or LatentLab",
                       tail);
  if (have_status && WIFEXITED(status))
    return with_stderr("called exit(" + std::to_string(WEXITSTATUS(status)) +
                           ") while being loaded (in a probe process); a plugin must not end the process",
                       tail);
  return with_stderr("ended abnormally while being loaded (in a probe process)", tail);
}

}  // namespace latentlab::registry
