// Stage 1: the autoencoder plugins (shapes for f = 1..32, KL, VQ), the stage-1 loss (Eq. 25), latent
// statistics and rescaling, the trainer (resumption, Fashion-MNIST), and stage 2 on latents.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>

#include "latentlab/eval/image_metrics.hpp"
#include "latentlab/latent/autoencoder_file.hpp"
#include "latentlab/latent/latent_stats.hpp"
#include "latentlab/nn/lpips.hpp"
#include "latentlab/nn/regularizers.hpp"
#include "latentlab/nn/state_dict.hpp"
#include "latentlab/plugin_checks.hpp"
#include "latentlab/train/autoencoder_loss.hpp"
#include "latentlab/train/autoencoder_trainer.hpp"
#include "latentlab/train/denoiser_trainer.hpp"
#include "support/builtin_plugins.hpp"
#include "support/lpips_weights.hpp"

namespace latentlab {
namespace {

using nlohmann::json;
using testing::make_builtin;

// Small networks: width 8 with GroupNorm(4) so every depth runs in milliseconds.
json tiny_params(std::int64_t levels, std::int64_t side, const std::string& name) {
  json params = {{"ch", 8},
                 {"ch_mult", std::vector<int>(static_cast<std::size_t>(levels), 1)},
                 {"num_res_blocks", 1},
                 {"norm_groups", 4},
                 {"z_channels", 2},
                 {"embed_dim", 2},
                 {"in_channels", 1},
                 {"resolution", side},
                 // attention at the coarsest level, so AttnBlocks run too
                 {"attn_resolutions", {side >> (levels - 1)}}};
  if (name == "vq") params["n_embed"] = 16;
  return params;
}

torch::Tensor images(std::int64_t n, std::int64_t channels, std::int64_t side, std::uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::rand({n, channels, side, side}, generator) * 2 - 1;
}

TEST(Autoencoders, ShapesAndFactorForEveryDepth) {
  for (const std::string name : {"kl", "vq"})
    for (const std::int64_t side : {32, 64})
      for (std::int64_t levels = 1; levels <= 6; ++levels) {
        SCOPED_TRACE(name + " side " + std::to_string(side) + " levels " + std::to_string(levels));
        const auto ae = make_builtin<Autoencoder>(name, tiny_params(levels, side, name));
        const std::int64_t f = std::int64_t{1} << (levels - 1);
        EXPECT_EQ(ae->downsampling_factor(), f);
        EXPECT_EQ(ae->latent_channels(), 2);
        torch::NoGradGuard no_grad;
        auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
        const auto x = images(2, 1, side, 1);
        const auto z = ae->encode(x, generator);
        EXPECT_EQ(z.sizes(), c10::IntArrayRef({2, 2, side / f, side / f}));
        EXPECT_EQ(ae->decode(z).sizes(), x.sizes());
        EXPECT_EQ(ae->reconstruct(x).sizes(), x.sizes());
      }
}

TEST(Autoencoders, BuiltinsPassTheConformanceChecks) {
  const std::vector<std::pair<std::string, json>> cases = {{"kl", tiny_params(3, 32, "kl")},
                                                           {"vq", tiny_params(3, 32, "vq")},
                                                           {"vq",
                                                            [] {
                                                              auto p = tiny_params(2, 32, "vq");
                                                              p["ema"] = true;
                                                              p["restart_every"] = 1;
                                                              p["quantize_latent"] = true;
                                                              return p;
                                                            }()},
                                                           {"kl",
                                                            [] {
                                                              auto p = tiny_params(6, 32, "kl");
                                                              p["latent"] = "mean";
                                                              return p;
                                                            }()},
                                                           {"identity", {{"in_channels", 3}}}};
  for (const auto& [name, params] : cases) {
    SCOPED_TRACE(name + " " + params.dump());
    for (const auto& result : check_autoencoder([&] { return make_builtin<Autoencoder>(name, params); }))
      EXPECT_TRUE(result.passed) << result.name << ": " << result.detail;
  }
}

TEST(Autoencoders, BadParametersAreClearErrors) {
  auto params = tiny_params(2, 32, "kl");
  params["ch"] = 6;  // not divisible by norm_groups 4
  try {
    make_builtin<Autoencoder>("kl", params);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("norm_groups"), std::string::npos) << e.what();
  }
  params = tiny_params(2, 32, "kl");
  params["ch_mult"] = std::vector<int>(7, 1);  // f = 64
  EXPECT_THROW(make_builtin<Autoencoder>("kl", params), ConfigError);
}

// attn_type "none" (the reference's make_attn types): no attention parameters anywhere, the same
// shapes, and every other parameter as with "vanilla"; an unknown type names the choices.
TEST(Autoencoders, AttentionTypeNoneHasNoAttention) {
  for (const std::string name : {"kl", "vq"}) {
    SCOPED_TRACE(name);
    auto vanilla_params = tiny_params(1, 32, name);  // f = 1: the middle block's attention over 1024 pixels
    auto none_params = vanilla_params;
    none_params["attn_type"] = "none";
    const auto vanilla = make_builtin<Autoencoder>(name, vanilla_params);
    const auto none = make_builtin<Autoencoder>(name, none_params);
    std::size_t attention = 0;
    for (const auto& item : vanilla->module().named_parameters()) {
      const bool is_attention = item.key().find("attn") != std::string::npos;
      attention += is_attention;
      EXPECT_EQ(none->module().named_parameters().find(item.key()) != nullptr, !is_attention) << item.key();
    }
    EXPECT_GT(attention, 0u);
    for (const auto& item : none->module().named_parameters())
      EXPECT_EQ(item.key().find("attn"), std::string::npos) << item.key();
    torch::NoGradGuard no_grad;
    const auto x = images(2, 1, 32, 3);
    EXPECT_EQ(none->reconstruct(x).sizes(), x.sizes());
  }
  auto params = tiny_params(2, 32, "kl");
  params["attn_type"] = "linear";
  try {
    make_builtin<Autoencoder>("kl", params);
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("vanilla"), std::string::npos) << e.what();
  }
}

