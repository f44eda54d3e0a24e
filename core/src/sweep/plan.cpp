#include "latentlab/sweep/plan.hpp"

#include <algorithm>
#include <optional>
#include <set>

#include "../train/config_json.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/error.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/precision.hpp"
#include "latentlab/stages/autoencoder_stage.hpp"
#include "latentlab/stages/denoiser_stage.hpp"
#include "latentlab/stages/eval_stage.hpp"
#include "latentlab/stages/import_stage.hpp"
#include "latentlab/stages/latent_stats_stage.hpp"
#include "latentlab/stages/reconstruction_stage.hpp"
#include "latentlab/stages/sample_stage.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/threads.hpp"

namespace latentlab::sweep {

namespace {

using nlohmann::json;

const std::vector<std::string>& top_keys() {
  static const std::vector<std::string> keys = {
      "name",    "description",    "dataset", "autoencoder", "latent",  "denoiser", "eval",
      "metrics", "reconstruction", "seed",    "device",      "threads", "precision"};
  return keys;
}

// Checks that `block` at `path` is an object with only `allowed` keys.
void check_keys(const json& block, const std::string& path, const std::vector<std::string>& allowed) {
  if (!block.is_object()) throw ConfigError(path + ": expected a JSON object, got " + block.dump());
  for (const auto& item : block.items())
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end())
      throw ConfigError(path + "." + item.key() + ": unknown key" + did_you_mean(item.key(), allowed) +
                        "; allowed: " + join(allowed));
}

// The dataset block: "fashion-mnist" or {"name", "params", "hflip"}, as the trainers' "data" section.
json data_section(const json& config) {
  if (!config.contains("dataset"))
    throw ConfigError(
        "dataset: missing; name the images, e.g. \"dataset\": {\"name\": \"fashion-mnist\", "
        "\"params\": {\"resolution\": 32}}");
  const auto& block = config.at("dataset");
  if (block.is_string()) return {{"dataset", block}, {"params", json::object()}};
  check_keys(block, "dataset", {"name", "params", "hflip"});
  if (!block.contains("name") || !block.at("name").is_string())
    throw ConfigError("dataset.name: expected a dataset plugin's name, e.g. \"fashion-mnist\"");
  json data = {{"dataset", block.at("name")}, {"params", block.value("params", json::object())}};
  if (block.contains("hflip")) data["hflip"] = block.at("hflip");
  return data;
}

std::uint64_t block_seed(const json& block, const std::string& path, std::uint64_t trial_seed) {
  if (!block.is_object() || !block.contains("seed")) return trial_seed;
  const auto& seed = block.at("seed");
  if (!seed.is_number_integer() || seed.get<std::int64_t>() < 0)
    throw ConfigError(path +
                      ".seed: expected a non-negative integer (pins this stage's seed across the "
                      "sweep's seeds), got " +
                      seed.dump());
  return seed.get<std::uint64_t>();
}

bool pixel_space(const json& config) {
  if (!config.contains("autoencoder") || config.at("autoencoder").is_null()) return true;
  const auto& block = config.at("autoencoder");
  if (block.is_string()) return block == "none" || block == "identity";
  return block.is_object() && block.value("name", std::string()) == "identity";
}

// The label of an eval entry: its own, or sampler-steps (with the guider when there is one).
std::string eval_label(const json& entry, const stages::SampleConfig& sample) {
  if (entry.contains("label")) return entry.at("label").get<std::string>();
  auto label = sample.sampler.name + "-" + std::to_string(sample.steps);
  if (sample.guider.name != "none") label += "-" + sample.guider.name;
  return label;
}

}  // namespace

json StageJob::to_json() const {
  return {{"kind", kind},     {"key", key},     {"path", path},  {"config", config},
          {"inputs", inputs}, {"label", label}, {"trial", trial}};
}

StageJob StageJob::from_json(const json& input) {
  StageJob job;
  job.kind = input.at("kind").get<std::string>();
  job.key = input.at("key").get<std::string>();
  job.path = input.at("path").get<std::string>();
  job.config = input.at("config");
  job.inputs = input.at("inputs").get<std::map<std::string, std::string>>();
  job.label = input.value("label", std::string());
  job.trial = input.value("trial", std::string());
  return job;
}

