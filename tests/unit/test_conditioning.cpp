// Conditioning (docs/conditioning.md): the word tokenizer, masks and captions; every built-in
// conditioner through the conformance checks; the conditioner set; condition dropout; and a
// class-conditional denoiser trained by the denoiser stage: its conditioner trains and resumes with
// it, dropout trains only the null class when p_uncond is 1, and classifier-free guidance through the
// trained UNet gives the conditional prediction at s = 1 and the unconditional one at s = 0.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "latentlab/conditioner.hpp"
#include "latentlab/conditioning/captions.hpp"
#include "latentlab/conditioning/conditioner_set.hpp"
#include "latentlab/conditioning/masks.hpp"
#include "latentlab/conditioning/tokenizer.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/error.hpp"
#include "latentlab/guider.hpp"
#include "latentlab/io/images.hpp"
#include "latentlab/plugin_checks.hpp"
#include "latentlab/precision.hpp"
#include "latentlab/schedule.hpp"
#include "latentlab/stages/denoiser_stage.hpp"
#include "latentlab/stages/sample_stage.hpp"
#include "latentlab/train/denoiser_file.hpp"
#include "support/builtin_plugins.hpp"

namespace latentlab {
namespace {

using nlohmann::json;
using testing::builtin_plugins;
using testing::make_builtin;

std::filesystem::path temp_folder(const std::string& name) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("latentlab_conditioning_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path;
}

// ---- the word tokenizer ----

TEST(WordTokenizer, SplitsLowerCasedWordsOfLettersAndDigits) {
  EXPECT_EQ(WordTokenizer::words("A T-shirt/top, size 42!"),
            (std::vector<std::string>{"a", "t", "shirt", "top", "size", "42"}));
  EXPECT_TRUE(WordTokenizer::words(" ,;").empty());
}

TEST(WordTokenizer, VocabularyByFrequencyThenAlphabetCapped) {
  const auto tokenizer = WordTokenizer::build({"a coat", "a bag", "a coat", "zebra"}, 3);
  // a (3), coat (2), then bag and zebra (1 each): bag first, and the cap of 3 drops zebra.
  EXPECT_EQ(tokenizer.vocabulary(), (std::vector<std::string>{"a", "coat", "bag"}));
  EXPECT_EQ(tokenizer.size(), WordTokenizer::kSpecials + 3);
  EXPECT_EQ(WordTokenizer::build({"a coat", "a bag", "a coat"}, 10, 2).vocabulary(),
            (std::vector<std::string>{"a", "coat"}));
}

TEST(WordTokenizer, EncodesWithStartEndPaddingAndLeavesOutUnknownWords) {
  const auto tokenizer = WordTokenizer::build({"a coat", "a bag"}, 10);
  const auto a = WordTokenizer::kSpecials + 0, bag = WordTokenizer::kSpecials + 1,
             coat = WordTokenizer::kSpecials + 2;
  EXPECT_EQ(
      tokenizer.encode("A bag", 5),
      (std::vector<std::int64_t>{WordTokenizer::kStart, a, bag, WordTokenizer::kEnd, WordTokenizer::kPad}));
  // Words outside the vocabulary are left out.
  EXPECT_EQ(tokenizer.encode("a red coat", 6),
            (std::vector<std::int64_t>{WordTokenizer::kStart, a, coat, WordTokenizer::kEnd,
                                       WordTokenizer::kPad, WordTokenizer::kPad}));
  // Truncated to fit the end token; the empty caption is the unconditional value.
  EXPECT_EQ(tokenizer.encode("a bag a bag", 4),
            (std::vector<std::int64_t>{WordTokenizer::kStart, a, bag, WordTokenizer::kEnd}));
  EXPECT_EQ(tokenizer.encode("", 3),
            (std::vector<std::int64_t>{WordTokenizer::kStart, WordTokenizer::kEnd, WordTokenizer::kPad}));
  const auto batch = tokenizer.encode(std::vector<std::string>{"a bag", "coat"}, 4);
  EXPECT_EQ(batch.sizes(), (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(batch[1][1].item<std::int64_t>(), coat);
  EXPECT_THROW(tokenizer.encode("a", 1), ConfigError);
}

TEST(WordTokenizer, TextRoundTripAndCorruptText) {
  const auto tokenizer = WordTokenizer::build({"a photo of a coat", "a bag"}, 100);
  const auto again = WordTokenizer::from_text(tokenizer.to_text());
  EXPECT_EQ(again.vocabulary(), tokenizer.vocabulary());
  EXPECT_EQ(again.encode("a photo of a bag", 8), tokenizer.encode("a photo of a bag", 8));
  EXPECT_THROW(WordTokenizer::from_text("not a vocabulary\na\n"), Error);
  EXPECT_THROW(WordTokenizer::from_text(tokenizer.to_text() + "Two words\n"), Error);
  EXPECT_THROW(WordTokenizer::from_text(tokenizer.to_text() + "coat\n"), Error);  // twice
}

// ---- masks and captions ----

TEST(Masks, SeededBinaryAndNeitherEmptyNorFull) {
  for (const auto shape : {MaskShape::Boxes, MaskShape::Strokes, MaskShape::Mixed}) {
    auto g1 = at::make_generator<at::CPUGeneratorImpl>(7), g2 = at::make_generator<at::CPUGeneratorImpl>(7),
         g3 = at::make_generator<at::CPUGeneratorImpl>(8);
    const auto a = make_masks(shape, 64, 32, 32, g1), b = make_masks(shape, 64, 32, 32, g2),
               c = make_masks(shape, 64, 32, 32, g3);
    SCOPED_TRACE(to_string(shape));
    EXPECT_EQ(a.sizes(), (std::vector<std::int64_t>{64, 1, 32, 32}));
    EXPECT_TRUE(torch::equal(a, b));
    EXPECT_FALSE(torch::equal(a, c));
    EXPECT_TRUE(a.eq(0).logical_or(a.eq(1)).all().item<bool>());
    const auto covered = a.mean({1, 2, 3});
    EXPECT_GT(covered.min().item<double>(), 0.0);
    EXPECT_LT(covered.max().item<double>(), 1.0);
    // Boxes cover 1/16 to 1/2 of the image; strokes are thinner: on average between 2% and 60%.
    EXPECT_GT(covered.mean().item<double>(), 0.02);
    EXPECT_LT(covered.mean().item<double>(), 0.6);
  }
  EXPECT_EQ(mask_shape_from_string("strokes"), MaskShape::Strokes);
  EXPECT_THROW(mask_shape_from_string("circles"), ConfigError);
}

TEST(Captions, NameTheClassWithItsArticle) {
  EXPECT_EQ(caption_noun("T-shirt/top"), "t-shirt or top");
  EXPECT_EQ(caption_noun("Ankle_boot"), "ankle boot");
  EXPECT_EQ(fill_caption("a photo of {}", "Ankle boot"), "a photo of an ankle boot");
  EXPECT_EQ(fill_caption("{}", "Coat"), "a coat");
  EXPECT_THROW(fill_caption("no placeholder", "Coat"), Error);
  EXPECT_EQ(example_caption(5, "Coat"), example_caption(5, "Coat"));
  std::set<std::string> seen;
  for (std::int64_t i = 0; i < 200; ++i) seen.insert(example_caption(i, "Coat"));
  EXPECT_EQ(seen.size(), training_caption_templates().size());  // every template is used
  // Each held-out template has a word no training caption has: the evaluation's captions are new.
  std::set<std::string> training_words;
  for (const auto& t : training_caption_templates())
    for (const auto& w : WordTokenizer::words(fill_caption(t, "Coat"))) training_words.insert(w);
  for (const auto& t : held_out_caption_templates()) {
    bool novel = false;
    for (const auto& w : WordTokenizer::words(fill_caption(t, "Coat")))
      novel = novel || !training_words.count(w);
    EXPECT_TRUE(novel) << t;
  }
}

TEST(Datasets, CaptionedFashionMnistCaptionsEveryExample) {
  std::shared_ptr<Dataset> data;
  try {
    data = make_builtin<Dataset>("fashion-mnist", json{{"limit", 40}, {"captions", "templates"}});
  } catch (const Error& e) {
    GTEST_SKIP() << "Fashion-MNIST is not installed: " << e.what();
  }
  ASSERT_TRUE(data->has_captions());
  const auto batch = data->get_batch({0, 3, 39});
  ASSERT_EQ(batch.captions.size(), 3u);
  const auto names = data->class_names();
  for (std::size_t i = 0; i < 3; ++i) {
    const auto label = batch.labels[static_cast<std::int64_t>(i)].item<std::int64_t>();
    EXPECT_NE(batch.captions[i].find(caption_noun(names[static_cast<std::size_t>(label)])), std::string::npos)
        << batch.captions[i];
  }
  EXPECT_EQ(data->caption(3), batch.captions[1]);
  const auto plain = make_builtin<Dataset>("fashion-mnist", json{{"limit", 4}});
  EXPECT_FALSE(plain->has_captions());
  EXPECT_TRUE(plain->get_batch({0}).captions.empty());
  EXPECT_THROW(plain->caption(0), Error);
}

TEST(Datasets, ImageFolderReadsACaptionsFile) {
  const auto folder = temp_folder("captions");
  // Two small grey images, written as PNG grids of one image each.
  io::write_png_grid(folder / "a.png", torch::zeros({1, 1, 4, 4}), 1);
  io::write_png_grid(folder / "b.png", torch::ones({1, 1, 4, 4}), 1);
  {
    std::ofstream captions(folder / "captions.txt");
    captions << "# file\tcaption\nb.png\ta grey square\na.png\tanother grey square\n";
  }
  const json params = {
      {"root", folder.string()}, {"resolution", 4}, {"channels", 1}, {"captions", "captions.txt"}};
  const auto data = make_builtin<Dataset>("image-folder", params);
  EXPECT_EQ(data->caption(0), "another grey square");  // a.png sorts first
  EXPECT_EQ(data->get_batch({1}).captions, (std::vector<std::string>{"a grey square"}));
  {
    std::ofstream captions(folder / "partial.txt");
    captions << "a.png\tonly one\n";
  }
  auto partial = params;
  partial["captions"] = "partial.txt";
  try {
    make_builtin<Dataset>("image-folder", partial);
    ADD_FAILURE() << "an image without a caption was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("no caption for b.png"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(folder);
}

// ---- the built-in conditioners ----

class BuiltinConditioner : public ::testing::TestWithParam<std::string> {};

TEST_P(BuiltinConditioner, PassesTheConformanceChecks) {
  const auto results = check_conditioner([] { return make_builtin<Conditioner>(GetParam()); });
  ASSERT_FALSE(results.empty());
  for (const auto& result : results) EXPECT_TRUE(result.passed) << result.name << ": " << result.detail;
}

INSTANTIATE_TEST_SUITE_P(Conditioners, BuiltinConditioner,
                         ::testing::Values("class", "tokens", "lowres", "masked"));

ConditionerSetup small_setup() {
  ConditionerSetup setup;
  setup.image_channels = 1;
  setup.resolution = 16;
  setup.latent_channels = 4;
  setup.latent_size = 4;
  setup.num_classes = 3;
  setup.captions = {"a coat", "a bag"};
  setup.encode = [](const torch::Tensor& x) {
    return torch::nn::functional::avg_pool2d(x, torch::nn::functional::AvgPool2dFuncOptions(4))
        .repeat({1, 4, 1, 1});
  };
  return setup;
}

ConditionerSet::Factory factory() {
  return [](const PluginChoice& choice, const std::string& path) {
    return builtin_plugins().create<Conditioner>(choice.name, choice.params, path).object;
  };
}

TEST(Conditioners, ShapesAndUnconditionalValues) {
  const auto setup = small_setup();
  ConditionInputs inputs;
  inputs.labels = torch::tensor({0, 2}, torch::kInt64);
  inputs.captions = {"a coat", "a bag"};
  // Smooth images (a ramp, a different one per example), so that downsampling has a known answer.
  const auto ramp = torch::arange(16, torch::kFloat32) / 15;
  inputs.images = torch::stack({(ramp.view({16, 1}) + ramp.view({1, 16})) - 1,
                                0.8 * (ramp.view({16, 1}) - ramp.view({1, 16}))})
                      .unsqueeze(1);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(1);

  auto klass = make_builtin<Conditioner>("class", json{{"dim", 8}});
  klass->setup(setup);
  EXPECT_EQ(klass->encode(inputs).sizes(), (std::vector<std::int64_t>{2, 1, 8}));
  auto text = make_builtin<Conditioner>("tokens", json{{"dim", 16}, {"heads", 2}, {"max_length", 6}});
  text->setup(setup);
  const auto tokens = text->encode(inputs);
  EXPECT_EQ(tokens.sizes(), (std::vector<std::int64_t>{2, 6, 16}));
  {  // under bf16 autocast (its LayerNorms in float32, docs/precision.md): close to float32 (measured
     // 0.9%), not equal
    const AutocastGuard autocast(torch::kCPU, Precision::bf16);
    const auto reduced = full_precision(text->encode(inputs));
    const double error = ((reduced - tokens).norm() / tokens.norm()).item<double>();
    EXPECT_LT(error, 0.05);
    EXPECT_GT(error, 1e-5);
  }
  auto lowres = make_builtin<Conditioner>("lowres", json{{"factor", 4}});
  lowres->setup(setup);
  EXPECT_EQ(lowres->width(), 1);
  const auto low = lowres->encode(inputs);
  EXPECT_EQ(low.sizes(), (std::vector<std::int64_t>{2, 1, 4, 4}));
  // With k = f the low-resolution image is the latent grid: on a smooth image it follows the means of
  // the 4x4 cells (not exactly: the antialiasing kernel spans 8 pixels and is cut at the borders).
  const auto cell_means =
      torch::nn::functional::avg_pool2d(inputs.images, torch::nn::functional::AvgPool2dFuncOptions(4));
  for (std::int64_t b = 0; b < 2; ++b) {
    const auto x = low[b].flatten() - low[b].mean(), y = cell_means[b].flatten() - cell_means[b].mean();
    EXPECT_GT((x * y).sum().item<double>() / (x.norm() * y.norm()).item<double>(), 0.95) << b;
    EXPECT_GT(low[b].std().item<double>(), 0.5 * cell_means[b].std().item<double>()) << b;
  }
  auto masked = make_builtin<Conditioner>("masked", json{{"masks", "boxes"}});
  masked->setup(setup);
  EXPECT_EQ(masked->width(), 5);  // the latent's 4 channels and the mask
  auto with_masks = inputs;
  masked->complete(with_masks, generator);
  ASSERT_TRUE(with_masks.masks.defined());
  const auto map = masked->encode(with_masks);
  EXPECT_EQ(map.sizes(), (std::vector<std::int64_t>{2, 5, 4, 4}));
  // The last channel is the mask at latent resolution: a cell is masked when any of its pixels is.
  const auto cells =
      torch::nn::functional::max_pool2d(with_masks.masks, torch::nn::functional::MaxPool2dFuncOptions(4));
  EXPECT_TRUE(torch::equal(map.slice(1, 4, 5), cells));
  // The latent channels encode the image with the masked pixels (mask 1: to be generated) set to 0.
  const auto kept = inputs.images * (1 - with_masks.masks);
  EXPECT_TRUE(torch::allclose(map.slice(1, 0, 4), setup.encode(kept)));
  EXPECT_FALSE(torch::allclose(map.slice(1, 0, 4), setup.encode(inputs.images)));
  // Unconditional: the null class, the empty caption, zeros.
  auto dropped = with_masks;
  dropped.drop = torch::tensor({true, false});
  EXPECT_TRUE(torch::equal(lowres->encode(dropped)[0], torch::zeros({1, 4, 4})));
  EXPECT_TRUE(torch::equal(masked->encode(dropped)[0], torch::zeros({5, 4, 4})));
  EXPECT_TRUE(torch::equal(lowres->encode(dropped)[1], low[1]));
}

TEST(Conditioners, DataWithoutWhatTheyNeedIsAConfigError) {
  auto setup = small_setup();
  setup.num_classes = 0;
  setup.captions.clear();
  EXPECT_THROW(make_builtin<Conditioner>("class")->setup(setup), ConfigError);
  EXPECT_THROW(make_builtin<Conditioner>("tokens")->setup(setup), ConfigError);
  setup.resolution = 18;
  EXPECT_THROW(make_builtin<Conditioner>("lowres", json{{"factor", 4}})->setup(setup), ConfigError);
  EXPECT_THROW(make_builtin<Conditioner>("tokens", json{{"dim", 10}, {"heads", 4}}), ConfigError);
}

TEST(ConditionerSet, ModesChannelsAndCopies) {
  const auto setup = small_setup();
  ConditionerSet hybrid({{{"class", json{{"dim", 8}}}, false}, {{"lowres", json{{"factor", 4}}}, false}},
                        factory(), setup);
  EXPECT_EQ(hybrid.mode(), "hybrid");
  EXPECT_EQ(hybrid.context_dim(), 8);
  EXPECT_EQ(hybrid.concat_channels(), 1);
  EXPECT_EQ(hybrid.task(), "super_resolution");
  EXPECT_TRUE(hybrid.needs(ConditionSource::Labels));
  EXPECT_FALSE(hybrid.needs(ConditionSource::Captions));
  ConditionInputs inputs;
  inputs.labels = torch::tensor({1, 0}, torch::kInt64);
  inputs.images = torch::rand({2, 1, 16, 16});
  const auto cond = hybrid.encode(inputs);
  EXPECT_EQ(cond.context.sizes(), (std::vector<std::int64_t>{2, 1, 8}));
  EXPECT_EQ(cond.concat.sizes(), (std::vector<std::int64_t>{2, 1, 4, 4}));
  // Hybrid drops the tokens only: the unconditional half still sees the image.
  const auto uncond = hybrid.unconditional(inputs);
  EXPECT_FALSE(torch::equal(uncond.context, cond.context));
  EXPECT_TRUE(torch::equal(uncond.concat, cond.concat));
  const auto copy = hybrid.replicate();
  EXPECT_TRUE(torch::equal(copy->encode(inputs).context, cond.context));
  // Saved and read back into a new set.
  torch::serialize::OutputArchive out;
  hybrid.save(out, "conditioner_");
  std::ostringstream bytes;
  out.save_to(bytes);
  std::istringstream in_bytes(bytes.str());
  torch::serialize::InputArchive in;
  in.load_from(in_bytes);
  ConditionerSet loaded(hybrid.choices(), factory(), setup,
                        ConditionerSet::read_states(in, "conditioner_", 2));
  loaded.load(in, "conditioner_");
  EXPECT_TRUE(torch::equal(loaded.encode(inputs).context, cond.context));
  // Two token conditioners cannot share the UNet's cross-attention.
  try {
    ConditionerSet two({{{"class", json::object()}, false}, {{"tokens", json::object()}, false}}, factory(),
                       setup);
    ADD_FAILURE() << "two token conditioners were accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("conditioner[1]"), std::string::npos) << e.what();
  }
  // A set-up error names the conditioner and its parameter.
  auto many = setup;
  many.num_classes = 12;
  try {
    ConditionerSet wrong({{{"lowres", json::object()}, false}, {{"class", json{{"num_classes", 5}}}, false}},
                         factory(), many);
    ADD_FAILURE() << "12 classes in a table of 5 were accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "conditioner[1].params: conditioner 'class': num_classes: the data has 12"),
              std::string::npos)
        << e.what();
  }
}

// The dropout mask is Bernoulli(p) per example. With a fixed seed the test is deterministic; the
// bound (6 binomial standard deviations) would hold for any seed but about one in 10^9.
TEST(ConditionDropout, HonoursTheRate) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(11);
  const std::int64_t n = 200000;
  for (const double p : {0.0, 0.1, 0.5, 1.0}) {
    const auto dropped = condition_dropout(n, p, generator).sum().item<double>();
    const double sd = std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(dropped, n * p, 6 * sd + 1e-9) << "p = " << p;
  }
  EXPECT_THROW(condition_dropout(4, 1.5, generator), ConfigError);
}

// ---- a class-conditional denoiser, trained by the denoiser stage ----

class ClassConditional : public ::testing::Test {
 protected:
  // A tiny pixel-space model on 16x16 Fashion-MNIST with the `class` conditioner.
  static json spec(double p_uncond, std::int64_t steps) {
    auto config = json::parse(R"({
      "output": "unused", "seed": 5,
      "data": {"dataset": "fashion-mnist", "params": {"resolution": 16, "fit": "resize", "limit": 256}},
      "unet": {"model_channels": 32, "channel_mult": [1, 2], "num_res_blocks": 1,
               "attention_resolutions": [2], "num_head_channels": 32},
      "conditioner": {"name": "class", "params": {"dim": 8}},
      "train": {"batch_size": 16, "log_every": 5, "checkpoint_every": 5, "ema_decay": 0.9, "lr": 1e-2},
      "eval": {"every": 0, "samples": 16, "strata": 1, "batch_size": 16}
    })");
    config["train"]["p_uncond"] = p_uncond;
    config["train"]["steps"] = steps;
    return config;
  }

  void SetUp() override {
    try {
      make_builtin<Dataset>("fashion-mnist", json{{"limit", 1}});
    } catch (const Error& e) {
      GTEST_SKIP() << "Fashion-MNIST is not installed: " << e.what();
    }
    folder_ = temp_folder(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override { std::filesystem::remove_all(folder_); }

  stages::StageOutcome train(const json& config, const std::string& name, bool resume = false) {
    const stages::DenoiserStage stage(DenoiserTrainConfig::from_json(config), builtin_plugins());
    const stages::StageContext context{builtin_plugins(), torch::kCPU};
    return stage.run(context, folder_ / name, resume);
  }

  LoadedDenoiser load(const std::string& file) {
    DenoiserLoadOptions options;
    options.conditioner_factory = stages::conditioner_factory(builtin_plugins());
    return load_denoiser(folder_ / file, torch::kCPU, options);
  }

  std::filesystem::path folder_;
};

TEST_F(ClassConditional, TheStageDerivesCrossAttentionAndSavesTheConditioner) {
  train(spec(0.2, 6), "run");
  std::ifstream in(folder_ / "run" / "config.json");
  const auto config = json::parse(in);
  EXPECT_EQ(config["unet"]["context_dim"], 8);
  EXPECT_EQ(config["unet"]["use_spatial_transformer"], true);
  EXPECT_EQ(config["conditioner"][0]["name"], "class");
  EXPECT_EQ(config["train"]["p_uncond"], 0.2);
  const auto loaded = load("run/denoiser.pt");
  ASSERT_TRUE(loaded.conditioners);
  EXPECT_EQ(loaded.conditioners->mode(), "crossattn");
  // Without a way to build conditioners, a conditioned model is refused by name.
  try {
    load_denoiser(folder_ / "run" / "denoiser.pt", torch::kCPU);
    ADD_FAILURE() << "loaded without conditioners";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conditioner 'class'"), std::string::npos) << e.what();
  }
}

TEST_F(ClassConditional, ResumingGivesTheSameConditionerAsOneRun) {
  train(spec(0.3, 10), "whole");
  auto half = spec(0.3, 5);
  train(half, "split");
  train(spec(0.3, 10), "split", true);
  const auto a = load("whole/denoiser.pt"), b = load("split/denoiser.pt");
  const auto pa = a.conditioners->parameters(), pb = b.conditioners->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::allclose(pa[i], pb[i], 1e-6, 1e-7));
  const auto ua = a.model->parameters(), ub = b.model->parameters();
  for (std::size_t i = 0; i < ua.size(); ++i) EXPECT_TRUE(torch::allclose(ua[i], ub[i], 1e-6, 1e-7));
}

// With p_uncond = 1 every example trains the null class, so the class rows never get a gradient and
// stay as initialised (AdamW without weight decay leaves a parameter with zero gradients alone); with
// p_uncond = 0 the null row never does. Runs of 4 and 8 steps from the same seed start from the same
// table: what did not train is equal in both, what trained differs.
TEST_F(ClassConditional, DropoutTrainsTheNullClassOnly) {
  const auto table_after = [&](double p, std::int64_t steps) {
    auto config = spec(p, steps);
    config["train"]["ema_decay"] = 0.0;
    config["train"]["weight_decay"] = 0.0;
    const auto name = "p" + std::to_string(static_cast<int>(p)) + "_" + std::to_string(steps);
    train(config, name);
    return load(name + "/denoiser.pt").conditioners->parameters().front().clone();  // [classes + 1, d]
  };
  const auto always4 = table_after(1.0, 4), always8 = table_after(1.0, 8);
  const auto never4 = table_after(0.0, 4), never8 = table_after(0.0, 8);
  const auto null = always4.size(0) - 1;
  ASSERT_EQ(null, 10);  // Fashion-MNIST's classes, then the null class
  EXPECT_TRUE(torch::equal(always4.slice(0, 0, null), always8.slice(0, 0, null)));  // classes untrained
  EXPECT_FALSE(torch::equal(always4[null], always8[null]));                         // the null class trained
  EXPECT_TRUE(torch::equal(never4[null], never8[null]));                           // the null class untrained
  EXPECT_FALSE(torch::equal(never4.slice(0, 0, null), never8.slice(0, 0, null)));  // classes trained
}

TEST_F(ClassConditional, CfgIsConditionalAtOneUnconditionalAtZeroAndExtrapolatesBeyond) {
  train(spec(0.5, 6), "run");
  const auto loaded = load("run/denoiser.pt");
  auto model = loaded.model;
  ConditionInputs in;
  in.labels = torch::tensor({3, 7}, torch::kInt64);
  GuidanceInputs inputs;
  const auto schedule = make_builtin<Schedule>("linear");
  inputs.schedule = schedule.get();
  inputs.model = [model](const torch::Tensor& z, std::int64_t t, const Conditioning& c) mutable {
    return model->forward(z, torch::full({z.size(0)}, t, torch::kInt64), c.context, c.concat, c.y);
  };
  inputs.cond = loaded.conditioners->encode(in);
  inputs.uncond = loaded.conditioners->unconditional(in);
  torch::NoGradGuard no_grad;
  const auto z = torch::randn({2, 1, 16, 16});
  const auto conditional = inputs.model(z, 400, inputs.cond),
             unconditional = inputs.model(z, 400, inputs.uncond);
  EXPECT_FALSE(torch::allclose(conditional, unconditional));  // the class changes the prediction
  const auto at = [&](double scale) {
    const auto guider = builtin_plugins().create<Guider>("cfg", json{{"scale", scale}}, "guider").object;
    return guider->guide(inputs)(z, 400);
  };
  EXPECT_TRUE(torch::allclose(at(1.0), conditional, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(at(0.0), unconditional, 1e-5, 1e-6));
  // Beyond 1 it extrapolates: eps_u + s (eps_c - eps_u).
  EXPECT_TRUE(torch::allclose(at(3.0), unconditional + 3.0 * (conditional - unconditional), 1e-4, 1e-5));
  // Another class changes the conditional prediction.
  in.labels = torch::tensor({4, 7}, torch::kInt64);
  const auto other = inputs.model(z, 400, loaded.conditioners->encode(in));
  EXPECT_FALSE(torch::allclose(other[0], conditional[0]));
  EXPECT_TRUE(torch::allclose(other[1], conditional[1], 1e-5, 1e-6));
}

TEST_F(ClassConditional, SamplingWritesWhatTheTaskMetricsRead) {
  train(spec(0.5, 4), "run");
  const auto& registry = builtin_plugins();
  const stages::StageContext context{registry, torch::kCPU};
  const stages::SampleStage stage(
      stages::SampleConfig::from_json(json{{"steps", 3},
                                           {"count", 6},
                                           {"batch", 4},
                                           {"guider", {{"name", "cfg"}, {"params", {{"scale", 2}}}}}},
                                      "sample"),
      registry);
  stage.run(context, folder_ / "run", folder_ / "samples");
  EXPECT_TRUE(std::filesystem::exists(folder_ / "samples" / "samples.npy"));
  const auto labels = io::read_npy(folder_ / "samples" / "labels.npy");
  EXPECT_TRUE(torch::equal(labels, torch::arange(6, torch::kInt64)));
  std::ifstream in(folder_ / "samples" / "conditions.json");
  const auto conditions = json::parse(in);
  EXPECT_EQ(conditions["task"], "class");
  EXPECT_EQ(conditions["mode"], "crossattn");
}

}  // namespace
}  // namespace latentlab