// tiny_params without ch_mult (so `f`, when given, picks the preset) and without attention.
json tiny_f_params(std::optional<std::int64_t> f, const std::string& name) {
  auto params = tiny_params(1, 32, name);
  params.erase("ch_mult");
  params["attn_resolutions"] = json::array();
  if (f) params["f"] = *f;
  return params;
}

// The width multiplier of every encoder level, read off `encoder.down.<i>.block.0.conv1.weight`.
std::vector<std::int64_t> encoder_ch_mult(Autoencoder& ae, std::int64_t ch) {
  std::vector<std::int64_t> ch_mult;
  const auto parameters = ae.module().named_parameters();
  for (std::size_t level = 0;; ++level) {
    const auto* weight = parameters.find("encoder.down." + std::to_string(level) + ".block.0.conv1.weight");
    if (!weight) return ch_mult;
    ch_mult.push_back(weight->size(0) / ch);
  }
}

std::string error_of(const std::string& name, const json& params) {
  try {
    make_builtin<Autoencoder>(name, params);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << name << " " << params.dump() << ": expected a ConfigError";
  return {};
}

TEST(Autoencoders, FAlonePicksTheReferenceChMult) {
  const std::vector<std::pair<std::int64_t, std::vector<std::int64_t>>> presets = {
      {1, {1}},          {2, {1, 2}},           {4, {1, 2, 4}},
      {8, {1, 2, 4, 4}}, {16, {1, 1, 2, 2, 4}}, {32, {1, 1, 2, 2, 4, 4}}};
  for (const std::string name : {"kl", "vq"})
    for (const auto& [f, ch_mult] : presets) {
      SCOPED_TRACE(name + " f " + std::to_string(f));
      const auto ae = make_builtin<Autoencoder>(name, tiny_f_params(f, name));
      EXPECT_EQ(ae->downsampling_factor(), f);
      // The reference vq-f8 has [1, 2, 2, 4]; every other f shares its preset.
      const auto expected = name == "vq" && f == 8 ? std::vector<std::int64_t>{1, 2, 2, 4} : ch_mult;
      EXPECT_EQ(encoder_ch_mult(*ae, 8), expected);
      torch::NoGradGuard no_grad;
      auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
      const auto x = images(1, 1, 32, 1);
      const auto z = ae->encode(x, generator);
      EXPECT_EQ(z.sizes(), c10::IntArrayRef({1, 2, 32 / f, 32 / f}));
      EXPECT_EQ(ae->decode(z).sizes(), x.sizes());
    }
}

TEST(Autoencoders, NeitherFNorChMultIsTheOldDefaultF8) {
  for (const std::string name : {"kl", "vq"}) {
    SCOPED_TRACE(name);
    const auto ae = make_builtin<Autoencoder>(name, tiny_f_params(std::nullopt, name));
    EXPECT_EQ(ae->downsampling_factor(), 8);
    EXPECT_EQ(encoder_ch_mult(*ae, 8), std::vector<std::int64_t>({1, 2, 4, 4}));
  }
}

TEST(Autoencoders, FAndChMultTogetherMustAgree) {
  auto params = tiny_f_params(4, "kl");
  params["ch_mult"] = {1, 1, 1};  // 3 levels: f = 4
  const auto ae = make_builtin<Autoencoder>("kl", params);
  EXPECT_EQ(ae->downsampling_factor(), 4);
  EXPECT_EQ(encoder_ch_mult(*ae, 8), std::vector<std::int64_t>({1, 1, 1}));

  params["ch_mult"] = {1, 2, 4, 4};  // 4 levels: f = 8
  for (const std::string name : {"kl", "vq"}) {
    const auto message = error_of(name, params);
    EXPECT_NE(message.find("f = 4"), std::string::npos) << message;
    EXPECT_NE(message.find("ch_mult [1, 2, 4, 4]"), std::string::npos) << message;
    EXPECT_NE(message.find("f = 8"), std::string::npos) << message;
  }
}

TEST(Autoencoders, FMustBeAPowerOfTwoUpTo32) {
  for (const std::int64_t f : {3, 64}) {
    const auto message = error_of("kl", tiny_f_params(f, "kl"));
    EXPECT_NE(message.find("autoencoder.params.f: got " + std::to_string(f)), std::string::npos) << message;
    EXPECT_NE(message.find("1, 2, 4, 8, 16 or 32"), std::string::npos) << message;
  }
  EXPECT_THROW(make_builtin<Autoencoder>("vq", tiny_f_params(-1, "vq")), ConfigError);
  auto params = tiny_f_params(32, "vq");
  params["ch_mult"] = std::vector<int>(7, 1);  // beyond 6 levels, whatever f says
  EXPECT_THROW(make_builtin<Autoencoder>("vq", params), ConfigError);
}

TEST(DiagonalGaussian, KlMatchesTheClosedFormAndLogVarianceIsClamped) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto moments = at::randn({4, 6, 3, 3}, generator, torch::TensorOptions().dtype(torch::kFloat64));
  const nn::DiagonalGaussian posterior(moments);
  const auto mu = moments.slice(1, 0, 3), logvar = moments.slice(1, 3, 6);
  // KL(N(mu, s^2) || N(0, 1)) = log(1/s) + (s^2 + mu^2) / 2 - 1/2 per dimension.
  const auto s = torch::exp(0.5 * logvar);
  const auto expected = (-torch::log(s) + (s.pow(2) + mu.pow(2)) / 2 - 0.5).sum({1, 2, 3});
  EXPECT_TRUE(torch::allclose(posterior.kl(), expected, 1e-12, 1e-12));

  const auto extreme = torch::cat({torch::zeros({1, 1, 1, 1}), torch::full({1, 1, 1, 1}, 50.0)}, 1);
  EXPECT_DOUBLE_EQ(nn::DiagonalGaussian(extreme).logvar.item<double>(), 20.0);

  // Samples have the posterior's mean and standard deviation.
  const auto wide =
      torch::cat({torch::full({20000, 1, 1, 1}, 1.5), torch::full({20000, 1, 1, 1}, std::log(0.25))}, 1);
  const auto draws = nn::DiagonalGaussian(wide).sample(generator);
  EXPECT_NEAR(draws.mean().item<double>(), 1.5, 0.01);
  EXPECT_NEAR(draws.std().item<double>(), 0.5, 0.01);
}