std::unique_ptr<stages::Stage> make_stage(const StageJob& job, const registry::Registry& registry) {
  const auto& c = job.config;
  if (job.kind == "autoencoder" && c.contains("import"))
    return std::make_unique<stages::ImportStage>(stages::ImportConfig::from_json(c, job.path), registry,
                                                 job.path);
  try {
    if (job.kind == "autoencoder")
      return std::make_unique<stages::AutoencoderStage>(AutoencoderTrainConfig::from_json(c), registry);
    if (job.kind == "denoiser")
      return std::make_unique<stages::DenoiserStage>(DenoiserTrainConfig::from_json(c), registry);
  } catch (const ConfigError& e) {
    rethrow_prefixed(e, job.path + ".");  // the config was parsed at its root
  }
  if (job.kind == "latent_stats") {
    auto config = stages::LatentStatsConfig::from_json(c.at("block"), job.path);
    config.data = {c.at("data").at("dataset").get<std::string>(), c.at("data").at("params")};
    config.seed = c.at("seed").get<std::uint64_t>();
    return std::make_unique<stages::LatentStatsStage>(config, registry, job.path);
  }
  if (job.kind == "sample")
    return std::make_unique<stages::SampleStage>(stages::SampleConfig::from_json(c, job.path), registry,
                                                 job.path);
  if (job.kind == "eval")
    return std::make_unique<stages::EvalStage>(stages::EvalConfig::from_json(c, job.path), registry,
                                               job.path);
  if (job.kind == "reconstruction")
    return std::make_unique<stages::ReconstructionStage>(stages::ReconstructionConfig::from_json(c, job.path),
                                                         registry, job.path);
  throw Error("a stage job of unknown kind '" + job.kind + "'");
}

stages::StageOutcome run_job(const StageJob& job, const stages::StageContext& context,
                             const std::map<std::string, std::filesystem::path>& input_dirs,
                             const std::filesystem::path& dir, bool resume) {
  const auto input = [&](const std::string& role) {
    const auto it = input_dirs.find(role);
    if (it == input_dirs.end())
      throw Error("stage " + job.kind + " " + job.key + ": its input '" + role + "' is missing");
    return it->second;
  };
  if (job.kind == "denoiser") {
    auto config = job.config;
    if (job.inputs.count("autoencoder"))
      config["autoencoder"] = (input("autoencoder") / "autoencoder.pt").string();
    const stages::DenoiserStage stage(DenoiserTrainConfig::from_json(config), context.registry);
    return stage.run(context, dir, resume);
  }
  const auto stage = make_stage(job, context.registry);
  if (job.kind == "autoencoder" && job.config.contains("import")) {
    const auto report = static_cast<const stages::ImportStage&>(*stage).run(context, dir / "autoencoder.pt");
    write_text_atomically(dir / "import.json", report.dump(2) + "\n");
    return {};
  }
  if (job.kind == "autoencoder")
    return static_cast<const stages::AutoencoderStage&>(*stage).run(context, dir, resume);
  if (job.kind == "latent_stats")
    static_cast<const stages::LatentStatsStage&>(*stage).run(context, input("autoencoder"), dir);
  else if (job.kind == "sample")
    static_cast<const stages::SampleStage&>(*stage).run(context, input("denoiser"), dir);
  else if (job.kind == "eval")
    static_cast<const stages::EvalStage&>(*stage).run(context, input("samples").string(), dir);
  else if (job.kind == "reconstruction")
    static_cast<const stages::ReconstructionStage&>(*stage).run(context, input("autoencoder"), dir);
  return {};
}

