#pragma once
// A synthetic sweep results folder in the documented layout (docs/hdf5-layout.md, docs/analysis.md):
// sweep.json and one HDF5 file per finished trial, written with HDF5's own API, so the analysis is
// tested against the documented contract rather than against the engine's writer.
#include <H5Cpp.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace latentlab::test {

struct FakeEval {
  std::string label, sampler = "ddim";
  double steps = 20;
  std::map<std::string, double> attrs;  // fid, kid_mean, precision, samples_per_second, ...
  bool grid = true;
};

struct FakeTrial {
  std::string id;
  nlohmann::json values;
  std::string status = "done";  // done, failed (a file); running, waiting (no file)
  std::string error;
  std::map<std::string, double> reconstruction;  // psnr, ssim, rfid
  double latent_std = 0;                         // 0: no /latent_stats
  std::vector<double> loss, elbo;                // /denoiser/train loss, /denoiser/eval elbo_bpd per step
  std::vector<double> snr_raw;                   // /snr log_snr_eff_raw (rescaled = raw + 1)
  std::vector<FakeEval> evals;
};

inline void set_attr(H5::H5Object& object, const std::string& name, const std::string& value) {
  const H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
  auto attribute = object.createAttribute(name, type, H5::DataSpace(H5S_SCALAR));
  attribute.write(type, value);
}

inline void set_attr(H5::H5Object& object, const std::string& name, double value) {
  auto attribute = object.createAttribute(name, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(H5S_SCALAR));
  attribute.write(H5::PredType::NATIVE_DOUBLE, &value);
}

inline void write_column(H5::Group& group, const std::string& name, const std::vector<double>& values) {
  const hsize_t size = values.size();
  auto dataset = group.createDataSet(name, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(1, &size));
  dataset.write(values.data(), H5::PredType::NATIVE_DOUBLE);
}

inline void write_trial(const std::filesystem::path& path, const FakeTrial& trial) {
  H5::H5File file(path.string(), H5F_ACC_TRUNC);
  set_attr(file, "trial_id", trial.id);
  set_attr(file, "axis_values", trial.values.dump());
  set_attr(file, "status", trial.status);
  set_attr(file, "error", trial.error);
  set_attr(file, "latentlab_version", std::string("0.1.0"));
  set_attr(file, "build_commit", std::string("abc1234"));
  set_attr(file, "device", std::string("cpu"));
  set_attr(file, "stages",
           std::string(R"([{"kind":"denoiser","key":")" + trial.id + R"(","seconds":12.5}])"));
  if (!trial.reconstruction.empty()) {
    auto autoencoder = file.createGroup("/autoencoder");
    auto group = autoencoder.createGroup("reconstruction");
    for (const auto& [key, value] : trial.reconstruction) set_attr(group, key, value);
  }
  if (trial.latent_std > 0) {
    auto group = file.createGroup("/latent_stats");
    set_attr(group, "std", trial.latent_std);
  }
  if (!trial.snr_raw.empty()) {
    auto group = file.createGroup("/snr");
    std::vector<double> t, rescaled;
    for (std::size_t i = 0; i < trial.snr_raw.size(); ++i) {
      t.push_back(static_cast<double>(i + 1));
      rescaled.push_back(trial.snr_raw[i] + 1);
    }
    write_column(group, "t", t);
    write_column(group, "log_snr_eff_raw", trial.snr_raw);
    write_column(group, "log_snr_eff_rescaled", rescaled);
  }
  if (!trial.loss.empty() || !trial.elbo.empty()) {
    auto denoiser = file.createGroup("/denoiser");
    const auto steps = [](std::size_t n) {
      std::vector<double> out;
      for (std::size_t i = 0; i < n; ++i) out.push_back(100.0 * static_cast<double>(i + 1));
      return out;
    };
    if (!trial.loss.empty()) {
      auto train = denoiser.createGroup("train");
      write_column(train, "step", steps(trial.loss.size()));
      write_column(train, "loss", trial.loss);
    }
    if (!trial.elbo.empty()) {
      auto eval = denoiser.createGroup("eval");
      write_column(eval, "step", steps(trial.elbo.size()));
      write_column(eval, "elbo_bpd", trial.elbo);
    }
  }
  if (trial.evals.empty()) return;
  auto evals = file.createGroup("/eval");
  for (const auto& eval : trial.evals) {
    auto group = evals.createGroup(eval.label);
    set_attr(group, "sampler",
             nlohmann::json{{"name", eval.sampler}, {"params", nlohmann::json::object()}}.dump());
    set_attr(group, "guider", nlohmann::json{{"name", "none"}, {"params", nlohmann::json::object()}}.dump());
    set_attr(group, "steps", eval.steps);
    for (const auto& [key, value] : eval.attrs) set_attr(group, key, value);
    if (eval.grid) {
      const hsize_t dims[2] = {8, 12};
      std::vector<std::uint8_t> pixels(8 * 12);
      for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 2);
      auto dataset = group.createDataSet("samples", H5::PredType::NATIVE_UINT8, H5::DataSpace(2, dims));
      dataset.write(pixels.data(), H5::PredType::NATIVE_UINT8);
    }
  }
}

// Writes DIR/sweep.json and DIR/trials/<id>.h5 for the trials that ended.
inline void write_results_folder(const std::filesystem::path& dir, const std::string& name,
                                 const nlohmann::json& axes, const std::vector<FakeTrial>& trials) {
  std::filesystem::create_directories(dir / "trials");
  nlohmann::json list = nlohmann::json::array();
  for (const auto& trial : trials) {
    nlohmann::json evals = nlohmann::json::array();
    for (const auto& eval : trial.evals)
      evals.push_back(
          {{"label", eval.label}, {"sampler", eval.sampler}, {"steps", eval.steps}, {"guider", "none"}});
    list.push_back({{"id", trial.id}, {"values", trial.values}, {"status", trial.status}, {"evals", evals}});
    if (!trial.error.empty()) list.back()["error"] = trial.error;
    if (trial.status == "done" || trial.status == "failed")
      write_trial(dir / "trials" / (trial.id + ".h5"), trial);
  }
  std::ofstream(dir / "sweep.json") << nlohmann::json{
      {"name", name},
      {"description", "A synthetic sweep for the analysis tests."},
      {"axes", axes},
      {"trials", list},
      {"updated", "2026-12-02T12:00:00Z"}}.dump(2);
}

}  // namespace latentlab::test
