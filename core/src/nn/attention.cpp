// Attention blocks: LDM's AttentionBlock (openaimodel.py) and CrossAttention, FeedForward,
// BasicTransformerBlock, SpatialTransformer (attention.py, Sec. 3.3).
#include <algorithm>
#include <atomic>
#include <cmath>

#include "blocks.hpp"
#include "latentlab/nn/cpu_matmul.hpp"

namespace latentlab::nn {

namespace F = torch::nn::functional;

// LibTorch 2.1 added `scale` to the fused kernel; LatentLab uses it from there.
#if defined(TORCH_VERSION_MAJOR) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1))
#define LATENTLAB_FUSED_ATTENTION 1
#else
#define LATENTLAB_FUSED_ATTENTION 0
#endif

namespace {

// One block of queries: q [N, l, d] against all of k, v.
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  const auto sim = batched_matmul(q, k, false, true, scale);  // [N, l, S]
  // Softmax in float32 whatever the compute dtype (LDM computes `sim` in float32 too).
  const auto attention = sim.scalar_type() == torch::kFloat32 || sim.scalar_type() == torch::kFloat64
                             ? sim.softmax(-1)
                             : sim.to(torch::kFloat32).softmax(-1).to(v.scalar_type());
  return batched_matmul(attention, v);  // [N, l, d]
}

std::atomic<std::int64_t> block_bytes{kAttentionBlockBytes};

}  // namespace

void set_attention_block_bytes(std::int64_t bytes) {
  block_bytes = std::max<std::int64_t>(0, bytes);
}

std::int64_t attention_block_bytes() {
  return block_bytes;
}

bool fused_attention_available(torch::ScalarType dtype) {
  return LATENTLAB_FUSED_ATTENTION && dtype != torch::kFloat64;
}

torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                           const torch::Tensor& v, double scale, std::int64_t max_bytes) {
  // q: [N, L, d]; k, v: [N, S, d]
#if LATENTLAB_FUSED_ATTENTION
  if (fused_attention_available(q.scalar_type()))
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/false,
                                            scale);
#endif
  if (max_bytes < 0) max_bytes = attention_block_bytes();
  const auto N = q.size(0), L = q.size(1), S = k.size(1);
  if (max_bytes == 0) return attend(q, k, v, scale);
  // Scores counted as float32 (a bf16 similarity matrix is converted to float32 for the softmax), or
  // float64.
  const auto bytes_per_row = std::max<std::int64_t>(1, N * S * (q.scalar_type() == torch::kFloat64 ? 8 : 4));
  const auto rows = std::max<std::int64_t>(1, max_bytes / bytes_per_row);
  if (rows >= L) return attend(q, k, v, scale);
  std::vector<torch::Tensor> blocks;
  for (std::int64_t start = 0; start < L; start += rows)
    blocks.push_back(attend(q.narrow(1, start, std::min(rows, L - start)), k, v, scale));
  return torch::cat(blocks, 1);  // [N, L, d]
}

namespace {

// A Linear module's product through the two-core path.
torch::Tensor project(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return linear(x, layer->weight, layer->bias);
}

// [B, N, H*d] -> [B*H, N, d]
torch::Tensor split_heads(const torch::Tensor& x, std::int64_t heads) {
  const auto B = x.size(0), N = x.size(1), d = x.size(2) / heads;
  return x.view({B, N, heads, d}).permute({0, 2, 1, 3}).reshape({B * heads, N, d});
}

// [B*H, N, d] -> [B, N, H*d]
torch::Tensor merge_heads(const torch::Tensor& x, std::int64_t heads) {
  const auto N = x.size(1), d = x.size(2), B = x.size(0) / heads;
  return x.view({B, heads, N, d}).permute({0, 2, 1, 3}).reshape({B, N, heads * d});
}

}  // namespace

AttentionBlockImpl::AttentionBlockImpl(std::int64_t channels, std::int64_t num_heads, bool new_order)
    : num_heads_(num_heads), new_order_(new_order) {
  norm_ = register_module("norm", normalization(channels));
  qkv_ = register_module("qkv", torch::nn::Conv1d(torch::nn::Conv1dOptions(channels, 3 * channels, 1)));
  proj_out_ = register_module("proj_out", torch::nn::Conv1d(torch::nn::Conv1dOptions(channels, channels, 1)));
  zero_parameters(*proj_out_);
}

torch::Tensor AttentionBlockImpl::forward(const torch::Tensor& x, const torch::Tensor&,
                                          const torch::Tensor&) {
  // x: [B, C, H, W]
  const auto B = x.size(0), C = x.size(1), T = x.size(2) * x.size(3);
  const auto heads = num_heads_, d = C / heads;
  const auto tokens = norm_->forward(x).flatten(2).transpose(1, 2);  // [B, T, C] (a view when channels-last)
  const auto qkv = linear(tokens, qkv_->weight, qkv_->bias);         // [B, T, 3C]
  // The legacy layout groups channels per head as (H, 3, d); the new one as (3, H, d).
  const auto grouped = new_order_
                           ? qkv.view({B, T, 3, heads, d}).permute({2, 0, 3, 1, 4})   // [3, B, H, T, d]
                           : qkv.view({B, T, heads, 3, d}).permute({3, 0, 2, 1, 4});  // [3, B, H, T, d]
  const auto q = grouped[0].reshape({B * heads, T, d});
  const auto k = grouped[1].reshape({B * heads, T, d});
  const auto v = grouped[2].reshape({B * heads, T, d});
  // (q / d^(1/4)) . (k / d^(1/4)) as in QKVAttention: a 1/sqrt(d) scale.
  const auto a =
      scaled_dot_product_attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(d)));  // [B*H, T, d]
  const auto h = linear(merge_heads(a, heads), proj_out_->weight, proj_out_->bias);    // [B, T, C]
  return x + h.transpose(1, 2).reshape(x.sizes());                                     // [B, C, H, W]
}

