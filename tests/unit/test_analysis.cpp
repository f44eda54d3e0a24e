// Tables, figures and the report from a synthetic results folder (docs/analysis.md).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "latentlab/analysis/plot.hpp"
#include "latentlab/analysis/report.hpp"
#include "latentlab/analysis/table.hpp"
#include "latentlab/error.hpp"
#include "support/results_folder.hpp"

namespace {

namespace fs = std::filesystem;
using namespace latentlab;
using namespace latentlab::analysis;
using nlohmann::json;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

double base_fid(int f, const std::string& weighting) {
  if (f == 4) return weighting == "elbo" ? 60 : 50;
  if (f == 8) return weighting == "elbo" ? 70 : 40;
  return 30;
}

// f in {4, 8, 16} x weighting x seeds {0, 1, 2}, two eval entries per trial. f=8,elbo: two seeds
// failed, one waiting; f=4,elbo,seed=2 still running; f=16,elbo excluded.
class AnalysisTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    folder_ = fs::temp_directory_path() / ("latentlab_analysis_" + std::to_string(::getpid()));
    fs::remove_all(folder_);
    const json axes = json::array(
        {{{"name", "f"}, {"path", "autoencoder.params.f"}, {"values", {4, 8, 16}}},
         {{"name", "weighting"}, {"path", "denoiser.weighting"}, {"values", {"unweighted", "elbo"}}},
         {{"name", "seed"}, {"path", "seeds"}, {"values", {0, 1, 2}}}});
    std::vector<test::FakeTrial> trials;
    for (const int f : {4, 8, 16})
      for (const std::string weighting : {"unweighted", "elbo"}) {
        if (f == 16 && weighting == "elbo") continue;
        for (const int seed : {0, 1, 2}) {
          test::FakeTrial trial;
          trial.id = "f=" + std::to_string(f) + ",weighting=" + weighting + ",seed=" + std::to_string(seed);
          trial.values = {{"f", f}, {"weighting", weighting}, {"seed", seed}};
          trial.reconstruction = {{"psnr", 20.0 + f}, {"ssim", 0.9}};
          trial.latent_std = f / 4.0;
          trial.loss = {1.0, 0.5 + 0.01 * f, 0.25 + (weighting == "elbo" ? 0.1 : 0.0)};
          trial.elbo = {2.0, 1.5 - 0.01 * f};
          trial.snr_raw = {4.0 - std::log(f), 0.0 - std::log(f), -4.0 - std::log(f)};
          for (const auto& [label, sampler, steps, extra] :
               std::vector<std::tuple<std::string, std::string, double, double>>{
                   {"ddim-20", "ddim", 20, 0}, {"dpmpp_2m-10", "dpmpp_2m", 10, 5}}) {
            test::FakeEval eval;
            eval.label = label;
            eval.sampler = sampler;
            eval.steps = steps;
            eval.attrs = {
                {"fid", base_fid(f, weighting) + seed + extra},
                {"kid_mean", 0.01 * f},
                {"precision", 0.5 + (f == 8 ? 0.1 : 0) - (weighting == "elbo" ? 0.05 : 0) + 0.01 * seed},
                {"samples_per_second", 100.0 / steps}};
            trial.evals.push_back(eval);
          }
          if (f == 8 && weighting == "elbo") {
            trial.status = seed < 2 ? "failed" : "waiting";
            trial.error = seed < 2 ? "denoiser: loss is NaN at step 40" : "";
            for (auto& eval : trial.evals) eval.attrs.clear(), eval.grid = false;
          }
          if (f == 4 && weighting == "elbo" && seed == 2) trial.status = "running";
          trials.push_back(trial);
        }
      }
    test::write_results_folder(folder_, "synthetic", axes, trials);
  }
  static void TearDownTestSuite() { fs::remove_all(folder_); }

  static Results results() { return load_results(folder_); }
  static const Cell& cell(const Table& table, const std::vector<std::string>& row, std::size_t column) {
    for (std::size_t r = 0; r < table.row_keys.size(); ++r)
      if (table.row_keys[r] == row) return table.cells[r][column];
    throw std::runtime_error("no row " + row.front());
  }
  static fs::path folder_;
};
fs::path AnalysisTest::folder_;

