// Figures from results: a metric against a dimension or another metric, and the ready-made ones.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

#include "latentlab/analysis/plot.hpp"
#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::analysis {

namespace {

bool is_number(const std::string& text) {
  if (text.empty()) return false;
  char* end = nullptr;
  std::strtod(text.c_str(), &end);
  return end && *end == '\0';
}

bool is_metric(const std::string& name) {
  try {
    find_metric(name);
    return true;
  } catch (const ConfigError&) {
    return false;
  }
}

std::string axis_label(const MetricInfo& metric) {
  return metric_header(metric);
}

// The dimensions that take more than one value, but the seed and the trial id, leaving out those the
// ones before them determine (an axis zipped with another, the eval label when the axes name it).
std::vector<std::string> varying_dimensions(const Results& results) {
  std::vector<std::string> candidates;
  for (const auto& dim : dimensions(results)) {
    if (dim == "trial") continue;
    bool seed = false;
    for (const auto& axis : results.axes) seed = seed || (axis.name == dim && axis.is_seed());
    if (!seed) candidates.push_back(dim);
  }
  return independent_dimensions(results, {}, candidates);
}

// Series for y against x: the varying dimensions x does not determine (its $zip partners go), and
// for a trial's own metric none of an eval entry's.
std::vector<std::string> series_for(const Results& results, const std::string& x, const MetricInfo& y) {
  std::vector<std::string> candidates;
  for (const auto& dim : varying_dimensions(results))
    if (dim != x && !(y.level == Level::Trial && is_eval_dimension(results, dim))) candidates.push_back(dim);
  return independent_dimensions(results, {x}, candidates);
}

std::string series_name(const std::vector<std::string>& dims, const std::vector<std::string>& values) {
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < dims.size(); ++i) parts.push_back(dims[i] + "=" + values[i]);
  return parts.empty() ? "all" : join(parts);
}

// Series with the same points are drawn once, named by all of them (a trial-level metric repeated
// over a sampler axis, say).
void merge_identical(Figure& figure) {
  std::vector<Series> merged;
  for (auto& series : figure.series) {
    bool found = false;
    for (auto& kept : merged)
      if (kept.x == series.x && kept.y == series.y && kept.error == series.error) {
        kept.name += "; " + series.name;
        found = true;
        break;
      }
    if (!found) merged.push_back(series);
  }
  figure.series = merged;
}

// y against a metric x: one point per group of `point_dims`, series by `series_dims`.
Figure tradeoff_figure(const Results& results, const MetricInfo& x, const MetricInfo& y,
                       const std::vector<std::string>& series_dims, const Filters& filters) {
  std::vector<std::string> candidates;
  for (const auto& dim : varying_dimensions(results))
    if (!(x.level == Level::Trial && y.level == Level::Trial && is_eval_dimension(results, dim)))
      candidates.push_back(dim);
  auto dims = series_dims;
  for (const auto& dim : independent_dimensions(results, series_dims, candidates)) dims.push_back(dim);
  const auto xs = aggregate(results, dims, x, filters);
  const auto ys = aggregate(results, dims, y, filters);
  std::map<std::vector<std::string>, const Cell*> x_of;
  for (const auto& group : xs) x_of[group.key] = &group.cell;
  Figure figure;
  figure.x_label = axis_label(x);
  figure.y_label = axis_label(y);
  std::map<std::vector<std::string>, std::size_t> index;
  for (const auto& group : ys) {
    const auto it = x_of.find(group.key);
    if (it == x_of.end() || group.cell.state != CellState::Value || it->second->state != CellState::Value)
      continue;
    std::vector<std::string> key;
    std::vector<std::string> names;
    if (series_dims.empty()) {
      key = group.key;
      names = dims;
    } else {
      key.assign(group.key.begin(), group.key.begin() + series_dims.size());
      names = series_dims;
    }
    if (!index.count(key)) {
      index[key] = figure.series.size();
      Series series;
      series.name = series_name(names, key);
      series.lines = !series_dims.empty();
      figure.series.push_back(series);
    }
    auto& series = figure.series[index[key]];
    series.x.push_back(it->second->mean);
    series.y.push_back(group.cell.mean);
    series.error.push_back(group.cell.std);
    series.n.push_back(group.cell.n);
  }
  for (auto& series : figure.series) {  // lines from left to right
    std::vector<std::size_t> order(series.x.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return series.x[a] < series.x[b]; });
    Series sorted = series;
    for (std::size_t i = 0; i < order.size(); ++i) {
      sorted.x[i] = series.x[order[i]];
      sorted.y[i] = series.y[order[i]];
      sorted.error[i] = series.error[order[i]];
      sorted.n[i] = series.n[order[i]];
    }
    series = sorted;
  }
  return figure;
}

