// The stage layer: configs from JSON (errors name the JSON path), content keys, and the denoiser,
// sample, latent-statistics, eval and reconstruction stages run end to end on tiny models and a
// Fashion-MNIST subset.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "latentlab/dataset.hpp"
#include "latentlab/error.hpp"
#include "latentlab/io/images.hpp"
#include "latentlab/latent/autoencoder_file.hpp"
#include "latentlab/nn/lpips.hpp"
#include "latentlab/stages/denoiser_stage.hpp"
#include "latentlab/stages/eval_stage.hpp"
#include "latentlab/stages/latent_stats_stage.hpp"
#include "latentlab/stages/reconstruction_stage.hpp"
#include "latentlab/stages/sample_stage.hpp"
#include "support/builtin_plugins.hpp"
#include "support/lpips_weights.hpp"

namespace latentlab::stages {
namespace {

using nlohmann::json;
using testing::builtin_plugins;

// The message of the ConfigError `body` throws ("" and a test failure when none).
template <class Body>
std::string config_error(Body body) {
  try {
    body();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError";
  return "";
}

std::filesystem::path temp_folder(const std::string& name) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("latentlab_stages_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path;
}

TEST(ContentKey, SameConfigSameKeyWhateverTheOrder) {
  const auto a = json::parse(R"({"b": 1, "a": {"y": [1, 2], "x": 0.1}})");
  const auto b = json::parse(R"({"a": {"x": 0.1, "y": [1, 2]}, "b": 1})");
  EXPECT_EQ(content_key("sample", a, {"k1"}, 3, json::array()),
            content_key("sample", b, {"k1"}, 3, json::array()));
  EXPECT_EQ(content_key("sample", a, {}, 0, json::array()).size(), 64u);
}

// The key is the SHA-256 of one canonical JSON document (what existing caches were keyed by), however
// it is computed: ContentKeyer hashes the part without the inputs once for many stages.
TEST(ContentKey, IsTheHashOfTheCanonicalJsonAndTheKeyerAgrees) {
  const json config =
      json::parse(R"({"sampler": {"name": "ddim", "params": {"eta": 0.0}}, "steps": 10, "x": "\u00e9"})");
  const json plugins = json::array({{{"kind", "sampler"}, {"name", "ddim"}, {"sha256", "ab"}}});
  const std::vector<std::string> inputs = {"denoiser:0123", "samples:4567"};
  const json identity = {{"format", 1},      {"kind", "sample"}, {"config", config},
                         {"inputs", inputs}, {"seed", 7},        {"plugins", plugins}};
  io::Sha256 hasher;
  hasher.update(identity.dump());
  const auto expected = hasher.hex_digest();
  EXPECT_EQ(content_key("sample", config, inputs, 7, plugins), expected);
  const ContentKeyer keyer("sample", config, 7, plugins);
  EXPECT_EQ(keyer.key(inputs), expected);
  EXPECT_EQ(keyer.key(inputs), expected);  // key() leaves the keyer as it was
  EXPECT_EQ(keyer.key({}), content_key("sample", config, {}, 7, plugins));
}

TEST(ContentKey, EveryPartChangesTheKey) {
  const json config = {{"steps", 10}};
  const auto base = content_key("sample", config, {"in"}, 1, json::array());
  EXPECT_NE(base, content_key("eval", config, {"in"}, 1, json::array()));
  EXPECT_NE(base, content_key("sample", json{{"steps", 11}}, {"in"}, 1, json::array()));
  EXPECT_NE(base, content_key("sample", config, {"other"}, 1, json::array()));
  EXPECT_NE(base, content_key("sample", config, {"in"}, 2, json::array()));
  EXPECT_NE(base, content_key("sample", config, {"in"}, 1, json::array({{{"name", "ddim"}}})));
  // Numbers keep their type: 10 and 10.0 are different configs to JSON, and to the key.
  EXPECT_NE(base, content_key("sample", json{{"steps", 10.5}}, {"in"}, 1, json::array()));
}

TEST(SampleConfig, ReadsEveryKey) {
  const auto c = SampleConfig::from_json(
      json::parse(R"({"sampler": {"name": "dpmpp_2m", "params": {"discretization": "trailing"}},
                      "guider": "none", "steps": 20, "count": 8, "batch": 4, "seed": 7,
                      "clip_x0": "off", "class": 2, "latent_size": "8x16", "columns": 4})"),
      "eval[0]");
  EXPECT_EQ(c.sampler.name, "dpmpp_2m");
  EXPECT_EQ(c.sampler.params.at("discretization"), "trailing");
  EXPECT_EQ(c.guider.name, "none");
  EXPECT_EQ(c.steps, 20);
  EXPECT_EQ(c.count, 8);
  EXPECT_EQ(c.batch, 4);
  EXPECT_EQ(c.seed, 7u);
  EXPECT_EQ(c.clip_x0, "off");
  EXPECT_EQ(c.label, 2);
  EXPECT_EQ(c.latent_height, 8);
  EXPECT_EQ(c.latent_width, 16);
  const auto square = SampleConfig::from_json(json{{"latent_size", 12}}, "s");
  EXPECT_EQ(square.latent_height, 12);
  EXPECT_EQ(square.latent_width, 12);
  const auto pair = SampleConfig::from_json(json{{"latent_size", {6, 10}}}, "s");
  EXPECT_EQ(pair.latent_width, 10);
  // to_json reads back to the same config.
  const auto again = SampleConfig::from_json(c.to_json(), "again");
  EXPECT_EQ(again.to_json(), c.to_json());
}

TEST(SampleConfig, ErrorsNameTheJsonPath) {
  EXPECT_NE(config_error([] {
              SampleConfig::from_json(json{{"stpes", 10}}, "eval[1]");
            }).find("eval[1].stpes"),
            std::string::npos);
  EXPECT_NE(config_error([] {
              SampleConfig::from_json(json{{"stpes", 10}}, "e");
            }).find("steps"),
            std::string::npos);  // the nearest valid key
  EXPECT_NE(config_error([] {
              SampleConfig::from_json(json{{"steps", 0}}, "e");
            }).find("e.steps"),
            std::string::npos);
  EXPECT_NE(config_error([] {
              SampleConfig::from_json(json{{"latent_size", "8y8"}}, "e");
            }).find("e.latent_size"),
            std::string::npos);
  EXPECT_NE(config_error([] {
              SampleConfig::from_json(json{{"clip_x0", "maybe"}}, "e");
            }).find("e.clip_x0"),
            std::string::npos);
  EXPECT_NE(config_error([] {
              SampleConfig::from_json(json{{"sampler", {{"nme", "ddim"}}}}, "e");
            }).find("e.sampler.nme"),
            std::string::npos);
}

TEST(SampleStage, PluginParametersAreValidatedOnceWithTheirPath) {
  const auto& registry = builtin_plugins();
  auto config = SampleConfig::from_json(json{{"sampler", {{"name", "ddim"}, {"params", {{"eta", 5}}}}}}, "e");
  EXPECT_NE(
      config_error([&] { SampleStage(config, registry, "eval[0]"); }).find("eval[0].sampler.params.eta"),
      std::string::npos);
  EXPECT_NE(config_error([&] { SampleStage(config, registry, ""); }).find("sampler.eta"), std::string::npos);
  config.sampler.name = "dddim";
  EXPECT_NE(config_error([&] { SampleStage(config, registry, "e"); }).find("ddim"), std::string::npos);
  // Resolved: the defaults are in the stage's config, so {} and the defaults written out are one key.
  const SampleStage implicit(SampleConfig::from_json(json{{"sampler", "ddim"}}, "e"), registry);
  const auto defaults = implicit.config()["sampler"]["params"];
  EXPECT_TRUE(defaults.contains("eta"));
  const SampleStage explicit_(
      SampleConfig::from_json(json{{"sampler", {{"name", "ddim"}, {"params", defaults}}}}, "e"), registry);
  EXPECT_EQ(implicit.key(), explicit_.key());
  const SampleStage other(SampleConfig::from_json(json{{"sampler", "ddim"}, {"steps", 20}}, "e"), registry);
  EXPECT_NE(implicit.key(), other.key());
}

TEST(SampleStage, InitLatentsAreKeyedByContent) {
  const auto& registry = builtin_plugins();
  const auto folder = temp_folder("init_key");
  io::write_npy(folder / "a.npy", torch::zeros({2, 1, 4, 4}));
  io::write_npy(folder / "b.npy", torch::ones({2, 1, 4, 4}));
  const auto stage_with = [&](const std::string& file) {
    return SampleStage(SampleConfig::from_json(json{{"init_latents", (folder / file).string()}}, "e"),
                       registry);
  };
  EXPECT_NE(stage_with("a.npy").key(), stage_with("b.npy").key());
  std::filesystem::copy_file(folder / "a.npy", folder / "c.npy");
  // The same content under another name samples the same images: one key.
  EXPECT_EQ(stage_with("a.npy").key(), stage_with("c.npy").key());
  EXPECT_NE(config_error([&] { stage_with("missing.npy"); }).find("e.init_latents: there is no file"),
            std::string::npos);
  std::filesystem::remove_all(folder);
}

TEST(EvalConfig, MetricsAndErrors) {
  const auto c = EvalConfig::from_json(
      json::parse(R"({"metrics": ["kid", "fid"], "reference": "fashion-mnist:test", "count": 64,
                      "features": {"name": "classifier", "params": {"steps": 100}}})"),
      "eval[0].metrics");
  EXPECT_EQ(c.metrics, (std::vector<std::string>{"fid", "kid"}));  // canonical order
  EXPECT_EQ(c.features.params.at("steps"), 100);
  EXPECT_TRUE(c.wants("kid"));
  EXPECT_FALSE(c.wants("is"));
  EXPECT_NE(config_error([] {
              EvalConfig::from_json(json{{"metrics", {"fid", "kd"}}, {"reference", "x"}}, "m");
            }).find("did you mean \"kid\""),
            std::string::npos);
  EXPECT_NE(config_error([] { EvalConfig::from_json(json::object(), "m"); }).find("m.reference"),
            std::string::npos);
  EXPECT_NE(config_error([] {
              EvalConfig::from_json(json{{"reference", "x"}, {"features", {{"nam", "c"}}}}, "m");
            }).find("m.features.nam"),
            std::string::npos);
}

// Without LPIPS weights a reconstruction stage's config (so its key) is what it was before PSIM.
TEST(ReconstructionConfig, NoLpipsWeightsLeaveTheKeyAlone) {
  const ReconstructionStage stage(
      ReconstructionConfig::from_json(json{{"input", "fashion-mnist"}, {"count", 4}}, "reconstruction"),
      builtin_plugins());
  EXPECT_FALSE(stage.config().contains("lpips_weights")) << stage.config().dump();
  EXPECT_NE(config_error([] {
              ReconstructionConfig::from_json(json{{"input", "x"}, {"lpips_weights", 3}}, "reconstruction");
            }).find("reconstruction.lpips_weights: expected a file name or a list"),
            std::string::npos);
}

// precision: parsed with its path; fp32 leaves the key what it was before the setting.
TEST(SampleConfig, PrecisionKeysOnlyWhenNotFp32) {
  const auto& registry = builtin_plugins();
  const SampleStage plain(SampleConfig::from_json(json{{"count", 4}}, "sample"), registry);
  const SampleStage fp32(SampleConfig::from_json(json{{"count", 4}, {"precision", "fp32"}}, "sample"),
                         registry);
  const SampleStage bf16(SampleConfig::from_json(json{{"count", 4}, {"precision", "bf16"}}, "sample"),
                         registry);
  EXPECT_EQ(plain.key(), fp32.key());
  EXPECT_NE(plain.key(), bf16.key());
  EXPECT_EQ(bf16.settings().precision, Precision::bf16);
  EXPECT_EQ(bf16.config()["precision"], "bf16");
  EXPECT_NE(config_error([] {
              SampleConfig::from_json(json{{"precision", "half"}}, "eval[0]");
            }).find("eval[0].precision"),
            std::string::npos);
  const ReconstructionStage a(ReconstructionConfig::from_json(json{{"input", "fashion-mnist"}}, "r"),
                              registry);
  const ReconstructionStage b(
      ReconstructionConfig::from_json(json{{"input", "fashion-mnist"}, {"precision", "bf16"}}, "r"),
      registry);
  EXPECT_FALSE(a.config().contains("precision"));
  EXPECT_EQ(b.config()["precision"], "bf16");
  EXPECT_NE(a.key(), b.key());
}

TEST(LatentStatsConfig, Keys) {
  const auto c =
      LatentStatsConfig::from_json(json{{"rescale", "channel"}, {"snr_schedule", "cosine"}}, "latent");
  EXPECT_EQ(c.rescale, "channel");
  EXPECT_EQ(c.snr_schedule.name, "cosine");
  EXPECT_NE(config_error([] {
              LatentStatsConfig::from_json(json{{"rescale", "max"}}, "latent");
            }).find("latent.rescale"),
            std::string::npos);
}

// A tiny pixel-space denoiser on 16x16 Fashion-MNIST, trained for a few steps by the denoiser stage.
class TinyPipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    folder_ = temp_folder("pipeline");
    const json spec = json::parse(R"({
      "output": "unused", "seed": 3,
      "data": {"dataset": "fashion-mnist", "params": {"resolution": 16, "fit": "resize", "limit": 64}},
      "unet": {"model_channels": 32, "channel_mult": [1, 2], "num_res_blocks": 1,
               "attention_resolutions": [], "num_head_channels": 32},
      "train": {"steps": 4, "batch_size": 8, "log_every": 2, "checkpoint_every": 2},
      "eval": {"every": 0, "samples": 8, "strata": 1, "batch_size": 8}
    })");
    try {
      const DenoiserStage stage(DenoiserTrainConfig::from_json(spec), builtin_plugins());
      const StageContext context{builtin_plugins(), torch::kCPU};
      const auto outcome = stage.run(context, folder_ / "denoiser", false);
      ASSERT_FALSE(outcome.interrupted);
      ASSERT_EQ(outcome.step, 4);
    } catch (const Error& e) {
      skip_reason_ =
          std::string("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): ") + e.what();
    }
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(folder_); }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
  }

  static inline std::filesystem::path folder_;
  static inline std::string skip_reason_;
};

