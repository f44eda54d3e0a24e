#pragma once
// Printing the analytic bench's reports (`samplers check`, `plugins check SAMPLER`).
#include <ostream>

#include <nlohmann/json.hpp>

#include "latentlab/sampling/sampler_bench.hpp"

namespace latentlab::host {

struct SamplerReportEntry {
  sampling::SamplerBenchReport report;
  nlohmann::json params;  // the sampler's resolved parameters
};

// A header, one row per step budget, then the checks.
void print_sampler_report(std::ostream& out, const SamplerReportEntry& entry);
// [{sampler, params, data, data_description, deterministic, passed, rows: [...], checks: [...]}];
// numbers that do not apply are null.
nlohmann::json sampler_reports_json(const std::vector<SamplerReportEntry>& entries);

}  // namespace latentlab::host
