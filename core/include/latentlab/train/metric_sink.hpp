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

// One CSV file per series, columns "step" then the values' names in the order first written (or, for a
// resumed run, the existing file's header). A later row without one of them gets nan there; a value
// with a name not in the header is an Error.
class LATENTLAB_API CsvMetricSink : public MetricSink {
 public:
  explicit CsvMetricSink(std::filesystem::path folder);
  ~CsvMetricSink() override;
  void write(const std::string& series, std::int64_t step, const MetricValues& values) override;
  void truncate_after(std::int64_t step) override;
  void flush() override;

 private:
  std::filesystem::path folder_;
  struct Series {
    std::ofstream out;
    std::vector<std::string> columns;
  };
  std::map<std::string, Series> files_;
};

}  // namespace latentlab
