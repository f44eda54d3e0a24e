#include "latentlab/precision.hpp"

#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <fstream>
#include <sstream>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/threads.hpp"

// LibTorch 2.4 replaced the per-device autocast functions by ones that take the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define LATENTLAB_AUTOCAST_BY_DEVICE_TYPE 1
#endif

namespace latentlab {

namespace {

bool enabled_for(bool cuda) {
#ifdef LATENTLAB_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

void set_enabled_for(bool cuda, bool enabled) {
#ifdef LATENTLAB_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, enabled);
#else
  if (cuda)
    at::autocast::set_enabled(enabled);
  else
    at::autocast::set_cpu_enabled(enabled);
#endif
}

torch::ScalarType dtype_for(bool cuda) {
#ifdef LATENTLAB_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_dtype_for(bool cuda, torch::ScalarType dtype) {
#ifdef LATENTLAB_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, dtype);
#else
  if (cuda)
    at::autocast::set_autocast_gpu_dtype(dtype);
  else
    at::autocast::set_autocast_cpu_dtype(dtype);
#endif
}

std::string read_cpu_bf16_instructions() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line);
    std::string word;
    bool avx512 = false, amx = false;
    while (words >> word) {
      avx512 = avx512 || word == "avx512_bf16";
      amx = amx || word == "amx_bf16";
    }
    // The first CPU's flags are every CPU's.
    return amx && avx512 ? "AMX-BF16 and AVX512-BF16" : amx ? "AMX-BF16" : avx512 ? "AVX512-BF16" : "";
  }
  return "";
}

}  // namespace

Precision parse_precision(const std::string& text, const std::string& what) {
  if (text == "fp32") return Precision::fp32;
  if (text == "bf16") return Precision::bf16;
  if (text == "fp16") return Precision::fp16;
  throw ConfigError(what + ": expected \"fp32\", \"bf16\" or \"fp16\", got \"" + text + "\"" +
                    did_you_mean(text, {"fp32", "bf16", "fp16"}));
}

std::vector<Precision> parse_precision_list(const std::string& text, const std::string& what) {
  std::vector<Precision> precisions;
  std::stringstream items(text);
  std::string item;
  while (std::getline(items, item, ','))
    if (!item.empty()) precisions.push_back(parse_precision(item, what));
  if (precisions.empty()) throw ConfigError(what + ": expected at least one of fp32, bf16, fp16");
  return precisions;
}

std::string to_string(Precision precision) {
  switch (precision) {
    case Precision::bf16:
      return "bf16";
    case Precision::fp16:
      return "fp16";
    case Precision::fp32:
      break;
  }
  return "fp32";
}

torch::ScalarType compute_dtype(Precision precision) {
  switch (precision) {
    case Precision::bf16:
      return torch::kBFloat16;
    case Precision::fp16:
      return torch::kFloat16;
    case Precision::fp32:
      break;
  }
  return torch::kFloat32;
}

void check_precision(Precision precision, const torch::Device& device, const std::string& what) {
  if (precision == Precision::fp16 && !device.is_cuda())
    throw ConfigError(what +
                      ": fp16 runs on CUDA only (LibTorch's CPU autocast has no float16 "
                      "convolutions); use \"bf16\" on the CPU");
}

std::string cpu_bf16_instructions() {
  static const std::string instructions = read_cpu_bf16_instructions();
  return instructions;
}

bool cpu_has_native_bf16() {
  return !cpu_bf16_instructions().empty();
}

namespace {
// bf16 tensor cores: compute capability 8.0 (Ampere) and later, which is what LibTorch's CUDA hooks
// ask of the current device before they run bf16 convolutions through cuDNN 8.
bool cuda_has_native_bf16() {
  return at::detail::getCUDAHooks().hasCUDA() &&
         at::detail::getCUDAHooks().supportsBFloat16ConvolutionWithCuDNNv8();
}
}  // namespace

Precision auto_precision(const torch::Device& device) {
  const bool native = device.is_cuda() ? cuda_has_native_bf16() : cpu_has_native_bf16();
  return native ? Precision::bf16 : Precision::fp32;
}

std::string auto_precision_reason(const torch::Device& device) {
  if (device.is_cuda())
    return cuda_has_native_bf16() ? "bf16 (this GPU has bf16 tensor cores)"
                                  : "fp32 (this GPU has no bf16 tensor cores: compute capability below 8.0)";
  return cpu_has_native_bf16()
             ? "bf16 (this CPU has " + cpu_bf16_instructions() + ")"
             : "fp32 (this CPU has neither AVX512-BF16 nor AMX-BF16: bf16 would be emulated)";
}

Precision parse_precision_setting(const std::string& text, const std::string& device_name,
                                  const std::string& what) {
  return parse_precision_setting(
      text, text == "auto" ? resolve_device(device_name, "device") : torch::Device(torch::kCPU), what);
}

Precision parse_precision_setting(const std::string& text, const torch::Device& device,
                                  const std::string& what) {
  if (text == "auto") return auto_precision(device);
  if (text == "fp32" || text == "bf16" || text == "fp16") return parse_precision(text, what);
  throw ConfigError(what + ": expected \"auto\", \"fp32\", \"bf16\" or \"fp16\", got \"" + text + "\"" +
                    did_you_mean(text, {"auto", "fp32", "bf16", "fp16"}));
}

torch::Tensor full_precision(const torch::Tensor& x) {
  if (!x.defined()) return x;
  const auto type = x.scalar_type();
  return type == torch::kBFloat16 || type == torch::kHalf ? x.to(torch::kFloat32) : x;
}

bool autocast_enabled(const torch::Device& device) {
  return enabled_for(device.is_cuda());
}

AutocastGuard::AutocastGuard(const torch::Device& device, Precision precision) {
  check_precision(precision, device);
  cuda_ = device.is_cuda();
  was_enabled_ = enabled_for(cuda_);
  previous_dtype_ = dtype_for(cuda_);
  // fp32 turns autocast off, as torch.autocast(enabled=False) does: code that must stay float32 (the
  // feature networks, the ELBO) stays so inside a bf16 region.
  set_enabled_for(cuda_, precision != Precision::fp32);
  if (precision != Precision::fp32) set_dtype_for(cuda_, compute_dtype(precision));
  // As torch.autocast: the cast weights are cached while any guard lives and dropped when the
  // outermost one ends, so that an optimizer step is never read through a stale low-precision copy.
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_enabled_for(cuda_, was_enabled_);
  set_dtype_for(cuda_, previous_dtype_);
}

}  // namespace latentlab
