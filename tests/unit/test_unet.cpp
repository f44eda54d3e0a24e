// The LDM UNet: shapes, reference parameter names, gradients, conditioning, input checks.
#include <gtest/gtest.h>

#include <set>

#include "latentlab/error.hpp"
#include "latentlab/nn/unet.hpp"

namespace latentlab::nn {
namespace {

UNetConfig tiny(bool cross_attention = false, std::int64_t concat_channels = 0) {
  nlohmann::json json = {{"in_channels", 4 + concat_channels},
                         {"out_channels", 4},
                         {"model_channels", 32},
                         {"channel_mult", {1, 2}},
                         {"num_res_blocks", 1},
                         {"attention_resolutions", {2}},
                         {"num_head_channels", 16}};
  if (cross_attention) json["context_dim"] = 24;
  return UNetConfig::from_json(json, "unet");
}

// Zero-initialised output layers make several branches inert at first; this wakes every parameter.
void perturb(UNet& model) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(7);
  for (auto& p : model->parameters()) p.add_(0.05 * torch::randn_like(p));
}

TEST(UNet, OutputShapeForManySizes) {
  torch::manual_seed(0);
  UNet plain(tiny()), cross(tiny(true)), concat(tiny(false, 2));
  torch::NoGradGuard no_grad;
  for (const std::int64_t size : {2, 4, 8, 16, 64}) {  // 2x2 input: a 1x1 grid at the lowest level
    const auto x = torch::randn({2, 4, size, size});
    const auto t = torch::tensor({1, 1000}, torch::kLong);
    EXPECT_EQ(plain->forward(x, t).sizes(), x.sizes()) << size;
    EXPECT_EQ(cross->forward(x, t, torch::randn({2, 3, 24})).sizes(), x.sizes()) << size;
    EXPECT_EQ(concat->forward(x, t, {}, torch::randn({2, 2, size, size})).sizes(), x.sizes()) << size;
  }
  // Three levels, non-square input.
  auto config = UNetConfig::from_json({{"model_channels", 32},
                                       {"channel_mult", {1, 2, 2}},
                                       {"num_res_blocks", 2},
                                       {"attention_resolutions", {1, 2, 4}},
                                       {"context_dim", 8},
                                       {"use_scale_shift_norm", true},
                                       {"resblock_updown", true}},
                                      "unet");
  UNet deep(config);
  EXPECT_EQ(deep->forward(torch::randn({1, 4, 8, 12}), torch::tensor({3}), torch::randn({1, 2, 8})).sizes(),
            (std::vector<std::int64_t>{1, 4, 8, 12}));
}

TEST(UNet, ParameterNamesFollowTheReferenceStateDict) {
  UNet model(tiny(true));
  std::set<std::string> names;
  for (const auto& item : model->named_parameters()) names.insert(item.key());
  for (const char* key : {"time_embed.0.weight",
                          "time_embed.2.bias",
                          "input_blocks.0.0.weight",
                          "input_blocks.1.0.in_layers.0.weight",
                          "input_blocks.1.0.in_layers.2.weight",
                          "input_blocks.1.0.emb_layers.1.weight",
                          "input_blocks.1.0.out_layers.0.bias",
                          "input_blocks.1.0.out_layers.3.weight",
                          "input_blocks.2.0.op.weight",
                          "input_blocks.3.0.skip_connection.weight",
                          "input_blocks.3.1.norm.weight",
                          "input_blocks.3.1.proj_in.weight",
                          "input_blocks.3.1.transformer_blocks.0.attn1.to_q.weight",
                          "input_blocks.3.1.transformer_blocks.0.attn2.to_k.weight",
                          "input_blocks.3.1.transformer_blocks.0.attn2.to_out.0.bias",
                          "input_blocks.3.1.transformer_blocks.0.ff.net.0.proj.weight",
                          "input_blocks.3.1.transformer_blocks.0.ff.net.2.weight",
                          "input_blocks.3.1.transformer_blocks.0.norm3.weight",
                          "input_blocks.3.1.proj_out.weight",
                          "middle_block.0.in_layers.2.weight",
                          "middle_block.1.proj_out.bias",
                          "middle_block.2.out_layers.3.bias",
                          "output_blocks.0.0.skip_connection.weight",
                          "output_blocks.1.2.conv.weight",
                          "output_blocks.3.0.in_layers.0.weight",
                          "out.0.weight",
                          "out.2.weight"})
    EXPECT_TRUE(names.count(key)) << "missing " << key;
  EXPECT_FALSE(names.count("input_blocks.1.0.skip_connection.weight")) << "same width: identity skip";
  EXPECT_EQ(names.size(), model->parameters().size());
  // to_q/to_k/to_v have no bias, as in LDM's CrossAttention.
  EXPECT_FALSE(names.count("input_blocks.3.1.transformer_blocks.0.attn1.to_q.bias"));
  // Self-attention blocks: norm, qkv (Conv1d), proj_out.
  UNet self_attention(tiny());
  std::set<std::string> self_names;
  for (const auto& item : self_attention->named_parameters()) self_names.insert(item.key());
  EXPECT_TRUE(self_names.count("input_blocks.3.1.qkv.weight"));
  EXPECT_EQ(self_attention->named_parameters()["input_blocks.3.1.qkv.weight"].sizes(),
            (std::vector<std::int64_t>{192, 64, 1}));
}

TEST(UNet, OutputLayerStartsAtZero) {
  UNet model(tiny());
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(torch::randn({1, 4, 8, 8}), torch::tensor({5})).abs().max().item<float>(), 0.0f);
}

