#include "latentlab/analysis/report.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "latentlab/analysis/plot.hpp"
#include "latentlab/analysis/table.hpp"
#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::analysis {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kMarker = "<!-- latentlab report -->";

std::string html(const std::string& text) {
  return html_escape(text);
}

// A file name from a trial id or an eval label (ids are file-name safe already; labels may not be).
std::string file_name(const std::string& text) {
  std::string out;
  for (const char c : text)
    out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == '=' ||
                   c == ','
               ? c
               : '_';
  return out;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out.flush()) throw Error("could not write " + path.string() + " (is the disk full?)");
}

std::string seconds_text(double seconds) {
  char buffer[64];
  if (seconds < 60)
    std::snprintf(buffer, sizeof buffer, "%.1f s", seconds);
  else if (seconds < 3600)
    std::snprintf(buffer, sizeof buffer, "%d min %02d s", static_cast<int>(seconds) / 60,
                  static_cast<int>(seconds) % 60);
  else
    std::snprintf(buffer, sizeof buffer, "%d h %02d min", static_cast<int>(seconds) / 3600,
                  static_cast<int>(seconds) % 3600 / 60);
  return buffer;
}

struct Section {
  std::string title;
  std::string html, markdown;
};

// A paragraph in both renderings.
void add_note(Section& section, const std::string& text, bool problem = false) {
  section.html += std::string(problem ? "<p class=\"problem\">" : "<p>") + html(text) + "</p>\n";
  section.markdown += text + "\n\n";
}

struct TableChoice {
  std::string title, file, blurb;
  TableSpec spec;
};

// The report's tables: sample quality per eval entry, and the trial's own metrics (Tab. 8's
// reconstruction columns, the ELBO, the latents).
std::vector<TableChoice> table_choices(const Results& results) {
  const auto present = metrics_present(results);
  const auto headline_present = [&](Level level) {
    std::vector<std::string> out;
    for (const auto& name : headline_metrics(level))
      if (std::find(present.begin(), present.end(), name) != present.end()) out.push_back(name);
    return out;
  };
  const auto eval_metrics = headline_present(Level::Eval), trial_metrics = headline_present(Level::Trial);
  std::vector<std::string> axes;
  for (const auto& axis : results.axes)  // the axes that can change a trial's own metrics
    if (!axis.is_seed() && !axis.is_eval()) axes.push_back(axis.name);
  std::vector<TableChoice> out;
  if (!eval_metrics.empty()) {
    TableChoice choice{
        "Sample quality",
        "samples",
        "Metrics of each eval entry's samples against the held-out data; throughput in samples "
        "per second of the sampler and decoder.",
        {}};
    choice.spec.rows = default_rows(results);
    choice.spec.metrics = eval_metrics;
    out.push_back(choice);
  }
  if (!trial_metrics.empty()) {
    TableChoice choice{
        "Autoencoder, latents and denoiser",
        "trials",
        "The autoencoder's reconstructions (rFID, PSNR, SSIM, PSIM as in the paper's Tab. 8), the "
        "denoiser's ELBO on held-out data (Eq. 13/15) and the latents' standard deviation before "
        "rescaling.",
        {}};
    choice.spec.rows = independent_dimensions(results, {}, axes);
    choice.spec.default_rows = false;  // no axis: one row
    choice.spec.metrics = trial_metrics;
    out.push_back(choice);
  }
  return out;
}