TEST_F(AnalysisTest, LoadsTrialsWithTheirStatusAndMetrics) {
  const auto r = results();
  EXPECT_EQ(r.name, "synthetic");
  ASSERT_EQ(r.trials.size(), 15u);
  std::map<std::string, int> statuses;
  for (const auto& trial : r.trials) ++statuses[trial.status];
  EXPECT_EQ(statuses["done"], 11);
  EXPECT_EQ(statuses["failed"], 2);
  EXPECT_EQ(statuses["running"], 1);
  EXPECT_EQ(statuses["waiting"], 1);
  const auto& first = r.trials.front();
  EXPECT_DOUBLE_EQ(first.metrics.at("psnr"), 24.0);
  EXPECT_DOUBLE_EQ(first.metrics.at("elbo_bpd"), 1.5 - 0.04);
  ASSERT_EQ(first.evals.size(), 2u);
  EXPECT_EQ(first.evals[0].label, "ddim-20");
  EXPECT_EQ(first.evals[1].sampler, "dpmpp_2m");
  EXPECT_DOUBLE_EQ(first.evals[0].metrics.at("fid"), 50.0);
  EXPECT_DOUBLE_EQ(first.evals[0].metrics.at("throughput"), 5.0);
}

TEST_F(AnalysisTest, PivotsMeanStdOverSeedsWithCountsAndStates) {
  TableSpec spec;
  spec.rows = {"f", "weighting", "sampler"};
  spec.metrics = {"fid", "precision"};
  const auto table = make_table(results(), spec);
  ASSERT_EQ(table.columns.size(), 2u);
  // Rows in the spec's order: f 4, 8, 16; unweighted before elbo; samplers as listed.
  ASSERT_EQ(table.row_keys.size(), 10u);
  EXPECT_EQ(table.row_keys[0], (std::vector<std::string>{"4", "unweighted", "ddim"}));
  EXPECT_EQ(table.row_keys[1], (std::vector<std::string>{"4", "unweighted", "dpmpp_2m"}));
  EXPECT_EQ(table.row_keys.back(), (std::vector<std::string>{"16", "unweighted", "dpmpp_2m"}));
  const auto& full = cell(table, {"4", "unweighted", "ddim"}, 0);
  EXPECT_EQ(full.state, CellState::Value);
  EXPECT_EQ(full.n, 3);
  EXPECT_DOUBLE_EQ(full.mean, 51.0);
  EXPECT_NEAR(full.std, 1.0, 1e-12);
  const auto& partial = cell(table, {"4", "elbo", "dpmpp_2m"}, 0);
  EXPECT_EQ(partial.n, 2);
  EXPECT_EQ(partial.pending, 1);
  EXPECT_DOUBLE_EQ(partial.mean, 65.5);
  EXPECT_NEAR(partial.std, std::sqrt(0.5), 1e-12);
  const auto& failed = cell(table, {"8", "elbo", "ddim"}, 0);
  EXPECT_EQ(failed.state, CellState::Failed);
  EXPECT_EQ(failed.failed, 2);
  EXPECT_EQ(failed.pending, 1);
  // FID: lower is better; precision: higher is better.
  EXPECT_TRUE(cell(table, {"16", "unweighted", "ddim"}, 0).best);
  EXPECT_FALSE(cell(table, {"8", "unweighted", "ddim"}, 0).best);
  EXPECT_TRUE(cell(table, {"8", "unweighted", "ddim"}, 1).best);
  EXPECT_EQ(table.seeds, 3);  // most cells; the others say their n
}

TEST_F(AnalysisTest, AxesByShortNameOrSpecPathAndColumnsByAnAxis) {
  TableSpec by_path;
  by_path.rows = {"autoencoder.params.f"};
  by_path.cols = "denoiser.weighting";
  by_path.metrics = {"fid"};
  by_path.filters = {{"eval", "ddim-20"}};
  const auto table = make_table(results(), by_path);
  EXPECT_EQ(table.row_dims, std::vector<std::string>{"f"});
  EXPECT_EQ(table.col_dim, "weighting");
  ASSERT_EQ(table.columns.size(), 2u);
  EXPECT_EQ(table.columns[0].value, "unweighted");
  EXPECT_DOUBLE_EQ(cell(table, {"8"}, 0).mean, 41.0);
  EXPECT_EQ(cell(table, {"16"}, 1).state, CellState::Empty);  // excluded: no such trial
  EXPECT_EQ(cell(table, {"8"}, 1).state, CellState::Failed);
}

