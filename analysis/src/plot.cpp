// Drawing a Figure with PLplot (cairo drivers: svgcairo, pdfcairo, pngcairo); its data beside it.
#include <plplot/plstream.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "latentlab/analysis/plot.hpp"
#include "latentlab/error.hpp"
#include "latentlab/io/atomic_file.hpp"

namespace latentlab::analysis {

namespace fs = std::filesystem;

namespace {

// Colour-blind-safe colours (Okabe and Ito), after index 0 (background) and 1 (axes and text).
constexpr int kPalette[][3] = {{255, 255, 255}, {0, 0, 0},       {0, 114, 178},  {213, 94, 0},
                               {0, 158, 115},   {204, 121, 167}, {230, 159, 0},  {86, 180, 233},
                               {0, 0, 0},       {120, 120, 120}, {220, 220, 220}};
constexpr int kSeriesColours = 8;  // indices 2..9
constexpr int kGrid = 10;
// Markers as Unicode glyphs, drawn by the cairo drivers' font in the plot and in the legend alike.
const char* const kSymbols[] = {"\u25cf", "\u25a0", "\u25b2", "\u25c6",
                                "\u25bc", "\u2605", "\u271a", "\u2716"};

const char* device_for(const fs::path& out) {
  const auto ext = out.extension().string();
  if (ext == ".svg") return "svgcairo";
  if (ext == ".pdf") return "pdfcairo";
  if (ext == ".png") return "pngcairo";
  throw ConfigError("--out " + out.string() + ": a figure is written as .svg, .pdf or .png");
}

// PLplot asks on stdin for a device it does not have, then exits: check first.
void require_device(const char* device) {
  std::vector<const char*> menu(256), names(256);
  const char** menu_items = menu.data();
  const char** name_items = names.data();
  int count = static_cast<int>(names.size());
  plgDevs(&menu_items, &name_items, &count);
  for (int i = 0; i < count; ++i)
    if (std::string(names[static_cast<std::size_t>(i)]) == device) return;
  throw Error(std::string("PLplot has no '") + device +
              "' driver, which draws this figure; install plplot-driver-cairo (bash tools/setup.sh)");
}

// PLplot reads '#' as its escape character.
std::string plplot_text(const std::string& text) {
  std::string out;
  for (const char c : text) out += c == '#' ? std::string("##") : std::string(1, c);
  return out;
}

double transform(double value, bool log) {
  return log ? std::log10(value) : value;
}

std::string number_text(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

nlohmann::json figure_json(const Figure& figure) {
  using nlohmann::json;
  const auto numbers = [](const std::vector<double>& values) {
    json out = json::array();
    for (const double v : values) out.push_back(std::isfinite(v) ? json(v) : json());
    return out;
  };
  json series = json::array();
  for (const auto& s : figure.series)
    series.push_back({{"name", s.name},
                      {"x", numbers(s.x)},
                      {"y", numbers(s.y)},
                      {"error", numbers(s.error)},
                      {"n", s.n},
                      {"lines", s.lines},
                      {"markers", s.markers}});
  return {{"title", figure.title},
          {"x_label", figure.x_label},
          {"y_label", figure.y_label},
          {"log_x", figure.log_x},
          {"log_y", figure.log_y},
          {"x_ticks", figure.x_ticks},
          {"x_tick_values", figure.x_tick_values},
          {"series", series}};
}

void render(const Figure& figure, const fs::path& out, const char* device) {
  // The points to draw, in the plotted coordinates (log10 on a log axis; points <= 0 dropped there).
  struct Points {
    std::vector<double> x, y, low, high;
  };
  std::vector<Points> points(figure.series.size());
  double x_min = HUGE_VAL, x_max = -HUGE_VAL, y_min = HUGE_VAL, y_max = -HUGE_VAL;
  for (std::size_t s = 0; s < figure.series.size(); ++s) {
    const auto& series = figure.series[s];
    for (std::size_t i = 0; i < series.x.size(); ++i) {
      const double x = series.x[i], y = series.y[i];
      const double error = i < series.error.size() && std::isfinite(series.error[i]) ? series.error[i] : 0;
      if (!std::isfinite(x) || !std::isfinite(y) || (figure.log_x && x <= 0) || (figure.log_y && y <= 0))
        continue;
      const double low = figure.log_y && y - error <= 0 ? y : y - error;
      points[s].x.push_back(transform(x, figure.log_x));
      points[s].y.push_back(transform(y, figure.log_y));
      points[s].low.push_back(transform(low, figure.log_y));
      points[s].high.push_back(transform(y + error, figure.log_y));
      x_min = std::min(x_min, points[s].x.back());
      x_max = std::max(x_max, points[s].x.back());
      y_min = std::min(y_min, points[s].low.back());
      y_max = std::max(y_max, points[s].high.back());
    }
  }
  if (!std::isfinite(x_min))
    throw ConfigError("nothing to plot in '" + figure.title + "': no finite point" +
                      (figure.log_x || figure.log_y ? " above zero on a log axis" : ""));
  if (!figure.x_ticks.empty()) {
    x_min = -0.5;
    x_max = static_cast<double>(figure.x_ticks.size()) - 0.5;
  }
  const auto pad = [](double& low, double& high) {
    const double span = high - low;
    const double margin = span > 0 ? 0.06 * span : (std::fabs(low) > 0 ? 0.05 * std::fabs(low) : 0.5);
    low -= margin;
    high += margin;
  };
  if (figure.x_ticks.empty()) pad(x_min, x_max);
  pad(y_min, y_max);

  require_device(device);
  plstream pls;
  pls.sdev(device);
  pls.sfnam(out.string().c_str());
  // The plot keeps its size; the page widens for the legend's longest name.
  std::size_t longest = 0;
  for (const auto& series : figure.series) longest = std::max(longest, series.name.size());
  const bool legend =
      figure.series.size() > 1 || (figure.series.size() == 1 && figure.series[0].name != "all");
  const int plot_width = 560;
  const int width = legend ? plot_width + 150 + static_cast<int>(std::min<std::size_t>(longest, 64) * 12)
                           : plot_width + 100;
  pls.spage(0, 0, width, 460, 0, 0);
  const int colours = static_cast<int>(std::size(kPalette));
  std::vector<PLINT> r(colours), g(colours), b(colours);
  for (int i = 0; i < colours; ++i) {
    r[i] = kPalette[i][0];
    g[i] = kPalette[i][1];
    b[i] = kPalette[i][2];
  }
  pls.scmap0(r.data(), g.data(), b.data(), colours);
  pls.init();
  pls.adv(0);
  pls.vpor(80.0 / width, (80.0 + plot_width - 40) / width, 0.13, 0.9);
  pls.wind(x_min, x_max, y_min, y_max);
  pls.schr(0, 0.8);
  const std::string log_x = figure.log_x ? "l" : "";
  const std::string log_y = figure.log_y ? "l" : "";
  // x labelled at given places (categories, or the few values of an axis such as f), else by PLplot.
  std::vector<std::pair<double, std::string>> labels;
  for (std::size_t i = 0; i < figure.x_ticks.size(); ++i)
    labels.emplace_back(static_cast<double>(i), figure.x_ticks[i]);
  for (const double value : figure.x_tick_values)
    if (!figure.log_x || value > 0) labels.emplace_back(transform(value, figure.log_x), number_text(value));
  const bool own_labels = !labels.empty();
  pls.col0(kGrid);
  pls.width(0.5);
  pls.box(own_labels ? "" : ("g" + log_x).c_str(), 0, 0, ("g" + log_y).c_str(), 0, 0);
  for (const auto& [x, label] : labels) {
    const PLFLT xs[2] = {x, x}, ys[2] = {y_min, y_max};
    pls.line(2, xs, ys);
  }
  pls.col0(1);
  pls.width(1);
  pls.box(own_labels ? "bc" : ("bcnst" + log_x).c_str(), 0, 0, ("bcnstv" + log_y).c_str(), 0, 0);
  for (const auto& [x, label] : labels)
    pls.mtex("b", 1.5, (x - x_min) / (x_max - x_min), 0.5, plplot_text(label).c_str());
  pls.lab(plplot_text(figure.x_label).c_str(), plplot_text(figure.y_label).c_str(),
          plplot_text(figure.title).c_str());
  std::vector<PLINT> options, colour, styles, symbol_colour, symbol_numbers;
  std::vector<PLFLT> widths, symbol_scales;
  std::vector<std::string> names;
  std::vector<const char*> texts, symbols;
  for (std::size_t s = 0; s < figure.series.size(); ++s) {
    const auto& p = points[s];
    const int c = 2 + static_cast<int>(s % kSeriesColours);
    const int kind = static_cast<int>((s / kSeriesColours + s) % std::size(kSymbols));
    pls.col0(c);
    pls.width(1.6);
    const auto n = static_cast<PLINT>(p.x.size());
    if (figure.series[s].lines && n > 1) pls.line(n, p.x.data(), p.y.data());
    if (n > 0 && figure.series[s].markers) {
      pls.width(1);
      pls.erry(n, p.x.data(), p.low.data(), p.high.data());
      pls.schr(0, 0.7);
      pls.string(n, p.x.data(), p.y.data(), kSymbols[kind]);
      pls.schr(0, 0.8);
    }
    options.push_back((figure.series[s].lines ? PL_LEGEND_LINE : 0) |
                      (figure.series[s].markers ? PL_LEGEND_SYMBOL : 0));
    colour.push_back(c);
    styles.push_back(1);
    widths.push_back(1.6);
    symbol_colour.push_back(c);
    symbol_scales.push_back(0.9);
    symbol_numbers.push_back(1);
    const auto& name = figure.series[s].name;  // long names shortened in the legend; the data keeps them
    names.push_back(plplot_text(name.size() > 64 ? name.substr(0, 61) + "..." : name));
    symbols.push_back(kSymbols[kind]);
  }
  if (legend) {
    for (const auto& name : names) texts.push_back(name.c_str());
    PLFLT width = 0, height = 0;
    pls.col0(1);
    pls.legend(&width, &height, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
               PL_POSITION_OUTSIDE | PL_POSITION_RIGHT | PL_POSITION_VIEWPORT, 0.03, 0.0, 0.08, 0, 1, 1, 0, 0,
               static_cast<PLINT>(names.size()), options.data(), 1.0, 0.85, 2.0, 0.0, colour.data(),
               texts.data(), nullptr, nullptr, nullptr, nullptr, colour.data(), styles.data(), widths.data(),
               symbol_colour.data(), symbol_scales.data(), symbol_numbers.data(), symbols.data());
  }
}

}  // namespace

void draw_figure(const Figure& figure, const fs::path& out) {
  const auto device = device_for(out);  // the extension is checked before anything is drawn
  if (!out.parent_path().empty()) fs::create_directories(out.parent_path());
  write_atomically(out, [&](const fs::path& temporary) {
    render(figure, temporary, device);  // the stream closes (and the file is flushed) when render returns
    if (!fs::exists(temporary) || fs::file_size(temporary) == 0)
      throw Error("PLplot wrote no " + out.string() + "; is plplot-driver-cairo installed (tools/setup.sh)?");
  });
  write_text_atomically(fs::path(out).replace_extension(".json"), figure_json(figure).dump(1) + "\n");
}

void write_png(const fs::path& path, const Image& image) {
  if (!path.parent_path().empty()) fs::create_directories(path.parent_path());
  write_atomically(path, [&](const fs::path& temporary) {
    if (!stbi_write_png(temporary.string().c_str(), image.width, image.height, image.channels,
                        image.pixels.data(), image.width * image.channels))
      throw Error("could not write " + path.string() + " (stb_image_write failed; is the disk full?)");
  });
}

}  // namespace latentlab::analysis
