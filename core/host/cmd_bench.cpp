// `latentlab bench denoiser`: training and sampling throughput of the UNet denoiser, as JSON (`bench
// features` and `bench fid` live in cmd_bench_metrics.cpp).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <sstream>

#include "bench_profile.hpp"
#include "bench_timing.hpp"
#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/nn/attention.hpp"
#include "latentlab/nn/unet.hpp"
#include "latentlab/precision.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/threads.hpp"

namespace latentlab::host {
namespace {

using Clock = std::chrono::steady_clock;

// The benchmark UNet of docs/benchmarks.md (issue 3's performance target).
const char* const kDefaultUNet = R"({"in_channels": 4, "out_channels": 4, "model_channels": 64,
  "channel_mult": [1, 2, 2], "num_res_blocks": 2, "attention_resolutions": [1, 2],
  "num_head_channels": 32, "transformer_depth": 1, "context_dim": 64})";

int run_bench_denoiser(const std::vector<std::int64_t>& batches, const std::string& unet_json,
                       const std::vector<std::int64_t>& shape, std::int64_t context_tokens, int repeats,
                       double min_seconds, int threads, int openblas_threads, const std::string& device_name,
                       const std::vector<Precision>& precisions, bool channels_last, int profile_calls,
                       const std::vector<std::int64_t>& block_mib, bool measure_train) {
  nlohmann::json unet_input;
  try {
    unet_input = nlohmann::json::parse(unet_json);
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError("--unet: not valid JSON: " + std::string(e.what()));
  }
  auto config = nn::UNetConfig::from_json(unet_input, "--unet");
  config.channels_last = config.channels_last || channels_last;  // the UNet's own setting (docs/unet.md)
  if (shape.size() != 3) throw ConfigError("--shape: expected C,H,W");
  if (shape[0] != config.in_channels)
    throw ConfigError("--shape: " + std::to_string(shape[0]) + " channels, but the UNet's in_channels is " +
                      std::to_string(config.in_channels));
  const torch::Device device = resolve_device(device_name, "--device");
  // Waits for queued GPU work, so that the clock measures it.
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  for (const auto precision : precisions) check_precision(precision, device, "--precision");
  const double forward_flops = config.forward_flops(shape[1], shape[2], context_tokens);
  nlohmann::json results = nlohmann::json::array();
  for (const auto mib : block_mib)
    for (const auto precision : precisions) {
      nn::set_attention_block_bytes(mib << 20);
      // A fresh model per precision, so that every row starts from the same weights and optimizer state.
      torch::manual_seed(0);
      nn::UNet model(config);
      model->to(device);
      auto optimizer = torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-4));
      for (const auto batch : batches) {
        const auto on = torch::TensorOptions().device(device);
        auto x = torch::randn({batch, shape[0], shape[1], shape[2]}, on);
        const auto t = torch::randint(1, 1001, {batch}, on.dtype(torch::kLong));
        const auto context = config.use_spatial_transformer
                                 ? torch::randn({batch, context_tokens, config.context_dim}, on)
                                 : torch::Tensor();
        const auto labels = config.num_classes > 0
                                ? torch::randint(0, config.num_classes, {batch}, on.dtype(torch::kLong))
                                : torch::Tensor();
        const auto target = torch::randn({batch, config.out_channels, shape[1], shape[2]}, on);
        // The forward under autocast, the loss and backward in float32 outside it (as torch.autocast asks).
        auto train_step = [&] {
          optimizer.zero_grad();
          torch::Tensor out;
          {
            AutocastGuard autocast(device, precision);
            out = model->forward(x, t, context, {}, labels);
          }
          const auto loss = (out.to(torch::kFloat32) - target).pow(2).mean();
          loss.backward();
          optimizer.step();
          sync();
        };
        auto denoise = [&] {
          torch::NoGradGuard no_grad;
          AutocastGuard autocast(device, precision);
          model->forward(x, t, context, {}, labels);
          sync();
        };
        // Evaluation first, so that its peak memory holds no gradients or optimizer state of this row.
        bool rss_reset = reset_peak_rss();
        model->eval();
        denoise();  // warm-up: allocations, first-call dispatch
        const double denoise_seconds = median_seconds_per_call(denoise, repeats, min_seconds);
        const double denoise_rss = rss_reset ? peak_rss_mib() : -1;
        double train_seconds = std::nan(""), train_rss = -1;
        if (measure_train) {
          rss_reset = reset_peak_rss();
          model->train();
          train_step();
          train_seconds = median_seconds_per_call(train_step, repeats, min_seconds);
          train_rss = rss_reset ? peak_rss_mib() : -1;
        }
        const double b = static_cast<double>(batch);
        // A training step counts as three forwards (the backward pass computes two products per forward one).
        results.push_back({{"batch", batch},
                           {"precision", to_string(precision)},
                           {"channels_last", config.channels_last},
                           {"attention_block_mib", mib},
                           {"params", model->num_parameters()},
                           {"forward_gflop_per_sample", forward_flops / 1e9},
                           {"train_samples_per_s", json_or_null(b / train_seconds)},
                           {"denoise_evals_per_s", b / denoise_seconds},
                           {"train_step_ms", json_or_null(1e3 * train_seconds)},
                           {"denoise_call_ms", 1e3 * denoise_seconds},
                           {"train_gflop_per_s", json_or_null(3 * forward_flops * b / train_seconds / 1e9)},
                           {"denoise_gflop_per_s", forward_flops * b / denoise_seconds / 1e9},
                           {"train_peak_rss_mib", json_or_null(train_rss)},
                           {"denoise_peak_rss_mib", json_or_null(denoise_rss)},
                           {"device", device.str()},
                           {"threads", threads},
                           {"openblas_threads", openblas_threads},
                           {"repeats", repeats}});
        if (profile_calls > 0) {  // after the timing, which the observers would slow down
          auto& row = results.back();
          row["profile_denoise"] = OpProfile::measure(denoise, profile_calls, 12);
          model->train();
          if (measure_train) row["profile_train"] = OpProfile::measure(train_step, profile_calls, 12);
          for (const char* part : {"profile_denoise", "profile_train"})
            if (row.contains(part))
              for (const auto& op : row[part])
                spdlog::info("  {} {}: {:>9.2f} ms {:5.1f}%  {}", part, to_string(precision),
                             op["ms"].get<double>(), 100 * op["share"].get<double>(),
                             op["op"].get<std::string>());
        }
        const auto training =
            measure_train ? fmt::format("{:.1f} train samples/s ({:.1f} GFLOP/s), ", b / train_seconds,
                                        3 * forward_flops * b / train_seconds / 1e9)
                          : std::string();
        spdlog::info("{} batch {}: {}{:.1f} denoiser evaluations/s ({:.1f} GFLOP/s)", to_string(precision),
                     batch, training, b / denoise_seconds, forward_flops * b / denoise_seconds / 1e9);
      }
    }
  std::cout << results.dump(2) << "\n";
  return kOk;
}

}  // namespace

