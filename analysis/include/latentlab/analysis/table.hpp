#pragma once
// Ablation tables (docs/analysis.md): a pivot of the trials, rows by one or more dimensions, columns
// by the metrics or by one dimension, each cell mean +- std over seeds with the best value of each
// column marked; rendered as Markdown, LaTeX (booktabs, siunitx), CSV or JSON.
#include <string>
#include <vector>

#include "latentlab/analysis/aggregate.hpp"

namespace latentlab::analysis {

struct TableSpec {
  std::vector<std::string> rows;     // dimensions (short names or spec paths)
  bool default_rows = true;          // rows empty and this: default_rows(); else one row
  std::string cols = "metrics";      // "metrics", or a dimension
  std::vector<std::string> metrics;  // empty: every metric a trial has
  Filters filters;
};

struct TableColumn {
  const MetricInfo* metric = nullptr;
  std::string value;  // the --cols dimension's value ("" when the columns are metrics)
};

struct Table {
  std::string sweep;
  std::vector<std::string> row_dims;
  std::vector<std::vector<std::string>> row_keys;
  std::string col_dim;  // "" when the columns are metrics
  std::vector<TableColumn> columns;
  std::vector<std::vector<Cell>> cells;  // [row][column]
  int seeds = 0;                         // the n most value cells have (others show theirs)
  Filters filters;
};

Table make_table(const Results& results, const TableSpec& spec);

enum class TableFormat { Markdown, Latex, Csv, Json, Html };
TableFormat parse_table_format(const std::string& name);

std::string render_table(const Table& table, TableFormat format);

// A cell as text: "12.3 ± 0.4" (with "(n=2, 1 failed)" where it falls short), or what it lacks:
// failed, pending, n/a, – (no such trial).
std::string cell_text(const Cell& cell, int seeds);

// Text for HTML: & < > " escaped.
std::string html_escape(const std::string& text);

// One line under a table: what a cell is (mean +- std over n seeds), what bold means, the arrows.
std::string table_caption(const Table& table);

}  // namespace latentlab::analysis
