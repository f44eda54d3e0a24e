// Stage-2 training: overfitting, exact resumption, divergence, config errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <sstream>

#include "latentlab/diffusion/elbo.hpp"
#include "latentlab/train/data_order.hpp"
#include "latentlab/train/denoiser_trainer.hpp"

namespace latentlab {
namespace {

// A seeded synthetic dataset: smooth random 1-channel images with labels.
class TensorDataset : public Dataset {
 public:
  TensorDataset(std::int64_t size, std::int64_t resolution, std::uint64_t seed) {
    torch::manual_seed(seed);
    const auto coarse = torch::rand({size, 1, 2, 2}) * 2 - 1;
    images_ = torch::nn::functional::interpolate(coarse,
                                                 torch::nn::functional::InterpolateFuncOptions()
                                                     .size(std::vector<std::int64_t>{resolution, resolution})
                                                     .mode(torch::kBilinear)
                                                     .align_corners(false));
    labels_ = torch::arange(size, torch::kLong) % 3;
  }
  std::int64_t size() const override { return images_.size(0); }
  std::int64_t channels() const override { return 1; }
  std::int64_t resolution() const override { return images_.size(2); }
  std::int64_t num_classes() const override { return 3; }
  Batch get_batch(const std::vector<std::int64_t>& indices) const override {
    const auto index = torch::tensor(indices, torch::kLong);
    return {images_.index_select(0, index), labels_.index_select(0, index), {}};
  }

