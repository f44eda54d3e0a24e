// `latentlab table DIR`: an ablation table of a sweep's results (docs/analysis.md).
#include <fstream>
#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/analysis/table.hpp"
#include "latentlab/error.hpp"

namespace latentlab::host {

int run_table(const Args& args) {
  CommonOptions common;
  std::string folder, rows, cols = "metrics", metrics, format = "md", out;
  std::vector<std::string> where;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("rows", po::value(&rows), "dimensions of the rows, comma-separated: axes by short name or spec path, or eval, sampler, steps, guider, trial (default: every axis but the seed)")
      ("cols", po::value(&cols)->default_value(cols), "'metrics' (a column per metric), or one dimension (a column per value and metric)")
      ("metrics", po::value(&metrics), "metrics, comma-separated (default: those the trials have): fid, kid, is, precision, recall, throughput, rfid, psnr, ssim, psim, elbo_bpd, latent_std, ...")
      ("where", po::value(&where)->composing(), "keep trials with AXIS=VALUE (VALUE may be a|b); repeatable")
      ("format", po::value(&format)->default_value(format), "md, tex (booktabs, siunitx), csv, json or html")
      ("out", po::value(&out), "write to this file instead of the terminal");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("dir", po::value(&folder));
  po::variables_map vm;
  const std::string usage =
      "latentlab table DIR [--rows AXIS[,AXIS]] [--cols AXIS|metrics] [--metrics fid,kid,...] "
      "[--where AXIS=VALUE]... [--format md|tex|csv|json|html] [--out FILE]";
  if (!parse_command_line(
          "table", args, options, positional, usage,
          "Prints an ablation table of a sweep's results folder (docs/analysis.md): rows by the "
          "given axes, each cell the mean ± std over seeds with n, the best value of each column "
          "marked, units and arrows (↓ lower is better), failed or unfinished cells named. Works on "
          "a sweep that is still running (what has finished so far).",
          vm))
    return kOk;
  if (folder.empty()) throw ConfigError("table: which results folder? Usage: " + usage);
  apply_common_options(common);
  analysis::TableSpec spec;
  spec.rows = split_list(rows);
  spec.cols = cols;
  spec.metrics = split_list(metrics);
  spec.filters = analysis::parse_filters(where);
  const auto table_format = analysis::parse_table_format(format);
  const auto results = analysis::load_results(folder);
  const auto text = analysis::render_table(analysis::make_table(results, spec), table_format);
  if (out.empty()) {
    std::cout << text;
  } else {
    std::ofstream file(out);
    if (!(file << text).flush()) throw Error("could not write " + out);
    std::cerr << "table: wrote " << out << "\n";
  }
  return kOk;
}

}  // namespace latentlab::host
