#include "latentlab/analysis/aggregate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::analysis {

namespace {

const char* const kEvalDims[] = {"eval", "sampler", "steps", "guider"};

bool has_axis(const Results& results, const std::string& name) {
  return std::any_of(results.axes.begin(), results.axes.end(),
                     [&](const AxisInfo& axis) { return axis.name == name; });
}

// An eval dimension's name: the plain one unless an axis has it.
std::string eval_dim(const Results& results, const std::string& plain) {
  return has_axis(results, plain) ? "eval." + plain : plain;
}

std::string seed_dim(const Results& results) {
  for (const auto& axis : results.axes)
    if (axis.is_seed()) return axis.name;
  return "";
}

struct Record {
  const TrialResult* trial = nullptr;
  const EvalResult* eval = nullptr;  // null: a trial without eval entries
  std::map<std::string, std::string> dims;
};

std::vector<Record> records_of(const Results& results) {
  std::vector<Record> records;
  for (const auto& trial : results.trials) {
    Record base;
    base.trial = &trial;
    for (const auto& axis : results.axes)
      base.dims[axis.name] = value_text(trial.values.value(axis.name, nlohmann::json()));
    base.dims["trial"] = trial.id;
    if (trial.evals.empty()) {
      for (const char* plain : kEvalDims) base.dims[eval_dim(results, plain)] = "";
      records.push_back(base);
      continue;
    }
    for (const auto& eval : trial.evals) {
      Record record = base;
      record.eval = &eval;
      record.dims[eval_dim(results, "eval")] = eval.label;
      record.dims[eval_dim(results, "sampler")] = eval.sampler;
      record.dims[eval_dim(results, "steps")] = std::isfinite(eval.steps) ? format_number(eval.steps) : "";
      record.dims[eval_dim(results, "guider")] = eval.guider.empty() ? "none" : eval.guider;
      records.push_back(record);
    }
  }
  return records;
}

// `a|b` -> {a, b}.
std::vector<std::string> alternatives(const std::string& wanted) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= wanted.size()) {
    const auto end = std::min(wanted.find('|', start), wanted.size());
    out.push_back(wanted.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool passes(const Record& record, const Results& results, const Filters& filters) {
  for (const auto& [name, wanted] : filters) {
    const auto& have = record.dims.at(resolve_dimension(results, name));
    const auto options = alternatives(wanted);
    if (std::find(options.begin(), options.end(), have) == options.end()) return false;
  }
  return true;
}

// Each filter's dimension exists and each of its values is one the dimension takes, so that a typo
// (lr=1e-3 for 0.001) is an error, not an empty table.
void check_filters(const Results& results, const Filters& filters) {
  std::vector<std::string> problems;
  for (const auto& [name, wanted] : filters) {
    const auto dim = resolve_dimension(results, name);
    const auto values = dimension_values(results, dim);
    for (const auto& option : alternatives(wanted))
      if (std::find(values.begin(), values.end(), option) == values.end())
        problems.push_back("--where " + name + "=" + wanted + ": '" + dim + "' never takes the value '" +
                           option + "'" + did_you_mean(option, values) + "; its values: " + join(values));
  }
  if (!problems.empty()) throw ConfigErrors(problems);
}

// What a trial-level metric's value belongs to: the trial's axes outside its eval entries (trials
// that differ only in their sampler share the autoencoder and the denoiser, so count once).
std::string trial_source(const Results& results, const TrialResult& trial) {
  std::string source;
  for (const auto& axis : results.axes)
    if (!axis.is_eval())
      source += axis.name + "=" + value_text(trial.values.value(axis.name, nlohmann::json())) + ";";
  return source;
}

// The metric's value in one record: NaN when absent.
double value_in(const Record& record, const MetricInfo& metric) {
  const auto& metrics = metric.level == Level::Trial ? record.trial->metrics : record.eval->metrics;
  const auto it = metrics.find(metric.name);
  return it == metrics.end() ? std::nan("") : it->second;
}

}  // namespace

Filters parse_filters(const std::vector<std::string>& texts) {
  Filters filters;
  for (const auto& text : texts) {
    const auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("--where " + text +
                        ": expected AXIS=VALUE (e.g. --where sampler=ddim, or a|b for either)");
    filters.emplace_back(text.substr(0, eq), text.substr(eq + 1));
  }
  return filters;
}

std::vector<std::string> dimensions(const Results& results) {
  std::vector<std::string> out;
  for (const auto& axis : results.axes) out.push_back(axis.name);
  for (const char* plain : kEvalDims) out.push_back(eval_dim(results, plain));
  out.push_back("trial");
  return out;
}

std::string resolve_dimension(const Results& results, const std::string& name) {
  for (const auto& axis : results.axes)
    if (axis.name == name || axis.path == name) return axis.name;
  const std::string plain = name.rfind("eval.", 0) == 0 ? name.substr(5) : name == "label" ? "eval" : name;
  for (const char* known : kEvalDims)
    if (plain == known) return eval_dim(results, plain);
  if (name == "trial") return name;
  auto names = dimensions(results);
  for (const auto& axis : results.axes)
    if (axis.path != axis.name) names.push_back(axis.path);
  throw ConfigError("no axis '" + name + "' in sweep " + results.name + did_you_mean(name, names) +
                    "; axes and dimensions: " + join(dimensions(results)) +
                    " (an axis by its short name or spec path)");
}

std::vector<std::string> dimension_values(const Results& results, const std::string& dimension) {
  std::vector<std::string> out;
  for (const auto& axis : results.axes)
    if (axis.name == dimension) {
      for (const auto& value : axis.values) out.push_back(value_text(value));
      return out;
    }
  std::set<std::string> seen;
  for (const auto& record : records_of(results)) {
    const auto& value = record.dims.at(dimension);
    if (seen.insert(value).second) out.push_back(value);
  }
  if (dimension == eval_dim(results, "steps"))
    std::stable_sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
      const double x = a.empty() ? HUGE_VAL : std::atof(a.c_str());
      const double y = b.empty() ? HUGE_VAL : std::atof(b.c_str());
      return x < y;
    });
  return out;
}

