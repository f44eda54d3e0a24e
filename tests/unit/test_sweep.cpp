// The sweep engine's pure parts: spec expansion (grids, zips, exclusions, seeds, ids, errors) and the
// plan (stages shared by key across trials, every problem reported at once).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "latentlab/error.hpp"
#include "latentlab/precision.hpp"
#include "latentlab/sweep/plan.hpp"
#include "latentlab/sweep/spec.hpp"
#include "support/builtin_plugins.hpp"
#include "support/lpips_weights.hpp"

namespace latentlab::sweep {
namespace {

using nlohmann::json;

std::string config_error(const SpecJson& spec) {
  try {
    expand(spec);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError";
  return "";
}

TEST(Expand, GridsMultiplyInDocumentOrderLastFastest) {
  const auto spec = SpecJson::parse(R"({
    "name": "s",
    "b": {"$grid": [1, 2, 3]},
    "a": {"x": {"$grid": ["p", "q"], "$name": "letter"}}
  })");
  const auto e = expand(spec);
  ASSERT_EQ(e.axes.size(), 2u);
  EXPECT_EQ(e.axes[0].name, "b");  // document order, not alphabetical
  EXPECT_EQ(e.axes[1].name, "letter");
  EXPECT_EQ(e.axes[1].path, "a.x");
  ASSERT_EQ(e.trials.size(), 6u);
  EXPECT_EQ(e.trials[0].values, (json{{"b", 1}, {"letter", "p"}}));
  EXPECT_EQ(e.trials[1].values, (json{{"b", 1}, {"letter", "q"}}));
  EXPECT_EQ(e.trials[5].values, (json{{"b", 3}, {"letter", "q"}}));
  EXPECT_EQ(e.trials[1].config["a"]["x"], "q");
  EXPECT_EQ(e.trials[1].config["b"], 1);
  EXPECT_EQ(e.trials[1].id, "b=1,letter=q");
  EXPECT_EQ(e.trials[0].config["seed"], 0);
}

TEST(Expand, ZipAxesAdvanceTogether) {
  const auto spec = SpecJson::parse(R"({
    "name": "s",
    "ae": {"f": {"$zip": "ae", "values": [4, 8]}, "channels": {"$zip": "ae", "values": [3, 4], "$name": "c"}},
    "w": {"$grid": ["unweighted", "elbo"]}
  })");
  const auto e = expand(spec);
  ASSERT_EQ(e.trials.size(), 4u);
  EXPECT_EQ(e.trials[0].config["ae"], (json{{"f", 4}, {"channels", 3}}));
  EXPECT_EQ(e.trials[2].config["ae"], (json{{"f", 8}, {"channels", 4}}));
  EXPECT_EQ(e.trials[3].values["w"], "elbo");
}

TEST(Expand, SeedsAreTheLastAxisAndExclusionsDropTrials) {
  const auto spec = SpecJson::parse(R"({
    "name": "s",
    "eval": [{"sampler": {"$grid": ["ddim", "dpmpp_2m", "euler"]}, "steps": {"$grid": [10, 20]}}],
    "seeds": [0, 1],
    "exclude": [{"sampler": "euler", "steps": 10}, {"eval[0].sampler": "dpmpp_2m", "seed": 1}]
  })");
  const auto e = expand(spec);
  // 3 x 2 x 2 = 12, minus euler-10 (2 seeds) and dpmpp_2m with seed 1 (2 budgets).
  ASSERT_EQ(e.trials.size(), 8u);
  EXPECT_EQ(e.trials[0].values, (json{{"sampler", "ddim"}, {"steps", 10}, {"seed", 0}}));
  EXPECT_EQ(e.trials[1].values["seed"], 1);
  EXPECT_EQ(e.trials[1].config["seed"], 1);
  EXPECT_FALSE(e.trials[1].config.contains("seeds"));
  EXPECT_FALSE(e.trials[1].config.contains("exclude"));
  for (const auto& trial : e.trials) {
    EXPECT_FALSE(trial.values["sampler"] == "euler" && trial.values["steps"] == 10);
    EXPECT_FALSE(trial.values["sampler"] == "dpmpp_2m" && trial.values["seed"] == 1);
  }
  // The same spec gives the same trials, ids and configs.
  const auto again = expand(spec);
  for (std::size_t i = 0; i < e.trials.size(); ++i) {
    EXPECT_EQ(e.trials[i].id, again.trials[i].id);
    EXPECT_EQ(e.trials[i].config, again.trials[i].config);
  }
}