TEST_F(TinyPipeline, DenoiserStageDerivesTheUNetChannels) {
  std::ifstream in(folder_ / "denoiser" / "config.json");
  const auto config = json::parse(in);
  EXPECT_EQ(config["unet"]["in_channels"], 1);  // Fashion-MNIST's, not the UNet's default 4
  EXPECT_EQ(config["unet"]["out_channels"], 1);
  EXPECT_TRUE(std::filesystem::exists(folder_ / "denoiser" / "denoiser.pt"));
}

TEST_F(TinyPipeline, SamplesFromGivenNoiseAreTheSameWhateverTheSeedAndBatch) {
  const auto& registry = builtin_plugins();
  const StageContext context{registry, torch::kCPU};
  auto noise = torch::randn({4, 1, 16, 16}, torch::TensorOptions().dtype(torch::kFloat32));
  io::write_npy(folder_ / "z_T.npy", noise);
  const auto run = [&](std::uint64_t seed, std::int64_t batch, const std::string& name, bool with_noise) {
    json spec = {{"sampler", "ddim"}, {"steps", 5}, {"count", 4}, {"batch", batch}, {"seed", seed}};
    if (with_noise) spec["init_latents"] = (folder_ / "z_T.npy").string();
    const SampleStage stage(SampleConfig::from_json(spec, "sample"), registry);
    const auto result = stage.run(context, folder_ / "denoiser", folder_ / name);
    EXPECT_EQ(result.count, 4);
    EXPECT_EQ(result.nfe, 5);
    return io::read_npy(folder_ / name / "samples.npy");
  };
  const auto a = run(1, 4, "a", true);
  const auto b = run(2, 4, "b", true);  // ddim with eta 0 is deterministic: z_T decides
  EXPECT_TRUE(torch::equal(a, b));
  const auto one_by_one = run(2, 1, "one", true);  // the same up to the batch's float rounding
  EXPECT_TRUE(torch::allclose(a, one_by_one, 1e-4, 1e-5));
  const auto c = run(1, 4, "c", false);
  EXPECT_FALSE(torch::equal(a, c));
  EXPECT_EQ(a.sizes(), (std::vector<std::int64_t>{4, 1, 16, 16}));
  std::ifstream in(folder_ / "a" / "samples.json");
  EXPECT_NE(json::parse(in)["init_latents"].get<std::string>().find("z_T.npy"), std::string::npos);

  // z_T of the wrong shape is refused before sampling, naming both shapes.
  io::write_npy(folder_ / "small.npy", torch::zeros({4, 1, 8, 8}));
  const SampleStage wrong(
      SampleConfig::from_json(json{{"count", 4}, {"init_latents", (folder_ / "small.npy").string()}},
                              "sample"),
      registry);
  const auto message = config_error([&] { wrong.run(context, folder_ / "denoiser", folder_ / "wrong"); });
  EXPECT_NE(message.find("[4, 1, 8, 8]"), std::string::npos) << message;
  EXPECT_NE(message.find("[4, 1, 16, 16]"), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(folder_ / "wrong" / "samples.npy"));
}

