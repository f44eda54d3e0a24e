#include "sampler_report.hpp"

#include "cli.hpp"

#include <cmath>
#include <cstdio>
#include <string>

namespace latentlab::host {
namespace {

std::string cell(const char* format, double value, int width) {
  char buffer[64];
  if (std::isnan(value))
    std::snprintf(buffer, sizeof buffer, "%*s", width, "-");
  else
    std::snprintf(buffer, sizeof buffer, format, width, value);
  return buffer;
}

}  // namespace

void print_sampler_report(std::ostream& out, const SamplerReportEntry& entry) {
  const auto& r = entry.report;
  out << "sampler " << r.sampler << " " << entry.params.dump() << " on " << r.data << " ("
      << r.data_description << "): " << (r.deterministic ? "deterministic" : "stochastic") << "\n";
  if (!r.rows.empty()) {
    if (r.deterministic)
      out << "   steps    NFE  start_t  end_t   rel. error   order  seconds\n";
    else
      out << "   steps    NFE  start_t  end_t   |mean err|  (in SE)   |var err|  (in SE)  seconds\n";
    for (const auto& row : r.rows) {
      char head[64];
      std::snprintf(head, sizeof head, "%8lld %6lld %8lld %6lld", static_cast<long long>(row.steps),
                    static_cast<long long>(row.nfe), static_cast<long long>(row.start_t),
                    static_cast<long long>(row.end_t));
      out << head;
      if (r.deterministic)
        out << cell("%*.3e", row.error, 13) << cell("%*.2f", row.order, 8);
      else
        out << cell("%*.3e", row.mean_error, 13) << cell("%*.2f", row.mean_z, 9)
            << cell("%*.3e", row.variance_error, 12) << cell("%*.2f", row.variance_z, 9);
      out << cell("%*.3f", row.seconds, 9) << "\n";
    }
  }
  for (const auto& note : r.notes) out << "  note: " << note << "\n";
  for (const auto& check : r.checks) {
    out << (check.passed ? "  [pass] " : "  [FAIL] ") << check.name << "\n";
    if (!check.passed || !check.detail.empty()) out << "         " << check.detail << "\n";
  }
  out << "\n";
}

nlohmann::json sampler_reports_json(const std::vector<SamplerReportEntry>& entries) {
  auto all = nlohmann::json::array();
  for (const auto& entry : entries) {
    const auto& r = entry.report;
    nlohmann::json item = {{"sampler", r.sampler},
                           {"params", entry.params},
                           {"data", r.data},
                           {"data_description", r.data_description},
                           {"deterministic", r.deterministic},
                           {"passed", r.passed()},
                           {"rows", nlohmann::json::array()},
                           {"checks", nlohmann::json::array()}};
    for (const auto& row : r.rows)
      item["rows"].push_back({{"steps", row.steps},
                              {"nfe", row.nfe},
                              {"start_t", row.start_t},
                              {"end_t", row.end_t},
                              {"seconds", row.seconds},
                              {"error", number_or_null(row.error)},
                              {"order", number_or_null(row.order)},
                              {"mean_error", number_or_null(row.mean_error)},
                              {"mean_z", number_or_null(row.mean_z)},
                              {"variance_error", number_or_null(row.variance_error)},
                              {"variance_z", number_or_null(row.variance_z)}});
    item["notes"] = r.notes;
    for (const auto& c : r.checks)
      item["checks"].push_back({{"name", c.name}, {"passed", c.passed}, {"detail", c.detail}});
    all.push_back(item);
  }
  return all;
}

}  // namespace latentlab::host