TEST(Expand, NoAxesIsOneTrial) {
  const auto e = expand(SpecJson::parse(R"({"name": "plain", "seed": 7})"));
  ASSERT_EQ(e.trials.size(), 1u);
  EXPECT_EQ(e.trials[0].id, "trial");
  EXPECT_EQ(e.trials[0].config["seed"], 7);
}

TEST(Expand, EveryProblemIsReportedAtOnceWithItsPath) {
  const auto message = config_error(SpecJson::parse(R"({
    "name": "bad name/",
    "a": {"$grid": []},
    "b": {"$grd": [1]},
    "c": {"$zip": "g", "values": [1, 2]},
    "d": {"$zip": "g", "values": [1, 2, 3]},
    "e": {"$grid": [1], "$nme": "x"},
    "seeds": [0, -1],
    "exclude": [{"samplr": "ddim"}]
  })"));
  EXPECT_NE(message.find("7 problems"), std::string::npos) << message;
  for (const char* part :
       {"name:", "a.$grid: expected a non-empty list", "b.$grd: unknown axis keyword",
        "d: $zip group 'g' advances together", "e.$nme", "seeds:", "exclude[0].samplr: no axis"})
    EXPECT_NE(message.find(part), std::string::npos) << part << " not in: " << message;
}

TEST(Expand, AxisNamesMustDiffer) {
  const auto message = config_error(
      SpecJson::parse(R"({"name": "s", "a": {"steps": {"$grid": [1, 2]}}, "b": {"steps": {"$grid": [3]}}})"));
  EXPECT_NE(message.find("b.steps: axis name 'steps' is already the name of a.steps"), std::string::npos)
      << message;
}

// A small spec over the built-in plugins.
SpecJson tiny_spec() {
  return SpecJson::parse(R"({
    "name": "tiny",
    "dataset": {"name": "fashion-mnist", "params": {"resolution": 16, "fit": "resize", "limit": 64}},
    "autoencoder": {"name": "kl", "params": {"ch": 8, "ch_mult": {"$grid": [[1, 2], [1, 2, 2]], "$name": "levels"},
                                             "num_res_blocks": 1, "norm_groups": 4, "z_channels": 2, "embed_dim": 2},
                    "loss": {"disc_start": 100000}, "train": {"steps": 2, "batch_size": 4}},
    "denoiser": {"unet": {"model_channels": 32, "channel_mult": [1], "num_res_blocks": 1, "attention_resolutions": [],
                          "num_head_channels": 32},
                 "weighting": {"$grid": ["unweighted", "elbo"]}, "train": {"steps": 2, "batch_size": 4}},
    "eval": [{"sampler": "ddim", "steps": 3, "count": 4}, {"sampler": "dpmpp_2m", "steps": 3, "count": 4}],
    "metrics": {"metrics": ["fid"], "count": 4},
    "reconstruction": {"count": 4}
  })");
}

