#pragma once
// Trials grouped by some of their dimensions, a metric reduced to mean +- std over the rest (the
// seeds) (docs/analysis.md). A dimension is an axis of the sweep, named by its short name or its spec
// path, or one of an eval entry's: `eval` (its label), `sampler`, `steps`, `guider` (also as
// `eval.sampler`, ... when an axis has the plain name), and `trial`. Any dimension other than the
// grouping ones and the seed that differs within one group is an error naming it: averaging over
// samplers is never what a user meant.
#include <string>
#include <utility>
#include <vector>

#include "latentlab/analysis/metrics.hpp"
#include "latentlab/analysis/results.hpp"

namespace latentlab::analysis {

// `AXIS=VALUE` filters: a trial is kept when it has every pair (a value may be `a|b`: either).
using Filters = std::vector<std::pair<std::string, std::string>>;
Filters parse_filters(const std::vector<std::string>& texts);

enum class CellState {
  Value,    // at least one finite value
  Failed,   // no value: its trials failed
  Pending,  // no value yet: its trials are running or waiting
  Missing,  // its trials ended without this metric (not computed, or not finite)
  Empty,    // no trial has these values (excluded, or filtered out)
};

struct Cell {
  CellState state = CellState::Empty;
  double mean = 0, std = 0;  // std: sample standard deviation (n - 1), 0 for n = 1
  int n = 0;                 // finite values
  int failed = 0, pending = 0, missing = 0;
  bool best = false;  // the best value of its column (tables)
  std::vector<std::string> trials;
};

struct Group {
  std::vector<std::string> key;  // the value of each grouping dimension
  Cell cell;
};

// The canonical name of a dimension given by short name, spec path or eval name; ConfigError
// naming the dimensions there are.
std::string resolve_dimension(const Results& results, const std::string& name);

// Every dimension of the results, axes first.
std::vector<std::string> dimensions(const Results& results);

// The values a dimension takes, in the spec's order (numbers ascending for `steps`).
std::vector<std::string> dimension_values(const Results& results, const std::string& dimension);

// The metric per group of `dims` (canonical names), groups in the order of their values. Throws
// ConfigError when another dimension varies inside a group.
std::vector<Group> aggregate(const Results& results, const std::vector<std::string>& dims,
                             const MetricInfo& metric, const Filters& filters);

// The rows a table has when none are named: every axis but the seed and the eval entry's label,
// leaving out those the others already determine (an axis $zip-ped with one before it, the label
// when each trial has one eval entry).
std::vector<std::string> default_rows(const Results& results);

// Of `candidates`, in order, those not determined by `given` and the candidates kept before them:
// for series and rows without redundant columns.
std::vector<std::string> independent_dimensions(const Results& results, const std::vector<std::string>& given,
                                                const std::vector<std::string>& candidates);

// Whether a dimension belongs to an eval entry: `eval`, `sampler`, `steps`, `guider`, or an axis in
// the spec's `eval` block.
bool is_eval_dimension(const Results& results, const std::string& dim);

// The order of `keys` (values of `dims`) by the order of each dimension's values in the spec.
std::vector<std::size_t> key_order(const Results& results, const std::vector<std::string>& dims,
                                   const std::vector<std::vector<std::string>>& keys);

// The metrics some trial of the results has a value of, in catalogue order.
std::vector<std::string> metrics_present(const Results& results);

// Mean +- std with the digits the spread supports: the std to two significant digits when it starts
// with 1 or 2, else one, and the mean to the same place; four significant digits without a spread.
struct FormattedNumber {
  std::string mean, std;  // std "" for n < 2
};
FormattedNumber format_mean_std(double mean, double std, int n);

}  // namespace latentlab::analysis
