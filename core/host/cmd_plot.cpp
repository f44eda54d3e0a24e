// `latentlab plot DIR --x AXIS --y METRIC`: a figure of a sweep's results (docs/analysis.md).
#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/analysis/plot.hpp"
#include "latentlab/error.hpp"

namespace latentlab::host {

namespace fs = std::filesystem;

int run_plot(const Args& args) {
  CommonOptions common;
  std::string folder, x, y, series, out, title;
  std::vector<std::string> where;
  bool log_x = false, log_y = false;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("x", po::value(&x), "the x axis: a dimension (f, steps, an axis's spec path, ...) or a metric (a trade-off: --x throughput --y fid)")
      ("y", po::value(&y), "the metric on the y axis: fid, kid, is, precision, recall, throughput, rfid, psnr, elbo_bpd, latent_std, ...")
      ("series", po::value(&series), "dimensions, comma-separated: one line per combination of their values")
      ("where", po::value(&where)->composing(), "keep trials with AXIS=VALUE (VALUE may be a|b); repeatable")
      ("log-x", po::bool_switch(&log_x), "logarithmic x axis")
      ("log-y", po::bool_switch(&log_y), "logarithmic y axis")
      ("title", po::value(&title), "the figure's title (default: Y vs X)")
      ("out", po::value(&out), "the file: .svg (a web page), .pdf (LaTeX) or .png; its data is written beside it (.json)");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("dir", po::value(&folder));
  po::variables_map vm;
  const std::string usage =
      "latentlab plot DIR --x AXIS|METRIC --y METRIC [--series AXIS[,AXIS]] [--where AXIS=VALUE]... "
      "[--log-x] "
      "[--log-y] --out FILE.svg|.pdf|.png";
  if (!parse_command_line(
          "plot", args, options, positional, usage,
          "Draws a metric of a sweep's results against an axis (or against another metric), one "
          "line per series, with error bars of ± one std over seeds (docs/analysis.md). PLplot's "
          "cairo drivers write SVG, PDF and PNG.",
          vm))
    return kOk;
  if (folder.empty()) throw ConfigError("plot: which results folder? Usage: " + usage);
  if (x.empty() || y.empty()) throw ConfigError("plot: give --x and --y. Usage: " + usage);
  if (out.empty()) throw ConfigError("plot: give --out FILE.svg, .pdf or .png. Usage: " + usage);
  apply_common_options(common);
  analysis::PlotSpec spec;
  spec.x = x;
  spec.y = y;
  spec.series = split_list(series);
  spec.filters = analysis::parse_filters(where);
  spec.log_x = log_x;
  spec.log_y = log_y;
  spec.title = title;
  const auto results = analysis::load_results(folder);
  const auto figure = analysis::metric_figure(results, spec);
  analysis::draw_figure(figure, out);
  std::size_t points = 0;
  for (const auto& s : figure.series) points += s.x.size();
  std::cout << "plot: wrote " << out << " (" << figure.series.size() << " series, " << points
            << " points; data in " << fs::path(out).replace_extension(".json").string() << ")\n";
  return kOk;
}

}  // namespace latentlab::host