TEST_F(AnalysisTest, NamesTheProblemAndTheFix) {
  TableSpec spec;
  spec.rows = {"f"};
  spec.metrics = {"fid"};
  try {
    make_table(results(), spec);
    FAIL() << "expected an error: weighting and the eval entry vary within a row";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'weighting' takes several values"), std::string::npos) << message;
    EXPECT_NE(message.find("--where"), std::string::npos) << message;
  }
  spec.rows = {"wieghting"};
  try {
    make_table(results(), spec);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean"), std::string::npos) << e.what();
  }
  spec.rows = {"f", "weighting"};
  spec.metrics = {"fdi"};
  EXPECT_THROW(make_table(results(), spec), ConfigError);
  EXPECT_THROW(load_results(folder_ / "trials"), ConfigError);  // no sweep.json
  EXPECT_THROW(parse_table_format("docx"), ConfigError);
}

TEST_F(AnalysisTest, TrialMetricsAreCountedOncePerTrial) {
  TableSpec spec;
  spec.rows = {"f", "weighting"};
  spec.metrics = {"psnr", "latent_std"};
  const auto table = make_table(results(), spec);
  const auto& psnr = cell(table, {"4", "unweighted"}, 0);
  EXPECT_EQ(psnr.n, 3);  // three seeds, not three seeds x two eval entries
  EXPECT_DOUBLE_EQ(psnr.mean, 24.0);
  EXPECT_EQ(cell(table, {"8", "elbo"}, 0).state, CellState::Value);  // failed trials still have stage 1
}

TEST(AnalysisFormat, DigitsFollowTheSpread) {
  EXPECT_EQ(format_mean_std(12.345, 0.123, 3).mean, "12.35");
  EXPECT_EQ(format_mean_std(12.345, 0.123, 3).std, "0.12");
  EXPECT_EQ(format_mean_std(12.345, 0.45, 3).mean, "12.3");
  EXPECT_EQ(format_mean_std(260.123, 0, 1).mean, "260.1");
  EXPECT_EQ(format_mean_std(0.012345, 0, 1).mean, "0.01235");
  EXPECT_EQ(format_mean_std(1234.5, 31.0, 4).mean, "1234");
  EXPECT_EQ(format_mean_std(-1.973, 0, 1).mean, "-1.973");
}

TEST_F(AnalysisTest, RendersMarkdownLatexCsvAndJson) {
  TableSpec spec;
  spec.rows = {"f", "weighting"};
  spec.metrics = {"fid", "precision", "throughput"};
  spec.filters = {{"sampler", "ddim"}};
  const auto table = make_table(results(), spec);
  const auto md = render_table(table, TableFormat::Markdown);
  EXPECT_NE(md.find("| f | weighting | FID \u2193 | Precision \u2191 | Throughput (samples/s) \u2191 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| **31.0 \u00b1 1.0** |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 5.000 \u00b1 0 |"), std::string::npos)
      << md;  // all equal: none marked best  // f=16: the best FID
  EXPECT_NE(md.find("| failed |"), std::string::npos) << md;
  EXPECT_NE(md.find("(n=2, 1 pending)"), std::string::npos) << md;
  EXPECT_EQ(count(md, "\n|"), 5u + 1u);  // header + rule + 5 rows, the first line without a newline before it

  const auto tex = render_table(table, TableFormat::Latex);
  for (const char* part : {"\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}{llccc}",
                           "\\textbf{\\num{31.0 \\pm 1.0}}", "\\textit{failed}", "FID $\\downarrow$"})
    EXPECT_NE(tex.find(part), std::string::npos) << part << "\n" << tex;
  EXPECT_EQ(count(tex, "{"), count(tex, "}"));
  // Every row has as many cells as the header.
  std::istringstream lines(tex);
  for (std::string line; std::getline(lines, line);)
    if (line.size() > 3 && line.substr(line.size() - 3) == " \\\\") {
      EXPECT_EQ(count(line, " & "), 4u) << line;
    }

  const auto csv = render_table(table, TableFormat::Csv);
  std::istringstream csv_lines(csv);
  std::string header;
  std::getline(csv_lines, header);
  EXPECT_EQ(header,
            "f,weighting,fid,fid_std,fid_n,fid_state,precision,precision_std,precision_n,precision_state,"
            "throughput,throughput_std,throughput_n,throughput_state");
  EXPECT_EQ(count(csv, "\n"), 6u);

  const auto parsed = json::parse(render_table(table, TableFormat::Json));
  EXPECT_EQ(parsed["rows"].size(), 5u);
  EXPECT_EQ(parsed["columns"][0]["better"], "lower");
  EXPECT_EQ(parsed["rows"][0]["cells"][0]["n"], 3);
  EXPECT_DOUBLE_EQ(parsed["rows"][0]["cells"][0]["mean"].get<double>(), 51.0);
}

