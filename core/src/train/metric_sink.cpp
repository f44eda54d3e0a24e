#include "latentlab/train/metric_sink.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "latentlab/error.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/strings.hpp"

namespace latentlab {

MetricSink::~MetricSink() = default;

CsvMetricSink::CsvMetricSink(std::filesystem::path folder) : folder_(std::move(folder)) {
  std::filesystem::create_directories(folder_);
}

CsvMetricSink::~CsvMetricSink() = default;

void CsvMetricSink::write(const std::string& series, std::int64_t step, const MetricValues& values) {
  auto it = files_.find(series);
  if (it == files_.end()) {
    const auto path = folder_ / (series + ".csv");
    std::vector<std::string> columns;
    if (std::filesystem::exists(path) && std::filesystem::file_size(path) > 0) {  // a resumed run: its header
      std::ifstream in(path);
      std::string header, name;
      std::getline(in, header);
      std::istringstream names(header);
      std::getline(names, name, ',');  // "step"
      while (std::getline(names, name, ',')) columns.push_back(name);
    }
    std::ofstream out(path, std::ios::app);
    if (!out) throw Error("cannot write " + path.string());
    if (columns.empty()) {
      out << "step";
      for (const auto& [name, value] : values) {
        out << "," << name;
        columns.push_back(name);
      }
      out << "\n";
    }
    it = files_.emplace(series, Series{std::move(out), std::move(columns)}).first;
  }
  auto& file = it->second;
  // Every row has the header's columns, by name; a value the header lacks is a caller's mistake.
  for (const auto& [name, value] : values)
    if (std::find(file.columns.begin(), file.columns.end(), name) == file.columns.end())
      throw Error("metric series '" + series + "': value '" + name + "' is not one of its columns (" +
                  join(file.columns) + ")");
  char buffer[32];
  file.out << step;
  for (const auto& column : file.columns) {
    const auto at =
        std::find_if(values.begin(), values.end(), [&](const auto& v) { return v.first == column; });
    std::snprintf(buffer, sizeof buffer, "%.9g", at == values.end() ? std::nan("") : at->second);
    file.out << "," << buffer;
  }
  file.out << "\n";
}

void CsvMetricSink::truncate_after(std::int64_t step) {
  files_.clear();
  std::vector<std::filesystem::path> csv_files;
  for (const auto& entry : std::filesystem::directory_iterator(folder_))
    if (entry.path().extension() == ".csv") csv_files.push_back(entry.path());
  for (const auto& path : csv_files) {
    std::ifstream in(path);
    std::ostringstream kept;
    std::string line;
    bool header = true;
    std::size_t fields = 0;
    while (std::getline(in, line)) {
      const auto count = static_cast<std::size_t>(std::count(line.begin(), line.end(), ',')) + 1;
      if (header) {
        fields = count;
        kept << line << "\n";
        header = false;
        continue;
      }
      // Rows up to `step`; a row cut short by a killed process (fewer fields) is dropped.
      char* parsed_end = nullptr;
      const long long row_step = std::strtoll(line.c_str(), &parsed_end, 10);
      if (count == fields && parsed_end != line.c_str() && *parsed_end == ',' && row_step <= step)
        kept << line << "\n";
    }
    in.close();
    write_text_atomically(path, kept.str());
  }
}

void CsvMetricSink::flush() {
  for (auto& [series, file] : files_) file.out.flush();
}

}  // namespace latentlab