Plan make_plan(const Expansion& expansion, const registry::Registry& registry, const std::string& device) {
  Plan plan;
  plan.name = expansion.name;
  plan.axes = expansion.axes;
  std::map<std::string, std::size_t> by_key;
  // A block (kind, path, config) -> its key but for the inputs (docs/benchmarks.md: hashing each
  // trial's whole config made most of a dry run's time).
  std::map<std::string, stages::ContentKeyer> validated;
  // Problems, each once, with the trials it appeared in.
  std::vector<std::string> problems;
  std::map<std::string, std::vector<std::string>> problem_trials;
  std::map<std::string, std::string> lpips_checked;  // LPIPS weights files (a list) -> its problem, or ""

  for (const auto& trial : expansion.trials) {
    const auto& config = trial.config;
    TrialPlan trial_plan;
    trial_plan.trial = trial;
    bool trial_ok = true;
    // Runs one block's validation; a ConfigError is recorded (once per message) and the block skipped,
    // so that every block of every trial is checked.
    const auto attempt = [&](const auto& body) {
      try {
        body();
        return true;
      } catch (const ConfigError& e) {
        for (const auto& message : problems_of(e)) {
          if (problem_trials.find(message) == problem_trials.end()) problems.push_back(message);
          problem_trials[message].push_back(trial.id);
        }
        trial_ok = false;
        return false;
      }
    };
    // Adds a stage (once per key) and returns its index; with an input that failed, only validates it.
    const auto add = [&](StageJob job, const std::vector<std::pair<std::string, std::ptrdiff_t>>& inputs) {
      std::vector<std::string> input_keys;
      for (const auto& [role, index] : inputs) {
        if (index < 0) {  // an input's block failed: this one is only validated
          make_stage(job, registry);
          return std::ptrdiff_t{-1};
        }
        job.inputs[role] = plan.stages[static_cast<std::size_t>(index)].key;
        input_keys.push_back(role + ":" + job.inputs[role]);
      }
      // A block is validated once however many trials share it (a sweep's metrics block, a sampler of
      // many trials); its key then only adds the inputs'.
      auto [known, fresh_block] =
          validated.try_emplace(job.kind + "\n" + job.path + "\n" + job.config.dump());
      if (fresh_block) {
        try {
          const auto stage = make_stage(job, registry);
          known->second = stages::ContentKeyer(job.kind, stage->config(), stage->seed(), stage->plugins());
        } catch (...) {
          validated.erase(known);  // a bad block is reported for every trial that has it
          throw;
        }
      }
      job.key = known->second.key(input_keys);
      job.trial = trial.id;
      const auto [it, fresh] = by_key.emplace(job.key, plan.stages.size());
      if (fresh) plan.stages.push_back(std::move(job));
      trial_plan.stages.push_back(it->second);
      return static_cast<std::ptrdiff_t>(it->second);
    };
    json data;
    std::uint64_t seed = 0;
    bool pixels = true;
    // The spec's precision, given to every stage that runs networks unless its block names its own
    // (docs/precision.md); fp32 is left out, so that fp32 stages keep the keys they had before. "auto"
    // is resolved here, for the device the sweep will run on, so that keys name what runs.
    std::string precision = "fp32";
    std::optional<torch::Device> trial_device;
    const auto device_of_trial = [&] {
      if (!trial_device) trial_device = resolve_device(plan.device, "device");
      return *trial_device;
    };
    const auto resolved = [&](const json& value, const std::string& what) {
      if (!value.is_string())
        throw ConfigError(what + ": expected \"auto\", \"fp32\", \"bf16\" or \"fp16\", got " + value.dump());
      const auto text = value.get<std::string>();
      if (text != "auto" && text != "fp16")
        return to_string(parse_precision_setting(text, torch::kCPU, what));
      const auto device = device_of_trial();
      const auto chosen = parse_precision_setting(text, device, what);
      if (text == "auto") plan.auto_precision = auto_precision_reason(device);
      check_precision(chosen, device, what);  // fp16 needs CUDA: said now, not when the stage starts
      return to_string(chosen);
    };
    const auto with_precision = [&](json block, const std::string& what) {
      if (!block.is_object()) return block;
      if (block.contains("precision"))
        block["precision"] = resolved(block.at("precision"), what + ".precision");
      else if (precision != "fp32")
        block["precision"] = precision;
      return block;
    };
    const bool basics = attempt([&] {
      check_keys(config, "the spec", top_keys());
      if (config.contains("device") && !config.at("device").is_string())
        throw ConfigError("device: expected \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", got " +
                          config.at("device").dump());
      plan.device = !device.empty() ? device : config.value("device", std::string("auto"));
      if (config.contains("threads") &&
          (!config.at("threads").is_number_integer() || config.at("threads").get<int>() < 0))
        throw ConfigError("threads: expected a non-negative integer (0: all cores), got " +
                          config.at("threads").dump());
      plan.threads = config.value("threads", 0);
      if (config.contains("precision")) precision = resolved(config.at("precision"), "precision");
      seed = config.at("seed").get<std::uint64_t>();
      data = data_section(config);
      registry.find(Dataset::kKind, data.at("dataset").get<std::string>());
      pixels = pixel_space(config);
    });
    if (!basics) continue;

    if (!pixels)
      attempt([&] {
        const auto& block = config.at("autoencoder");
        if (block.is_object() && block.contains("import")) {  // a reference checkpoint instead of training
          check_keys(block, "autoencoder", {"import", "config", "prefix", "scale_factor", "allow_missing"});
          trial_plan.autoencoder = add({"autoencoder", "", "autoencoder", block, {}, "", ""}, {});
          return;
        }
        check_keys(block, "autoencoder", {"name", "params", "loss", "train", "eval", "seed", "precision"});
        json ae = {{"output", "-"}, {"seed", block_seed(block, "autoencoder", seed)}, {"data", data}};
        for (const char* key : {"loss", "train", "eval", "precision"})
          if (block.contains(key)) ae[key] = block.at(key);
        ae = with_precision(ae, "autoencoder");
        ae["autoencoder"] = {{"name", block.value("name", std::string("kl"))},
                             {"params", block.value("params", json::object())}};
        trial_plan.autoencoder = add({"autoencoder", "", "autoencoder", ae, {}, "", ""}, {});
      });
    attempt([&] {
      if (pixels) {
        if (config.contains("latent"))
          throw ConfigError(
              "latent: latent statistics need an autoencoder; this sweep trains in pixel space");
        return;
      }
      auto latent_block = config.value("latent", json::object());
      const auto latent_seed = block_seed(latent_block, "latent", seed);
      if (latent_block.is_object()) latent_block.erase("seed");
      const json latent = {{"block", latent_block}, {"data", data}, {"seed", latent_seed}};
      trial_plan.latent =
          add({"latent_stats", "", "latent", latent, {}, "", ""}, {{"autoencoder", trial_plan.autoencoder}});
    });
    // Without a denoiser block the sweep is stage 1 only (an f sweep of autoencoders).
    const bool has_denoiser = config.contains("denoiser");
    if (has_denoiser)
      attempt([&] {
        const auto& block = config.at("denoiser");
        check_keys(block, "denoiser",
                   {"unet", "conditioner", "schedule", "weighting", "prediction", "train", "eval", "seed",
                    "precision"});
        json denoiser = {{"output", "-"}, {"seed", block_seed(block, "denoiser", seed)}, {"data", data}};
        for (const char* key :
             {"unet", "conditioner", "schedule", "weighting", "prediction", "train", "eval", "precision"})
          if (block.contains(key)) denoiser[key] = block.at(key);
        denoiser = with_precision(denoiser, "denoiser");
        if (!pixels) denoiser["autoencoder"] = "(the latent stage's autoencoder.pt)";
        trial_plan.denoiser = pixels ? add({"denoiser", "", "denoiser", denoiser, {}, "", ""}, {})
                                     : add({"denoiser", "", "denoiser", denoiser, {}, "", ""},
                                           {{"autoencoder", trial_plan.latent}});
      });

    // Eval entries: one object or a list; each is a sample stage, measured by the metrics block.
    json entries = config.value("eval", json::array());
    if (entries.is_object()) entries = json::array({entries});
    json metrics;
    const bool metrics_ok = attempt([&] {
      if (!entries.is_array())
        throw ConfigError("eval: expected a list of {\"sampler\", \"steps\", \"count\", ...} entries");
      if (!config.contains("metrics")) return;
      metrics = config.at("metrics");
      if (metrics.is_object() && !metrics.contains("reference")) {
        const auto& schema = registry.find(Dataset::kKind, data.at("dataset").get<std::string>()).info.schema;
        metrics["reference"] = data.at("dataset").get<std::string>() + (schema.find("split") ? ":test" : "");
      }
      make_stage({"eval", "", "metrics", metrics, {}, "", ""}, registry);
    });
    if (!has_denoiser && entries.is_array() && !entries.empty())
      attempt([&] {
        throw ConfigError(
            "eval: sampling needs a denoiser; add a \"denoiser\" block, or leave \"eval\" out for a "
            "stage-1 sweep");
      });
    std::set<std::string> labels;
    for (std::size_t e = 0; has_denoiser && entries.is_array() && e < entries.size(); ++e)
      attempt([&] {
        const auto path = "eval[" + std::to_string(e) + "]";
        const auto& entry = entries[e];
        if (!entry.is_object()) throw ConfigError(path + ": expected an object, got " + entry.dump());
        if (entry.contains("label") && !entry.at("label").is_string())
          throw ConfigError(path + ".label: expected a string, got " + entry.at("label").dump());
        auto sample = with_precision(entry, path);
        sample.erase("label");
        if (!sample.contains("seed")) sample["seed"] = seed;
        const auto sample_config = stages::SampleConfig::from_json(sample, path);
        const auto label = eval_label(entry, sample_config);
        if (!labels.insert(label).second)
          throw ConfigError(path + ": another eval entry has the label '" + label +
                            "'; give each a \"label\"");
        EvalPlan eval;
        eval.label = label;
        const auto sample_index =
            add({"sample", "", path, sample, {}, label, ""}, {{"denoiser", trial_plan.denoiser}});
        if (sample_index < 0) return;  // the denoiser block failed: the entry is validated, not added
        eval.sample = static_cast<std::size_t>(sample_index);
        if (metrics_ok && !metrics.is_null())
          eval.metrics = add({"eval", "", "metrics", metrics, {}, label, ""}, {{"samples", sample_index}});
        trial_plan.evals.push_back(eval);
      });
    // Reconstruction metrics of the autoencoder; a pixel-space trial of an f sweep (f = 1) has none.
    if (config.contains("reconstruction") && !pixels)
      attempt([&] {
        auto block = config.at("reconstruction");
        if (block.is_boolean()) block = json::object();
        if (!block.is_object())
          throw ConfigError("reconstruction: expected an object (or true), got " + block.dump());
        if (!block.contains("input")) block["input"] = data.at("dataset");
        block = with_precision(block, "reconstruction");
        // PSIM with the LPIPS weights the autoencoder trained with, unless the block names its own.
        const auto& ae = config.at("autoencoder");
        if (!block.contains("lpips_weights") && ae.is_object() && ae.contains("loss") &&
            ae.at("loss").is_object() && ae.at("loss").contains("perceptual") &&
            ae.at("loss").at("perceptual") == "lpips" && ae.at("loss").contains("perceptual_weights"))
          block["lpips_weights"] = ae.at("loss").at("perceptual_weights");
        if (!block.contains("data_params")) {
          auto params = data.at("params");
          params.erase("split");
          params.erase("limit");
          block["data_params"] = params;
        }
        // The LPIPS weights are loaded once per list of files, so a file without them is reported now
        // (for every trial that names it).
        if (block.contains("lpips_weights")) {
          const auto list = block.at("lpips_weights").dump();
          auto [checked, fresh] = lpips_checked.try_emplace(list);
          if (fresh) {
            try {
              stages::load_lpips(
                  latentlab::detail::file_names(block.at("lpips_weights"), "reconstruction.lpips_weights"),
                  "reconstruction.lpips_weights");
            } catch (const ConfigError& e) {
              checked->second = e.what();
            }
          }
          if (!checked->second.empty()) throw ConfigError(checked->second);
        }
        trial_plan.reconstruction = add({"reconstruction", "", "reconstruction", block, {}, "", ""},
                                        {{"autoencoder", trial_plan.latent}});
      });
    if (trial_ok) plan.trials.push_back(std::move(trial_plan));
  }
  if (!problems.empty()) {
    std::string message =
        std::to_string(problems.size()) + (problems.size() == 1 ? " problem" : " problems") + " in the spec:";
    for (const auto& problem : problems) {
      const auto& trials = problem_trials[problem];
      message += "\n  " + problem;
      if (expansion.trials.size() > 1 && trials.size() < expansion.trials.size())
        message +=
            " (trial " + trials.front() +
            (trials.size() > 1 ? " and " + std::to_string(trials.size() - 1) + " more" : std::string()) + ")";
    }
    throw ConfigError(message);
  }
  return plan;
}

}  // namespace latentlab::sweep