TEST(Plan, StagesAreSharedByKey) {
  const auto plan = make_plan(expand(tiny_spec()), testing::builtin_plugins());
  ASSERT_EQ(plan.trials.size(), 4u);  // 2 levels x 2 weightings
  std::map<std::string, int> kinds;
  for (const auto& stage : plan.stages) ++kinds[stage.kind];
  EXPECT_EQ(kinds["autoencoder"], 2);  // once per autoencoder config, whatever the weighting
  EXPECT_EQ(kinds["latent_stats"], 2);
  EXPECT_EQ(kinds["reconstruction"], 2);
  EXPECT_EQ(kinds["denoiser"], 4);
  EXPECT_EQ(kinds["sample"], 8);  // two eval entries per trial
  EXPECT_EQ(kinds["eval"], 8);
  EXPECT_EQ(plan.trials[0].autoencoder, plan.trials[1].autoencoder);
  EXPECT_NE(plan.trials[0].denoiser, plan.trials[1].denoiser);
  EXPECT_EQ(plan.trials[0].evals[0].label, "ddim-3");
  EXPECT_EQ(plan.trials[0].evals[1].label, "dpmpp_2m-3");
  // Planning again gives the same keys.
  const auto again = make_plan(expand(tiny_spec()), testing::builtin_plugins());
  for (std::size_t i = 0; i < plan.stages.size(); ++i) EXPECT_EQ(plan.stages[i].key, again.stages[i].key);
  // Inputs come before the stages that read them.
  for (std::size_t i = 0; i < plan.stages.size(); ++i)
    for (const auto& [role, key] : plan.stages[i].inputs) {
      const auto it = std::find_if(plan.stages.begin(), plan.stages.end(),
                                   [&](const StageJob& s) { return s.key == key; });
      ASSERT_NE(it, plan.stages.end());
      EXPECT_LT(static_cast<std::size_t>(it - plan.stages.begin()), i);
    }
}

// The spec's precision reaches every stage that runs networks (its own block's wins); the statistics
// and the metrics stay float32 (docs/precision.md). fp32, said or not, keeps the keys of old caches.
TEST(Plan, PrecisionReachesEveryStageThatRunsNetworks) {
  auto spec = tiny_spec();
  const auto plain = make_plan(expand(spec), testing::builtin_plugins());
  spec["precision"] = "fp32";
  const auto fp32 = make_plan(expand(spec), testing::builtin_plugins());
  ASSERT_EQ(plain.stages.size(), fp32.stages.size());
  for (std::size_t i = 0; i < plain.stages.size(); ++i) EXPECT_EQ(plain.stages[i].key, fp32.stages[i].key);

  spec["precision"] = "bf16";
  spec["eval"][1]["precision"] = "fp32";  // this entry samples in fp32 from the bf16-trained denoiser
  const auto bf16 = make_plan(expand(spec), testing::builtin_plugins());
  ASSERT_EQ(bf16.stages.size(), plain.stages.size());
  std::map<std::string, int> kinds;
  for (const auto& stage : bf16.stages) {
    const auto precision = stage.config.value("precision", std::string("(none)"));
    if (stage.kind == "autoencoder" || stage.kind == "denoiser" || stage.kind == "reconstruction")
      EXPECT_EQ(precision, "bf16") << stage.kind;
    else if (stage.kind == "sample")
      EXPECT_EQ(precision, stage.label == "ddim-3" ? "bf16" : "fp32") << stage.label;
    else
      EXPECT_EQ(precision, "(none)") << stage.kind;
    ++kinds[stage.kind];
  }
  EXPECT_EQ(kinds["sample"], 8);
  std::set<std::string> old_keys;
  for (const auto& stage : plain.stages) old_keys.insert(stage.key);
  for (const auto& stage : bf16.stages) EXPECT_EQ(old_keys.count(stage.key), 0u) << stage.kind;

  spec["precision"] = "bf61";
  try {
    make_plan(expand(spec), testing::builtin_plugins());
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("precision: expected"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("did you mean \"bf16\""), std::string::npos) << e.what();
  }
  spec["precision"] = "fp16";
  spec["device"] = "cpu";
  try {
    make_plan(expand(spec), testing::builtin_plugins());
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("fp16 runs on CUDA only"), std::string::npos) << e.what();
  }
  // A block's fp16 too, naming the block.
  spec["precision"] = "bf16";
  spec["denoiser"]["precision"] = "fp16";
  try {
    make_plan(expand(spec), testing::builtin_plugins());
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("denoiser.precision: fp16 runs on CUDA only"), std::string::npos)
        << e.what();
  }
}

