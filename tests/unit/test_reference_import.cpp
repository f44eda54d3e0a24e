// Importing reference weights: checkpoints PyTorch wrote in the reference layout
// (tests/fixtures/reference, made by tools/make_reference_fixtures.py) load by name and reproduce
// PyTorch's outputs; mismatches name the key and both shapes.
#include <gtest/gtest.h>

#include <fstream>

#include "latentlab/autoencoder.hpp"
#include "latentlab/io/reference_weights.hpp"
#include "latentlab/io/torch_file.hpp"
#include "latentlab/nn/unet.hpp"
#include "support/builtin_plugins.hpp"

namespace latentlab {
namespace {

using nlohmann::json;

const std::filesystem::path kFixtures =
    std::filesystem::path(LATENTLAB_SOURCE_DIR) / "tests/fixtures/reference";

torch::Tensor expected(const std::string& kind, const std::string& key) {
  const auto file = io::read_torch_file(kFixtures / (kind + "_tiny_expected.pt"));
  return file.find(key)->tensor;
}

TEST(ReferenceImport, FirstStageCheckpointsFromPyTorchReproduceItsOutputs) {
  for (const std::string kind : {"kl", "vq"}) {
    SCOPED_TRACE(kind);
    const auto config = json::parse(std::ifstream(kFixtures / (kind + "_tiny.json")));
    const auto reference = io::reference_autoencoder(config);
    EXPECT_EQ(reference.choice.name, kind);
    const auto ae = testing::make_builtin<Autoencoder>(reference.choice.name, reference.choice.params);

    const auto file = io::read_torch_file(kFixtures / (kind + "_tiny.ckpt"));
    EXPECT_EQ(file.find("global_step")->integer, 1234);
    std::size_t left_out = 0;
    const auto tensors = io::select_prefix(io::collect_tensors(*file.find("state_dict")), "auto",
                                           {"first_stage_model."}, left_out);
    EXPECT_EQ(left_out, 2u);  // loss.logvar, loss.discriminator.main.0.weight
    const auto report = nn::load_state_dict(ae->module(), tensors);
    EXPECT_TRUE(report.complete()) << report.summary();
    EXPECT_EQ(report.loaded, tensors.size());

    ae->module().eval();
    torch::NoGradGuard no_grad;
    const auto x = expected(kind, "x");
    const auto reconstruction = ae->reconstruct(x);
    EXPECT_TRUE(torch::allclose(reconstruction, expected(kind, "reconstruction"), 1e-4, 1e-5))
        << "max difference "
        << (reconstruction - expected(kind, "reconstruction")).abs().max().item<double>();
  }
}

TEST(ReferenceImport, MisShapedKeysNameTheKeyAndBothShapes) {
  const auto reference = io::reference_autoencoder(json::parse(std::ifstream(kFixtures / "kl_tiny.json")));
  auto params = reference.choice.params;
  params["ch"] = 8;  // the checkpoint has ch = 4
  const auto ae = testing::make_builtin<Autoencoder>("kl", params);
  std::size_t left_out = 0;
  const auto tensors = io::select_prefix(io::read_torch_state_dict(kFixtures / "kl_tiny.ckpt"), "auto",
                                         {"first_stage_model."}, left_out);
  const auto report = nn::load_state_dict(ae->module(), tensors);
  ASSERT_FALSE(report.mismatched.empty());
  EXPECT_NE(
      report.summary().find("encoder.conv_in.weight: [4, 1, 3, 3] in the file, [8, 1, 3, 3] in the model"),
      std::string::npos)
      << report.summary();
}

TEST(ReferenceImport, ConfigsInEitherLayout) {
  // A whole LatentDiffusion config: its first stage and scale_factor.
  const json ldm = {{"model",
                     {{"target", "ldm.models.diffusion.ddpm.LatentDiffusion"},
                      {"params",
                       {{"scale_factor", 0.18215},
                        {"first_stage_config",
                         {{"target", "ldm.models.autoencoder.AutoencoderKL"},
                          {"params",
                           {{"embed_dim", 4},
                            {"ddconfig",
                             {{"double_z", true},
                              {"z_channels", 4},
                              {"resolution", 256},
                              {"in_channels", 3},
                              {"out_ch", 3},
                              {"ch", 128},
                              {"ch_mult", {1, 2, 4, 4}},
                              {"num_res_blocks", 2},
                              {"attn_resolutions", json::array()},
                              {"dropout", 0.0}}}}}}}}}}}};
  const auto reference = io::reference_autoencoder(ldm);
  EXPECT_EQ(reference.choice.name, "kl");
  EXPECT_DOUBLE_EQ(reference.scale_factor, 0.18215);
  EXPECT_EQ(reference.choice.params.at("ch_mult"), json({1, 2, 4, 4}));
  EXPECT_EQ(reference.choice.params.at("embed_dim"), 4);
  const auto ours = io::reference_autoencoder({{"name", "vq"}, {"params", {{"n_embed", 4}}}});
  EXPECT_EQ(ours.choice.name, "vq");
  auto bad = ldm;
  bad["model"]["params"]["first_stage_config"]["params"]["ddconfig"]["double_z"] = false;
  EXPECT_THROW(io::reference_autoencoder(bad), ConfigError);
  EXPECT_THROW(io::reference_autoencoder({{"params", json::object()}}), ConfigError);
  // attn_type: "none" is built (no attention anywhere) and carried over; "linear" is refused.
  auto no_attention = ldm;
  no_attention["model"]["params"]["first_stage_config"]["params"]["ddconfig"]["attn_type"] = "none";
  EXPECT_EQ(io::reference_autoencoder(no_attention).choice.params.at("attn_type"), "none");
  auto linear = ldm;
  linear["model"]["params"]["first_stage_config"]["params"]["ddconfig"]["attn_type"] = "linear";
  try {
    io::reference_autoencoder(linear);
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("attn_type = \"linear\" is not supported"), std::string::npos)
        << e.what();
  }
}

TEST(ReferenceImport, UNetKeysAndLitEmaNames) {
  nn::UNetConfig config;
  config.in_channels = config.out_channels = 2;
  config.model_channels = 32;
  config.channel_mult = {1, 2};
  config.num_res_blocks = 1;
  config.attention_resolutions = {2};
  config.num_head_channels = 32;
  nn::UNet source(config), target(config);
  nn::NamedTensors file;
  for (const auto& [name, tensor] : nn::state_dict(*source)) {
    file.emplace_back("model.diffusion_model." + name, tensor);
    std::string flat = "model_ema.diffusion_model" + name;
    flat.erase(std::remove(flat.begin() + 10, flat.end(), '.'), flat.end());
    file.emplace_back(flat, tensor * 2);
  }
  file.emplace_back("model_ema.num_updates", torch::tensor(7));
  file.emplace_back("first_stage_model.encoder.conv_in.weight", torch::zeros({1}));

  std::size_t left_out = 0;
  const auto raw = io::select_prefix(file, "auto", {"model.diffusion_model.", "diffusion_model."}, left_out);
  EXPECT_TRUE(nn::load_state_dict(*target, raw).complete());
  EXPECT_TRUE(torch::equal(nn::state_dict(*target)[0].second, nn::state_dict(*source)[0].second));

  const auto ema = io::ema_tensors(file, *target);
  EXPECT_EQ(ema.size(), nn::state_dict(*target).size());
  EXPECT_TRUE(nn::load_state_dict(*target, ema).complete());
  EXPECT_TRUE(torch::equal(nn::state_dict(*target)[0].second, 2 * nn::state_dict(*source)[0].second));
  EXPECT_THROW(io::ema_tensors(raw, *target), ConfigError);
}

}  // namespace
}  // namespace latentlab