// bf16 sampling from an fp32-trained denoiser: the same z_T gives samples within bf16's rounding of
// fp32's (not equal: bf16 ran), recorded in samples.json; fp16 on the CPU is refused before sampling.
TEST_F(TinyPipeline, Bf16SamplesStayCloseToFp32Samples) {
  const auto& registry = builtin_plugins();
  const StageContext context{registry, torch::kCPU};
  torch::manual_seed(5);
  io::write_npy(folder_ / "z_T_bf16.npy", torch::randn({4, 1, 16, 16}));
  const auto run = [&](const std::string& precision) {
    const json spec = {{"sampler", "ddim"},
                       {"steps", 5},
                       {"count", 4},
                       {"init_latents", (folder_ / "z_T_bf16.npy").string()},
                       {"precision", precision}};
    const SampleStage stage(SampleConfig::from_json(spec, "sample"), registry);
    stage.run(context, folder_ / "denoiser", folder_ / precision);
    std::ifstream in(folder_ / precision / "samples.json");
    EXPECT_EQ(json::parse(in)["precision"], precision);
    return io::read_npy(folder_ / precision / "samples.npy");
  };
  const auto fp32 = run("fp32"), bf16 = run("bf16");
  EXPECT_EQ(bf16.scalar_type(), torch::kFloat32);
  const double difference = (bf16 - fp32).abs().mean().item<double>();
  // Five DDIM steps through a UNet whose products keep 8 mantissa bits (2^-9 relative rounding). This
  // 4-step model's eps is small (its output layer starts at zero), so the samples move by about 1e-5 on
  // average (measured 1.3e-5); 0.05 bounds a trained model's, and > 0 shows bf16 ran.
  EXPECT_LT(difference, 0.05);
  EXPECT_GT(difference, 0.0);
  const SampleStage fp16(SampleConfig::from_json(json{{"count", 4}, {"precision", "fp16"}}, "sample"),
                         registry);
  const auto message = config_error([&] { fp16.run(context, folder_ / "denoiser", folder_ / "fp16"); });
  EXPECT_NE(message.find("sample.precision: fp16 runs on CUDA only"), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(folder_ / "fp16"));
}

