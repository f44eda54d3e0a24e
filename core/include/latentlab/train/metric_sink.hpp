#pragma once
// Where training time series go: (series, step, named values). The trainer writes "train" and "eval"
// records; the CSV sink writes <folder>/<series>.csv, an HDF5 sink (sweeps) can take its place.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "latentlab/export.hpp"

namespace latentlab {

using MetricValues = std::vector<std::pair<std::string, double>>;

class LATENTLAB_API MetricSink {
 public:
  virtual ~MetricSink();
  virtual void write(const std::string& series, std::int64_t step, const MetricValues& values) = 0;
  // A resumed run calls this first: records after `step` came from the interrupted run after its last
  // checkpoint and will be written again.
  virtual void truncate_after(std::int64_t step) { (void)step; }
  virtual void flush() {}
};

// One CSV file per series, columns "step" then the values' names in the order first written.
class LATENTLAB_API CsvMetricSink : public MetricSink {
 public:
  explicit CsvMetricSink(std::filesystem::path folder);
  ~CsvMetricSink() override;
  void write(const std::string& series, std::int64_t step, const MetricValues& values) override;
  void truncate_after(std::int64_t step) override;
  void flush() override;

 private:
  std::filesystem::path folder_;
  std::map<std::string, std::ofstream> files_;
};

}  // namespace latentlab
