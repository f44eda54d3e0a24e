// Rendering a Table as Markdown, LaTeX (booktabs rules, siunitx numbers), CSV and JSON.
#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

#include "latentlab/analysis/table.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::analysis {

namespace {

// What a cell without a value says, never a blank.
const char* state_text(CellState state) {
  switch (state) {
    case CellState::Failed:
      return "failed";
    case CellState::Pending:
      return "pending";
    case CellState::Missing:
      return "n/a";
    case CellState::Empty:
      return "\u2013";
    case CellState::Value:
      break;
  }
  return "";
}

// "(n=2, 1 failed)" when a cell has fewer values than the table's seeds, or some did not end well.
std::string cell_note(const Cell& cell, int seeds) {
  std::vector<std::string> notes;
  if (cell.n != seeds) notes.push_back("n=" + std::to_string(cell.n));
  if (cell.failed) notes.push_back(std::to_string(cell.failed) + " failed");
  if (cell.pending) notes.push_back(std::to_string(cell.pending) + " pending");
  if (cell.missing) notes.push_back(std::to_string(cell.missing) + " n/a");
  return notes.empty() ? "" : " (" + join(notes) + ")";
}

std::string column_title(const Table& table, const TableColumn& column) {
  auto title = metric_header(*column.metric);
  if (!table.col_dim.empty()) title += " " + table.col_dim + "=" + column.value;
  return title;
}

std::string markdown_escape(const std::string& text) {
  std::string out;
  for (const char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

std::string render_markdown(const Table& table) {
  std::ostringstream out;
  out << "|";
  for (const auto& dim : table.row_dims) out << " " << markdown_escape(dim) << " |";
  for (const auto& column : table.columns) out << " " << markdown_escape(column_title(table, column)) << " |";
  out << "\n|";
  for (std::size_t i = 0; i < table.row_dims.size(); ++i) out << " --- |";
  for (std::size_t i = 0; i < table.columns.size(); ++i) out << " ---: |";
  out << "\n";
  for (std::size_t r = 0; r < table.row_keys.size(); ++r) {
    out << "|";
    for (const auto& value : table.row_keys[r])
      out << " " << markdown_escape(value.empty() ? "\u2013" : value) << " |";
    for (const auto& cell : table.cells[r]) {
      auto text = cell_text(cell, table.seeds);
      if (cell.best) {
        const auto note = cell_note(cell, table.seeds);
        text = "**" + text.substr(0, text.size() - note.size()) + "**" + note;
      }
      out << " " << text << " |";
    }
    out << "\n";
  }
  out << "\n" << table_caption(table) << "\n";
  return out.str();
}

std::string latex_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '\\':
        out += "\\textbackslash{}";
        break;
      case '&':
      case '%':
      case '$':
      case '#':
      case '_':
      case '{':
      case '}':
        out += '\\';
        out += c;
        break;
      case '~':
        out += "\\textasciitilde{}";
        break;
      case '^':
        out += "\\textasciicircum{}";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string latex_header(const MetricInfo& metric) {
  std::string header = metric.latex;
  if (!metric.unit.empty()) header += " (" + latex_escape(metric.unit) + ")";
  if (metric.better == Better::Lower) header += " $\\downarrow$";
  if (metric.better == Better::Higher) header += " $\\uparrow$";
  return header;
}

std::string latex_caption(const Table& table) {
  std::string text = latex_escape(table_caption(table));
  const std::pair<std::string, std::string> replace[] = {
      {"\u00b1", "$\\pm$"}, {"\u2193", "$\\downarrow$"}, {"\u2191", "$\\uparrow$"}};
  for (const auto& [from, to] : replace)
    for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
      text.replace(at, from.size(), to);
  return text;
}

std::string render_html(const Table& table) {
  std::ostringstream out;
  out << "<table class=\"ablation\">\n<caption>" << html_escape(table_caption(table))
      << "</caption>\n<thead><tr>";
  for (const auto& dim : table.row_dims) out << "<th class=\"dim\">" << html_escape(dim) << "</th>";
  for (const auto& column : table.columns)
    out << "<th>" << html_escape(column_title(table, column)) << "</th>";
  out << "</tr></thead>\n<tbody>\n";
  for (std::size_t r = 0; r < table.row_keys.size(); ++r) {
    out << "<tr>";
    for (const auto& value : table.row_keys[r])
      out << "<td class=\"dim\">" << html_escape(value.empty() ? "\u2013" : value) << "</td>";
    for (const auto& cell : table.cells[r]) {
      const char* kind =
          cell.state == CellState::Value ? (cell.best ? "best" : "value") : state_text(cell.state);
      out << "<td class=\""
          << (cell.state == CellState::Empty ? "empty"
              : kind == std::string("n/a")   ? "na"
                                             : kind)
          << "\"" << (cell.best ? " style=\"font-weight:bold\"" : "") << ">"
          << html_escape(cell_text(cell, table.seeds)) << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</tbody>\n</table>\n";
  return out.str();
}

std::string render_latex(const Table& table) {
  std::ostringstream out;
  const auto label = [](std::string name) {
    for (auto& c : name)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '-';
    return name;
  };
  out << "% latentlab table: needs \\usepackage{booktabs} and \\usepackage{siunitx} in the preamble\n"
      << "\\begin{table}[t]\n\\centering\n"
      << "\\sisetup{reset-text-series = false, text-series-to-math = true}  % \\textbf{} reaches \\num{} "
         "(siunitx v3)\n"
      << "\\caption{" << latex_caption(table) << "}\n\\label{tab:" << label(table.sweep)
      << "}\n\\begin{tabular}{" << std::string(table.row_dims.size(), 'l')
      << std::string(table.columns.size(), 'c') << "}\n\\toprule\n";
  const auto width = table.row_dims.size();
  if (!table.col_dim.empty()) {
    // A metric over the dimension's values, with a rule under each group.
    std::ostringstream rules;
    out << std::string(width > 0 ? width - 1 : 0, '&') << (width > 0 ? " & " : "");
    for (std::size_t c = 0; c < table.columns.size();) {
      std::size_t span = 1;
      while (c + span < table.columns.size() && table.columns[c + span].metric == table.columns[c].metric)
        ++span;
      out << "\\multicolumn{" << span << "}{c}{" << latex_header(*table.columns[c].metric) << "}"
          << (c + span < table.columns.size() ? " & " : " \\\\\n");
      rules << "\\cmidrule(lr){" << width + c + 1 << "-" << width + c + span << "}";
      c += span;
    }
    out << rules.str() << "\n";
  }
  for (std::size_t d = 0; d < width; ++d) out << (d ? " & " : "") << latex_escape(table.row_dims[d]);
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    const auto& column = table.columns[c];
    out << (width || c ? " & " : "")
        << (table.col_dim.empty() ? latex_header(*column.metric)
                                  : latex_escape(table.col_dim + "=" + column.value));
  }
  out << " \\\\\n\\midrule\n";
  for (std::size_t r = 0; r < table.row_keys.size(); ++r) {
    for (std::size_t d = 0; d < width; ++d) out << (d ? " & " : "") << latex_escape(table.row_keys[r][d]);
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      const auto& cell = table.cells[r][c];
      std::string text;
      if (cell.state == CellState::Value) {
        const auto number = format_mean_std(cell.mean, cell.std, cell.n);
        text = "\\num{" + number.mean + (number.std.empty() ? "" : " \\pm " + number.std) + "}";
        if (cell.best) text = "\\textbf{" + text + "}";
        const auto note = cell_note(cell, table.seeds);
        if (!note.empty()) text += "\\,{\\footnotesize" + latex_escape(note) + "}";
      } else {
        text =
            cell.state == CellState::Empty ? "--" : "\\textit{" + std::string(state_text(cell.state)) + "}";
      }
      out << (width || c ? " & " : "") << text;
    }
    out << " \\\\\n";
  }
  out << "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
  return out.str();
}

const char* state_name(CellState state) {
  switch (state) {
    case CellState::Value:
      return "value";
    case CellState::Failed:
      return "failed";
    case CellState::Pending:
      return "pending";
    case CellState::Missing:
      return "missing";
    case CellState::Empty:
      return "empty";
  }
  return "";
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (const char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string column_key(const Table& table, const TableColumn& column) {
  return column.metric->name + (table.col_dim.empty() ? "" : "[" + table.col_dim + "=" + column.value + "]");
}

std::string render_csv(const Table& table) {
  std::ostringstream out;
  std::vector<std::string> header = table.row_dims;
  for (const auto& column : table.columns) {
    const auto key = column_key(table, column);
    for (const char* suffix : {"", "_std", "_n", "_state"}) header.push_back(key + suffix);
  }
  for (std::size_t i = 0; i < header.size(); ++i) out << (i ? "," : "") << csv_field(header[i]);
  out << "\n";
  for (std::size_t r = 0; r < table.row_keys.size(); ++r) {
    std::vector<std::string> fields = table.row_keys[r];
    for (const auto& cell : table.cells[r]) {
      const bool value = cell.state == CellState::Value;
      fields.push_back(value ? format_number(cell.mean) : "");
      fields.push_back(value && cell.n > 1 ? format_number(cell.std) : "");
      fields.push_back(std::to_string(cell.n));
      fields.push_back(cell.best ? "best" : state_name(cell.state));
    }
    for (std::size_t i = 0; i < fields.size(); ++i) out << (i ? "," : "") << csv_field(fields[i]);
    out << "\n";
  }
  return out.str();
}

std::string render_json(const Table& table) {
  using nlohmann::json;
  json columns = json::array();
  for (const auto& column : table.columns) {
    const auto& metric = *column.metric;
    json entry = {{"key", column_key(table, column)},
                  {"metric", metric.name},
                  {"label", metric.label},
                  {"unit", metric.unit},
                  {"better", metric.better == Better::Lower    ? "lower"
                             : metric.better == Better::Higher ? "higher"
                                                               : "neither"}};
    if (!table.col_dim.empty()) entry[table.col_dim] = column.value;
    columns.push_back(entry);
  }
  json rows = json::array();
  for (std::size_t r = 0; r < table.row_keys.size(); ++r) {
    json row = {{"values", json::object()}, {"cells", json::array()}};
    for (std::size_t d = 0; d < table.row_dims.size(); ++d)
      row["values"][table.row_dims[d]] = table.row_keys[r][d];
    for (const auto& cell : table.cells[r]) {
      json entry = {{"state", state_name(cell.state)}, {"n", cell.n},
                    {"failed", cell.failed},           {"pending", cell.pending},
                    {"missing", cell.missing},         {"trials", cell.trials}};
      if (cell.state == CellState::Value) {
        entry["mean"] = cell.mean;
        entry["std"] = cell.n > 1 ? json(cell.std) : json();
        entry["best"] = cell.best;
      }
      row["cells"].push_back(entry);
    }
    rows.push_back(row);
  }
  const json out = {{"sweep", table.sweep},
                    {"rows_by", table.row_dims},
                    {"columns_by", table.col_dim.empty() ? "metrics" : table.col_dim},
                    {"columns", columns},
                    {"rows", rows},
                    {"seeds", table.seeds},
                    {"caption", table_caption(table)}};
  return out.dump(2) + "\n";
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string cell_text(const Cell& cell, int seeds) {
  if (cell.state != CellState::Value) return state_text(cell.state);
  const auto number = format_mean_std(cell.mean, cell.std, cell.n);
  return (number.std.empty() ? number.mean : number.mean + " \u00b1 " + number.std) + cell_note(cell, seeds);
}

std::string render_table(const Table& table, TableFormat format) {
  switch (format) {
    case TableFormat::Markdown:
      return render_markdown(table);
    case TableFormat::Latex:
      return render_latex(table);
    case TableFormat::Csv:
      return render_csv(table);
    case TableFormat::Json:
      return render_json(table);
    case TableFormat::Html:
      return render_html(table);
  }
  return "";
}

}  // namespace latentlab::analysis
