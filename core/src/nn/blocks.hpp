#pragma once
// The UNet's building blocks, named like the reference LDM modules (openaimodel.py, attention.py) so
// that parameter names equal the reference state-dict keys.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "latentlab/nn/attention.hpp"
#include "latentlab/nn/float32_norm.hpp"

namespace latentlab::nn {

// A block of a TimestepEmbedSequential: takes features, the time embedding and the context.
struct TimestepBlock {
  virtual ~TimestepBlock() = default;
  // x: [B, C, H, W]; emb: [B, E]; context: [B, M, D] or undefined
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb,
                                const torch::Tensor& context) = 0;
};

// LDM's TimestepEmbedSequential: children named "0", "1", ... in order.
class TimestepSequentialImpl : public torch::nn::Module {
 public:
  using Forward =
      std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)>;
  // Registers `module` as the next child and calls `forward` for it.
  void push(std::shared_ptr<torch::nn::Module> module, Forward forward);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb, const torch::Tensor& context);

 private:
  std::vector<Forward> forwards_;
};
TORCH_MODULE(TimestepSequential);

// Adds a TimestepBlock module (ResBlock, SpatialTransformer, ...) to a TimestepSequential.
template <class Holder>
void push_block(TimestepSequential& sequential, const Holder& holder) {
  auto module = holder.ptr();
  sequential->push(module,
                   [module](const torch::Tensor& x, const torch::Tensor& emb, const torch::Tensor& context) {
                     return module->forward(x, emb, context);
                   });
}

// GroupNorm32(32, channels) (LDM's `normalization`).
GroupNorm32 normalization(std::int64_t channels, double eps = 1e-5);

struct ResBlockOptions {
  std::int64_t channels, emb_channels, out_channels;
  double dropout = 0.0;
  bool use_scale_shift_norm = false;
  bool up = false, down = false;
};

class ResBlockImpl : public torch::nn::Module, public TimestepBlock {
 public:
  explicit ResBlockImpl(const ResBlockOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb,
                        const torch::Tensor& context) override;

 private:
  ResBlockOptions options_;
  GroupNorm32 in_norm_{nullptr}, out_norm_{nullptr};
  torch::nn::Conv2d in_conv_{nullptr}, out_conv_{nullptr};
  torch::nn::Linear emb_linear_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  torch::nn::Conv2d skip_{nullptr};  // null: identity
};
TORCH_MODULE(ResBlock);

// Stride-2 3x3 convolution (`op`), or 2x2 average pooling without conv_resample.
class DownsampleImpl : public torch::nn::Module, public TimestepBlock {
 public:
  DownsampleImpl(std::int64_t channels, bool use_conv, std::int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb,
                        const torch::Tensor& context) override;

 private:
  torch::nn::Conv2d op_{nullptr};
};
TORCH_MODULE(Downsample);

// Nearest-neighbour 2x upsampling, then a 3x3 convolution (`conv`) with conv_resample.
class UpsampleImpl : public torch::nn::Module, public TimestepBlock {
 public:
  UpsampleImpl(std::int64_t channels, bool use_conv, std::int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb,
                        const torch::Tensor& context) override;

 private:
  torch::nn::Conv2d conv_{nullptr};
};
TORCH_MODULE(Upsample);

// Self-attention over the H*W positions (LDM's AttentionBlock with QKVAttentionLegacy, or
// QKVAttention with use_new_attention_order).
class AttentionBlockImpl : public torch::nn::Module, public TimestepBlock {
 public:
  AttentionBlockImpl(std::int64_t channels, std::int64_t num_heads, bool new_order);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb,
                        const torch::Tensor& context) override;

 private:
  std::int64_t num_heads_;
  bool new_order_;
  GroupNorm32 norm_{nullptr};
  torch::nn::Conv1d qkv_{nullptr}, proj_out_{nullptr};
};
TORCH_MODULE(AttentionBlock);

// Multi-head attention: Q from x [B, N, query_dim], K and V from context [B, M, context_dim]
// (x itself when undefined). LDM's CrossAttention.
class CrossAttentionImpl : public torch::nn::Module {
 public:
  CrossAttentionImpl(std::int64_t query_dim, std::int64_t context_dim, std::int64_t heads,
                     std::int64_t dim_head, double dropout);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

 private:
  std::int64_t heads_, dim_head_;
  torch::nn::Linear to_q_{nullptr}, to_k_{nullptr}, to_v_{nullptr}, out_linear_{nullptr};
  torch::nn::Dropout out_dropout_{nullptr};
};
TORCH_MODULE(CrossAttention);

// GEGLU feed-forward (`net.0.proj`, `net.2`): x -> proj -> (a, gate) -> a * gelu(gate) -> linear.
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(std::int64_t dim, std::int64_t mult, double dropout);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Linear proj_{nullptr}, out_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
};
TORCH_MODULE(FeedForward);

// Self-attention, cross-attention, feed-forward, each pre-LayerNorm with a residual.
class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  BasicTransformerBlockImpl(std::int64_t dim, std::int64_t heads, std::int64_t dim_head, double dropout,
                            std::int64_t context_dim);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

 private:
  CrossAttention attn1_{nullptr}, attn2_{nullptr};
  FeedForward ff_{nullptr};
  LayerNorm32 norm1_{nullptr}, norm2_{nullptr}, norm3_{nullptr};
};
TORCH_MODULE(BasicTransformerBlock);

// Sec. 3.3: GroupNorm, 1x1 proj_in, transformer blocks over the H*W tokens (cross-attending to the
// conditioning tokens), zero-initialised 1x1 proj_out, residual.
class SpatialTransformerImpl : public torch::nn::Module, public TimestepBlock {
 public:
  SpatialTransformerImpl(std::int64_t channels, std::int64_t heads, std::int64_t dim_head, std::int64_t depth,
                         double dropout, std::int64_t context_dim);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb,
                        const torch::Tensor& context) override;

 private:
  GroupNorm32 norm_{nullptr};
  torch::nn::Conv2d proj_in_{nullptr}, proj_out_{nullptr};
  torch::nn::ModuleList transformer_blocks_;
  std::vector<BasicTransformerBlock> blocks_;
};
TORCH_MODULE(SpatialTransformer);

// Registers and returns a parameterless child module, so that the children added to it get the
// reference names ("in_layers.2.weight").
std::shared_ptr<torch::nn::Module> container(torch::nn::Module& parent, const std::string& name);

// Zeroes a module's parameters (LDM's zero_module), so a residual branch starts as the identity.
void zero_parameters(torch::nn::Module& module);

}  // namespace latentlab::nn