TEST_F(TinyPipeline, EvalStageMeasuresSamplesAgainstAReference) {
  const auto& registry = builtin_plugins();
  const StageContext context{registry, torch::kCPU};
  const SampleStage sample(SampleConfig::from_json(json{{"steps", 3}, {"count", 12}, {"batch", 12}}, "s"),
                           registry);
  sample.run(context, folder_ / "denoiser", folder_ / "eval_samples");
  // The classifier's features, trained briefly and cached in the test's folder.
  auto config = EvalConfig::from_json(
      json{{"metrics", {"fid", "kid", "pr"}},
           {"reference", "fashion-mnist:test"},
           {"count", 12},
           {"features",
            {{"name", "classifier"}, {"cache", (folder_ / "cache").string()}, {"params", {{"steps", 20}}}}}},
      "eval");
  const EvalStage stage(config, registry);
  const auto report = stage.run(context, (folder_ / "eval_samples").string(), folder_ / "eval");
  EXPECT_EQ(report["n_a"], 12);
  EXPECT_EQ(report["n_b"], 12);
  EXPECT_TRUE(report["fid"].is_number());
  EXPECT_GT(report["fid"].get<double>(), 0.0);
  EXPECT_TRUE(report.contains("kid_mean"));
  EXPECT_FALSE(report.contains("is_mean"));
  EXPECT_TRUE(std::filesystem::exists(folder_ / "eval" / "metrics.json"));
  // Too many splits for the images: refused before any features, naming the key.
  config.metrics = {"is"};
  config.is_splits = 20;
  const EvalStage too_many(config, registry);
  EXPECT_NE(config_error([&] {
              too_many.run(context, (folder_ / "eval_samples").string(), {});
            }).find("eval.is_splits"),
            std::string::npos);
}