std::vector<Group> aggregate(const Results& results, const std::vector<std::string>& dims,
                             const MetricInfo& metric, const Filters& filters) {
  check_filters(results, filters);
  const auto seed = seed_dim(results);
  std::map<std::vector<std::string>, std::vector<const Record*>> members;
  const auto records = records_of(results);
  for (const auto& record : records) {
    if (!passes(record, results, filters)) continue;
    if (metric.level == Level::Eval && !record.eval) continue;
    std::vector<std::string> key;
    for (const auto& dim : dims) key.push_back(record.dims.at(dim));
    members[key].push_back(&record);
  }
  // Every dimension that is neither grouped nor averaged over must hold one value per group.
  std::map<std::string, std::set<std::string>> varying;
  for (const auto& [key, group] : members) {
    for (const auto& [dim, first] : group.front()->dims) {
      if (dim == "trial" || dim == seed || std::find(dims.begin(), dims.end(), dim) != dims.end()) continue;
      if (metric.level == Level::Trial && is_eval_dimension(results, dim)) continue;
      for (const auto* record : group)
        if (record->dims.at(dim) != first) {
          varying[dim].insert(first);
          varying[dim].insert(record->dims.at(dim));
        }
    }
  }
  if (!varying.empty()) {
    // Named once: a dimension another one that varies already determines (the sampler, by the
    // eval label) is fixed along with it.
    std::vector<std::string> candidates;
    for (const auto& dim : dimensions(results))
      if (varying.count(dim)) candidates.push_back(dim);
    const auto named = independent_dimensions(results, dims, candidates);
    std::vector<std::string> problems;
    for (const auto& [dim, values] : varying)
      if (std::find(named.begin(), named.end(), dim) != named.end() || named.empty())
        problems.push_back("'" + dim + "' takes several values (" +
                           join(std::vector<std::string>(values.begin(), values.end())) + ") within one " +
                           metric.name + " cell; group by it as well (--rows ...," + dim + " or --cols " +
                           dim + ") or keep one value (--where " + dim + "=" + *values.begin() + ")");
    throw ConfigErrors(problems);
  }
  std::vector<Group> groups;
  for (const auto& [key, group] : members) {
    Group out;
    out.key = key;
    std::set<std::string> sources;
    std::vector<double> values;
    for (const auto* record : group) {
      const auto source = metric.level == Level::Eval ? record->trial->id + "/" + record->eval->label
                                                      : trial_source(results, *record->trial);
      if (!sources.insert(source).second) continue;
      out.cell.trials.push_back(record->trial->id);
      const double value = value_in(*record, metric);
      const auto& status = record->trial->status;
      if (std::isfinite(value))
        values.push_back(value);
      else if (status == "failed")
        ++out.cell.failed;
      else if (status == "running" || status == "waiting")
        ++out.cell.pending;
      else
        ++out.cell.missing;
    }
    auto& cell = out.cell;
    cell.n = static_cast<int>(values.size());
    if (cell.n > 0) {
      cell.state = CellState::Value;
      for (const double v : values) cell.mean += v;
      cell.mean /= cell.n;
      if (cell.n > 1) {
        double squares = 0;
        for (const double v : values) squares += (v - cell.mean) * (v - cell.mean);
        cell.std = std::sqrt(squares / (cell.n - 1));
      }
    } else {
      cell.state = cell.failed ? CellState::Failed : cell.pending ? CellState::Pending : CellState::Missing;
    }
    groups.push_back(out);
  }
  std::vector<std::vector<std::string>> keys;
  for (const auto& group : groups) keys.push_back(group.key);
  const auto order = key_order(results, dims, keys);
  std::vector<Group> sorted;
  for (const auto index : order) sorted.push_back(groups[index]);
  return sorted;
}

