// `latentlab doctor`: checks what a researcher trips over and says how to fix each problem.
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/precision.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/threads.hpp"

namespace latentlab::host {
namespace {

namespace fs = std::filesystem;

enum class Status { Ok, Warn, Fail };

struct Report {
  int warnings = 0, failures = 0;
  void line(Status status, const std::string& what, const std::string& fix = {}) {
    const char* tag = status == Status::Ok ? "[ ok ]" : status == Status::Warn ? "[warn]" : "[FAIL]";
    std::cout << tag << " " << what << "\n";
    if (!fix.empty()) std::cout << "       fix: " << fix << "\n";
    warnings += status == Status::Warn;
    failures += status == Status::Fail;
  }
};

// The BLAS library this process actually mapped (after a matrix product has run). LibTorch's GEMM
// binds to libblas.so.3, which Debian's alternatives point at OpenBLAS or at the reference BLAS.
std::string mapped_blas_library() {
  std::ifstream maps("/proc/self/maps");
  std::string line, fallback;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const std::string file = fs::path(path).filename().string();
    if (file.rfind("libblas.so", 0) == 0) return path;
    if (fallback.empty() &&
        (file.rfind("libopenblas", 0) == 0 || file.rfind("libmkl", 0) == 0 || file.rfind("libblis", 0) == 0))
      fallback = path;
  }
  return fallback;
}

// Median GFLOP/s of a 512x512 float32 matrix product.
double gemm_gflops() {
  torch::manual_seed(0);
  const auto a = torch::randn({512, 512}), b = torch::randn({512, 512});
  std::vector<double> seconds;
  for (int i = 0; i < 7; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const auto c = torch::mm(a, b);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    (void)c;
  }
  std::sort(seconds.begin(), seconds.end());
  return 2.0 * 512 * 512 * 512 / seconds[seconds.size() / 2] / 1e9;
}

void check_threads(Report& report, int threads) {
  const int cores = hardware_threads();
  const std::string what =
      "threads: " + std::to_string(threads) + " intra-op of " + std::to_string(cores) + " hardware threads";
  if (threads < cores && !std::getenv("OMP_NUM_THREADS"))
    report.line(Status::Warn, what + " (set by --threads)",
                "drop --threads, or pass --threads " + std::to_string(cores) + " to use every core");
  else if (threads < cores)
    report.line(Status::Warn, what + " (limited by OMP_NUM_THREADS)",
                "unset OMP_NUM_THREADS or pass --threads " + std::to_string(cores));
  else
    report.line(Status::Ok, what);
}

void check_blas(Report& report) {
  const double gflops = gemm_gflops();
  const std::string library = mapped_blas_library();
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.1f GFLOP/s", gflops);
  const int blas_threads = openblas_threads();
  const std::string what =
      std::string("BLAS: 512x512 float32 product at ") + rate + " via " +
      (library.empty() ? std::string("(no BLAS library mapped)") : library) +
      (blas_threads > 0 ? " (" + std::to_string(blas_threads) +
                              " OpenBLAS thread: LibTorch's threads parallelise around it)"
                        : std::string());
  const bool reference = library.find("/blas/libblas") != std::string::npos;
  const std::string fix =
      "apt-get install libopenblas0-pthread (or: update-alternatives --config "
      "libblas.so.3-x86_64-linux-gnu and pick openblas-pthread)";
  if (reference)
    report.line(Status::Fail, what + " -- the reference BLAS, about 15x slower than OpenBLAS", fix);
  else if (gflops < 5.0)
    report.line(Status::Warn, what + " -- slow for this product; is another job using the cores?", fix);
  else
    report.line(Status::Ok, what);
}

// Whether `precision: bf16` pays on this CPU, and what "precision": "auto" (the quick start's) runs in
// here (docs/precision.md#auto); a note, never a failure.
void check_bf16(Report& report) {
  const auto instructions = cpu_bf16_instructions();
  const std::string chosen = "\"precision\": \"auto\" is " + to_string(auto_precision(torch::kCPU)) +
                             " on the CPU (docs/precision.md#auto";
  if (!instructions.empty())
    report.line(Status::Ok, "bf16: native on this CPU (" + instructions + "), so " + chosen +
                                "; `latentlab bench peak` measures it)");
  else
    report.line(
        Status::Ok,
        "bf16: emulated on this CPU (no AVX512-BF16 or AMX-BF16) and slower than fp32, so " + chosen + ")");
  if (torch::cuda::is_available())
    report.line(Status::Ok,
                "\"precision\": \"auto\" on CUDA: " + auto_precision_reason(torch::Device(torch::kCUDA)));
}

void check_datasets(Report& report) {
  const char* env = std::getenv("LATENTLAB_FASHION_MNIST_DIR");
  const fs::path dir = env ? fs::path(env) : fs::path("/usr/share/datasets/fashion-mnist");
  std::vector<std::string> missing;
  for (const char* file : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / file, ec)) missing.push_back(file);
  }
  if (missing.empty())
    report.line(Status::Ok, "dataset fashion-mnist: " + dir.string());
  else
    report.line(Status::Fail, "dataset fashion-mnist: missing in " + dir.string() + ": " + join(missing),
                env ? "point LATENTLAB_FASHION_MNIST_DIR at the folder with the four IDX .gz files"
                    : "apt-get install dataset-fashion-mnist (or run tools/setup.sh)");
}

void check_plugins(Report& report, const registry::Registry& registry) {
  const fs::path builtin = registry::builtin_plugin_dir();
  const auto schedules = registry.names("schedule");
  if (schedules.empty())
    report.line(Status::Fail, "built-in plugins: none loaded from " + builtin.string(),
                "build the project (cmake --build build) or reinstall; the host looks next to itself");
  else
    report.line(Status::Ok, "plugins: " + std::to_string(registry.entries().size()) + " from " +
                                std::to_string(registry.loaded().size()) +
                                (registry.loaded().size() == 1 ? " library" : " libraries") +
                                " (built-in folder " + builtin.string() + ")");
  for (const auto& failure : registry.failed())
    report.line(Status::Fail, "plugin library " + failure.path.string() + " not loaded: " + failure.reason,
                "rebuild it against this LatentLab, or remove it from the plugin path");
}

}  // namespace

int run_doctor(const Args& args) {
  CommonOptions common;
  po::options_description options("Options");
  add_common_options(options, common);
  po::variables_map vm;
  if (!parse_command_line("doctor", args, options, {}, "latentlab doctor [--plugin-path DIR]...",
                          "Checks the thread count, whether the BLAS in use is the slow reference one "
                          "(by timing a 512x512 product), the datasets, CUDA and plugin load failures, "
                          "and says how to fix each problem. Exit status 1 when something failed.",
                          vm))
    return kOk;
  apply_logging(common);
  const auto registry = load_registry(common, /*warn_failures=*/false);
  const int threads = apply_threads(common);

  Report report;
  check_threads(report, threads);
  check_blas(report);
  check_bf16(report);
  check_datasets(report);
  report.line(Status::Ok,
              std::string("CUDA: ") + (torch::cuda::is_available()
                                           ? std::to_string(torch::cuda::device_count()) + " device(s)"
                                           : "not available (CPU only; LibTorch " TORCH_VERSION ")"));
  check_plugins(report, *registry);
  std::cout << "\n" << report.failures << " problem(s), " << report.warnings << " warning(s)\n";
  return report.failures > 0 ? kFailure : kOk;
}

}  // namespace latentlab::host