 private:
  torch::Tensor images_, labels_;
};

// ELBO weights with t drawn by loss history: exercises the sampler state in checkpoints.
class HistoryElbo : public LossWeighting {
 public:
  std::vector<double> weights(const Schedule& schedule) const override { return elbo_weights(schedule); }
  TimestepSampling timestep_sampling() const override { return TimestepSampling::LossHistory; }
};

class Unweighted : public LossWeighting {
 public:
  std::vector<double> weights(const Schedule& schedule) const override {
    return std::vector<double>(static_cast<std::size_t>(schedule.num_steps()), 1.0);
  }
};

// Records every training loss and gradient norm; can raise the stop flag after a given step (a
// simulated Ctrl-C).
class RecordingSink : public MetricSink {
 public:
  std::vector<double> losses, grad_norms;
  std::vector<std::int64_t> steps, eval_steps;
  std::vector<double> elbo;  // eval's first column
  std::atomic<bool>* stop = nullptr;
  std::int64_t stop_after = -1;
  void write(const std::string& series, std::int64_t step, const MetricValues& values) override {
    if (series == "eval") {
      eval_steps.push_back(step);
      elbo.push_back(values.at(0).second);
      return;
    }
    steps.push_back(step);
    losses.push_back(values.at(0).second);
    for (const auto& [name, value] : values)
      if (name == "grad_norm") grad_norms.push_back(value);
    if (stop && step == stop_after) stop->store(true);
  }
};

std::string temp_folder(const std::string& name) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("latentlab_trainer_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(path);
  return path.string();
}

nlohmann::json tiny_config(const std::string& output) {
  return {{"output", output},
          {"seed", 3},
          {"data", {{"dataset", "synthetic"}, {"hflip", true}}},
          {"unet",
           {{"in_channels", 1},
            {"out_channels", 1},
            {"model_channels", 32},
            {"channel_mult", {1, 1}},
            {"num_res_blocks", 1},
            {"attention_resolutions", {2}},
            {"num_head_channels", 32},
            {"dropout", 0.1},
            {"num_classes", 3}}},
          {"train",
           {{"steps", 12},
            {"batch_size", 4},
            {"lr", 1e-3},
            {"checkpoint_every", 5},
            {"log_every", 4},
            {"ema_decay", 0.99},
            {"warmup_steps", 3},
            {"accumulate", 2}}},
          {"eval", {{"every", 6}, {"samples", 8}, {"strata", 2}, {"batch_size", 5}}}};
}

DenoiserTrainerParts parts(std::shared_ptr<LossWeighting> weighting, std::int64_t T = 4,
                           std::int64_t size = 24) {
  DenoiserTrainerParts p;
  p.train_data = std::make_shared<TensorDataset>(size, 8, 11);
  p.held_out = std::make_shared<TensorDataset>(16, 8, 12);
  std::vector<double> betas;
  for (std::int64_t i = 0; i < T; ++i)
    betas.push_back(0.05 + 0.5 * static_cast<double>(i) / static_cast<double>(T));
  p.schedule = std::make_shared<DiscreteSchedule>(betas);
  p.weighting = std::move(weighting);
  return p;
}

TEST(DataOrder, IsAFunctionOfSeedAndPosition) {
  const TensorDataset data(10, 4, 1);
  DataOrder a(10, 3, 5, true), b(10, 3, 5, true);
  std::vector<torch::Tensor> first;
  for (int i = 0; i < 7; ++i) first.push_back(a.next(data).images);
  b.set_position({2, 0});  // 3 batches per epoch: batch 6 is epoch 2, offset 0
  EXPECT_TRUE(torch::equal(b.next(data).images, first[6]));
  EXPECT_EQ(a.batches_per_epoch(), 3);
  EXPECT_THROW(DataOrder(2, 3, 0, false), ConfigError);
}

TEST(Trainer, ATinyModelOverfitsATinyBatch) {
  auto config_json = tiny_config(temp_folder("overfit"));
  config_json["train"] = {{"steps", 300},     {"batch_size", 2}, {"lr", 2e-3}, {"checkpoint_every", 1000},
                          {"log_every", 100}, {"ema_decay", 0.0}};
  config_json["unet"]["dropout"] = 0.0;
  config_json["data"]["hflip"] = false;
  config_json["eval"] = {{"every", 0}, {"samples", 2}, {"strata", 1}};
  RecordingSink sink;
  DenoiserTrainer trainer(DenoiserTrainConfig::from_json(config_json),
                          parts(std::make_shared<Unweighted>(), 20, 2), sink);
  std::atomic<bool> stop{false};
  trainer.run(stop);
  ASSERT_EQ(sink.losses.size(), 300u);
  // The zero-initialised output layer makes the first losses E[eps^2] = 1.
  const double first = std::accumulate(sink.losses.begin(), sink.losses.begin() + 5, 0.0) / 5;
  const double last = std::accumulate(sink.losses.end() - 20, sink.losses.end(), 0.0) / 20;
  EXPECT_LT(last, first / 10) << "first 5 steps " << first << ", last 20 steps " << last;
  std::filesystem::remove_all(config_json["output"].get<std::string>());
}

// Interrupts a run after `stop_after` steps, resumes it, and compares everything with an
// uninterrupted run: losses, evaluations (eval.every = 6) and final weights, bit for bit. In bf16 too:
// autocast on the CPU is deterministic for a given thread count (docs/precision.md#resuming). With
// `loss_scale`, under loss scaling from that scale (whose state the checkpoint must carry).
// `grad_norms`, when given, receives the uninterrupted run's gradient norms.
void expect_exact_resumption(std::int64_t stop_after, const std::string& precision = "fp32",
                             double loss_scale = 0, std::vector<double>* grad_norms = nullptr) {
  const auto full_dir = temp_folder("full"), split_dir = temp_folder("split");
  const auto config_in = [&](const std::string& output) {
    auto config = latentlab::tiny_config(output);
    config["precision"] = precision;
    auto parsed = DenoiserTrainConfig::from_json(config);
    parsed.loss_scale = loss_scale;
    return parsed;
  };
  std::atomic<bool> stop{false};
  RecordingSink full;
  DenoiserTrainer(config_in(full_dir), parts(std::make_shared<HistoryElbo>()), full).run(stop);
  ASSERT_EQ(full.losses.size(), 12u);
  ASSERT_EQ(full.eval_steps, (std::vector<std::int64_t>{6, 12}));

  RecordingSink first;
  first.stop = &stop;
  first.stop_after = stop_after;
  const auto outcome =
      DenoiserTrainer(config_in(split_dir), parts(std::make_shared<HistoryElbo>()), first).run(stop);
  EXPECT_TRUE(outcome.interrupted);
  EXPECT_EQ(outcome.step, stop_after);
  stop.store(false);
  RecordingSink second;
  DenoiserTrainer resumed(config_in(split_dir), parts(std::make_shared<HistoryElbo>()), second);
  EXPECT_EQ(resumed.resume(), stop_after);
  EXPECT_FALSE(resumed.run(stop).interrupted);
  const auto k = static_cast<std::size_t>(stop_after);
  ASSERT_EQ(first.losses.size(), k);
  ASSERT_EQ(second.losses.size(), 12 - k);
  for (std::size_t i = 0; i < k; ++i) EXPECT_EQ(first.losses[i], full.losses[i]) << "step " << i + 1;
  for (std::size_t i = 0; i < 12 - k; ++i)
    EXPECT_EQ(second.losses[i], full.losses[k + i]) << "step " << k + i + 1;
  // Evaluations: the same steps and values, an interrupted one done on resumption.
  auto eval_steps = first.eval_steps;
  eval_steps.insert(eval_steps.end(), second.eval_steps.begin(), second.eval_steps.end());
  auto elbo = first.elbo;
  elbo.insert(elbo.end(), second.elbo.begin(), second.elbo.end());
  EXPECT_EQ(eval_steps, full.eval_steps);
  EXPECT_EQ(elbo, full.elbo);
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(split_dir) / "denoiser.pt"));
  // Same weights at the end: reload the uninterrupted run's final checkpoint and compare.
  RecordingSink unused;
  DenoiserTrainer reloaded(config_in(full_dir), parts(std::make_shared<HistoryElbo>()), unused);
  EXPECT_EQ(reloaded.resume(), 12);
  EXPECT_TRUE(torch::equal(torch::nn::utils::parameters_to_vector(reloaded.model()->parameters()),
                           torch::nn::utils::parameters_to_vector(resumed.model()->parameters())));
  EXPECT_TRUE(torch::equal(torch::nn::utils::parameters_to_vector(reloaded.ema_model()->parameters()),
                           torch::nn::utils::parameters_to_vector(resumed.ema_model()->parameters())));
  std::filesystem::remove_all(full_dir);
  std::filesystem::remove_all(split_dir);
  if (grad_norms) *grad_norms = full.grad_norms;
}