TEST(KlAutoencoder, RegularizerIsTheWeightedKlPerExample) {
  auto params = tiny_params(2, 32, "kl");
  params["kl_weight"] = 0.25;
  const auto ae = make_builtin<Autoencoder>("kl", params);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
  const auto out = ae->forward(images(3, 1, 32, 2), generator);
  ASSERT_EQ(out.logs.at(0).first, "kl");
  EXPECT_NEAR(out.regularizer.item<double>(), 0.25 * out.logs.at(0).second.item<double>(), 1e-6);
}

nn::VectorQuantizer quantizer(const torch::Tensor& codes, nn::VectorQuantizerOptions options = {}) {
  options.n_embed = codes.size(0);
  options.embed_dim = codes.size(1);
  nn::VectorQuantizer q(options);
  torch::NoGradGuard no_grad;
  for (auto& item : q->named_parameters())
    if (item.key() == "embedding.weight") item.value().copy_(codes);
  for (auto& item : q->named_buffers())
    if (item.key() == "embed_avg") item.value().copy_(codes);
  return q;
}

TEST(VectorQuantizer, PicksTheNearestCode) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(4);
  const auto codes = at::randn({8, 3}, generator);
  auto q = quantizer(codes);
  const auto z = at::randn({2, 3, 5, 4}, generator);
  const auto flat = z.permute({0, 2, 3, 1}).reshape({-1, 3});
  const auto brute = torch::cdist(flat, codes).argmin(1).view({2, 5, 4});
  EXPECT_TRUE(torch::equal(q->indices(z), brute));
  EXPECT_TRUE(torch::allclose(q->lookup(brute).permute({0, 2, 3, 1}).reshape({-1, 3}),
                              codes.index_select(0, brute.flatten())));
}