TEST(UNet, GradientsReachEveryParameter) {
  auto config = tiny(true);
  config.num_classes = 3;
  UNet model(config);
  perturb(model);
  const auto out = model->forward(torch::randn({2, 4, 8, 8}), torch::tensor({10, 500}),
                                  torch::randn({2, 3, 24}), {}, torch::tensor({0, 2}, torch::kLong));
  out.pow(2).sum().backward();
  for (const auto& item : model->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0.0) << item.key();
  }
}

TEST(UNet, ContextAndLabelsChangeTheOutput) {
  auto config = tiny(true);
  config.num_classes = 3;
  UNet model(config);
  perturb(model);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({1, 4, 8, 8});
  const auto t = torch::tensor({100});
  const auto y = torch::tensor({1}, torch::kLong);
  const auto a = model->forward(x, t, torch::randn({1, 3, 24}), {}, y);
  const auto b = model->forward(x, t, torch::randn({1, 3, 24}), {}, y);
  const auto c = model->forward(x, t, torch::randn({1, 3, 24}), {}, torch::tensor({2}, torch::kLong));
  EXPECT_GT((a - b).abs().max().item<double>(), 1e-4);
  EXPECT_GT((b - c).abs().max().item<double>(), 1e-4);
  const auto context = torch::randn({1, 3, 24});
  EXPECT_TRUE(torch::equal(model->forward(x, t, context, {}, y), model->forward(x, t, context, {}, y)));
}

TEST(UNet, TimestepEmbeddingMatchesTheReferenceFormula) {
  const auto emb = timestep_embedding(torch::tensor({0.0, 3.0}), 6);
  // half = 3, freqs = 10000^(-i/3): [cos(t f), sin(t f)]
  for (int i = 0; i < 3; ++i) {
    const double f = std::pow(10000.0, -i / 3.0);
    EXPECT_NEAR(emb[1][i].item<double>(), std::cos(3.0 * f), 1e-6);
    EXPECT_NEAR(emb[1][i + 3].item<double>(), std::sin(3.0 * f), 1e-6);
    EXPECT_NEAR(emb[0][i].item<double>(), 1.0, 1e-7);
  }
  EXPECT_EQ(timestep_embedding(torch::tensor({1.0}), 7).sizes(), (std::vector<std::int64_t>{1, 7}));
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(UNet, BadInputsAreClearErrors) {
  UNet model(tiny(true));
  torch::NoGradGuard no_grad;
  const auto t = torch::tensor({1});
  const auto context = torch::randn({1, 2, 24});
  EXPECT_NE(error_of([&] {
              model->forward(torch::randn({1, 3, 8, 8}), t, context);
            }).find("in_channels is 4"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              model->forward(torch::randn({1, 4, 7, 7}), t, context);
            }).find("not divisible by 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              model->forward(torch::randn({1, 4, 8, 8}), t);
            }).find("pass a context"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              model->forward(torch::randn({1, 4, 8, 8}), t, torch::randn({1, 2, 5}));
            }).find("context must be [B, M, context_dim]"),
            std::string::npos);
}

TEST(UNetConfig, RejectsUnknownKeysAndInconsistentValues) {
  EXPECT_NE(error_of([] {
              UNetConfig::from_json({{"model_chanels", 64}}, "unet");
            }).find("model_channels"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              UNetConfig::from_json({{"model_channels", 48}}, "unet");
            }).find("multiple of 32"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              UNetConfig::from_json({{"attention_resolutions", {3}}}, "unet");
            }).find("not a downsampling factor"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              UNetConfig::from_json({{"context_dim", 8}, {"use_spatial_transformer", false}}, "unet");
            }).find("use_spatial_transformer"),
            std::string::npos);
  // LDM configs port: their keys are accepted, context_dim: null means none.
  const auto ldm = UNetConfig::from_json({{"image_size", 32},
                                          {"use_checkpoint", true},
                                          {"legacy", false},
                                          {"num_heads", 8},
                                          {"num_head_channels", -1},
                                          {"context_dim", nullptr}},
                                         "unet");
  EXPECT_EQ(ldm.context_dim, 0);
  EXPECT_EQ(ldm.heads_for(256), (std::pair<std::int64_t, std::int64_t>{8, 32}));
  EXPECT_TRUE(UNetConfig::from_json({{"context_dim", 64}}, "unet").use_spatial_transformer);
}

}  // namespace
}  // namespace latentlab::nn