Section tables_section(const Results& results, const fs::path& dir, std::size_t& count) {
  Section section{"Tables", "", ""};
  for (const auto& choice : table_choices(results)) {
    section.html += "<h3>" + html(choice.title) + "</h3>\n<p>" + html(choice.blurb) + "</p>\n";
    section.markdown += "### " + choice.title + "\n\n" + choice.blurb + "\n\n";
    try {
      const auto table = make_table(results, choice.spec);
      section.html += render_table(table, TableFormat::Html);
      section.html += "<p class=\"files\">Also as <a href=\"tables/" + choice.file +
                      ".tex\">LaTeX</a>, <a href=\"tables/" + choice.file +
                      ".csv\">CSV</a>, <a href=\"tables/" + choice.file + ".md\">Markdown</a>.</p>\n";
      section.markdown += render_table(table, TableFormat::Markdown) + "\nAlso as [LaTeX](tables/" +
                          choice.file + ".tex) and [CSV](tables/" + choice.file + ".csv).\n\n";
      write_file(dir / "tables" / (choice.file + ".tex"), render_table(table, TableFormat::Latex));
      write_file(dir / "tables" / (choice.file + ".csv"), render_table(table, TableFormat::Csv));
      write_file(dir / "tables" / (choice.file + ".md"), render_table(table, TableFormat::Markdown));
      write_file(dir / "tables" / (choice.file + ".json"), render_table(table, TableFormat::Json));
      ++count;
    } catch (const ConfigError& e) {
      add_note(section, "Not tabulated: " + std::string(e.what()), true);
    }
  }
  if (count == 0 && section.html.empty()) {
    add_note(section, "No metrics yet: no trial has finished.");
  }
  return section;
}

Section figures_section(const Results& results, const fs::path& dir, std::size_t& count) {
  Section section{"Figures", "", ""};
  std::vector<NamedFigure> figures;
  try {
    figures = standard_figures(results);
  } catch (const Error& e) {
    add_note(section, "No figures: " + std::string(e.what()), true);
  }
  for (const auto& named : figures) {
    try {
      draw_figure(named.figure, dir / "figures" / (named.name + ".svg"));
      draw_figure(named.figure, dir / "figures" / (named.name + ".pdf"));
    } catch (const Error& e) {  // one figure that cannot be drawn does not cost the report
      add_note(section, "Figure " + named.name + " not drawn: " + std::string(e.what()), true);
      continue;
    }
    section.html += "<figure><img src=\"figures/" + named.name + ".svg\" alt=\"" + html(named.figure.title) +
                    "\"><figcaption>" + html(named.caption) + " (<a href=\"figures/" + named.name +
                    ".pdf\">PDF</a>, <a href=\"figures/" + named.name +
                    ".json\">data</a>)</figcaption></figure>\n";
    section.markdown += "![" + named.figure.title + "](figures/" + named.name + ".svg)\n\n*" + named.caption +
                        "* ([PDF](figures/" + named.name + ".pdf))\n\n";
    ++count;
  }
  if (count == 0 && section.html.empty()) {
    add_note(section, "No figures yet: nothing has finished that can be drawn.");
  }
  return section;
}

Section samples_section(const Results& results, const fs::path& dir, std::size_t& count) {
  Section section{"Samples", "<div class=\"grids\">\n", ""};
  for (const auto& trial : results.trials) {
    if (trial.file.empty()) continue;
    for (const auto& eval : trial.evals) {
      const auto grid = read_sample_grid(trial.file, eval.label);
      if (!grid) continue;
      const auto relative = "samples/" + file_name(trial.id) + "/" + file_name(eval.label) + ".png";
      write_png(dir / relative, *grid);
      const auto caption = trial.id + ", " + eval.label;
      section.html += "<figure class=\"grid\"><img src=\"" + relative + "\" alt=\"samples of " +
                      html(caption) + "\"><figcaption>" + html(caption) + "</figcaption></figure>\n";
      section.markdown += "| ![" + caption + "](" + relative + ") | " + caption + " |\n";
      ++count;
    }
  }
  section.html += "</div>\n";
  if (count == 0) {
    section.html = "<p>No samples yet.</p>\n";
    section.markdown = "No samples yet.\n\n";
  } else {
    section.markdown =
        "The first 16 samples of every eval entry.\n\n| samples | trial, eval |\n| --- | --- |\n" +
        section.markdown + "\n";
  }
  return section;
}

