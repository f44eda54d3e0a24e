#include "latentlab/analysis/table.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::analysis {

Table make_table(const Results& results, const TableSpec& spec) {
  Table table;
  table.sweep = results.name;
  table.filters = spec.filters;
  for (const auto& row : spec.rows.empty() && spec.default_rows ? default_rows(results) : spec.rows) {
    const auto dim = resolve_dimension(results, row);
    if (std::find(table.row_dims.begin(), table.row_dims.end(), dim) != table.row_dims.end())
      throw ConfigError("--rows names '" + row + "' twice");
    table.row_dims.push_back(dim);
  }
  if (!spec.cols.empty() && spec.cols != "metrics") {
    table.col_dim = resolve_dimension(results, spec.cols);
    if (std::find(table.row_dims.begin(), table.row_dims.end(), table.col_dim) != table.row_dims.end())
      throw ConfigError("--cols " + spec.cols +
                        " is also one of --rows; a dimension is either rows or columns");
  }
  std::vector<const MetricInfo*> metrics;
  if (spec.metrics.empty()) {
    const auto present = metrics_present(results);
    for (const auto level : {Level::Eval, Level::Trial})
      for (const auto& name : headline_metrics(level))
        if (std::find(present.begin(), present.end(), name) != present.end())
          metrics.push_back(&find_metric(name));
    if (metrics.empty() && !present.empty()) metrics.push_back(&find_metric(present.front()));
  } else {
    for (const auto& name : spec.metrics) metrics.push_back(&find_metric(name));
  }
  if (metrics.empty())
    throw ConfigError("no trial of " + results.folder.string() +
                      " has metrics yet (nothing finished); wait for a trial to end, or name --metrics");

  auto dims = table.row_dims;
  if (!table.col_dim.empty()) dims.push_back(table.col_dim);
  std::vector<std::map<std::vector<std::string>, Cell>> by_metric;
  std::set<std::vector<std::string>> row_set;
  std::set<std::string> col_values;
  std::vector<std::string> problems;
  for (const auto* metric : metrics) {
    std::map<std::vector<std::string>, Cell> cells;
    try {
      for (auto& group : aggregate(results, dims, *metric, spec.filters)) {
        std::vector<std::string> row(group.key.begin(), group.key.begin() + table.row_dims.size());
        row_set.insert(row);
        if (!table.col_dim.empty()) col_values.insert(group.key.back());
        cells[group.key] = group.cell;
      }
    } catch (const ConfigError& e) {
      for (const auto& problem : problems_of(e))
        if (std::find(problems.begin(), problems.end(), problem) == problems.end())
          problems.push_back(problem);
    }
    by_metric.push_back(std::move(cells));
  }
  if (!problems.empty()) throw ConfigErrors(problems);

  // Rows and columns in the order of their values in the spec.
  const std::vector<std::vector<std::string>> unordered(row_set.begin(), row_set.end());
  for (const auto index : key_order(results, table.row_dims, unordered))
    table.row_keys.push_back(unordered[index]);
  std::vector<std::string> columns_values;
  if (!table.col_dim.empty())
    for (const auto& value : dimension_values(results, table.col_dim))
      if (col_values.count(value)) columns_values.push_back(value);
  std::vector<std::size_t> column_metric;
  for (std::size_t m = 0; m < metrics.size(); ++m) {
    if (table.col_dim.empty()) {
      table.columns.push_back({metrics[m], ""});
      column_metric.push_back(m);
    }
    for (const auto& value : columns_values) {
      table.columns.push_back({metrics[m], value});
      column_metric.push_back(m);
    }
  }
  table.cells.assign(table.row_keys.size(), std::vector<Cell>(table.columns.size()));
  for (std::size_t r = 0; r < table.row_keys.size(); ++r)
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      auto key = table.row_keys[r];
      if (!table.col_dim.empty()) key.push_back(table.columns[c].value);
      const auto& cells = by_metric[column_metric[c]];
      const auto it = cells.find(key);
      if (it != cells.end()) table.cells[r][c] = it->second;
    }
  // The best value of each column (ties all marked), where there is a direction and a choice.
  std::map<int, int> ns;  // n -> value cells with it
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    const auto better = table.columns[c].metric->better;
    std::vector<Cell*> values;
    for (auto& row : table.cells)
      if (row[c].state == CellState::Value) {
        values.push_back(&row[c]);
        ++ns[row[c].n];
      }
    if (better == Better::Neither || values.size() < 2) continue;
    double best = values.front()->mean;
    bool all_equal = true;
    for (const auto* cell : values) {
      best = better == Better::Lower ? std::min(best, cell->mean) : std::max(best, cell->mean);
      all_equal = all_equal && cell->mean == values.front()->mean;
    }
    if (all_equal) continue;  // nothing to choose between
    for (auto* cell : values) cell->best = cell->mean == best;
  }
  // The n most cells have; the others say theirs.
  for (const auto& [n, cells] : ns)
    if (table.seeds == 0 || cells > ns.at(table.seeds)) table.seeds = n;
  return table;
}

TableFormat parse_table_format(const std::string& name) {
  if (name == "md" || name == "markdown") return TableFormat::Markdown;
  if (name == "tex" || name == "latex") return TableFormat::Latex;
  if (name == "csv") return TableFormat::Csv;
  if (name == "json") return TableFormat::Json;
  if (name == "html") return TableFormat::Html;
  throw ConfigError("--format " + name + ": unknown table format" +
                    did_you_mean(name, {"md", "tex", "csv", "json", "html"}) +
                    "; formats: md, tex, csv, json, html");
}

std::string table_caption(const Table& table) {
  std::string text = "Sweep " + table.sweep + ". ";
  if (table.seeds > 1)
    text += "Mean \u00b1 std over " + std::to_string(table.seeds) + " seeds (n given where it differs)";
  else
    text += "One seed per cell (n given where there are more)";
  text += "; the best value of each column in bold; \u2193 lower is better, \u2191 higher is better.";
  if (!table.filters.empty()) {
    std::vector<std::string> kept;
    for (const auto& [name, value] : table.filters) kept.push_back(name + "=" + value);
    text += " Only " + join(kept) + ".";
  }
  return text;
}

}  // namespace latentlab::analysis