// An untrained f = 2 KL autoencoder for 16x16 grey images, written to DIR/autoencoder.pt with `rescaling`.
registry::Instance<Autoencoder> write_untrained_autoencoder(const std::filesystem::path& dir,
                                                            const LatentRescaling& rescaling) {
  const json params = {{"f", 2},          {"ch", 8},        {"num_res_blocks", 1}, {"norm_groups", 4},
                       {"z_channels", 2}, {"embed_dim", 2}, {"in_channels", 1},    {"resolution", 16}};
  auto ae = builtin_plugins().create<Autoencoder>("kl", params, "params");
  AutoencoderFileInfo info;
  info.name = "kl";
  info.params = ae.params;
  info.source = "test";
  info.rescaling = rescaling;
  write_autoencoder_file(dir / "autoencoder.pt", info, *ae.object);
  return ae;
}

// `rescale: keep` keeps the file's own rescaling (an imported checkpoint's scale_factor); `std`
// replaces it with the measured one.
TEST_F(TinyPipeline, LatentStatsStageKeepsTheFilesRescalingWhenAsked) {
  const auto& registry = builtin_plugins();
  const StageContext context{registry, torch::kCPU};
  write_untrained_autoencoder(folder_ / "imported", LatentRescaling::from_scale_factor(0.25, 2));
  const auto run = [&](const std::string& rescale) {
    auto config = LatentStatsConfig::from_json(json{{"rescale", rescale}, {"samples", 16}}, "latent");
    config.data = {"fashion-mnist", json{{"resolution", 16}, {"fit", "resize"}, {"limit", 64}}};
    const LatentStatsStage stage(config, registry);
    const auto report = stage.run(context, folder_ / "imported", folder_ / ("latent_" + rescale));
    return std::pair{report, read_autoencoder_info(folder_ / ("latent_" + rescale))};
  };
  const auto [kept, kept_info] = run("keep");
  EXPECT_EQ(kept_info.rescaling.mode, "std");
  EXPECT_EQ(kept_info.rescaling.scale, (std::vector<double>{4.0, 4.0}));  // 1 / scale_factor
  EXPECT_TRUE(kept["statistics"].is_object());                            // measured all the same
  const auto [measured, measured_info] = run("std");
  EXPECT_NE(measured_info.rescaling.scale, kept_info.rescaling.scale);
  EXPECT_NEAR(measured_info.rescaling.scale[0], measured["statistics"]["std"].get<double>(), 1e-12);
  EXPECT_NE(config_error([&] {
              LatentStatsConfig::from_json(json{{"rescale", "kep"}}, "latent");
            }).find("latent.rescale"),
            std::string::npos);
}