TEST(Trainer, AResumedRunReproducesTheUninterruptedOne) {
  expect_exact_resumption(7);
}

TEST(Trainer, AnEvaluationDueAtTheInterruptionHappensOnResumption) {
  expect_exact_resumption(6);
}

TEST(Trainer, ABf16RunResumesExactly) {
  expect_exact_resumption(7, "bf16");
}

// Loss scaling (fp16's, docs/precision.md#fp16-and-loss-scaling) runs on the CPU in fp32 too when a
// scale is set. A power-of-two scale multiplies and divides every gradient exactly, so a scaled run
// is the unscaled run bit for bit.
TEST(Trainer, LossScalingByAPowerOfTwoChangesNothing) {
  const auto plain_dir = temp_folder("unscaled"), scaled_dir = temp_folder("scaled");
  std::atomic<bool> stop{false};
  RecordingSink plain, scaled;
  auto config = DenoiserTrainConfig::from_json(tiny_config(plain_dir));
  DenoiserTrainer unscaled(config, parts(std::make_shared<Unweighted>()), plain);
  unscaled.run(stop);
  config.output = scaled_dir;
  config.loss_scale = 1024;
  DenoiserTrainer trainer(config, parts(std::make_shared<Unweighted>()), scaled);
  trainer.run(stop);
  EXPECT_EQ(scaled.losses, plain.losses);
  EXPECT_EQ(scaled.grad_norms, plain.grad_norms);
  EXPECT_TRUE(torch::equal(torch::nn::utils::parameters_to_vector(trainer.model()->parameters()),
                           torch::nn::utils::parameters_to_vector(unscaled.model()->parameters())));
  std::filesystem::remove_all(plain_dir);
  std::filesystem::remove_all(scaled_dir);
}

