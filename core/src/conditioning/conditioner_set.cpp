#include "latentlab/conditioning/conditioner_set.hpp"

#include "latentlab/error.hpp"
#include "latentlab/precision.hpp"

namespace latentlab {

nlohmann::json ConditionerChoice::to_json() const {
  return {{"name", plugin.name}, {"params", plugin.params}, {"frozen", frozen}};
}

nlohmann::json setup_to_json(const ConditionerSetup& setup) {
  return {{"image_channels", setup.image_channels},   {"resolution", setup.resolution},
          {"latent_channels", setup.latent_channels}, {"latent_size", setup.latent_size},
          {"num_classes", setup.num_classes},         {"class_names", setup.class_names}};
}

ConditionerSetup setup_from_json(const nlohmann::json& json) {
  ConditionerSetup setup;
  try {
    setup.image_channels = json.at("image_channels").get<std::int64_t>();
    setup.resolution = json.at("resolution").get<std::int64_t>();
    setup.latent_channels = json.at("latent_channels").get<std::int64_t>();
    setup.latent_size = json.at("latent_size").get<std::int64_t>();
    setup.num_classes = json.at("num_classes").get<std::int64_t>();
    setup.class_names = json.at("class_names").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("the conditioners' saved set-up does not parse: ") + e.what());
  }
  return setup;
}

torch::Tensor condition_dropout(std::int64_t batch, double p, at::Generator& generator) {
  if (!(p >= 0.0 && p <= 1.0)) throw ConfigError("p_uncond must be in [0, 1], got " + std::to_string(p));
  return torch::rand({batch}, generator, torch::kFloat64).lt(p);
}

ConditionerSet::ConditionerSet(std::vector<ConditionerChoice> choices, Factory factory,
                               ConditionerSetup setup, const std::vector<std::string>& states)
    : choices_(std::move(choices)), factory_(std::move(factory)), setup_(std::move(setup)) {
  if (!states.empty() && states.size() != choices_.size())
    throw Error("conditioners: " + std::to_string(states.size()) + " saved states for " +
                std::to_string(choices_.size()) + " conditioners");
  if (choices_.size() > 2)
    throw ConfigError(
        "conditioner: at most two conditioners, one making tokens and one making maps (hybrid)");
  for (std::size_t i = 0; i < choices_.size(); ++i) {
    const auto path =
        choices_.size() == 1 ? std::string("conditioner") : "conditioner[" + std::to_string(i) + "]";
    auto conditioner = factory_(choices_[i].plugin, path + ".params");
    if (!states.empty()) conditioner->load_state(states[i]);
    try {
      conditioner->setup(setup_);
    } catch (const ConfigError& e) {  // the plugin names its parameter; this names the conditioner
      throw ConfigError(path + ".params: conditioner '" + choices_[i].plugin.name + "': " + e.what());
    }
    const auto index = static_cast<std::ptrdiff_t>(entries_.size());
    auto& slot = conditioner->output() == ConditionerOutput::Tokens ? tokens_ : maps_;
    if (slot >= 0)
      throw ConfigError(path + ": '" + choices_[i].plugin.name + "' makes " +
                        to_string(conditioner->output()) + " like '" +
                        entries_[static_cast<std::size_t>(slot)].choice.plugin.name +
                        "'; a denoiser takes at most one token conditioner (cross-attention) and one map "
                        "conditioner (concatenation)");
    slot = index;
    entries_.push_back({choices_[i], std::move(conditioner)});
  }
}

ConditionerSet::~ConditionerSet() = default;

std::unique_ptr<ConditionerSet> ConditionerSet::replicate() const {
  std::vector<std::string> states;
  for (const auto& entry : entries_) states.push_back(entry.conditioner->state());
  auto copy = std::make_unique<ConditionerSet>(choices_, factory_, setup_, states);
  const auto from = parameters();
  auto to = copy->parameters();
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < to.size(); ++i) to[i].copy_(from[i]);
  const auto from_buffers = buffers();
  auto to_buffers = copy->buffers();
  for (std::size_t i = 0; i < to_buffers.size(); ++i) to_buffers[i].copy_(from_buffers[i]);
  return copy;
}

std::string ConditionerSet::mode() const {
  if (tokens_ >= 0 && maps_ >= 0) return "hybrid";
  if (tokens_ >= 0) return "crossattn";
  if (maps_ >= 0) return "concat";
  return "none";
}

std::int64_t ConditionerSet::context_dim() const {
  return tokens_ < 0 ? 0 : entries_[static_cast<std::size_t>(tokens_)].conditioner->width();
}

std::int64_t ConditionerSet::concat_channels() const {
  return maps_ < 0 ? 0 : entries_[static_cast<std::size_t>(maps_)].conditioner->width();
}

bool ConditionerSet::needs(ConditionSource source) const {
  for (const auto& entry : entries_)
    if (entry.conditioner->source() == source) return true;
  return false;
}