TEST(VectorQuantizer, StraightThroughGradientAndCommitmentAndCodebookLosses) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto codes = at::randn({6, 2}, generator);
  for (const bool legacy : {false, true}) {
    SCOPED_TRACE(legacy ? "legacy" : "standard");
    nn::VectorQuantizerOptions options;
    options.beta = 0.25;
    options.legacy_loss = legacy;
    auto q = quantizer(codes, options);
    q->eval();
    const auto z = at::randn({2, 2, 3, 3}, generator).requires_grad_(true);
    auto out = q->forward(z, generator);
    const auto e = q->lookup(out.indices).detach();
    const double n = static_cast<double>(z.numel());
    // Both terms have the value mean((z - e)^2): the loss is (1 + beta) times it.
    EXPECT_NEAR(out.loss.item<double>(), 1.25 * (z.detach() - e).pow(2).mean().item<double>(), 1e-6);
    // Straight-through: d(sum z_q)/dz = 1.
    out.quantized.sum().backward({}, true);
    EXPECT_TRUE(torch::allclose(z.grad(), torch::ones_like(z)));
    z.grad().zero_();
    // The commitment term pulls z towards e with weight beta (1 in the legacy quantiser) ...
    out.loss.backward();
    const double z_weight = legacy ? 1.0 : 0.25;
    EXPECT_TRUE(torch::allclose(z.grad(), 2 * z_weight * (z.detach() - e) / n, 1e-5, 1e-7));
    // ... and the codebook term moves the codes (weight 1, or beta in the legacy quantiser).
    const auto& weight = q->named_parameters()["embedding.weight"];
    const auto expected = torch::zeros_like(codes).index_add_(
        0, out.indices.flatten(),
        (legacy ? 0.25 : 1.0) * 2 * (e - z.detach()).permute({0, 2, 3, 1}).reshape({-1, 2}) / n);
    EXPECT_TRUE(torch::allclose(weight.grad(), expected, 1e-5, 1e-7));
  }
}

TEST(VectorQuantizer, EmaMovesCodesToTheirMeansAndRestartsRevive) {
  // Two codes far apart; the data sit around +5 only, so code 1 (at -5) is never used.
  const auto codes = torch::tensor({{4.0f}, {-5.0f}});
  nn::VectorQuantizerOptions options;
  options.ema = true;
  options.ema_decay = 0.5;
  auto q = quantizer(codes, options);
  q->train();
  auto generator = at::make_generator<at::CPUGeneratorImpl>(6);
  const auto z = torch::full({1, 1, 4, 4}, 5.0f);
  for (int i = 0; i < 30; ++i) q->forward(z, generator);
  const auto weight = q->named_parameters()["embedding.weight"];
  EXPECT_NEAR(weight[0].item<double>(), 5.0, 1e-3);
  EXPECT_LT(weight[1].item<double>(),
            0.0);  // never chosen (it drifts, as in the reference; restarts revive it)

  nn::VectorQuantizerOptions restart;
  restart.restart_every = 2;
  auto r = quantizer(codes, restart);
  r->train();
  const auto data = torch::linspace(4.5, 5.5, 16).view({1, 1, 4, 4});
  r->forward(data, generator);
  r->forward(data, generator);  // second step: the unused code moves onto a latent of the batch
  const double revived = r->named_parameters()["embedding.weight"][1].item<double>();
  EXPECT_GE(revived, 4.5);
  EXPECT_LE(revived, 5.5);
}

