#include "latentlab/threads.hpp"

#include <dlfcn.h>

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include "latentlab/error.hpp"

namespace latentlab {

namespace {

// OpenBLAS is reached through libblas.so.3 (Debian's alternatives), not linked by name: look its
// controls up at run time.
template <class Fn>
Fn openblas_function(const char* name) {
  return reinterpret_cast<Fn>(::dlsym(RTLD_DEFAULT, name));
}

}  // namespace

bool set_openblas_threads(int threads) {
  auto set_blas_threads = openblas_function<void (*)(int)>("openblas_set_num_threads");
  if (set_blas_threads) set_blas_threads(threads);
  return set_blas_threads != nullptr;
}

int set_compute_threads(int threads, int blas_threads) {
  // OpenBLAS first: its OpenMP build implements the call with omp_set_num_threads, which would
  // otherwise undo LibTorch's setting.
  set_openblas_threads(blas_threads);
  at::set_num_threads(threads);
  return at::get_num_threads();
}

torch::Device resolve_device(const std::string& name, const std::string& what) {
  const bool cuda = name == "cuda" || name.rfind("cuda:", 0) == 0;
  if (name != "auto" && name != "cpu" && !cuda)
    throw ConfigError(what + ": expected \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", got \"" + name + "\"");
  if (name == "cpu" || (name == "auto" && !torch::cuda::is_available())) return torch::Device(torch::kCPU);
  if (!torch::cuda::is_available())
    throw ConfigError(what + ": \"" + name +
                      "\" asked for, but this LibTorch has no CUDA device; use \"cpu\" or \"auto\"");
  try {
    return name == "auto" ? torch::Device(torch::kCUDA) : torch::Device(name);
  } catch (const std::exception&) {
    throw ConfigError(what + ": \"" + name + "\" is not a device name; use \"cuda\" or \"cuda:N\"");
  }
}

int openblas_threads() {
  auto get_blas_threads = openblas_function<int (*)()>("openblas_get_num_threads");
  return get_blas_threads ? get_blas_threads() : -1;
}

}  // namespace latentlab
