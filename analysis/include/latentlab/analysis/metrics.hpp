#pragma once
// The metrics a trial file holds, as tables and plots name them (docs/analysis.md): a short name,
// the label a paper prints, its unit, which direction is better, and whether it belongs to the
// trial (the autoencoder, the latents, the denoiser) or to one of its eval entries (a sampler run).
#include <string>
#include <vector>

namespace latentlab::analysis {

enum class Better { Lower, Higher, Neither };
enum class Level { Trial, Eval };

struct MetricInfo {
  std::string name;   // fid, kid, psnr, elbo_bpd, ...
  std::string label;  // FID, KID, PSNR, ELBO
  std::string unit;   // "", "dB", "bits/dim", "samples/s"
  Better better = Better::Neither;
  Level level = Level::Eval;
  std::string latex;      // the label in LaTeX
  bool headline = false;  // in a table when no metric is named (the paper's columns, not diagnostics)
};

// The headline metrics of one level, in catalogue order.
std::vector<std::string> headline_metrics(Level level);

// Every metric, in the order tables list them.
const std::vector<MetricInfo>& metric_catalogue();

// A metric by its name or an alias (kid_mean, is_mean, samples_per_second, bpd); throws ConfigError
// naming the known metrics.
const MetricInfo& find_metric(const std::string& name);

// "FID ↓", "PSNR (dB) ↑": a column header.
std::string metric_header(const MetricInfo& metric);

}  // namespace latentlab::analysis