int run_bench(const Args& args) {
  // `bench features` and `bench fid` have options of their own: dispatch on the subject wherever it is.
  for (const auto& arg : args)
    if (arg == "features" || arg == "fid") return run_bench_metrics(args);
  for (const auto& arg : args)
    if (arg == "sweep") return run_bench_sweep(args);
  for (const auto& arg : args)
    if (arg == "peak") return run_bench_peak(args);
  CommonOptions common;
  std::string what, unet_json = kDefaultUNet, shape_text = "4,8,8", batch_text = "1,64";
  std::int64_t context_tokens = 1;
  int repeats = 7;
  double min_seconds = 1.0;
  int openblas_threads = 1;
  std::string device = "cpu", precision_text = "fp32";
  bool channels_last = false;
  int profile_calls = 0;
  std::string block_text = std::to_string(nn::kAttentionBlockBytes >> 20), modes = "train,eval";
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("unet", po::value(&unet_json), "UNet hyperparameters as JSON, LDM names (default: the benchmark UNet of docs/benchmarks.md)")
      ("shape", po::value(&shape_text)->default_value("4,8,8"), "latent shape C,H,W")
      ("context-tokens", po::value(&context_tokens)->default_value(1), "conditioning tokens M (context [B, M, context_dim])")
      ("batch", po::value(&batch_text)->default_value("1,64"), "batch sizes, comma-separated")
      ("repeats", po::value(&repeats)->default_value(7), "timed rounds per measurement; the median is reported")
      ("min-seconds", po::value(&min_seconds)->default_value(1.0), "minimum duration of one timed round")
      ("device", po::value(&device)->default_value("cpu"), "cpu, cuda, cuda:N or auto (CUDA when available)")
      ("precision", po::value(&precision_text)->default_value("fp32"),
       "fp32, bf16 or fp16 (CUDA), comma-separated to compare them in one run (docs/precision.md)")
      ("channels-last", po::bool_switch(&channels_last), "convolution weights and inputs in channels-last memory format")
      ("attention-block-mib", po::value(&block_text)->default_value(block_text),
       "budget of the attention's similarity matrix in MiB, comma-separated to compare (0: unblocked)")
      ("modes", po::value(&modes)->default_value(modes), "what to measure: train,eval or eval")
      ("profile", po::value(&profile_calls)->default_value(0),
       "also profile N calls of each row by operator (LibTorch's RecordFunction): where the time goes")
      ("openblas-threads", po::value(&openblas_threads)->default_value(1),
       "OpenBLAS's own threads (1, the default everywhere in LatentLab; more only to measure the contention)");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("what", po::value(&what));
  po::variables_map vm;
  const std::string usage =
      "latentlab bench denoiser [--unet JSON] [--shape C,H,W] [--context-tokens M] [--batch 1,64] "
      "[--precision "
      "fp32,bf16] [--channels-last] [--threads N] (also: latentlab bench peak|features|fid|sweep --help)";
  if (!parse_command_line(
          "bench", args, options, positional, usage,
          "Measures the UNet denoiser on random data and prints a JSON list, one object per precision "
          "and batch size: train_samples_per_s (forward, backward, AdamW step) and denoise_evals_per_s "
          "(forward without gradients), each the median of --repeats rounds; the GFLOP/s they achieve "
          "(FLOPs counted from the layer shapes, docs/benchmarks.md) and the peak resident memory. "
          "`latentlab bench peak` measures the machine's convolution and matrix-product peaks to read "
          "them against.",
          vm))
    return kOk;
  if (what != "denoiser")
    throw ConfigError("bench: what to measure? `denoiser`, `peak`, `features`, `fid` or `sweep`" +
                      (what.empty()
                           ? std::string()
                           : ", got '" + what + "'" +
                                 did_you_mean(what, {"denoiser", "peak", "features", "fid", "sweep"})) +
                      ". Usage: " + usage);
  if (repeats < 1) throw ConfigError("--repeats: must be >= 1");
  if (profile_calls < 0) throw ConfigError("--profile: the number of profiled calls, >= 0");
  if (modes != "train,eval" && modes != "eval")
    throw ConfigError("--modes: expected train,eval or eval, got '" + modes + "'");
  if (context_tokens < 1) throw ConfigError("--context-tokens: must be >= 1");
  if (openblas_threads < 1) throw ConfigError("--openblas-threads: must be >= 1");
  const int threads = apply_common_options(common);
  if (openblas_threads != 1) {
    if (latentlab::openblas_threads() < 0)
      spdlog::warn("--openblas-threads: this process does not use OpenBLAS; ignored");
    set_compute_threads(threads, openblas_threads);
  }
  return run_bench_denoiser(parse_positive_int_list(batch_text, "--batch"), unet_json,
                            parse_positive_int_list(shape_text, "--shape"), context_tokens, repeats,
                            min_seconds, threads, openblas_threads, device,
                            parse_precision_list(precision_text, "--precision"), channels_last, profile_calls,
                            parse_int_list(block_text, "--attention-block-mib", 0), modes != "eval");
}

}  // namespace latentlab::host