// The LaTeX compiles with booktabs and siunitx where a TeX install is there (tools/setup.sh --tests).
TEST_F(AnalysisTest, LatexCompiles) {
  if (std::system("command -v pdflatex > /dev/null 2>&1") != 0)
    GTEST_SKIP()
        << "no pdflatex: tools/setup.sh --tests installs texlive-latex-recommended and texlive-science";
  TableSpec spec;
  spec.rows = {"f", "weighting"};
  spec.cols = "sampler";
  spec.metrics = {"fid", "precision"};
  const auto table = make_table(results(), spec);
  const auto dir = folder_ / "tex";
  fs::create_directories(dir);
  std::ofstream(dir / "table.tex")
      << "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{siunitx}\n"
         "\\begin{document}\n"
      << render_table(table, TableFormat::Latex) << "\\end{document}\n";
  const auto command =
      "cd " + dir.string() + " && pdflatex -interaction=nonstopmode -halt-on-error table.tex > log.txt 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0) << read_file(dir / "log.txt");
  EXPECT_TRUE(fs::exists(dir / "table.pdf"));
}

TEST_F(AnalysisTest, PlotsSvgPngPdfWithOneSeriesPerValue) {
  PlotSpec spec;
  spec.x = "f";
  spec.y = "fid";
  spec.series = {"weighting", "sampler"};
  spec.log_x = true;
  const auto figure = metric_figure(results(), spec);
  ASSERT_EQ(figure.series.size(), 4u);  // 2 weightings x 2 samplers (f=8,elbo failed: a shorter line)
  EXPECT_EQ(figure.series[0].name, "weighting=unweighted, sampler=ddim");
  EXPECT_EQ(figure.series[0].x, (std::vector<double>{4, 8, 16}));
  EXPECT_DOUBLE_EQ(figure.series[0].y[0], 51.0);
  EXPECT_NEAR(figure.series[0].error[0], 1.0, 1e-12);
  EXPECT_EQ(figure.series[2].x, (std::vector<double>{4}));
  const auto dir = folder_ / "plots";
  for (const char* ext : {".svg", ".png", ".pdf"}) {
    const auto path = dir / (std::string("fid-vs-f") + ext);
    draw_figure(figure, path);
    const auto bytes = read_file(path);
    ASSERT_GT(bytes.size(), 100u) << path;
    if (std::string(ext) == ".svg") {
      EXPECT_NE(bytes.find("<svg"), std::string::npos);
      EXPECT_NE(bytes.find("</svg>"), std::string::npos);
      // Each series in its own colour (Okabe-Ito blue, vermillion, green, purple), as cairo writes rgb().
      std::set<std::string> colours;
      const std::regex stroke("stroke:rgb\\(([0-9.%,]+)\\)");
      for (auto it = std::sregex_iterator(bytes.begin(), bytes.end(), stroke); it != std::sregex_iterator();
           ++it)
        colours.insert((*it)[1]);
      EXPECT_GE(colours.size(), 5u) << "axes plus four series";
    }
    if (std::string(ext) == ".png") {
      EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    }
    if (std::string(ext) == ".pdf") {
      EXPECT_EQ(bytes.substr(0, 5), "%PDF-");
    }
    const auto data = json::parse(read_file(fs::path(path).replace_extension(".json")));
    EXPECT_EQ(data["series"].size(), 4u);
  }
  EXPECT_THROW(draw_figure(figure, dir / "fid.gif"), ConfigError);
}

TEST_F(AnalysisTest, TradeOffAndStandardFigures) {
  PlotSpec spec;
  spec.x = "throughput";
  spec.y = "fid";
  spec.series = {"sampler"};
  spec.filters = {{"weighting", "unweighted"}};
  const auto figure = metric_figure(results(), spec);
  ASSERT_EQ(figure.series.size(), 2u);
  EXPECT_EQ(figure.series[0].x.size(), 3u);  // f = 4, 8, 16
  std::set<std::string> names;
  for (const auto& named : standard_figures(results())) names.insert(named.name);
  for (const char* expected : {"fid-vs-f", "psnr-vs-f", "latent_std-vs-f", "fid-vs-throughput", "log-snr",
                               "denoiser-train-loss", "denoiser-eval-elbo_bpd"})
    EXPECT_TRUE(names.count(expected)) << expected;
}

