#pragma once
// Figures (docs/analysis.md), drawn with PLplot's cairo drivers: SVG for a web page, PDF for LaTeX,
// PNG. A Figure is the data; draw_figure renders it and writes the data beside it as JSON, so every
// figure can be redrawn elsewhere. The ready-made figures are the paper's: a metric against an axis
// with error bars over seeds (FID vs f, Fig. 6; FID vs steps per sampler), the throughput/FID
// trade-off (Fig. 7), log SNR(t) before and after rescaling (Sec. G), training curves.
#include <filesystem>
#include <string>
#include <vector>

#include "latentlab/analysis/aggregate.hpp"

namespace latentlab::analysis {

struct Series {
  std::string name;
  std::vector<double> x, y;
  std::vector<double> error;  // +- per point (std over seeds); empty: none
  std::vector<int> n;         // values per point; empty: one
  bool lines = true;          // false: markers only (a scatter)
  bool markers = true;        // false: a line only (a curve of many points)
};

struct Figure {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;
  std::vector<std::string> x_ticks;   // categorical x: the label of x = 0, 1, ...
  std::vector<double> x_tick_values;  // numeric x with few values (f, steps): labelled at each one
  std::vector<Series> series;
};

struct PlotSpec {
  std::string x;                    // a dimension, or a metric (a trade-off: y against x)
  std::string y;                    // a metric
  std::vector<std::string> series;  // dimensions: one line per combination of their values
  bool log_x = false, log_y = false;
  Filters filters;
  std::string title;
};

// y against x with error bars over seeds, one series per value of `series`. Throws ConfigError
// when a dimension or metric is unknown, or a dimension not named varies within a point.
Figure metric_figure(const Results& results, const PlotSpec& spec);

// Renders the figure to `out` (.svg, .pdf or .png) and its data beside it, as `out` with .json for
// its extension (an .svg and a .pdf of one figure share it).
void draw_figure(const Figure& figure, const std::filesystem::path& out);

// The ready-made figures (docs/analysis.md) this sweep has the data for, each named by its file stem:
// a headline metric against each numeric axis, the throughput/FID trade-off, log SNR(t) raw and
// rescaled, latent std, and the denoiser's training curves (loss and ELBO bits/dim).
struct NamedFigure {
  std::string name;     // file stem: "fid-vs-f"
  std::string caption;  // what it shows
  Figure figure;
};
std::vector<NamedFigure> standard_figures(const Results& results);

// Writes an 8-bit image as PNG.
void write_png(const std::filesystem::path& path, const Image& image);

}  // namespace latentlab::analysis
