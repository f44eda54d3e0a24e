#include "latentlab/stages/denoiser_stage.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include "latentlab/conditioner.hpp"
#include "latentlab/conditioning/conditioner_set.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/latent/latent_codec.hpp"
#include "latentlab/train/denoiser_trainer.hpp"
#include "latentlab/weighting.hpp"
#include "run_trainer.hpp"

namespace latentlab::stages {

namespace {

// The conditioners' initial weights (drawn from the default generator, seeded from the run's seed).
constexpr std::uint64_t kConditionerInitStream = 0x632be59bd9b4e019ULL;

// The set-up the conditioners get from the data and the first stage (docs/conditioning.md).
ConditionerSetup conditioner_setup(const Dataset& data, const std::shared_ptr<LatentCodec>& codec) {
  ConditionerSetup setup;
  setup.image_channels = data.channels();
  setup.resolution = data.resolution();
  const auto f = codec ? codec->downsampling_factor() : 1;
  setup.latent_channels = codec ? codec->latent_channels() : data.channels();
  setup.latent_size = data.resolution() / f;
  setup.num_classes = data.num_classes();
  setup.class_names = data.class_names();
  if (data.has_captions()) {
    setup.captions.reserve(static_cast<std::size_t>(data.size()));
    for (std::int64_t i = 0; i < data.size(); ++i) setup.captions.push_back(data.caption(i));
  }
  setup.encode = latent_encoder(codec);
  return setup;
}

}  // namespace

DenoiserStage::DenoiserStage(DenoiserTrainConfig config, const registry::Registry& registry)
    : config_(std::move(config)), registry_(registry) {
  auto& c = config_;
  c.data.params = registry.resolved_params(Dataset::kKind, c.data.name, c.data.params, "data.params");
  registry.resolved_params(Dataset::kKind, c.data.name, c.held_out_params(), "eval.data_params");
  c.schedule.params =
      registry.resolved_params(Schedule::kKind, c.schedule.name, c.schedule.params, "schedule.params");
  c.weighting.params = registry.resolved_params(LossWeighting::kKind, c.weighting.name, c.weighting.params,
                                                "weighting.params");
  c.resolved["data"]["params"] = c.data.params;
  c.resolved["schedule"]["params"] = c.schedule.params;
  c.resolved["weighting"]["params"] = c.weighting.params;
  // What the conditioners read must be in the data: checked now, so that a sweep stops before it
  // trains an autoencoder for a denoiser that cannot start.
  std::shared_ptr<Dataset> data;
  for (std::size_t i = 0; i < c.conditioners.size(); ++i) {
    auto& plugin = c.conditioners[i].plugin;
    const auto path = conditioner_path(i, c.conditioners.size());
    const auto conditioner = registry.create<Conditioner>(plugin.name, plugin.params, path + ".params");
    plugin.params = conditioner.params;
    c.resolved["conditioner"][i]["params"] = plugin.params;
    const auto source = conditioner.object->source();
    if (source == ConditionSource::Images) continue;
    if (!data) data = registry.create<Dataset>(c.data.name, c.data.params, "data.params").object;
    if (source == ConditionSource::Labels && data->num_classes() == 0)
      throw ConfigError(path + ": '" + plugin.name + "' reads class labels, and dataset '" + c.data.name +
                        "' has none with these parameters (an image folder needs \"labels\": true and one "
                        "sub-folder per class)");
    if (source == ConditionSource::Captions && !data->has_captions())
      throw ConfigError(path + ": '" + plugin.name + "' reads captions, and dataset '" + c.data.name +
                        "' has none with these parameters (fashion-mnist: \"captions\": \"templates\"; an "
                        "image folder: \"captions\": a captions file)");
  }
}

nlohmann::json DenoiserStage::config() const {
  return without_run_settings(config_.resolved, {"autoencoder"});  // the autoencoder is an input
}

nlohmann::json DenoiserStage::plugins() const {
  auto records =
      nlohmann::json::array({plugin_record(registry_, Dataset::kKind, config_.data.name),
                             plugin_record(registry_, Schedule::kKind, config_.schedule.name),
                             plugin_record(registry_, LossWeighting::kKind, config_.weighting.name)});
  for (const auto& choice : config_.conditioners)
    records.push_back(plugin_record(registry_, Conditioner::kKind, choice.plugin.name));
  return records;
}

StageOutcome DenoiserStage::run(const StageContext& context, const std::filesystem::path& dir,
                                bool resume) const {
  auto config = config_;
  DenoiserTrainerParts parts;
  parts.train_data = registry_.create<Dataset>(config.data.name, config.data.params, "data.params");
  parts.held_out = registry_.create<Dataset>(config.data.name, config.held_out_params(), "eval.data_params");
  parts.schedule =
      registry_.create<Schedule>(config.schedule.name, config.schedule.params, "schedule.params");
  parts.weighting =
      registry_.create<LossWeighting>(config.weighting.name, config.weighting.params, "weighting.params");
  if (!config.autoencoder.empty()) {  // on the CPU here; the trainer moves it to the run's device
    // A resumed run uses the copy in its folder: the latents it started with.
    const auto copy = dir / "autoencoder.pt";
    const bool own = resume && std::filesystem::exists(copy);
    parts.codec = LatentCodec::load(
        own ? copy : std::filesystem::path(config.autoencoder),
        [this](const std::string& name, const nlohmann::json& params) {
          return registry_.create<Autoencoder>(name, params, "autoencoder.params").object;
        },
        torch::kCPU);
  }
  if (config.derive_unet_channels) {
    const auto channels = parts.codec ? parts.codec->latent_channels() : parts.train_data->channels();
    config.unet.in_channels = config.unet.out_channels = channels;
    config.resolved["unet"]["in_channels"] = config.resolved["unet"]["out_channels"] = channels;
  }
  if (!config.conditioners.empty()) {
    torch::manual_seed(config.seed ^ kConditionerInitStream);  // the same seed, the same initial weights
    parts.conditioners = std::make_shared<ConditionerSet>(config.conditioners, conditioner_factory(registry_),
                                                          conditioner_setup(*parts.train_data, parts.codec));
    derive_conditioned_unet(config, *parts.conditioners);
  }
  return detail::run_trainer<DenoiserTrainer>(config, parts, context, dir, resume);
}

std::string conditioner_path(std::size_t index, std::size_t count) {
  return count == 1 ? std::string("conditioner") : "conditioner[" + std::to_string(index) + "]";
}

ConditionerSet::Factory conditioner_factory(const registry::Registry& registry) {
  return [&registry](const PluginChoice& choice, const std::string& path) {
    return registry.create<Conditioner>(choice.name, choice.params, path).object;
  };
}

}  // namespace latentlab::stages