// "auto" is resolved when the sweep is planned, for the device it will run on (the spec's, or the
// one `run --device` gives): the stages hold, and are keyed by, the precision that runs, exactly as
// if the spec had said it; the plan says what auto chose and why.
TEST(Plan, AutoPrecisionIsResolvedForTheDeviceAndKeyedAsWhatRuns) {
  auto spec = tiny_spec();
  spec["device"] = "cuda";  // replaced by the device given to make_plan: no GPU needed
  const auto chosen = auto_precision(torch::kCPU);
  spec["precision"] = to_string(chosen);
  const auto explicit_plan = make_plan(expand(spec), testing::builtin_plugins(), "cpu");
  EXPECT_TRUE(explicit_plan.auto_precision.empty());
  EXPECT_EQ(explicit_plan.device, "cpu");
  spec["precision"] = "auto";
  spec["eval"][0]["precision"] = "auto";
  const auto automatic = make_plan(expand(spec), testing::builtin_plugins(), "cpu");
  EXPECT_EQ(automatic.auto_precision, auto_precision_reason(torch::kCPU));
  ASSERT_EQ(automatic.stages.size(), explicit_plan.stages.size());
  for (std::size_t i = 0; i < automatic.stages.size(); ++i) {
    EXPECT_EQ(automatic.stages[i].key, explicit_plan.stages[i].key) << automatic.stages[i].kind;
    if (automatic.stages[i].config.contains("precision"))
      EXPECT_EQ(automatic.stages[i].config.at("precision"), to_string(chosen)) << automatic.stages[i].kind;
  }
  spec["eval"][0]["precision"] = "autp";
  try {
    make_plan(expand(spec), testing::builtin_plugins(), "cpu");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("eval[0].precision: expected \"auto\""), std::string::npos)
        << e.what();
  }
}

TEST(Plan, AddingASamplerAddsOnlyItsStages) {
  auto spec = tiny_spec();
  const auto before = make_plan(expand(spec), testing::builtin_plugins());
  spec["eval"].push_back(SpecJson::parse(R"({"sampler": "euler", "steps": 3, "count": 4})"));
  const auto after = make_plan(expand(spec), testing::builtin_plugins());
  std::set<std::string> old_keys;
  for (const auto& stage : before.stages) old_keys.insert(stage.key);
  std::map<std::string, int> added;
  for (const auto& stage : after.stages)
    if (!old_keys.count(stage.key)) ++added[stage.kind];
  EXPECT_EQ(added, (std::map<std::string, int>{{"eval", 4}, {"sample", 4}}));
}

TEST(Plan, ProblemsInEveryTrialAreCollected) {
  auto spec = tiny_spec();
  spec["denoiser"]["train"]["stepz"] = 3;                                           // every trial
  spec["denoiser"]["train"]["batch_size"] = 0;                                      // the same object
  spec["denoiser"]["unet"]["model_chanels"] = 32;                                   // another section
  spec["eval"][0]["sampler"] = SpecJson::parse(R"({"$grid": ["ddim", "dddim"]})");  // half the trials
  spec["metrics"]["metrics"] = SpecJson::parse(R"(["fid", "kd"])");
  try {
    make_plan(expand(spec), testing::builtin_plugins());
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("denoiser.train.stepz"), std::string::npos) << message;
    EXPECT_NE(message.find("problems in the spec"), std::string::npos) << message;
    EXPECT_NE(message.find("\n  denoiser.train.batch_size: "), std::string::npos) << message;
    EXPECT_NE(message.find("\n  denoiser.unet.model_chanels: "), std::string::npos) << message;
    // Each problem once, not once per trial; a problem of some trials names them.
    EXPECT_EQ(message.find("denoiser.train.stepz"), message.rfind("denoiser.train.stepz")) << message;
    EXPECT_NE(message.find("eval[0].sampler: no sampler plugin named 'dddim'"), std::string::npos) << message;
    EXPECT_NE(message.find("(trial levels=1+2,weighting=unweighted,sampler=dddim and 3 more)"),
              std::string::npos)
        << message;
  }
}

