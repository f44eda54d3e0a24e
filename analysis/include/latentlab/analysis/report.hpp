#pragma once
// A sweep's report (docs/analysis.md): RESULTS/<name>/report/index.html (self-contained: its figures
// and sample grids are files beside it, no network) and index.md, with the sweep's description and
// axes, its tables (also as .tex and .csv), the ready-made figures (SVG, and PDF for LaTeX), every
// trial's sample grids, the failed trials with their errors, and provenance (versions, commit,
// device, wall time per stage). Written from the results folder alone, so it can be refreshed while
// the sweep runs.
#include <filesystem>
#include <string>
#include <vector>

#include "latentlab/analysis/results.hpp"

namespace latentlab::analysis {

struct ReportFiles {
  std::filesystem::path html, markdown;
  std::size_t tables = 0, figures = 0, sample_grids = 0;
};

// Writes the report into `out` (default: RESULTS/<name>/report). Replaces what an earlier report
// there wrote; every file appears complete (written under a temporary name and renamed).
ReportFiles write_report(const Results& results, const std::filesystem::path& out = {});

// The quick start's closing table, as a terminal shows it: Markdown, eval metrics by every axis.
std::string summary_table(const Results& results);

}  // namespace latentlab::analysis