Section failures_section(const Results& results) {
  Section section{"Failed trials", "", ""};
  for (const auto& trial : results.trials) {
    if (trial.status != "failed") continue;
    section.html += "<li><code>" + html(trial.id) + "</code>: <pre>" + html(trial.error) + "</pre></li>\n";
    section.markdown += "- `" + trial.id + "`:\n\n  ```\n  " + trial.error + "\n  ```\n";
  }
  if (section.html.empty()) {
    section.html = "<p>None.</p>\n";
    section.markdown = "None.\n";
  } else {
    section.html = "<ul class=\"failures\">\n" + section.html +
                   "</ul>\n<p>The stage logs beside the cache say more: <code>latentlab status " +
                   html(results.folder.string()) + "</code>.</p>\n";
    section.markdown += "\nThe stage logs say more: `latentlab status " + results.folder.string() + "`.\n";
  }
  section.markdown += "\n";
  return section;
}

Section provenance_section(const Results& results) {
  Section section{"Provenance", "", ""};
  std::map<std::string, std::set<std::string>> values;
  const char* const keys[] = {"latentlab_version", "build_commit", "libtorch_version", "device", "host",
                              "command_line",      "spec_file"};
  // Wall time per stage kind, each stage once (trials share stages).
  std::map<std::string, std::pair<double, int>> per_kind;
  std::set<std::string> stage_keys;
  for (const auto& trial : results.trials) {
    for (const char* key : keys)
      if (trial.provenance.contains(key)) values[key].insert(value_text(trial.provenance[key]));
    const auto stages = trial.provenance.value("stages", json());
    const auto list = stages.is_string() ? json::parse(stages.get<std::string>(), nullptr, false) : stages;
    if (!list.is_array()) continue;
    for (const auto& stage : list) {
      if (!stage.is_object() || !stage.value("seconds", json()).is_number()) continue;
      if (!stage_keys.insert(stage.value("key", std::string())).second) continue;
      auto& entry = per_kind[stage.value("kind", std::string("?"))];
      entry.first += stage["seconds"].get<double>();
      ++entry.second;
    }
  }
  section.html = "<table class=\"plain\">\n";
  section.markdown = "| | |\n| --- | --- |\n";
  const auto row = [&](const std::string& name, const std::string& value) {
    section.html += "<tr><th>" + html(name) + "</th><td><code>" + html(value) + "</code></td></tr>\n";
    section.markdown += "| " + name + " | `" + value + "` |\n";
  };
  for (const char* key : keys)
    if (values.count(key))
      row(key, join(std::vector<std::string>(values[key].begin(), values[key].end()), "; "));
  row("results", fs::absolute(results.folder).string());
  row("sweep index updated", results.updated);
  section.html += "</table>\n";
  if (!per_kind.empty()) {
    section.html +=
        "<h3>Wall time per stage</h3>\n<table "
        "class=\"plain\">\n<tr><th>stage</th><th>count</th><th>total</th><th>mean</th></tr>\n";
    section.markdown += "\n| stage | count | total | mean |\n| --- | ---: | ---: | ---: |\n";
    double total = 0;
    for (const auto& [kind, entry] : per_kind) {
      const auto cells =
          std::vector<std::string>{kind, std::to_string(entry.second), seconds_text(entry.first),
                                   seconds_text(entry.first / entry.second)};
      section.html += "<tr><td>" + html(cells[0]) + "</td><td>" + cells[1] + "</td><td>" + cells[2] +
                      "</td><td>" + cells[3] + "</td></tr>\n";
      section.markdown += "| " + join(cells, " | ") + " |\n";
      total += entry.first;
    }
    section.html += "<tr><td>all</td><td></td><td>" + seconds_text(total) + "</td><td></td></tr>\n</table>\n";
    section.markdown += "| all | | " + seconds_text(total) + " | |\n";
  }
  section.markdown += "\n";
  return section;
}

std::string axes_html(const Results& results) {
  std::string out = "<table class=\"plain\">\n<tr><th>axis</th><th>spec path</th><th>values</th></tr>\n";
  for (const auto& axis : results.axes) {
    std::vector<std::string> values;
    for (const auto& value : axis.values) values.push_back(value_text(value));
    out += "<tr><td>" + html(axis.name) + "</td><td><code>" + html(axis.path) + "</code></td><td>" +
           html(join(values)) + "</td></tr>\n";
  }
  return out + "</table>\n";
}