// A scale so large that the scaled loss overflows float32: those steps are skipped (grad_norm NaN in the
// train series, no update) while the scale halves, then training goes on; the checkpoint carries the
// scale, so the run still resumes bit for bit.
TEST(Trainer, AnOverflowingLossScaleSkipsStepsThenTrains) {
  std::vector<double> grad_norms;
  expect_exact_resumption(7, "fp32", std::ldexp(1.0, 130), &grad_norms);
  ASSERT_EQ(grad_norms.size(), 12u);
  std::size_t skipped = 0;
  while (skipped < grad_norms.size() && std::isnan(grad_norms[skipped])) ++skipped;
  EXPECT_GE(skipped, 1u);
  EXPECT_LT(skipped, 7u) << "the resumption at step 7 should cross from skipped to applied steps";
  for (std::size_t i = skipped; i < grad_norms.size(); ++i) EXPECT_TRUE(std::isfinite(grad_norms[i])) << i;
}

// Gradients that overflow at every scale are a divergence, not an endless run of skipped steps.
TEST(Trainer, GradientsThatOverflowAtEveryScaleAreADivergence) {
  const auto dir = temp_folder("overflow");
  auto config = DenoiserTrainConfig::from_json(tiny_config(dir));
  config.steps = 100;
  config.loss_scale = std::numeric_limits<double>::infinity();  // inf * 2^-k stays inf
  RecordingSink sink;
  std::atomic<bool> stop{false};
  try {
    DenoiserTrainer(config, parts(std::make_shared<Unweighted>()), sink).run(stop);
    FAIL() << "expected a DivergenceError";
  } catch (const DivergenceError& e) {
    EXPECT_NE(std::string(e.what()).find("skipped by loss scaling"), std::string::npos) << e.what();
  }
  EXPECT_LT(sink.steps.size(), 40u);
  std::filesystem::remove_all(dir);
}