TEST(VqAutoencoder, GradientsReachTheEncoderThroughTheQuantiser) {
  const auto ae = make_builtin<Autoencoder>("vq", tiny_params(2, 32, "vq"));
  auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
  const auto x = images(2, 1, 32, 7);
  const auto out = ae->forward(x, generator);
  (out.reconstruction - x).abs().mean().backward();
  const auto grad = ae->module().named_parameters()["encoder.conv_in.weight"].grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_GT(grad.abs().sum().item<double>(), 0.0);
  EXPECT_EQ(out.logs.size(), 3u);  // codebook_loss, perplexity, codebook_usage
}

TEST(Stage1Loss, AdaptiveWeightIsTheRatioOfGradientNormsClamped) {
  const auto w = torch::tensor({1.0, 2.0, 3.0}, torch::kFloat64).requires_grad_(true);
  const auto a = torch::tensor({3.0, 0.0, 4.0}, torch::kFloat64),
             b = torch::tensor({0.0, 1.0, 0.0}, torch::kFloat64);
  const auto weight = adaptive_gan_weight((w * a).sum(), (w * b).sum(), w, 0.5);
  EXPECT_NEAR(weight.item<double>(), 0.5 * 5.0 / (1.0 + 1e-4), 1e-12);
  const auto clamped = adaptive_gan_weight((w * a).sum(), (w * b * 0.0).sum(), w, 1.0);
  EXPECT_DOUBLE_EQ(clamped.item<double>(), 1e4);  // 5 / 1e-4 = 5e4, clamped
}

TEST(Stage1Loss, DiscriminatorLossesOnConstructedLogits) {
  const auto real = torch::tensor({2.0, 0.5}, torch::kFloat64),
             fake = torch::tensor({-2.0, 0.5}, torch::kFloat64);
  // 1/2 (mean(relu(1 - [2, 0.5])) + mean(relu(1 + [-2, 0.5]))) = 1/2 (0.25 + 0.75)
  EXPECT_DOUBLE_EQ(hinge_d_loss(real, fake).item<double>(), 0.5);
  const auto softplus = [](double v) { return std::log1p(std::exp(v)); };
  EXPECT_NEAR(vanilla_d_loss(real, fake).item<double>(),
              0.5 * ((softplus(-2.0) + softplus(-0.5)) / 2 + (softplus(-2.0) + softplus(0.5)) / 2), 1e-12);
}

TEST(Stage1Loss, DiscStartAndReductionConventions) {
  Stage1LossConfig config;
  config.disc_start = 3;
  config.disc_channels = 8;
  config.disc_layers = 2;
  const auto x = images(2, 1, 16, 8), x_hat = images(2, 1, 16, 9);
  const auto last = torch::ones({1}, torch::kFloat32).requires_grad_(true);
  AutoencoderOutput out{x_hat * last, torch::zeros({}), {}};
  const auto has = [](const Stage1Terms& terms, const std::string& name) {
    for (const auto& item : terms.logs)
      if (item.first == name) return true;
    return false;
  };
  Stage1Loss kl(config, "kl", 1);
  // Steps 1..3 are the reference's global_step 0..2 < disc_start: no GAN terms (logged as nan).
  const auto before = kl->generator_loss(x, out, 3, last);
  for (const auto& [name, value] : before.logs) {
    if (name == "g_loss") {
      EXPECT_TRUE(std::isnan(value.item<double>()));
    }
  }
  // KL convention: sum over pixels / B, divided by exp(logvar) = 1, plus logvar = 0.
  EXPECT_NEAR(before.loss.item<double>(), (x - x_hat).abs().sum().item<double>() / 2, 1e-3);
  EXPECT_EQ(kl->discriminator_loss(x, x_hat, 3).loss.item<double>(), 0.0);
  const auto after = kl->generator_loss(x, out, 4, last);
  EXPECT_TRUE(has(after, "g_loss") && has(after, "d_weight"));
  EXPECT_GT(kl->discriminator_loss(x, x_hat, 4).loss.item<double>(), 0.0);
  EXPECT_TRUE(kl->generator_parameters().empty());  // logvar is fixed, as in the reference
  auto learned = config;
  learned.learn_logvar = "on";
  EXPECT_EQ(Stage1Loss(learned, "kl", 1)->generator_parameters().size(), 1u);

  Stage1Loss vq(config, "vq", 1);
  EXPECT_NEAR(vq->generator_loss(x, out, 1, last).loss.item<double>(),
              (x - x_hat).abs().mean().item<double>(), 1e-6);
  EXPECT_TRUE(vq->generator_parameters().empty());
}

