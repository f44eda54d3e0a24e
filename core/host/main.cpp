// latentlab: the LatentLab host. `latentlab <command> [options]`; `latentlab <command> --help`.
#include <spdlog/spdlog.h>

#include <functional>
#include <iostream>
#include <map>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace {

using latentlab::host::Args;

struct Command {
  std::function<int(const Args&)> run;
  const char* summary;
};

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> table = {
      {"bench",
       {latentlab::host::run_bench,
        "measure throughput: `bench denoiser` (training, sampling), `bench peak`, `bench features`, `bench "
        "fid`, `bench sweep`"}},
      {"doctor", {latentlab::host::run_doctor, "check threads, BLAS, datasets and plugins; say how to fix"}},
      {"fid",
       {latentlab::host::run_fid,
        "FID, KID, Inception Score and precision/recall of two image sets (folders, arrays, datasets)"}},
      {"import-weights",
       {latentlab::host::run_import_weights,
        "turn a reference PyTorch checkpoint (LDM first stage or UNet) into a LatentLab file"}},
      {"plugins",
       {latentlab::host::run_plugins,
        "list loaded plugins, show one's parameters, or run its conformance checks"}},
      {"plot",
       {latentlab::host::run_plot,
        "draw a metric of a sweep against an axis or another metric (SVG, PDF, PNG), error bars over seeds"}},
      {"reconstruct",
       {latentlab::host::run_reconstruct,
        "encode and decode images with an autoencoder: PSNR, SSIM, codebook usage, latent statistics"}},
      {"report",
       {latentlab::host::run_report,
        "write a sweep's report: index.html and index.md with tables, figures, samples, failures, "
        "provenance"}},
      {"run",
       {latentlab::host::run_run,
        "run a sweep spec: every trial's stages once, cached, resumable, one HDF5 file per trial"}},
      {"sample",
       {latentlab::host::run_sample, "draw samples from a trained denoiser with a sampler and a guider"}},
      {"samplers",
       {latentlab::host::run_samplers,
        "`samplers check`: prove samplers on analytic data (exact solutions)"}},
      {"schedule", {latentlab::host::run_schedule, "print a noise schedule: t, beta, alpha, sigma, log_snr"}},
      {"status",
       {latentlab::host::run_status, "show a sweep's trials and stages: done, running, failed, waiting"}},
      {"table",
       {latentlab::host::run_table,
        "an ablation table of a sweep (Markdown, LaTeX, CSV, JSON): mean ± std over seeds, best marked"}},
      {"train-autoencoder",
       {latentlab::host::run_train_autoencoder,
        "train a KL- or VQ-regularised autoencoder (stage 1, Eq. 25) from a JSON config"}},
      {"train-denoiser",
       {latentlab::host::run_train_denoiser, "train the UNet denoiser (stage 2) from a JSON config"}},
      {"version", {latentlab::host::run_version, "versions: LatentLab, git commit, LibTorch, CUDA, SDK API"}},
  };
  return table;
}

void print_usage(std::ostream& out) {
  out << "LatentLab: a research platform for latent diffusion models.\n\n"
         "Usage: latentlab <command> [options]\n"
         "       latentlab <command> --help\n"
         "       latentlab --version\n\nCommands:\n";
  for (const auto& [name, command] : commands())
    out << "  " << name << std::string(name.size() < 16 ? 16 - name.size() : 1, ' ') << command.summary
        << "\n";
  out << "\nOptions every command accepts: --plugin-path DIR (repeatable), --threads N, --log-level LEVEL.\n"
         "Exit status: 0 success, 1 failure, 2 bad command line or configuration.\n"
         "Documentation: docs/cli.md\n";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace latentlab;
  const Args all(argv + 1, argv + argc);
  if (all.empty()) {
    print_usage(std::cerr);
    return host::kUsage;
  }
  const std::string& first = all.front();
  if (first == "--help" || first == "-h" || first == "help") {
    print_usage(std::cout);
    return host::kOk;
  }
  if (first == "--version") {
    host::apply_common_options(host::CommonOptions{});
    host::print_version();
    return host::kOk;
  }
  if (!first.empty() && first[0] == '-') {
    std::cerr << "latentlab: options go after the command, e.g. `latentlab doctor " << first
              << " ...`; run `latentlab --help` for the commands\n";
    return host::kUsage;
  }
  // The sweep engine's worker, started by `latentlab run` (not listed).
  if (first == "stage-run") {
    try {
      return host::run_stage_worker(Args(all.begin() + 1, all.end()));
    } catch (const ConfigError& e) {
      std::cerr << "latentlab stage-run: error: " << e.what() << "\n";
      return host::kUsage;
    } catch (const std::exception& e) {
      std::cerr << "latentlab stage-run: error: " << e.what() << "\n";
      return host::kFailure;
    }
  }
  const auto it = commands().find(first);
  if (it == commands().end()) {
    std::vector<std::string> names;
    for (const auto& item : commands()) names.push_back(item.first);
    std::cerr << "latentlab: unknown command '" << first << "'" << did_you_mean(first, names)
              << "; commands: " << join(names) << ". Run `latentlab --help`.\n";
    return host::kUsage;
  }
  try {
    return it->second.run(Args(all.begin() + 1, all.end()));
  } catch (const ConfigError& e) {
    std::cerr << "latentlab " << first << ": error: " << e.what() << "\n";
    return host::kUsage;
  } catch (const std::exception& e) {
    std::cerr << "latentlab " << first << ": error: " << e.what() << "\n";
    return host::kFailure;
  } catch (...) {
    std::cerr << "latentlab " << first << ": error: a non-standard exception (thrown by a plugin?)\n";
    return host::kFailure;
  }
}
