#include "latentlab/analysis/metrics.hpp"

#include <map>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::analysis {

const std::vector<MetricInfo>& metric_catalogue() {
  // The paper's tables: FID, KID, IS, precision/recall of samples (Tab. 1-4, 7), throughput
  // (Fig. 7), the autoencoder's rFID, PSNR, SSIM and PSIM (LPIPS) (Tab. 8), and the ELBO in
  // bits/dim (Eq. 13/15).
  static const std::vector<MetricInfo> catalogue = {
      {"fid", "FID", "", Better::Lower, Level::Eval, "FID", true},
      {"kid", "KID", "", Better::Lower, Level::Eval, "KID", true},
      {"is", "IS", "", Better::Higher, Level::Eval, "IS", true},
      {"precision", "Precision", "", Better::Higher, Level::Eval, "Prec.", true},
      {"recall", "Recall", "", Better::Higher, Level::Eval, "Rec.", true},
      {"throughput", "Throughput", "samples/s", Better::Higher, Level::Eval, "Throughput", true},
      // Task metrics of conditioned models (docs/conditioning.md).
      {"accuracy", "Accuracy", "", Better::Higher, Level::Eval, "Acc.", true},
      {"ref_psnr", "PSNR (ref.)", "dB", Better::Higher, Level::Eval, "PSNR (ref.)", true},
      {"ref_ssim", "SSIM (ref.)", "", Better::Higher, Level::Eval, "SSIM (ref.)", true},
      {"sampling_seconds", "Sampling time", "s", Better::Lower, Level::Eval, "Sampling time"},
      {"nfe", "NFE", "", Better::Neither, Level::Eval, "NFE"},
      {"kid_std", "KID std", "", Better::Neither, Level::Eval, "KID std"},
      {"is_std", "IS std", "", Better::Neither, Level::Eval, "IS std"},
      {"rfid", "rFID", "", Better::Lower, Level::Trial, "rFID", true},
      {"psnr", "PSNR", "dB", Better::Higher, Level::Trial, "PSNR", true},
      {"ssim", "SSIM", "", Better::Higher, Level::Trial, "SSIM", true},
      {"psim", "PSIM", "", Better::Lower, Level::Trial, "PSIM", true},
      {"l1", "L1", "", Better::Lower, Level::Trial, "$L_1$"},
      {"codebook_usage", "Codebook usage", "", Better::Higher, Level::Trial, "Codebook usage", true},
      {"perplexity", "Perplexity", "", Better::Higher, Level::Trial, "Perplexity"},
      {"elbo_bpd", "ELBO", "bits/dim", Better::Lower, Level::Trial, "ELBO", true},
      {"loss_simple", "L_simple", "", Better::Lower, Level::Trial, "$L_\\mathrm{simple}$"},
      {"train_loss", "Train loss", "", Better::Lower, Level::Trial, "Train loss"},
      {"latent_std", "Latent std", "", Better::Neither, Level::Trial, "Latent std", true},
      {"scale_factor", "Scale factor", "", Better::Neither, Level::Trial, "Scale factor"},
  };
  return catalogue;
}

std::vector<std::string> headline_metrics(Level level) {
  std::vector<std::string> out;
  for (const auto& metric : metric_catalogue())
    if (metric.headline && metric.level == level) out.push_back(metric.name);
  return out;
}

const MetricInfo& find_metric(const std::string& name) {
  static const std::map<std::string, std::string> aliases = {
      {"kid_mean", "kid"}, {"is_mean", "is"},    {"samples_per_second", "throughput"},
      {"bpd", "elbo_bpd"}, {"elbo", "elbo_bpd"}, {"lpips", "psim"},
      {"pr", "precision"}};
  const auto alias = aliases.find(name);
  const auto& wanted = alias == aliases.end() ? name : alias->second;
  std::vector<std::string> names;
  for (const auto& metric : metric_catalogue()) {
    if (metric.name == wanted) return metric;
    names.push_back(metric.name);
  }
  throw ConfigError("unknown metric '" + name + "'" + did_you_mean(name, names) +
                    "; metrics: " + join(names));
}

std::string metric_header(const MetricInfo& metric) {
  std::string header = metric.label;
  if (!metric.unit.empty()) header += " (" + metric.unit + ")";
  if (metric.better == Better::Lower) header += " \u2193";
  if (metric.better == Better::Higher) header += " \u2191";
  return header;
}

}  // namespace latentlab::analysis