TEST(Stage1Loss, PerceptualWeightsMissingIsAConfigError) {
  try {
    Stage1LossConfig::from_json({{"perceptual", "lpips"}});
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("perceptual_weights"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Stage1LossConfig::from_json({{"disc_strat", 5}}), ConfigError);
}

// LPIPS from the files researchers have: torchvision's VGG16 (features.N.*) with taming's vgg.pth
// (lin*.model.1.weight), or one file with the reference checkpoint's loss.perceptual_loss.* keys.
TEST(Lpips, LoadsTheReferenceLayoutsAndMeasuresADistance) {
  const auto dir = std::filesystem::temp_directory_path() / ("latentlab_lpips_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  testing::write_lpips_weights(dir, 12);

  nn::Lpips lpips;
  lpips->load({dir / "vgg16.pth", dir / "vgg.pth"});
  nn::Lpips same;
  same->load({dir / "model.ckpt"});
  const auto x = images(2, 1, 32, 13), y = images(2, 1, 32, 14).requires_grad_(true);
  const auto d = lpips->forward(x, y);
  EXPECT_EQ(d.sizes(), c10::IntArrayRef({2, 1, 1, 1}));
  EXPECT_GT(d.min().item<double>(), 0.0);
  EXPECT_TRUE(torch::allclose(d, same->forward(x, y)));
  EXPECT_TRUE(torch::allclose(d, lpips->forward(y, x), 1e-5, 1e-6));
  EXPECT_NEAR(lpips->forward(x, x).abs().max().item<double>(), 0.0, 1e-7);
  d.sum().backward();
  EXPECT_GT(y.grad().abs().sum().item<double>(), 0.0);  // the perceptual term trains the decoder
  for (const auto& p : lpips->parameters()) EXPECT_FALSE(p.requires_grad());

  nn::Lpips no_lin;
  try {
    no_lin->load({dir / "vgg16.pth"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lin0.model.1.weight"), std::string::npos) << e.what();
  }
  nn::Lpips baseline(false);  // LPIPS's uncalibrated VGG distance needs no lin layers
  baseline->load({dir / "vgg16.pth"});
  EXPECT_GT(baseline->forward(x, y).min().item<double>(), 0.0);

  Stage1LossConfig config;
  config.perceptual = "lpips";
  config.perceptual_weights = {(dir / "model.ckpt").string()};
  config.disc_layers = 2;
  Stage1Loss loss(config, "vq", 1);
  const auto last = torch::ones({1}).requires_grad_(true);
  const auto terms = loss->generator_loss(x, {y * last, torch::zeros({}), {}}, 1, last);
  const double l1 = (x - y).abs().mean().item<double>();
  EXPECT_NEAR(terms.loss.item<double>(), l1 + d.mean().item<double>(), 1e-5);  // mean(|x - y| + w_p LPIPS)
  std::filesystem::remove_all(dir);
}

TEST(LatentStatistics, KnownMomentsRescalingAndSnrTable) {
  const std::vector<double> mu = {1.0, -2.0, 0.5}, sd = {0.5, 2.0, 1.0};
  auto generator = at::make_generator<at::CPUGeneratorImpl>(10);
  LatentStatisticsAccumulator accumulator;
  const auto mean = torch::tensor(mu).view({1, 3, 1, 1}), scale = torch::tensor(sd).view({1, 3, 1, 1});
  for (int i = 0; i < 20; ++i)
    accumulator.add(
        (at::randn({64, 3, 4, 4}, generator, torch::TensorOptions().dtype(torch::kFloat64)) * scale + mean)
            .to(torch::kFloat32));
  const auto stats = accumulator.finish();
  EXPECT_EQ(stats.images, 1280);
  EXPECT_EQ(stats.elements, 1280 * 48);
  for (std::size_t c = 0; c < 3; ++c) {
    EXPECT_NEAR(stats.channel_mean[c], mu[c], 0.02 * sd[c] + 1e-3);
    EXPECT_NEAR(stats.channel_std[c], sd[c], 0.02 * sd[c]);
  }
  // Pooled: Var = mean of the channel variances + variance of the channel means.
  const double pooled_mean = (1.0 - 2.0 + 0.5) / 3;
  double pooled_var = 0;
  for (std::size_t c = 0; c < 3; ++c) pooled_var += (sd[c] * sd[c] + std::pow(mu[c] - pooled_mean, 2)) / 3;
  EXPECT_NEAR(stats.std, std::sqrt(pooled_var), 0.02 * std::sqrt(pooled_var));
  std::int64_t counted = stats.below + stats.above;
  for (const auto n : stats.histogram_counts) counted += n;
  EXPECT_EQ(counted, stats.elements);

  const auto same = LatentStatistics::from_json(stats.to_json());
  EXPECT_EQ(same.channel_std, stats.channel_std);
  const auto none = LatentRescaling::from_statistics("none", stats);
  const auto by_std = LatentRescaling::from_statistics("std", stats);
  const auto by_channel = LatentRescaling::from_statistics("channel", stats);
  EXPECT_NEAR(rescaled_variance(stats, none), stats.std * stats.std, 1e-12);
  // 1 up to the n / (n - 1) of the unbiased estimates (n = 61440 values per channel).
  EXPECT_NEAR(rescaled_variance(stats, by_std), 1.0, 1e-4);
  EXPECT_NEAR(rescaled_variance(stats, by_channel), 1.0, 1e-4);
  const auto z = at::randn({2, 3, 4, 4}, generator);
  EXPECT_TRUE(torch::allclose(by_channel.invert(by_channel.apply(z)), z, 1e-5, 1e-5));
  EXPECT_NEAR(by_std.apply(z).mul(by_std.scale[0]).sub(z).abs().max().item<double>(), 0.0, 1e-5);
  // The reference's scale_factor is 1 / sigma_hat.
  EXPECT_TRUE(
      torch::allclose(LatentRescaling::from_scale_factor(0.18215, 3).apply(z), 0.18215 * z, 1e-5, 1e-6));
  EXPECT_THROW(LatentRescaling::from_statistics("stdd", stats), ConfigError);

  const auto schedule = make_builtin<Schedule>("linear");
  const auto table = effective_snr_table(*schedule, stats, by_std, {1, 500, 1000});
  ASSERT_EQ(table.size(), 3u);
  for (const auto& row : table) {
    const auto t = row.at("t").get<std::int64_t>();
    EXPECT_NEAR(row.at("snr_eff_raw").get<double>(), schedule->snr(t) * stats.std * stats.std,
                1e-9 * schedule->snr(t));
    EXPECT_NEAR(row.at("snr_eff_rescaled").get<double>(), schedule->snr(t), 1e-4 * schedule->snr(t));
  }
}

TEST(ImageMetrics, PsnrAndSsimValues) {
  const auto x = images(2, 1, 16, 11);
  EXPECT_TRUE(torch::isinf(eval::psnr(x, x)).all().item<bool>());
  EXPECT_NEAR(eval::ssim(x, x).min().item<double>(), 1.0, 1e-12);
  // A constant offset of 0.2 in [-1, 1] is 0.1 in [0, 1]: MSE 0.01, PSNR 20 dB.
  const auto flat = torch::zeros({1, 1, 16, 16});
  EXPECT_NEAR(eval::psnr(flat, flat + 0.2).item<double>(), 20.0, 1e-5);
  // SSIM of a constant image pair: luminance term only, (2 m1 m2 + C1) / (m1^2 + m2^2 + C1).
  const double m1 = 0.5, m2 = 0.6, c1 = 1e-4;
  EXPECT_NEAR(eval::ssim(flat, flat + 0.2).item<double>(), (2 * m1 * m2 + c1) / (m1 * m1 + m2 * m2 + c1),
              1e-6);
  EXPECT_LT(eval::ssim(x, images(2, 1, 16, 12)).max().item<double>(), 0.3);
  EXPECT_THROW(eval::ssim(torch::zeros({1, 1, 8, 8}), torch::zeros({1, 1, 8, 8})), Error);
}

}  // namespace
}  // namespace latentlab
