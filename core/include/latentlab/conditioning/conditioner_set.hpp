#pragma once
// The conditioners of one denoiser as the host trains, saves and samples them (docs/conditioning.md):
// at most one that makes tokens (cross-attention) and one that makes maps (concatenation); both is the
// reference's "hybrid" mode. Turns ConditionInputs into the UNet's Conditioning, trains jointly with
// the UNet (Eq. 3) unless frozen, and writes its weights and vocabularies into the denoiser's files.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "latentlab/conditioner.hpp"
#include "latentlab/export.hpp"
#include "latentlab/guider.hpp"
#include "latentlab/plugin_choice.hpp"

namespace latentlab {

// One conditioner of a denoiser config: the plugin and whether its parameters stay fixed.
struct ConditionerChoice {
  PluginChoice plugin;
  bool frozen = false;

  nlohmann::json to_json() const;
};

// The ConditionerSetup values that are numbers and names (everything but the captions and the
// encoder), as the denoiser's files record them.
LATENTLAB_API nlohmann::json setup_to_json(const ConditionerSetup& setup);
LATENTLAB_API ConditionerSetup setup_from_json(const nlohmann::json& json);

// Condition dropout (classifier-free guidance's training): [batch] bool on the CPU, each true with
// probability p, independently, drawn from `generator`.
LATENTLAB_API torch::Tensor condition_dropout(std::int64_t batch, double p, at::Generator& generator);

class LATENTLAB_API ConditionerSet {
 public:
  using Factory =
      std::function<std::shared_ptr<Conditioner>(const PluginChoice& choice, const std::string& path)>;

  // Creates the conditioners with `factory` and sets them up for the data. `states`, when given (one per
  // choice), are the saved vocabularies of a trained set. Throws ConfigError naming
  // `path` ("conditioner" or "conditioner[1]") when two make the same output or a setup fails.
  ConditionerSet(std::vector<ConditionerChoice> choices, Factory factory, ConditionerSetup setup,
                 const std::vector<std::string>& states = {});
  ~ConditionerSet();
  ConditionerSet(const ConditionerSet&) = delete;
  ConditionerSet& operator=(const ConditionerSet&) = delete;

  // The same conditioners with the same vocabularies and a copy of the parameters (the trainer's EMA).
  std::unique_ptr<ConditionerSet> replicate() const;

  bool empty() const { return entries_.empty(); }
  // "none", "crossattn", "concat" or "hybrid" (the reference's conditioning_key).
  std::string mode() const;
  std::int64_t context_dim() const;      // d of the token conditioner, 0 without one
  std::int64_t concat_channels() const;  // C' of the map conditioner, 0 without one
  bool needs(ConditionSource source) const;
  // The task of the conditioners (Conditioner::task): the map conditioner's when it has one, else the
  // token conditioner's; empty without.
  std::string task() const;
  const std::vector<ConditionerChoice>& choices() const { return choices_; }
  const ConditionerSetup& setup() const { return setup_; }

  // What the conditioners derive from the batch themselves (masks), drawn from `generator`.
  void complete(ConditionInputs& inputs, at::Generator& generator) const;
  // The UNet's context and concat for the inputs (complete()d), on the conditioners' device; rows with
  // inputs.drop get the unconditional value. In hybrid mode only the tokens are dropped: the map
  // conditioner always sees its image.
  Conditioning encode(const ConditionInputs& inputs);
  // The same inputs with every row dropped: classifier-free guidance's unconditional half.
  Conditioning unconditional(const ConditionInputs& inputs);

  // Every parameter, and those of the conditioners that are not frozen.
  std::vector<torch::Tensor> parameters() const;
  std::vector<torch::Tensor> trainable_parameters() const;
  // Every buffer (running statistics, fixed tables): the EMA copies them, as LDM's LitEma does.
  std::vector<torch::Tensor> buffers() const;
  void to(torch::Device device);
  void train(bool on);

  // Weights under "<prefix><i>", vocabularies under "<prefix><i>_state". load() throws Error when the
  // weights do not fit or a saved state differs from the conditioner's (a resumed run whose captions
  // changed).
  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  void load(torch::serialize::InputArchive& archive, const std::string& prefix);
  // The saved vocabularies of `archive` (to construct a set that load() fits), one per conditioner.
  static std::vector<std::string> read_states(torch::serialize::InputArchive& archive,
                                              const std::string& prefix, std::size_t count);

 private:
  struct Entry {
    ConditionerChoice choice;
    std::shared_ptr<Conditioner> conditioner;
  };
  std::vector<ConditionerChoice> choices_;
  Factory factory_;
  ConditionerSetup setup_;
  std::vector<Entry> entries_;
  std::ptrdiff_t tokens_ = -1;  // index into entries_ of the token conditioner, -1: none
  std::ptrdiff_t maps_ = -1;    // of the map conditioner
};

}  // namespace latentlab
