// `tokens`: tau_theta for text (Appendix E.2.1): a word-level tokenizer built from the training
// captions (saved with the model), token and position embeddings, N pre-norm transformer blocks
// (self-attention and a GELU MLP, each in a residual branch) and a final LayerNorm (in float32 under
// autocast, docs/precision.md):
// captions -> (B, M, d_tau) for the UNet's cross-attention. Trained jointly with the denoiser (Eq. 3).
// The empty caption ([start, end, pad, ...]) is the unconditional value.
#include <cmath>
#include <string>
#include <vector>

#include "conditioners.hpp"
#include "latentlab/conditioning/tokenizer.hpp"
#include "latentlab/error.hpp"
#include "latentlab/nn/float32_norm.hpp"

namespace latentlab::conditioners {
namespace {

namespace F = torch::nn::functional;

// One pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x)).
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(std::int64_t dim, std::int64_t heads, std::int64_t mlp_ratio) : heads_(heads) {
    norm1_ = register_module("norm1", nn::LayerNorm32(torch::nn::LayerNormOptions({dim})));
    qkv_ = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
    proj_ = register_module("proj", torch::nn::Linear(dim, dim));
    norm2_ = register_module("norm2", nn::LayerNorm32(torch::nn::LayerNormOptions({dim})));
    fc1_ = register_module("fc1", torch::nn::Linear(dim, mlp_ratio * dim));
    fc2_ = register_module("fc2", torch::nn::Linear(mlp_ratio * dim, dim));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const auto B = x.size(0), M = x.size(1), D = x.size(2), head_dim = D / heads_;
    // [B, M, 3, heads, head_dim] -> three [B, heads, M, head_dim]
    const auto qkv =
        qkv_->forward(norm1_->forward(x)).view({B, M, 3, heads_, head_dim}).permute({2, 0, 3, 1, 4});
    const auto q = qkv[0], k = qkv[1], v = qkv[2];
    const auto weights =
        torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(head_dim)), -1);
    const auto attended = torch::matmul(weights, v).permute({0, 2, 1, 3}).reshape({B, M, D});
    auto h = x + proj_->forward(attended);
    return h + fc2_->forward(F::gelu(fc1_->forward(norm2_->forward(h))));
  }

 private:
  std::int64_t heads_;
  nn::LayerNorm32 norm1_{nullptr}, norm2_{nullptr};
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr}, fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(Block);

class TextTokens final : public Conditioner {
 public:
  explicit TextTokens(const Params& params)
      : dim_(params.get_int("dim")),
        depth_(params.get_int("depth")),
        heads_(params.get_int("heads")),
        length_(params.get_int("max_length")),
        max_words_(params.get_int("max_words")),
        min_count_(params.get_int("min_count")) {
    if (dim_ % heads_)
      throw ConfigError("heads: dim " + std::to_string(dim_) + " is not divisible by " +
                        std::to_string(heads_) + " heads");
  }

  ConditionerOutput output() const override { return ConditionerOutput::Tokens; }
  ConditionSource source() const override { return ConditionSource::Captions; }
  std::string task() const override { return "text"; }

  void load_state(const std::string& state) override {
    tokenizer_ = WordTokenizer::from_text(state);
    loaded_ = true;
  }
  std::string state() const override { return tokenizer_.to_text(); }

  void setup(const ConditionerSetup& setup) override {
    if (!loaded_) {
      if (setup.captions.empty())
        throw ConfigError(
            "the data has no captions; use captioned data (fashion-mnist with "
            "\"captions\": \"templates\", or an image folder with a captions file)");
      tokenizer_ = WordTokenizer::build(setup.captions, max_words_, min_count_);
    }
    token_embedding_ =
        module_.register_module("token_embedding", torch::nn::Embedding(tokenizer_.size(), dim_));
    position_embedding_ = module_.register_module("position_embedding", torch::nn::Embedding(length_, dim_));
    {
      torch::NoGradGuard no_grad;
      token_embedding_->weight.normal_(0.0, 0.02);
      position_embedding_->weight.normal_(0.0, 0.02);
    }
    for (std::int64_t i = 0; i < depth_; ++i)
      blocks_.push_back(module_.register_module("blocks_" + std::to_string(i), Block(dim_, heads_, 4)));
    final_norm_ = module_.register_module("final_norm", nn::LayerNorm32(torch::nn::LayerNormOptions({dim_})));
  }

  std::int64_t width() const override { return dim_; }
  std::int64_t tokens() const override { return length_; }

  torch::Tensor encode(const ConditionInputs& inputs) override {
    if (!final_norm_) throw Error("conditioner 'tokens': encode before setup");
    const auto B = static_cast<std::int64_t>(inputs.captions.size());
    if (B == 0 && inputs.batch_size() > 0)
      throw Error("conditioner 'tokens' needs captions; the batch has none");
    auto captions = inputs.captions;
    if (inputs.drop.defined()) {
      const auto drop = drop_rows(inputs.drop, B, torch::kCPU);
      const auto* dropped = drop.data_ptr<bool>();
      for (std::int64_t b = 0; b < B; ++b)
        if (dropped[b]) captions[static_cast<std::size_t>(b)].clear();
    }
    const auto device = token_embedding_->weight.device();
    const auto ids = tokenizer_.encode(captions, length_).to(device);
    const auto positions = torch::arange(length_, torch::TensorOptions().dtype(torch::kInt64).device(device));
    auto x = token_embedding_->forward(ids) + position_embedding_->forward(positions).unsqueeze(0);
    for (auto& block : blocks_) x = block->forward(x);
    return final_norm_->forward(x);  // [B, M, d]
  }

  torch::nn::Module& module() override { return module_; }

 private:
  std::int64_t dim_, depth_, heads_, length_, max_words_, min_count_;
  bool loaded_ = false;
  WordTokenizer tokenizer_;
  torch::nn::Module module_;
  torch::nn::Embedding token_embedding_{nullptr}, position_embedding_{nullptr};
  std::vector<Block> blocks_;
  nn::LayerNorm32 final_norm_{nullptr};
};

}  // namespace

ParamSchema tokens_schema() {
  return ParamSchema()
      .integer("dim", 128, "d_tau: the token width (the UNet's context_dim)", Range::at_least(1))
      .integer("depth", 2, "N: transformer blocks", Range::at_least(0))
      .integer("heads", 4, "attention heads (dim must be divisible by them)", Range::at_least(1))
      .integer("max_length", 16, "M: tokens per caption, with the start and end tokens", Range::at_least(2))
      .integer("max_words", 1000, "vocabulary size cap: the most frequent words of the training captions",
               Range::at_least(1))
      .integer("min_count", 1, "words seen fewer times in the training captions are left out",
               Range::at_least(1));
}

std::unique_ptr<Conditioner> make_tokens(const Params& params) {
  return std::make_unique<TextTokens>(params);
}

}  // namespace latentlab::conditioners
