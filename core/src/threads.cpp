#include "latentlab/threads.hpp"

#include <dlfcn.h>

#include <ATen/Parallel.h>

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

int set_compute_threads(int threads) {
  // OpenBLAS first: its OpenMP build implements the call with omp_set_num_threads, which would
  // otherwise undo LibTorch's setting.
  set_openblas_threads(1);
  at::set_num_threads(threads);
  return at::get_num_threads();
}

int openblas_threads() {
  auto get_blas_threads = openblas_function<int (*)()>("openblas_get_num_threads");
  return get_blas_threads ? get_blas_threads() : -1;
}

}  // namespace latentlab