// The curves a group of the trial files holds (one per distinct curve), named by what differs.
Figure curve_figure(const Results& results, const std::string& group, const std::string& x_column,
                    const std::vector<std::string>& y_columns, const std::string& x_label,
                    const std::string& y_label) {
  Figure figure;
  figure.x_label = x_label;
  figure.y_label = y_label;
  std::vector<const TrialResult*> trials;
  std::vector<std::map<std::string, std::vector<double>>> data;
  for (const auto& trial : results.trials) {
    if (trial.file.empty()) continue;
    auto columns = read_columns(trial.file, group);
    if (!columns.count(x_column)) continue;
    trials.push_back(&trial);
    data.push_back(std::move(columns));
  }
  // Name each curve by the axes whose values differ among the trials drawn, without those the
  // others determine ($zip partners).
  std::vector<std::string> candidates;
  for (const auto& axis : results.axes) {
    std::set<std::string> values;
    for (const auto* trial : trials)
      values.insert(value_text(trial->values.value(axis.name, nlohmann::json())));
    if (values.size() > 1) candidates.push_back(axis.name);
  }
  const auto differing = independent_dimensions(results, {}, candidates);
  for (std::size_t t = 0; t < trials.size(); ++t)
    for (const auto& column : y_columns) {
      if (!data[t].count(column)) continue;
      Series series;
      std::vector<std::string> values;
      for (const auto& axis : differing)
        values.push_back(value_text(trials[t]->values.value(axis, nlohmann::json())));
      series.name = series_name(differing, values);
      if (y_columns.size() > 1) series.name = column + (differing.empty() ? "" : ", " + series.name);
      const auto& x = data[t].at(x_column);
      const auto& y = data[t].at(column);
      for (std::size_t i = 0; i < std::min(x.size(), y.size()); ++i)
        if (std::isfinite(x[i]) && std::isfinite(y[i])) {
          series.x.push_back(x[i]);
          series.y.push_back(y[i]);
        }
      series.markers = series.x.size() <= 40;  // a curve of many points is a line
      if (!series.x.empty()) figure.series.push_back(series);
    }
  merge_identical(figure);
  return figure;
}

}  // namespace

Figure metric_figure(const Results& results, const PlotSpec& spec) {
  const auto& y = find_metric(spec.y);
  std::vector<std::string> series_dims;
  for (const auto& name : spec.series) series_dims.push_back(resolve_dimension(results, name));
  Figure figure;
  const bool x_is_dimension = [&] {
    try {
      resolve_dimension(results, spec.x);
      return true;
    } catch (const ConfigError& e) {
      if (is_metric(spec.x)) return false;
      throw ConfigError(std::string(e.what()) + "; or a metric for a trade-off plot (--x throughput)");
    }
  }();
  if (!x_is_dimension) {
    figure = tradeoff_figure(results, find_metric(spec.x), y, series_dims, spec.filters);
  } else {
    const auto x = resolve_dimension(results, spec.x);
    if (std::find(series_dims.begin(), series_dims.end(), x) != series_dims.end())
      throw ConfigError("--series names the --x dimension '" + x + "'; series are the other dimensions");
    auto dims = series_dims;
    dims.push_back(x);
    const auto groups = aggregate(results, dims, y, spec.filters);
    const auto values = dimension_values(results, x);
    const bool numeric =
        std::all_of(values.begin(), values.end(), [](const auto& v) { return is_number(v); });
    if (!numeric) figure.x_ticks = values;
    if (numeric && values.size() <= 12)
      for (const auto& value : values) figure.x_tick_values.push_back(std::atof(value.c_str()));
    figure.x_label = x;
    figure.y_label = axis_label(y);
    std::map<std::vector<std::string>, std::size_t> index;
    for (const auto& group : groups) {
      if (group.cell.state != CellState::Value) continue;
      const std::vector<std::string> key(group.key.begin(), group.key.end() - 1);
      if (!index.count(key)) {
        index[key] = figure.series.size();
        Series series;
        series.name = series_name(series_dims, key);
        figure.series.push_back(series);
      }
      auto& series = figure.series[index[key]];
      const auto& value = group.key.back();
      series.x.push_back(
          numeric ? std::atof(value.c_str())
                  : static_cast<double>(std::find(values.begin(), values.end(), value) - values.begin()));
      series.y.push_back(group.cell.mean);
      series.error.push_back(group.cell.std);
      series.n.push_back(group.cell.n);
    }
  }
  figure.log_x = spec.log_x;
  figure.log_y = spec.log_y;
  figure.title = spec.title.empty() ? figure.y_label + " vs " + figure.x_label : spec.title;
  if (figure.series.empty())
    throw ConfigError("nothing to plot: no finished trial has " + y.name +
                      (x_is_dimension ? "" : " and " + spec.x) + " (latentlab status " +
                      results.folder.string() + " shows what has run)");
  return figure;
}

