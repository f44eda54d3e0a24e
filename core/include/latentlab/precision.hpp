#pragma once
// Compute precision (docs/precision.md): fp32, or autocast to bf16 (CPU and CUDA) or fp16 (CUDA) with
// float32 weights. One setting that the commands, the spec and `bench` share; what stays float32
// under any setting is listed in docs/precision.md.
#include <string>
#include <vector>

#include <torch/types.h>

#include "latentlab/export.hpp"

namespace latentlab {

enum class Precision { fp32, bf16, fp16 };

// "fp32", "bf16" or "fp16"; ConfigError naming `what` and the valid values otherwise.
LATENTLAB_API Precision parse_precision(const std::string& text, const std::string& what = "precision");
LATENTLAB_API std::string to_string(Precision precision);
// "fp32,bf16" -> {fp32, bf16}; at least one.
LATENTLAB_API std::vector<Precision> parse_precision_list(const std::string& text,
                                                          const std::string& what = "precision");

// The dtype that matrix products and convolutions run in: float32, bfloat16 or float16.
LATENTLAB_API torch::ScalarType compute_dtype(Precision precision);

// ConfigError naming `what` when `device` cannot run `precision`: fp16 autocast needs CUDA (LibTorch's
// CPU autocast has no float16 kernels for convolutions).
LATENTLAB_API void check_precision(Precision precision, const torch::Device& device,
                                   const std::string& what = "precision");

// Whether this CPU has native bfloat16 dot products (AVX512-BF16 or AMX-BF16), which make bf16
// convolutions and matrix products faster than float32; without them bf16 runs, emulated, and is
// slower. Read once from /proc/cpuinfo (false where that is missing).
LATENTLAB_API bool cpu_has_native_bf16();
// Which: "AMX-BF16", "AVX512-BF16", both ("AMX-BF16 and AVX512-BF16"), or "" (none).
LATENTLAB_API std::string cpu_bf16_instructions();

// The precision "auto" stands for on `device`: bf16 where the device multiplies bf16 natively (a CPU
// with AVX512-BF16 or AMX-BF16; a CUDA GPU of compute capability 8.0 or later, the current one),
// fp32 elsewhere, where bf16 would be emulated and slower (docs/precision.md#auto).
LATENTLAB_API Precision auto_precision(const torch::Device& device);
// Why auto_precision chose what it did, for logs and `doctor`: "bf16 (this CPU has AVX512-BF16)".
LATENTLAB_API std::string auto_precision_reason(const torch::Device& device);
// parse_precision that also accepts "auto", resolved for `device` by auto_precision: where a command
// or the sweep planner knows the device its networks will run on.
LATENTLAB_API Precision parse_precision_setting(const std::string& text, const torch::Device& device,
                                                const std::string& what = "precision");
// The same for a device named as the commands and configs name it ("auto", "cpu", "cuda:N"), resolved
// only when the text is "auto" (a bad device name is then resolve_device's error, naming "device").
LATENTLAB_API Precision parse_precision_setting(const std::string& text, const std::string& device_name,
                                                const std::string& what);

// `x` in float32 when autocast made it bf16/fp16 (a network's output, before the float32 arithmetic
// that follows: the loss, the sampler, the metrics); float32 and float64 tensors pass unchanged.
LATENTLAB_API torch::Tensor full_precision(const torch::Tensor& x);

// Whether autocast is on for `device`'s type in this thread.
LATENTLAB_API bool autocast_enabled(const torch::Device& device);

// Turns autocast to `precision`'s dtype on for `device` while it lives, or off for fp32 (as
// torch.autocast(enabled=False): float32 code inside a bf16 region), and restores the previous state
// after. Nestable; its own thread only, like LibTorch's autocast.
class LATENTLAB_API AutocastGuard {
 public:
  AutocastGuard(const torch::Device& device, Precision precision);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool cuda_ = false, was_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kFloat32;
};

}  // namespace latentlab