std::string axes_markdown(const Results& results) {
  std::string out = "| axis | spec path | values |\n| --- | --- | --- |\n";
  for (const auto& axis : results.axes) {
    std::vector<std::string> values;
    for (const auto& value : axis.values) values.push_back(value_text(value));
    out += "| " + axis.name + " | `" + axis.path + "` | " + join(values) + " |\n";
  }
  return out;
}

std::string status_line(const Results& results) {
  std::map<std::string, int> counts;
  for (const auto& trial : results.trials) ++counts[trial.status];
  std::vector<std::string> parts;
  for (const char* status : {"done", "failed", "running", "waiting"})
    if (counts[status]) parts.push_back(std::to_string(counts[status]) + " " + status);
  return std::to_string(results.trials.size()) + " trials: " + join(parts);
}

const char* const kStyle =
    R"(body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table.ablation{border-collapse:collapse;margin:1em 0;font-variant-numeric:tabular-nums}
table.ablation caption{caption-side:bottom;text-align:left;font-size:.85em;color:#555;padding-top:.4em}
table.ablation thead tr{border-top:2px solid #222;border-bottom:1px solid #222}
table.ablation tbody tr:last-child{border-bottom:2px solid #222}
table.ablation th,table.ablation td{padding:.25em .8em;text-align:right}
table.ablation .dim{text-align:left}td.best{font-weight:bold}
td.failed{color:#b00020}td.pending,td.na,td.empty{color:#888}
table.plain{border-collapse:collapse}table.plain th,table.plain td{padding:.2em .8em;text-align:left;border-bottom:1px solid #eee}
figure{margin:1.2em 0}figure img{max-width:100%}figcaption{font-size:.9em;color:#444}
.grids{display:flex;flex-wrap:wrap;gap:1em}.grids figure{margin:0;width:200px}
.grids img{width:200px;image-rendering:pixelated}.problem,.broken{color:#b00020}
pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}.files{font-size:.85em})";

// Marks every image that did not load, and records how many loaded, for a reader and for a check.
const char* const kImageCheck = R"(<script>
window.addEventListener('load', function () {
  var broken = 0;
  Array.prototype.forEach.call(document.images, function (img) {
    if (!img.complete || img.naturalWidth === 0) {
      broken++;
      var note = document.createElement('p');
      note.className = 'broken';
      note.textContent = 'missing image: ' + img.getAttribute('src');
      img.parentNode.insertBefore(note, img.nextSibling);
    }
  });
  document.body.setAttribute('data-images', String(document.images.length));
  document.body.setAttribute('data-broken-images', String(broken));
});
</script>)";

// An exclusive lock on a file for as long as it lives.
class ReportLock {
 public:
  explicit ReportLock(const fs::path& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ < 0) throw Error("cannot create " + path.string() + " (is the folder writable?)");
    ::flock(fd_, LOCK_EX);
  }
  ~ReportLock() { ::close(fd_); }
  ReportLock(const ReportLock&) = delete;
  ReportLock& operator=(const ReportLock&) = delete;

 private:
  int fd_;
};

// Removes `.report.partial-PID` and `.report.old-PID` folders whose writer is gone.
void remove_abandoned(const fs::path& parent, const std::string& stem) {
  for (const auto& entry : fs::directory_iterator(parent)) {
    const auto name = entry.path().filename().string();
    for (const std::string kind : {".partial-", ".old-"}) {
      if (name.rfind(stem + kind, 0) != 0) continue;
      const auto pid = std::atol(name.c_str() + stem.size() + kind.size());
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(entry.path());
    }
  }
}

}  // namespace

ReportFiles write_report(const Results& results, const fs::path& out_arg) {
  const auto out = out_arg.empty() ? results.folder / "report" : out_arg;
  if (fs::exists(out) && !fs::exists(out / "index.html") && !fs::is_empty(out))
    throw ConfigError(out.string() + " exists and is not a LatentLab report; give a new folder (--out DIR)");
  if (fs::exists(out / "index.html")) {
    std::ifstream in(out / "index.html");
    std::string first;
    std::getline(in, first);
    std::getline(in, first);
    if (first.find(kMarker) == std::string::npos)
      throw ConfigError(out.string() +
                        "/index.html was not written by LatentLab; give a new folder (--out DIR)");
  }
  // Built beside the old report and swapped in, so a reader never sees half of one; one writer at a
  // time (a lock beside it), and what a killed writer left behind is removed.
  const auto parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  fs::create_directories(parent);
  const auto stem = "." + out.filename().string();
  const ReportLock lock(parent / (stem + ".lock"));
  remove_abandoned(parent, stem);
  const auto building = parent / (stem + ".partial-" + std::to_string(::getpid()));
  fs::remove_all(building);
  fs::create_directories(building / "tables");
  fs::create_directories(building / "figures");
  ReportFiles files;
  try {
    std::vector<Section> sections;
    sections.push_back({"Axes", axes_html(results), axes_markdown(results) + "\n"});
    sections.push_back(tables_section(results, building, files.tables));
    sections.push_back(figures_section(results, building, files.figures));
    sections.push_back(samples_section(results, building, files.sample_grids));
    sections.push_back(failures_section(results));
    sections.push_back(provenance_section(results));

    std::ostringstream page, markdown;
    page << "<!DOCTYPE html>\n"
         << kMarker << "\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << html(results.name)
         << ": LatentLab report</title>\n<style>\n"
         << kStyle << "\n</style>\n</head>\n<body>\n<h1>" << html(results.name) << "</h1>\n";
    if (!results.description.empty())
      page << "<p class=\"description\">" << html(results.description) << "</p>\n";
    page << "<p>" << html(status_line(results)) << ". Written by <code>latentlab report</code> from "
         << html(fs::absolute(results.folder).string()) << ".</p>\n<nav>";
    markdown << "# " << results.name << "\n\n";
    if (!results.description.empty()) markdown << results.description << "\n\n";
    markdown << status_line(results) << ". Written by `latentlab report` from `"
             << fs::absolute(results.folder).string() << "`.\n\n";
    for (std::size_t i = 0; i < sections.size(); ++i)
      page << (i ? " · " : "") << "<a href=\"#s" << i << "\">" << html(sections[i].title) << "</a>";
    page << "</nav>\n";
    for (std::size_t i = 0; i < sections.size(); ++i) {
      page << "<h2 id=\"s" << i << "\">" << html(sections[i].title) << "</h2>\n" << sections[i].html;
      markdown << "## " << sections[i].title << "\n\n" << sections[i].markdown;
    }
    page << kImageCheck << "\n</body>\n</html>\n";
    write_file(building / "index.html", page.str());
    write_file(building / "index.md", markdown.str());
  } catch (...) {
    fs::remove_all(building);
    throw;
  }
  // One atomic exchange when there is an old report (renameat2), else a rename.
  if (fs::exists(out) &&
      ::renameat2(AT_FDCWD, building.c_str(), AT_FDCWD, out.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(building);  // now the old report
  } else {
    const auto old = parent / (stem + ".old-" + std::to_string(::getpid()));
    if (fs::exists(out)) fs::rename(out, old);
    fs::rename(building, out);
    fs::remove_all(old);
  }
  files.html = out / "index.html";
  files.markdown = out / "index.md";
  return files;
}

std::string summary_table(const Results& results) {
  const auto choices = table_choices(results);
  std::string out;
  for (const auto& choice : choices) {
    try {
      out += render_table(make_table(results, choice.spec), TableFormat::Markdown) + "\n";
    } catch (const ConfigError& e) {
      out += choice.title + ": not tabulated: " + e.what() + "\n";
    }
  }
  return out;
}

}  // namespace latentlab::analysis