// PSIM's LPIPS weights: keyed by content, inherited from the autoencoder's LPIPS loss, and a file
// without them is reported by the plan, before anything trains.
TEST(Plan, LpipsWeightsAreCheckedBeforeAnythingRuns) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("latentlab_plan_lpips_" + std::to_string(::getpid()));
  const auto files = testing::write_lpips_weights(dir, 3);
  auto spec = tiny_spec();
  spec["reconstruction"]["lpips_weights"] = files.checkpoint.string();
  const auto with = make_plan(expand(spec), testing::builtin_plugins());
  spec["reconstruction"].erase("lpips_weights");
  spec["autoencoder"]["loss"]["perceptual"] = "lpips";
  spec["autoencoder"]["loss"]["perceptual_weights"] = SpecJson::array({files.checkpoint.string()});
  const auto inherited = make_plan(expand(spec), testing::builtin_plugins());
  const auto reconstruction_key = [](const Plan& plan) {
    for (const auto& stage : plan.stages)
      if (stage.kind == "reconstruction") return stage.config.dump();
    return std::string();
  };
  EXPECT_NE(reconstruction_key(inherited).find("lpips_weights"), std::string::npos);
  EXPECT_NE(reconstruction_key(with).find(files.checkpoint.string()), std::string::npos);

  spec["reconstruction"]["lpips_weights"] = files.vgg16.string();  // no lin layers
  try {
    make_plan(expand(spec), testing::builtin_plugins());
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("reconstruction.lpips_weights: cannot load LPIPS"), std::string::npos) << message;
    EXPECT_NE(message.find("lin0.model.1.weight"), std::string::npos) << message;
  }
  std::filesystem::remove_all(dir);
}

TEST(Plan, PixelSpaceHasNoAutoencoderStages) {
  auto spec = tiny_spec();
  spec["autoencoder"] = "identity";
  spec.erase("reconstruction");
  const auto plan = make_plan(expand(spec), testing::builtin_plugins());
  for (const auto& stage : plan.stages) {
    EXPECT_NE(stage.kind, "autoencoder");
    EXPECT_NE(stage.kind, "latent_stats");
  }
  EXPECT_EQ(plan.trials[0].autoencoder, -1);
}

}  // namespace
}  // namespace latentlab::sweep

namespace latentlab::sweep {
namespace {

// A reference checkpoint (made by PyTorch, tests/fixtures/reference) as stage 1 of a sweep.
TEST(Plan, AnImportedAutoencoderIsAStageKeyedByItsCheckpoint) {
  const std::string fixtures = std::string(LATENTLAB_SOURCE_DIR) + "/tests/fixtures/reference/";
  auto spec = SpecJson::parse(R"({
    "name": "imported",
    "dataset": {"name": "fashion-mnist", "params": {"resolution": 16, "fit": "resize", "limit": 64}},
    "latent": {"samples": 16}
  })");
  spec["autoencoder"] = {{"import", fixtures + "kl_tiny.ckpt"}, {"config", fixtures + "kl_tiny.json"}};
  const auto& registry = testing::builtin_plugins();
  const auto plan = make_plan(expand(spec), registry);
  ASSERT_EQ(plan.trials.size(), 1u);
  const auto& job = plan.stages.at(static_cast<std::size_t>(plan.trials[0].autoencoder));
  EXPECT_EQ(job.kind, "autoencoder");
  const auto folder =
      std::filesystem::temp_directory_path() / ("latentlab_sweep_import_" + std::to_string(::getpid()));
  std::filesystem::remove_all(folder);
  const stages::StageContext context{registry, torch::kCPU};
  run_job(job, context, {}, folder, false);
  EXPECT_TRUE(std::filesystem::exists(folder / "autoencoder.pt"));
  std::ifstream in(folder / "import.json");
  const auto report = json::parse(in);
  EXPECT_EQ(report["name"], "kl");
  EXPECT_EQ(report["missing"].size(), 0u);
  EXPECT_GT(report["loaded"].get<int>(), 0);
  std::filesystem::remove_all(folder);
  // Another file is another key; a missing one is a spec error naming the key.
  spec["autoencoder"]["import"] = fixtures + "vq_tiny.ckpt";
  EXPECT_NE(make_plan(expand(spec), registry).stages.front().key, job.key);
  spec["autoencoder"]["import"] = fixtures + "missing.ckpt";
  try {
    make_plan(expand(spec), registry);
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("autoencoder.import: there is no file"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace latentlab::sweep