TEST_F(AnalysisTest, ReportHasEveryTableFigureAndGrid) {
  const auto out = folder_ / "report";
  const auto files = write_report(results(), out);
  EXPECT_EQ(files.tables, 2u);
  EXPECT_GE(files.figures, 7u);
  EXPECT_EQ(files.sample_grids, 22u);  // 11 done trials x 2 eval entries
  const auto page = read_file(files.html);
  EXPECT_EQ(count(page, "<table class=\"ablation\">"), 2u);
  // Every image the page names is there.
  const std::regex src("src=\"([^\"]+)\"");
  std::size_t images = 0;
  for (auto it = std::sregex_iterator(page.begin(), page.end(), src); it != std::sregex_iterator();
       ++it, ++images)
    EXPECT_TRUE(fs::exists(out / (*it)[1].str())) << (*it)[1];
  EXPECT_EQ(images, files.figures + files.sample_grids);
  EXPECT_NE(page.find("denoiser: loss is NaN at step 40"), std::string::npos);
  EXPECT_NE(page.find("abc1234"), std::string::npos);  // provenance: the commit
  EXPECT_TRUE(fs::exists(out / "tables" / "samples.tex"));
  EXPECT_TRUE(fs::exists(out / "index.md"));
  // A second report replaces the first; a folder that is not a report is never overwritten.
  write_report(results(), out);
  fs::create_directories(folder_ / "notes");
  std::ofstream(folder_ / "notes" / "mine.txt") << "keep";
  EXPECT_THROW(write_report(results(), folder_ / "notes"), ConfigError);
  EXPECT_TRUE(fs::exists(folder_ / "notes" / "mine.txt"));
}

// The report opens in a real browser with every image loaded and no console errors.
TEST_F(AnalysisTest, ReportOpensInChromium) {
  if (std::system("command -v chromium > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "no chromium: tools/setup.sh --tests installs it";
  const auto out = folder_ / "browser-report";
  const auto files = write_report(results(), out);
  const auto log = folder_ / "chromium.log";
  const auto dom = folder_ / "dom.html";
  const auto command =
      "chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
      "--user-data-dir=" +
      (folder_ / "chromium-profile").string() +
      " --enable-logging=stderr --v=0 --virtual-time-budget=10000 --dump-dom file://" +
      fs::absolute(files.html).string() + " > " + dom.string() + " 2> " + log.string();
  ASSERT_EQ(std::system(command.c_str()), 0) << read_file(log);
  const auto loaded = read_file(dom);
  const auto expected = std::to_string(files.figures + files.sample_grids);
  EXPECT_NE(loaded.find("data-images=\"" + expected + "\""), std::string::npos) << loaded.substr(0, 2000);
  EXPECT_NE(loaded.find("data-broken-images=\"0\""), std::string::npos);
  EXPECT_EQ(count(loaded, "<table class=\"ablation\">"), 2u);
  const auto messages = read_file(log);
  EXPECT_EQ(messages.find("Failed to load resource"), std::string::npos) << messages;
  EXPECT_EQ(messages.find("Uncaught"), std::string::npos) << messages;
}

}  // namespace

namespace {

// Axes inside the eval block (sampler, steps), a $zip partner (ae_steps with f), plugin choices as
// axis values, one seed, and a NaN metric: the shapes of experiments/sampler_steps.json and
// elbo_weighting.json.
class AnalysisAxesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    folder_ = fs::temp_directory_path() / ("latentlab_analysis_axes_" + std::to_string(::getpid()));
    fs::remove_all(folder_);
    const json uniform = {{"name", "elbo"}, {"params", {{"t_sampling", "uniform"}}}};
    const json weights = {{"name", "elbo"}, {"params", {{"t_sampling", "weights"}}}};
    const json axes = json::array(
        {{{"name", "f"}, {"path", "autoencoder.params.f"}, {"zip", "f"}, {"values", {4, 8}}},
         {{"name", "ae_steps"}, {"path", "autoencoder.train.steps"}, {"zip", "f"}, {"values", {500, 1000}}},
         {{"name", "weighting"}, {"path", "denoiser.weighting"}, {"values", {uniform, weights}}},
         {{"name", "sampler"}, {"path", "eval[0].sampler"}, {"values", {"ddim", "dpmpp_2m"}}},
         {{"name", "steps"}, {"path", "eval[0].steps"}, {"values", {10, 20}}}});
    std::vector<test::FakeTrial> trials;
    for (const int f : {4, 8})
      for (const auto& weighting : {uniform, weights})
        for (const std::string sampler : {"ddim", "dpmpp_2m"})
          for (const int steps : {10, 20}) {
            test::FakeTrial trial;
            trial.values = {{"f", f},
                            {"ae_steps", f == 4 ? 500 : 1000},
                            {"weighting", weighting},
                            {"sampler", sampler},
                            {"steps", steps}};
            trial.id = "trial-" + std::to_string(trials.size());
            trial.reconstruction = {{"psnr", 20.0 + f}};
            trial.elbo = {1.0 + f / 100.0};
            test::FakeEval eval;
            eval.label = sampler + "-" + std::to_string(steps);
            eval.sampler = sampler;
            eval.steps = steps;
            const bool broken =
                f == 8 && sampler == "ddim" && steps == 10 && weighting["params"]["t_sampling"] == "weights";
            const double offset = (sampler == "ddim" ? 5 : 0) + (weighting == weights ? 1 : 0);
            eval.attrs = {{"fid", broken ? std::nan("") : 100.0 / steps + 10 * f + offset},
                          {"samples_per_second", 1000.0 / steps}};
            trial.evals.push_back(eval);
            trials.push_back(trial);
          }
    test::write_results_folder(folder_, "axes", axes, trials);
  }
  static void TearDownTestSuite() { fs::remove_all(folder_); }
  static fs::path folder_;
};
fs::path AnalysisAxesTest::folder_;