std::vector<std::size_t> key_order(const Results& results, const std::vector<std::string>& dims,
                                   const std::vector<std::vector<std::string>>& keys) {
  std::vector<std::map<std::string, std::size_t>> rank(dims.size());
  for (std::size_t d = 0; d < dims.size(); ++d) {
    const auto values = dimension_values(results, dims[d]);
    for (std::size_t i = 0; i < values.size(); ++i) rank[d].emplace(values[i], i);
  }
  std::vector<std::size_t> order(keys.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    for (std::size_t d = 0; d < dims.size(); ++d) {
      const auto& x = keys[a][d];
      const auto& y = keys[b][d];
      const auto rx = rank[d].count(x) ? rank[d].at(x) : rank[d].size();
      const auto ry = rank[d].count(y) ? rank[d].at(y) : rank[d].size();
      if (rx != ry) return rx < ry;
      if (x != y) return x < y;
    }
    return false;
  });
  return order;
}

bool is_eval_dimension(const Results& results, const std::string& dim) {
  for (const char* plain : kEvalDims)
    if (dim == eval_dim(results, plain)) return true;
  for (const auto& axis : results.axes)
    if (axis.name == dim) return axis.is_eval();
  return false;
}

std::vector<std::string> independent_dimensions(const Results& results, const std::vector<std::string>& given,
                                                const std::vector<std::string>& candidates) {
  const auto records = records_of(results);
  std::vector<std::string> chosen = given, out;
  for (const auto& candidate : candidates) {
    // Determined when no two records agree on every chosen dimension and differ in the candidate.
    std::map<std::vector<std::string>, std::string> seen;
    bool determined = true;
    for (const auto& record : records) {
      std::vector<std::string> key;
      for (const auto& dim : chosen) key.push_back(record.dims.at(dim));
      const auto [it, inserted] = seen.emplace(key, record.dims.at(candidate));
      if (!inserted && it->second != record.dims.at(candidate)) {
        determined = false;
        break;
      }
    }
    if (determined) continue;
    chosen.push_back(candidate);
    out.push_back(candidate);
  }
  return out;
}

std::vector<std::string> default_rows(const Results& results) {
  std::vector<std::string> candidates;
  for (const auto& axis : results.axes)
    if (!axis.is_seed()) candidates.push_back(axis.name);
  candidates.push_back(eval_dim(results, "eval"));
  return independent_dimensions(results, {}, candidates);
}

std::vector<std::string> metrics_present(const Results& results) {
  std::vector<std::string> out;
  for (const auto& metric : metric_catalogue()) {
    bool present = false;
    for (const auto& trial : results.trials) {
      if (metric.level == Level::Trial) present = present || trial.metrics.count(metric.name);
      for (const auto& eval : trial.evals)
        present = present || (metric.level == Level::Eval && eval.metrics.count(metric.name));
    }
    if (present) out.push_back(metric.name);
  }
  return out;
}

FormattedNumber format_mean_std(double mean, double std, int n) {
  const auto fixed = [](double value, int decimals) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
    std::string text = buffer;
    if (text == "-0" || text.find_first_not_of("-0.") == std::string::npos)
      text = text.substr(text[0] == '-');
    return text;
  };
  if (!std::isfinite(mean)) return {"NaN", ""};
  if (n > 1 && std > 0 && std::isfinite(std)) {
    const int exponent = static_cast<int>(std::floor(std::log10(std)));
    const double leading = std / std::pow(10.0, exponent);
    const int digits = leading < 3 ? 2 : 1;  // 0.12, 0.3
    const int decimals = std::clamp(digits - 1 - exponent, 0, 8);
    return {fixed(mean, decimals), fixed(std, decimals)};
  }
  if (mean == 0) return {"0", n > 1 ? "0" : ""};
  const int exponent = static_cast<int>(std::floor(std::log10(std::fabs(mean))));
  if (exponent >= 6 || exponent < -4) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.3e", mean);
    return {buffer, n > 1 ? "0" : ""};
  }
  return {fixed(mean, std::clamp(3 - exponent, 0, 8)), n > 1 ? "0" : ""};
}

}  // namespace latentlab::analysis
