#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/plugin.hpp"

namespace latentlab::host {

void print_version() {
  std::cout << "LatentLab " << kLatentLabVersion << " (commit " << kGitCommit << ")\n"
            << "LibTorch " << TORCH_VERSION << "\n"
            << "CUDA: "
            << (torch::cuda::is_available()
                    ? "available (" + std::to_string(torch::cuda::device_count()) + " device(s))"
                    : std::string("not available"))
            << "\n"
            << "SDK API version " << LATENTLAB_SDK_API_VERSION << "\n"
            << "threads: " << at::get_num_threads() << " intra-op (of " << hardware_threads()
            << " hardware threads)\n";
}

int run_version(const Args& args) {
  CommonOptions common;
  po::options_description options("Options");
  add_common_options(options, common);
  po::variables_map vm;
  if (!parse_command_line("version", args, options, {}, "latentlab version",
                          "Prints the LatentLab version and git commit, the LibTorch version, whether "
                          "CUDA is available, the plugin SDK API version and the thread count.",
                          vm))
    return kOk;
  apply_common_options(common);
  print_version();
  return kOk;
}

}  // namespace latentlab::host