TEST_F(AnalysisAxesTest, DefaultRowsLeaveOutZipPartnersAndTheEvalLabel) {
  const auto results = load_results(folder_);
  EXPECT_EQ(default_rows(results), (std::vector<std::string>{"f", "weighting", "sampler", "steps"}));
  EXPECT_EQ(dimension_values(results, "weighting"),
            (std::vector<std::string>{"elbo(t_sampling=uniform)", "elbo(t_sampling=weights)"}));
  EXPECT_TRUE(is_eval_dimension(results, "sampler"));
  EXPECT_FALSE(is_eval_dimension(results, "f"));
}

TEST_F(AnalysisAxesTest, TrialMetricsIgnoreEvalAxesAndCountSharedStagesOnce) {
  TableSpec spec;
  spec.rows = {"f", "weighting"};
  spec.metrics = {"psnr", "elbo_bpd"};
  const auto table = make_table(load_results(folder_), spec);
  ASSERT_EQ(table.row_keys.size(), 4u);
  EXPECT_EQ(table.cells[0][0].n, 1);  // four trials (2 samplers x 2 steps) share one autoencoder
  EXPECT_DOUBLE_EQ(table.cells[0][0].mean, 24.0);
}

TEST_F(AnalysisAxesTest, NanIsNotAValueAndFiltersAreChecked) {
  TableSpec spec;
  spec.rows = {"f", "weighting", "sampler", "steps"};
  spec.metrics = {"fid"};
  spec.filters = {{"f", "8"}, {"sampler", "ddim"}, {"steps", "10"}};
  const auto table = make_table(load_results(folder_), spec);
  ASSERT_EQ(table.row_keys.size(), 2u);
  EXPECT_EQ(table.cells[0][0].state, CellState::Value);
  EXPECT_EQ(table.cells[1][0].state, CellState::Missing);
  EXPECT_NE(render_table(table, TableFormat::Markdown).find("| n/a |"), std::string::npos);
  spec.filters = {{"steps", "15"}};
  try {
    make_table(load_results(folder_), spec);
    FAIL() << "a filter value no trial has";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("never takes the value '15'"), std::string::npos) << e.what();
  }
}

TEST_F(AnalysisAxesTest, FidAgainstStepsHasASeriesPerSamplerNotPerLabel) {
  const auto results = load_results(folder_);
  for (const auto& named : standard_figures(results)) {
    if (named.name != "fid-vs-steps") continue;
    ASSERT_EQ(named.figure.series.size(), 8u);  // 2 f x 2 weightings x 2 samplers
    for (const auto& series : named.figure.series) {
      EXPECT_EQ(series.name.find("eval="), std::string::npos) << series.name;
      EXPECT_EQ(series.name.find("ae_steps"), std::string::npos) << series.name;
    }
    EXPECT_EQ(named.figure.series[0].x, (std::vector<double>{10, 20}));
    return;
  }
  FAIL() << "no fid-vs-steps figure";
}

}  // namespace