std::vector<NamedFigure> standard_figures(const Results& results) {
  std::vector<NamedFigure> out;
  const auto present = metrics_present(results);
  const auto has = [&](const char* metric) {
    return std::find(present.begin(), present.end(), metric) != present.end();
  };
  const auto varying = varying_dimensions(results);
  // A headline metric against every numeric dimension (f: Fig. 6 and Tab. 8; steps per sampler).
  for (const auto& x : varying) {
    const auto values = dimension_values(results, x);
    if (!std::all_of(values.begin(), values.end(), [](const auto& v) { return is_number(v); })) continue;
    for (const char* metric : {"fid", "rfid", "psnr", "elbo_bpd", "latent_std", "throughput"}) {
      if (!has(metric)) continue;
      const auto& info = find_metric(metric);
      if (std::string(metric) == "throughput" && !is_eval_dimension(results, x)) continue;
      if (info.level == Level::Trial && is_eval_dimension(results, x)) continue;
      PlotSpec spec;
      spec.x = x;
      spec.y = metric;
      spec.series = series_for(results, x, info);
      spec.log_x = x == "f" || is_eval_dimension(results, x);
      try {
        auto figure = metric_figure(results, spec);
        merge_identical(figure);
        out.push_back({std::string(metric) + "-vs-" + x,
                       info.label + " against " + x + ", mean \u00b1 std over seeds", figure});
      } catch (const ConfigError&) {
        // Not drawable from what has finished so far.
      }
    }
  }
  // The trade-off between sampling speed and quality (Fig. 7).
  if (has("fid") && has("throughput")) try {
      auto figure = tradeoff_figure(results, find_metric("throughput"), find_metric("fid"), {}, {});
      figure.title = "FID vs throughput";
      std::size_t points = 0;
      for (const auto& series : figure.series) points += series.x.size();
      if (points > 1)
        out.push_back(
            {"fid-vs-throughput", "sample quality against sampling speed (the paper's Fig. 7)", figure});
    } catch (const ConfigError&) {
      // Not drawable from what has finished so far.
    }
  // Log SNR(t) of the schedule and the latents' effective one before and after rescaling (Sec. G).
  {
    auto figure =
        curve_figure(results, "snr", "t", {"log_snr_eff_raw", "log_snr_eff_rescaled"}, "t", "log SNR(t)");
    if (!figure.series.empty()) {
      figure.title = "Effective log SNR, raw and rescaled";
      out.push_back(
          {"log-snr", "log SNR(t) + log Var(z) of the latents: raw, and after rescaling (Sec. G)", figure});
    }
  }
  const std::pair<const char*, const char*> curves[] = {
      {"denoiser/train", "loss"}, {"denoiser/eval", "elbo_bpd"}, {"autoencoder/train", "loss"}};
  for (const auto& [group, column] : curves) {
    auto figure = curve_figure(results, group, "step", {column}, "step",
                               std::string(column) == "elbo_bpd" ? "ELBO (bits/dim) \u2193" : "loss");
    if (figure.series.empty()) continue;
    std::string name = group;
    std::replace(name.begin(), name.end(), '/', '-');
    figure.title = std::string(group) + ": " + column;
    // A log axis for losses that stay above zero (a KL autoencoder's NLL term can go negative).
    figure.log_y = std::string(column) == "loss";
    for (const auto& series : figure.series)
      for (const double y : series.y) figure.log_y = figure.log_y && y > 0;
    out.push_back({name + "-" + column,
                   std::string("training curves: ") + group + " " + column + " per trial", figure});
  }
  return out;
}

}  // namespace latentlab::analysis
