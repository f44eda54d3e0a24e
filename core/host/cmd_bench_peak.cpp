// `latentlab bench peak`: this machine's convolution and matrix-product throughput per precision
// (docs/benchmarks.md, "Peaks"), the limits that `bench denoiser`'s GFLOP/s are read against.
#include <spdlog/spdlog.h>

#include <functional>
#include <iostream>

#include "bench_timing.hpp"
#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/nn/cpu_matmul.hpp"
#include "latentlab/nn/float32_norm.hpp"
#include "latentlab/precision.hpp"
#include "latentlab/threads.hpp"

namespace latentlab::host {
namespace {

// One measured kernel: a row of the output.
nlohmann::json measure(const std::string& op, const std::string& shape, Precision precision,
                       const std::string& memory_format, double flops, const std::function<void()>& call,
                       int repeats, double min_seconds) {
  call();  // warm-up: the kernel's first-call set-up (oneDNN primitive creation)
  const double seconds = median_seconds_per_call(call, repeats, min_seconds);
  spdlog::info("{} {} {} {}: {:.2f} ms, {:.1f} GFLOP/s", op, shape, to_string(precision), memory_format,
               1e3 * seconds, flops / seconds / 1e9);
  return {{"op", op},
          {"shape", shape},
          {"precision", to_string(precision)},
          {"memory_format", memory_format},
          {"ms", 1e3 * seconds},
          {"gflop", flops / 1e9},
          {"gflop_per_s", flops > 0 ? nlohmann::json(flops / seconds / 1e9) : nlohmann::json()}};
}

}  // namespace

int run_bench_peak(const Args& args) {
  CommonOptions common;
  std::string what, conv_text = "8,224,64,64", precision_text, device_name = "cpu";
  std::int64_t matmul_size = 2048;
  int repeats = 5;
  double min_seconds = 1.0;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("conv", po::value(&conv_text)->default_value("8,224,64,64"),
       "the 3x3 convolution B,C,H,W (C channels in and out, padding 1)")
      ("matmul", po::value(&matmul_size)->default_value(2048), "the square matrix product's size N (N x N by N x N)")
      ("precision", po::value(&precision_text),
       "comma-separated (default: fp32,bf16 on the CPU, fp32,bf16,fp16 on CUDA)")
      ("repeats", po::value(&repeats)->default_value(5), "timed rounds per measurement; the median is reported")
      ("min-seconds", po::value(&min_seconds)->default_value(1.0), "minimum duration of one timed round")
      ("device", po::value(&device_name)->default_value("cpu"), "cpu, cuda, cuda:N or auto");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("what", po::value(&what));
  po::variables_map vm;
  if (!parse_command_line(
          "bench", args, options, positional,
          "latentlab bench peak [--conv B,C,H,W] [--matmul N] [--precision fp32,bf16] [--threads N]",
          "Measures a 3x3 convolution (contiguous and channels-last), GroupNorm + SiLU on the same tensor, "
          "and a square matrix product in each "
          "precision, on tensors of that dtype, and prints a JSON list of {op, shape, precision, "
          "memory_format, ms, gflop_per_s}: the throughput a network's layers can reach on this machine. "
          "`bench denoiser` reports the UNet's achieved GFLOP/s to read against it.",
          vm))
    return kOk;
  if (repeats < 1) throw ConfigError("--repeats: must be >= 1");
  if (matmul_size < 1) throw ConfigError("--matmul: must be >= 1");
  const auto conv = parse_positive_int_list(conv_text, "--conv");
  if (conv.size() != 4) throw ConfigError("--conv: expected B,C,H,W, got '" + conv_text + "'");
  const int threads = apply_common_options(common);
  const torch::Device device = resolve_device(device_name, "--device");
  if (precision_text.empty()) precision_text = device.is_cuda() ? "fp32,bf16,fp16" : "fp32,bf16";
  const auto precisions = parse_precision_list(precision_text, "--precision");
  for (const auto precision : precisions) check_precision(precision, device, "--precision");
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };

  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto B = conv[0], C = conv[1], H = conv[2], W = conv[3];
  const double conv_flops = 2.0 * static_cast<double>(B * C * C * 9 * H * W);
  const double n = static_cast<double>(matmul_size);
  const std::string conv_shape = std::to_string(B) + "x" + std::to_string(C) + "x" + std::to_string(H) + "x" +
                                 std::to_string(W) + ", 3x3";
  const std::string matmul_shape = std::to_string(matmul_size) + "^3";
  nlohmann::json rows = nlohmann::json::array();
  nn::GroupNorm32 norm(torch::nn::GroupNormOptions(32, C));
  norm->to(device);
  for (const auto precision : precisions) {
    const auto on = torch::TensorOptions().device(device).dtype(compute_dtype(precision));
    for (const bool channels_last : {false, true}) {
      const auto format = channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
      const auto x = torch::randn({B, C, H, W}, on).contiguous(format);
      const auto weight = (torch::randn({C, C, 3, 3}, on) * 0.05).contiguous(format);
      const auto bias = torch::zeros({C}, on);
      const auto layout = channels_last ? "channels_last" : "contiguous";
      rows.push_back(measure(
          "conv3x3", conv_shape, precision, layout, conv_flops,
          [&] {
            torch::conv2d(x, weight, bias, 1, 1);
            sync();
          },
          repeats, min_seconds));
      // What precedes most of the UNet's convolutions, on the same tensor: GroupNorm(32) with float32
      // statistics, then SiLU; LatentLab's (nn::group_norm_silu), and LibTorch's GroupNorm on a float32
      // copy converted back (LDM's GroupNorm32, LatentLab's before). No FLOPs counted: read their
      // milliseconds against the convolution's.
      const auto norm_shape = conv_shape.substr(0, conv_shape.find(','));
      rows.push_back(measure(
          "groupnorm_silu", norm_shape, precision, layout, 0,
          [&] {
            norm->forward_silu(x);
            sync();
          },
          repeats, min_seconds));
      rows.push_back(measure(
          "groupnorm_silu_via_float32", norm_shape, precision, layout, 0,
          [&] {
            torch::silu(norm->torch::nn::GroupNormImpl::forward(x.to(torch::kFloat32)).to(x.scalar_type()));
            sync();
          },
          repeats, min_seconds));
    }
    const auto a = torch::randn({matmul_size, matmul_size}, on),
               b = torch::randn({matmul_size, matmul_size}, on);
    // float32 on the CPU through the two-core product LatentLab's layers use (nn/cpu_matmul.hpp):
    // LibTorch's own runs OpenBLAS on one thread here (latentlab/threads.hpp). bf16 goes to oneDNN.
    rows.push_back(measure(
        "matmul", matmul_shape, precision, "-", 2 * n * n * n,
        [&] {
          if (precision == Precision::fp32)
            nn::linear(a, b, {});  // a b^T
          else
            torch::mm(a, b);
          sync();
        },
        repeats, min_seconds));
  }
  for (auto& row : rows) {
    row["device"] = device.str();
    row["threads"] = threads;
    row["repeats"] = repeats;
  }
  std::cout << rows.dump(2) << "\n";
  return kOk;
}

}  // namespace latentlab::host