std::string ConditionerSet::task() const {
  if (maps_ >= 0) return entries_[static_cast<std::size_t>(maps_)].conditioner->task();
  if (tokens_ >= 0) return entries_[static_cast<std::size_t>(tokens_)].conditioner->task();
  return {};
}

void ConditionerSet::complete(ConditionInputs& inputs, at::Generator& generator) const {
  for (const auto& entry : entries_) entry.conditioner->complete(inputs, generator);
}

Conditioning ConditionerSet::encode(const ConditionInputs& inputs) {
  Conditioning cond;
  if (tokens_ >= 0) cond.context = entries_[static_cast<std::size_t>(tokens_)].conditioner->encode(inputs);
  if (maps_ >= 0) {
    auto& maps = *entries_[static_cast<std::size_t>(maps_)].conditioner;
    if (tokens_ >= 0) {
      // Hybrid: dropout and the unconditional half drop the tokens only; the map (the image being
      // super-resolved or inpainted) stays, so guidance extrapolates along the tokens
      // (docs/conditioning.md).
      auto kept = inputs;
      kept.drop = torch::Tensor();
      cond.concat = maps.encode(kept);
    } else {
      cond.concat = maps.encode(inputs);
    }
  }
  // In float32 under autocast (docs/precision.md): the guiders combine them, the UNet's concatenation
  // joins them to a float32 z_t, and its cross-attention projections autocast them again.
  cond.context = full_precision(cond.context);
  cond.concat = full_precision(cond.concat);
  return cond;
}

Conditioning ConditionerSet::unconditional(const ConditionInputs& inputs) {
  auto dropped = inputs;
  dropped.drop = torch::ones({inputs.batch_size()}, torch::kBool);
  return encode(dropped);
}

std::vector<torch::Tensor> ConditionerSet::parameters() const {
  std::vector<torch::Tensor> all;
  for (const auto& entry : entries_)
    for (auto& p : entry.conditioner->module().parameters()) all.push_back(p);
  return all;
}

std::vector<torch::Tensor> ConditionerSet::trainable_parameters() const {
  std::vector<torch::Tensor> trainable;
  for (const auto& entry : entries_)
    if (!entry.choice.frozen)
      for (auto& p : entry.conditioner->module().parameters()) trainable.push_back(p);
  return trainable;
}

std::vector<torch::Tensor> ConditionerSet::buffers() const {
  std::vector<torch::Tensor> all;
  for (const auto& entry : entries_)
    for (auto& b : entry.conditioner->module().buffers()) all.push_back(b);
  return all;
}

void ConditionerSet::to(torch::Device device) {
  for (auto& entry : entries_) entry.conditioner->module().to(device);
}

void ConditionerSet::train(bool on) {
  for (auto& entry : entries_) entry.conditioner->module().train(on);
}

void ConditionerSet::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    torch::serialize::OutputArchive weights;
    entries_[i].conditioner->module().save(weights);
    archive.write(prefix + std::to_string(i), weights);
    archive.write(prefix + std::to_string(i) + "_state", c10::IValue(entries_[i].conditioner->state()));
  }
}

void ConditionerSet::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    torch::serialize::InputArchive weights;
    if (!archive.try_read(prefix + std::to_string(i), weights))
      throw Error("no weights for conditioner " + std::to_string(i) + " ('" + entries_[i].choice.plugin.name +
                  "') in the file");
    try {
      entries_[i].conditioner->module().load(weights);
    } catch (const std::exception& e) {
      throw Error("the weights of conditioner '" + entries_[i].choice.plugin.name +
                  "' do not fit it: " + std::string(e.what()).substr(0, 300));
    }
    // Weights that fit are not enough: a vocabulary built anew from changed captions would remap the
    // token ids under the trained embeddings without any error.
    c10::IValue saved;
    if (archive.try_read(prefix + std::to_string(i) + "_state", saved) && saved.isString() &&
        saved.toStringRef() != entries_[i].conditioner->state())
      throw Error("conditioner " + std::to_string(i) + " ('" + entries_[i].choice.plugin.name +
                  "') was saved with another state (for 'tokens': the vocabulary of its training captions) "
                  "than this data gives it; the data changed since the run started: resume with the data it "
                  "started with, or start a new run");
  }
}

std::vector<std::string> ConditionerSet::read_states(torch::serialize::InputArchive& archive,
                                                     const std::string& prefix, std::size_t count) {
  std::vector<std::string> states;
  for (std::size_t i = 0; i < count; ++i) {
    c10::IValue value;
    if (!archive.try_read(prefix + std::to_string(i) + "_state", value) || !value.isString())
      throw Error("no saved state for conditioner " + std::to_string(i) + " in the file");
    states.push_back(value.toStringRef());
  }
  return states;
}

}  // namespace latentlab
