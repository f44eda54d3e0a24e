// `latentlab report DIR`: a sweep's report, index.html and index.md (docs/analysis.md).
#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/analysis/report.hpp"
#include "latentlab/error.hpp"

namespace latentlab::host {

int run_report(const Args& args) {
  CommonOptions common;
  std::string folder, out;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("out", po::value(&out), "the report's folder (default: DIR/report)");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("dir", po::value(&folder));
  po::variables_map vm;
  const std::string usage = "latentlab report DIR [--out FOLDER]";
  if (!parse_command_line(
          "report", args, options, positional, usage,
          "Writes a sweep's report (docs/analysis.md): DIR/report/index.html, self-contained "
          "with its figures beside it, and index.md: the sweep's description and axes, its "
          "tables (also .tex and .csv), the figures (SVG and PDF), the sample grids of every "
          "trial, the failed trials with their errors, and provenance. `latentlab run` writes "
          "it when a sweep ends.",
          vm))
    return kOk;
  if (folder.empty()) throw ConfigError("report: which results folder? Usage: " + usage);
  apply_common_options(common);
  const auto results = analysis::load_results(folder);
  const auto files = analysis::write_report(results, out);
  std::cout << "report: " << files.html.string() << " (" << files.tables << " tables, " << files.figures
            << " figures, " << files.sample_grids << " sample grids); also " << files.markdown.string()
            << "\n";
  return kOk;
}

}  // namespace latentlab::host