// PSIM (the paper's Tab. 8): the mean LPIPS distance between the held-out images and their
// reconstructions, from the user's LPIPS weights, keyed by the weights' contents.
TEST_F(TinyPipeline, ReconstructionStageMeasuresPsimWithTheUsersLpipsWeights) {
  const auto& registry = builtin_plugins();
  const StageContext context{registry, torch::kCPU};
  const auto lpips_files = testing::write_lpips_weights(folder_ / "lpips", 5);
  // An untrained f = 2 KL autoencoder: its reconstructions are far from the images.
  const auto ae = write_untrained_autoencoder(folder_ / "ae", LatentRescaling{});

  const json data = {{"resolution", 16}, {"fit", "resize"}};
  const auto reconstruct = [&](const json& weights, const std::string& out) {
    json spec = {
        {"input", "fashion-mnist"}, {"data_params", data}, {"count", 10}, {"batch", 4}, {"images", 0}};
    if (!weights.is_null()) spec["lpips_weights"] = weights;
    const ReconstructionStage stage(ReconstructionConfig::from_json(spec, "reconstruction"), registry);
    return std::pair{stage.run(context, folder_ / "ae", folder_ / out), stage.key()};
  };
  const auto [report, key] = reconstruct(lpips_files.checkpoint.string(), "rec");
  ASSERT_TRUE(report["psim"].is_number()) << report.dump();

  // The same mean, computed here from the torchvision + taming layout of the same weights.
  nn::Lpips lpips;
  lpips->load({lpips_files.vgg16, lpips_files.lin});
  auto images = registry.create<Dataset>(
      "fashion-mnist", json{{"resolution", 16}, {"fit", "resize"}, {"split", "test"}}, "data");
  std::vector<std::int64_t> first(10);
  for (std::int64_t i = 0; i < 10; ++i) first[static_cast<std::size_t>(i)] = i;
  torch::NoGradGuard no_grad;
  ae.object->module().eval();
  const auto x = images->get_batch(first).images;
  const auto expected = lpips->forward(x, ae.object->reconstruct(x).clamp(-1.0, 1.0)).mean().item<double>();
  EXPECT_GT(expected, 0.0);
  EXPECT_NEAR(report["psim"].get<double>(), expected, 1e-5 * expected);

  // The key follows the weights' contents, not their names; without weights there is no PSIM.
  const auto [same, same_key] = reconstruct(json::array({lpips_files.checkpoint.string()}), "rec_same");
  EXPECT_EQ(same_key, key);
  std::filesystem::copy_file(lpips_files.checkpoint, folder_ / "renamed.ckpt");
  EXPECT_EQ(reconstruct((folder_ / "renamed.ckpt").string(), "rec_renamed").second, key);
  const auto [none, none_key] = reconstruct(nullptr, "rec_none");
  EXPECT_FALSE(none.contains("psim"));
  EXPECT_NE(none_key, key);

  // A missing file, or a file without the LPIPS weights, is refused when the stage is built.
  const auto missing = config_error([&] { reconstruct((folder_ / "nope.pth").string(), "x"); });
  EXPECT_NE(missing.find("reconstruction.lpips_weights: there is no file"), std::string::npos) << missing;
  const auto wrong = config_error([&] { reconstruct(lpips_files.vgg16.string(), "x"); });
  EXPECT_NE(wrong.find("reconstruction.lpips_weights"), std::string::npos) << wrong;
  EXPECT_NE(wrong.find("lin0.model.1.weight"), std::string::npos) << wrong;
}

}  // namespace
}  // namespace latentlab::stages