// bf16 autocast with float32 master weights: the same draws give losses within bf16's rounding of
// fp32's, the weights and checkpoints stay float32, and a checkpoint resumes in either precision.
TEST(Trainer, Bf16TracksFp32AndItsCheckpointsAreFloat32) {
  const auto fp32_dir = temp_folder("fp32"), bf16_dir = temp_folder("bf16");
  std::atomic<bool> stop{false};
  RecordingSink fp32, bf16;
  auto config = tiny_config(fp32_dir);
  config["unet"]["dropout"] = 0.0;
  config["train"]["steps"] = 6;
  DenoiserTrainer(DenoiserTrainConfig::from_json(config), parts(std::make_shared<Unweighted>()), fp32)
      .run(stop);
  config["output"] = bf16_dir;
  config["precision"] = "bf16";
  DenoiserTrainer trainer(DenoiserTrainConfig::from_json(config), parts(std::make_shared<Unweighted>()),
                          bf16);
  trainer.run(stop);
  ASSERT_EQ(fp32.losses.size(), 6u);
  ASSERT_EQ(bf16.losses.size(), 6u);
  double largest = 0;
  for (std::size_t i = 0; i < 6; ++i)
    largest = std::max(largest, std::abs(bf16.losses[i] - fp32.losses[i]) / fp32.losses[i]);
  // bf16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.2% per product); through the network's
  // layers and 6 optimiser steps the loss could move by a few per cent. This young model's eps is
  // small (its output layer starts at zero), so it moves by 1.3e-4. Not zero: bf16 ran.
  EXPECT_LT(largest, 0.05);
  EXPECT_GT(largest, 1e-6);
  for (const auto& p : trainer.model()->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
  EXPECT_EQ(trainer.ema_model()->parameters().front().scalar_type(), torch::kFloat32);
  // The bf16 run's checkpoint resumes in fp32 (and the other way round): precision is not its identity.
  config["precision"] = "fp32";
  config["train"]["steps"] = 8;
  RecordingSink more;
  DenoiserTrainer resumed(DenoiserTrainConfig::from_json(config), parts(std::make_shared<Unweighted>()),
                          more);
  EXPECT_EQ(resumed.resume(), 6);
  EXPECT_FALSE(resumed.run(stop).interrupted);
  EXPECT_EQ(more.losses.size(), 2u);
  std::filesystem::remove_all(fp32_dir);
  std::filesystem::remove_all(bf16_dir);
}

TEST(TrainConfig, PrecisionIsParsedAndRecorded) {
  auto config = tiny_config("out");
  EXPECT_EQ(DenoiserTrainConfig::from_json(config).resolved["precision"], "fp32");
  config["precision"] = "bf16";
  const auto parsed = DenoiserTrainConfig::from_json(config);
  EXPECT_EQ(parsed.precision, Precision::bf16);
  EXPECT_EQ(parsed.resolved["precision"], "bf16");
  config["precision"] = "bfloat16";
  try {
    DenoiserTrainConfig::from_json(config);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("precision: expected \"auto\", \"fp32\", \"bf16\" or \"fp16\""),
              std::string::npos)
        << e.what();
  }
  config["precision"] = 16;
  EXPECT_THROW(DenoiserTrainConfig::from_json(config), ConfigError);
  // "auto" is resolved for the run's device when the config is read, and recorded resolved.
  config["precision"] = "auto";
  config["device"] = "cpu";
  const auto automatic = DenoiserTrainConfig::from_json(config);
  EXPECT_EQ(automatic.precision, auto_precision(torch::kCPU));
  EXPECT_EQ(automatic.resolved["precision"], to_string(auto_precision(torch::kCPU)));
  // fp16 autocast needs CUDA: refused when the trainer is built on the CPU, before any step.
  config["precision"] = "fp16";
  config["device"] = "cpu";
  config["output"] = temp_folder("fp16");
  RecordingSink sink;
  try {
    DenoiserTrainer(DenoiserTrainConfig::from_json(config), parts(std::make_shared<Unweighted>()), sink);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("precision"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(config["output"].get<std::string>()));
}

TEST(Trainer, ResumingWithAnotherConfigIsRefused) {
  const auto dir = temp_folder("mismatch");
  std::atomic<bool> stop{false};
  RecordingSink sink;
  auto config = tiny_config(dir);
  config["train"]["steps"] = 5;
  DenoiserTrainer(DenoiserTrainConfig::from_json(config), parts(std::make_shared<Unweighted>()), sink)
      .run(stop);
  config["train"]["steps"] = 8;  // allowed
  DenoiserTrainer longer(DenoiserTrainConfig::from_json(config), parts(std::make_shared<Unweighted>()), sink);
  EXPECT_EQ(longer.resume(), 5);
  config["train"]["lr"] = 0.5;  // not allowed
  DenoiserTrainer other(DenoiserTrainConfig::from_json(config), parts(std::make_shared<Unweighted>()), sink);
  try {
    other.resume();
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/train/lr"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Trainer, ANonFiniteLossStopsCleanlyAndKeepsTheLastCheckpoint) {
  const auto dir = temp_folder("nan");
  auto config = tiny_config(dir);
  config["train"] = {
      {"steps", 50}, {"batch_size", 4}, {"lr", 1e30}, {"checkpoint_every", 1}, {"grad_clip", 0.0}};
  RecordingSink sink;
  DenoiserTrainer trainer(DenoiserTrainConfig::from_json(config), parts(std::make_shared<Unweighted>()),
                          sink);
  std::atomic<bool> stop{false};
  try {
    trainer.run(stop);
    FAIL() << "expected a DivergenceError";
  } catch (const DivergenceError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("diverged at step"), std::string::npos) << message;
    EXPECT_NE(message.find("last good checkpoint"), std::string::npos) << message;
  }
  ASSERT_FALSE(sink.steps.empty());
  // The checkpoint holds the last completed step, and resuming from it works.
  RecordingSink again;
  DenoiserTrainer resumed(DenoiserTrainConfig::from_json(config), parts(std::make_shared<Unweighted>()),
                          again);
  EXPECT_EQ(resumed.resume(), sink.steps.back());
  std::filesystem::remove_all(dir);
}

TEST(TrainConfig, ErrorsNameThePathAndTheFix) {
  auto config = tiny_config("out");
  config["train"]["learning_rate"] = 1e-3;
  try {
    DenoiserTrainConfig::from_json(config);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.learning_rate"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("lr"), std::string::npos) << e.what();
  }
  auto misspelt = tiny_config("out");
  misspelt["schedul"] = "linear";
  try {
    DenoiserTrainConfig::from_json(misspelt);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean \"schedule\""), std::string::npos) << e.what();
  }
  auto no_data = tiny_config("out");
  no_data.erase("data");
  EXPECT_THROW(DenoiserTrainConfig::from_json(no_data), ConfigError);
  auto bad_prediction = tiny_config("out");
  bad_prediction["prediction"] = "epsilon";
  EXPECT_THROW(DenoiserTrainConfig::from_json(bad_prediction), ConfigError);
}

