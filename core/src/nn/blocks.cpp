// ResBlock, Downsample, Upsample and TimestepEmbedSequential (LDM openaimodel.py).
#include "blocks.hpp"

namespace latentlab::nn {

namespace F = torch::nn::functional;

// A parameterless container so that children get the reference names ("in_layers.2.weight").
std::shared_ptr<torch::nn::Module> container(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

void TimestepSequentialImpl::push(std::shared_ptr<torch::nn::Module> module, Forward forward) {
  register_module(std::to_string(forwards_.size()), std::move(module));
  forwards_.push_back(std::move(forward));
}

torch::Tensor TimestepSequentialImpl::forward(const torch::Tensor& x, const torch::Tensor& emb,
                                              const torch::Tensor& context) {
  auto h = x;
  for (const auto& f : forwards_) h = f(h, emb, context);
  return h;
}

GroupNorm32 normalization(std::int64_t channels, double eps) {
  return GroupNorm32(torch::nn::GroupNormOptions(32, channels).eps(eps));
}

void zero_parameters(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) p.zero_();
}

namespace {

torch::nn::Conv2d conv3x3(std::int64_t in, std::int64_t out, std::int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

torch::Tensor upsample_nearest(const torch::Tensor& x) {
  // [B, C, H, W] -> [B, C, 2H, 2W]
  return F::interpolate(
      x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest));
}

torch::Tensor average_pool(const torch::Tensor& x) {
  return F::avg_pool2d(x, F::AvgPool2dFuncOptions(2).stride(2));  // [B, C, H, W] -> [B, C, H/2, W/2]
}

}  // namespace

ResBlockImpl::ResBlockImpl(const ResBlockOptions& options) : options_(options) {
  auto in_layers = container(*this, "in_layers");
  in_norm_ = in_layers->register_module("0", normalization(options.channels));
  in_conv_ = in_layers->register_module("2", conv3x3(options.channels, options.out_channels));

  auto emb_layers = container(*this, "emb_layers");
  const auto emb_out = options.use_scale_shift_norm ? 2 * options.out_channels : options.out_channels;
  emb_linear_ = emb_layers->register_module("1", torch::nn::Linear(options.emb_channels, emb_out));

  auto out_layers = container(*this, "out_layers");
  out_norm_ = out_layers->register_module("0", normalization(options.out_channels));
  dropout_ = out_layers->register_module("2", torch::nn::Dropout(options.dropout));
  out_conv_ = out_layers->register_module("3", conv3x3(options.out_channels, options.out_channels));
  zero_parameters(*out_conv_);

  if (options.out_channels != options.channels)
    skip_ = register_module("skip_connection", torch::nn::Conv2d(torch::nn::Conv2dOptions(
                                                   options.channels, options.out_channels, 1)));
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& emb, const torch::Tensor&) {
  // x: [B, C, H, W]; emb: [B, E]
  torch::Tensor h = in_norm_->forward_silu(x);
  torch::Tensor skip_input = x;
  if (options_.up) {  // [B, C, 2H, 2W]
    h = upsample_nearest(h);
    skip_input = upsample_nearest(x);
  } else if (options_.down) {  // [B, C, H/2, W/2]
    h = average_pool(h);
    skip_input = average_pool(x);
  }
  h = in_conv_->forward(h);  // [B, C_out, H', W']
  auto emb_out =
      emb_linear_->forward(torch::silu(emb)).unsqueeze(-1).unsqueeze(-1);  // [B, C_out or 2 C_out, 1, 1]
  if (options_.use_scale_shift_norm) {
    const auto scale_shift = emb_out.chunk(2, 1);
    h = torch::silu(out_norm_->forward(h) * (1 + scale_shift[0]) + scale_shift[1]);
  } else {
    h = out_norm_->forward_silu(h + emb_out);
  }
  h = out_conv_->forward(dropout_->forward(h));  // [B, C_out, H', W']
  return (skip_ ? skip_->forward(skip_input) : skip_input) + h;
}

DownsampleImpl::DownsampleImpl(std::int64_t channels, bool use_conv, std::int64_t out_channels) {
  if (use_conv) {
    op_ = register_module("op", conv3x3(channels, out_channels, 2));
  } else if (channels != out_channels) {
    throw std::invalid_argument("Downsample without conv_resample keeps the channel count");
  }
}

torch::Tensor DownsampleImpl::forward(const torch::Tensor& x, const torch::Tensor&, const torch::Tensor&) {
  return op_ ? op_->forward(x) : average_pool(x);  // [B, C, H, W] -> [B, C_out, H/2, W/2]
}

UpsampleImpl::UpsampleImpl(std::int64_t channels, bool use_conv, std::int64_t out_channels) {
  if (use_conv) {
    conv_ = register_module("conv", conv3x3(channels, out_channels));
  } else if (channels != out_channels) {
    throw std::invalid_argument("Upsample without conv_resample keeps the channel count");
  }
}

torch::Tensor UpsampleImpl::forward(const torch::Tensor& x, const torch::Tensor&, const torch::Tensor&) {
  const auto h = upsample_nearest(x);  // [B, C, 2H, 2W]
  return conv_ ? conv_->forward(h) : h;
}

}  // namespace latentlab::nn