CrossAttentionImpl::CrossAttentionImpl(std::int64_t query_dim, std::int64_t context_dim, std::int64_t heads,
                                       std::int64_t dim_head, double dropout)
    : heads_(heads), dim_head_(dim_head) {
  const auto inner = heads * dim_head;
  to_q_ = register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(query_dim, inner).bias(false)));
  to_k_ =
      register_module("to_k", torch::nn::Linear(torch::nn::LinearOptions(context_dim, inner).bias(false)));
  to_v_ =
      register_module("to_v", torch::nn::Linear(torch::nn::LinearOptions(context_dim, inner).bias(false)));
  auto to_out = container(*this, "to_out");
  out_linear_ = to_out->register_module("0", torch::nn::Linear(inner, query_dim));
  out_dropout_ = to_out->register_module("1", torch::nn::Dropout(dropout));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  // x: [B, N, query_dim]; context: [B, M, context_dim] (x when undefined)
  const auto& source = context.defined() ? context : x;
  const auto q = split_heads(project(to_q_, x), heads_);       // [B*H, N, d]
  const auto k = split_heads(project(to_k_, source), heads_);  // [B*H, M, d]
  const auto v = split_heads(project(to_v_, source), heads_);  // [B*H, M, d]
  const auto a = scaled_dot_product_attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(dim_head_)));
  return out_dropout_->forward(project(out_linear_, merge_heads(a, heads_)));  // [B, N, query_dim]
}

FeedForwardImpl::FeedForwardImpl(std::int64_t dim, std::int64_t mult, double dropout) {
  const auto inner = dim * mult;
  auto net = container(*this, "net");
  auto geglu = container(*net, "0");
  proj_ = geglu->register_module("proj", torch::nn::Linear(dim, 2 * inner));
  dropout_ = net->register_module("1", torch::nn::Dropout(dropout));
  out_ = net->register_module("2", torch::nn::Linear(inner, dim));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  // x: [B, N, dim] -> GEGLU [B, N, inner] -> [B, N, dim]
  const auto parts = project(proj_, x).chunk(2, -1);
  return project(out_, dropout_->forward(parts[0] * torch::gelu(parts[1])));
}

BasicTransformerBlockImpl::BasicTransformerBlockImpl(std::int64_t dim, std::int64_t heads,
                                                     std::int64_t dim_head, double dropout,
                                                     std::int64_t context_dim) {
  attn1_ = register_module("attn1", CrossAttention(dim, dim, heads, dim_head, dropout));
  ff_ = register_module("ff", FeedForward(dim, 4, dropout));
  attn2_ = register_module("attn2", CrossAttention(dim, context_dim, heads, dim_head, dropout));
  norm1_ = register_module("norm1", LayerNorm32(torch::nn::LayerNormOptions({dim})));
  norm2_ = register_module("norm2", LayerNorm32(torch::nn::LayerNormOptions({dim})));
  norm3_ = register_module("norm3", LayerNorm32(torch::nn::LayerNormOptions({dim})));
}

torch::Tensor BasicTransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  // x: [B, N, dim]; context: [B, M, context_dim]
  auto h = attn1_->forward(norm1_->forward(x), {}) + x;  // self-attention
  h = attn2_->forward(norm2_->forward(h), context) + h;  // cross-attention to the conditioning tokens
  return ff_->forward(norm3_->forward(h)) + h;           // [B, N, dim]
}

SpatialTransformerImpl::SpatialTransformerImpl(std::int64_t channels, std::int64_t heads,
                                               std::int64_t dim_head, std::int64_t depth, double dropout,
                                               std::int64_t context_dim) {
  const auto inner = heads * dim_head;
  norm_ = register_module("norm", normalization(channels, 1e-6));
  proj_in_ = register_module("proj_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, inner, 1)));
  transformer_blocks_ = register_module("transformer_blocks", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < depth; ++i) {
    blocks_.emplace_back(inner, heads, dim_head, dropout, context_dim);
    transformer_blocks_->push_back(blocks_.back());
  }
  proj_out_ = register_module("proj_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(inner, channels, 1)));
  zero_parameters(*proj_out_);
}

torch::Tensor SpatialTransformerImpl::forward(const torch::Tensor& x, const torch::Tensor&,
                                              const torch::Tensor& context) {
  // x: [B, C, H, W]; context: [B, M, context_dim]
  const auto B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto tokens = norm_->forward(x).flatten(2).transpose(1, 2);  // [B, HW, C] (a view when channels-last)
  tokens = linear(tokens, proj_in_->weight, proj_in_->bias);   // [B, HW, inner]
  for (auto& block : blocks_) tokens = block->forward(tokens, context);  // [B, HW, inner]
  tokens = linear(tokens, proj_out_->weight, proj_out_->bias);           // [B, HW, C]
  return x + tokens.transpose(1, 2).reshape({B, C, H, W});               // [B, C, H, W]
}

}  // namespace latentlab::nn