TEST(Trainer, MismatchedDataAndUNetAreRejectedBeforeTraining) {
  auto config = tiny_config(temp_folder("mismatch_data"));
  config["unet"]["in_channels"] = 3;
  RecordingSink sink;
  EXPECT_THROW(
      DenoiserTrainer(DenoiserTrainConfig::from_json(config), parts(std::make_shared<Unweighted>()), sink),
      ConfigError);
}

}  // namespace
}  // namespace latentlab

namespace latentlab {
namespace {

TEST(CsvMetricSink, ResumptionDropsLaterAndTornRows) {
  const auto dir = std::filesystem::temp_directory_path() / ("latentlab_csv_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    CsvMetricSink sink(dir);
    for (std::int64_t step = 1; step <= 5; ++step) sink.write("train", step, {{"loss", 0.5}, {"lr", 1e-4}});
  }
  {  // a process killed mid-write leaves a partial row
    std::ofstream(dir / "train.csv", std::ios::app) << "6,0.4";
  }
  CsvMetricSink sink(dir);
  sink.truncate_after(3);
  sink.write("train", 4, {{"loss", 0.25}, {"lr", 1e-4}});
  sink.flush();
  std::ifstream in(dir / "train.csv");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "step,loss,lr\n1,0.5,0.0001\n2,0.5,0.0001\n3,0.5,0.0001\n4,0.25,0.0001\n");
  std::filesystem::remove_all(dir);
}

TEST(CsvMetricSink, RowsKeepTheHeadersColumnsByName) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("latentlab_csv_cols_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    CsvMetricSink sink(dir);
    sink.write("train", 1, {{"loss", 1.0}, {"d_loss", 2.0}});
    sink.write("train", 2, {{"d_loss", 4.0}, {"loss", 3.0}});                       // another order
    sink.write("train", 3, {{"loss", 5.0}});                                        // a value missing: nan
    EXPECT_THROW(sink.write("train", 4, {{"loss", 1.0}, {"g_loss", 1.0}}), Error);  // not a column
  }
  CsvMetricSink resumed(dir);  // a resumed run writes under the existing header
  resumed.write("train", 4, {{"d_loss", 8.0}, {"loss", 7.0}});
  resumed.flush();
  std::ifstream in(dir / "train.csv");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "step,loss,d_loss\n1,1,2\n2,3,4\n3,5,nan\n4,7,8\n");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace latentlab
