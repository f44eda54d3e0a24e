#include "latentlab/sweep/trial_file.hpp"

#include <H5Cpp.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "latentlab/error.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/io/images.hpp"
#include "latentlab/io/sha256.hpp"

namespace latentlab::sweep {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// ---- attributes ----

void set_string(H5::H5Object& object, const std::string& name, const std::string& value) {
  const H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
  type.setCset(H5T_CSET_UTF8);
  auto attribute = object.createAttribute(name, type, H5::DataSpace(H5S_SCALAR));
  attribute.write(type, value);
}

void set_number(H5::H5Object& object, const std::string& name, double value) {
  auto attribute = object.createAttribute(name, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(H5S_SCALAR));
  attribute.write(H5::PredType::NATIVE_DOUBLE, &value);
}

void set_integer(H5::H5Object& object, const std::string& name, std::int64_t value) {
  auto attribute = object.createAttribute(name, H5::PredType::NATIVE_INT64, H5::DataSpace(H5S_SCALAR));
  attribute.write(H5::PredType::NATIVE_INT64, &value);
}

// A JSON value as an attribute: numbers as numbers (null as NaN), strings as strings, others as JSON.
void set_json(H5::H5Object& object, const std::string& name, const json& value) {
  if (value.is_number_integer())
    set_integer(object, name, value.get<std::int64_t>());
  else if (value.is_number())
    set_number(object, name, value.get<double>());
  else if (value.is_null())
    set_number(object, name, std::nan(""));
  else if (value.is_boolean())
    set_integer(object, name, value.get<bool>() ? 1 : 0);
  else if (value.is_string())
    set_string(object, name, value.get<std::string>());
  else
    set_string(object, name, value.dump());
}

// ---- datasets ----

// A 1-D float64 series, chunked and compressed (training curves grow to many rows).
void write_series(H5::Group& group, const std::string& name, const std::vector<double>& values) {
  const hsize_t size = values.size();
  H5::DataSpace space(1, &size);
  H5::DSetCreatPropList properties;
  if (size > 0) {
    const hsize_t chunk = std::min<hsize_t>(size, 4096);
    properties.setChunk(1, &chunk);
    properties.setDeflate(4);
  }
  auto dataset = group.createDataSet(name, H5::PredType::NATIVE_DOUBLE, space, properties);
  if (size > 0) dataset.write(values.data(), H5::PredType::NATIVE_DOUBLE);
}

void write_array(H5::Group& group, const std::string& name, const std::vector<double>& values) {
  const hsize_t size = values.size();
  H5::DataSpace space(1, &size);
  auto dataset = group.createDataSet(name, H5::PredType::NATIVE_DOUBLE, space);
  if (size > 0) dataset.write(values.data(), H5::PredType::NATIVE_DOUBLE);
}

// A uint8 image [H, W] or [H, W, 3] with the HDF5 image attributes (h5py and PIL read it as an array).
void write_image(H5::Group& group, const std::string& name, const torch::Tensor& pixels) {
  // pixels: [C, H, W] uint8
  const auto hwc = pixels.permute({1, 2, 0}).contiguous();
  const bool grey = hwc.size(2) == 1;
  std::vector<hsize_t> dims = {static_cast<hsize_t>(hwc.size(0)), static_cast<hsize_t>(hwc.size(1))};
  if (!grey) dims.push_back(3);
  H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
  auto dataset = group.createDataSet(name, H5::PredType::NATIVE_UINT8, space);
  dataset.write(hwc.data_ptr<std::uint8_t>(), H5::PredType::NATIVE_UINT8);
  set_string(dataset, "CLASS", "IMAGE");
  set_string(dataset, "IMAGE_VERSION", "1.2");
  set_string(dataset, "IMAGE_SUBCLASS", grey ? "IMAGE_GRAYSCALE" : "IMAGE_TRUECOLOR");
  if (!grey) set_string(dataset, "INTERLACE_MODE", "INTERLACE_PIXEL");
}

// ---- reading the artefacts ----

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return json();
  try {
    return json::parse(in);
  } catch (const std::exception&) {
    return json();
  }
}

// A metric sink's CSV: columns in header order.
std::vector<std::pair<std::string, std::vector<double>>> read_csv(const fs::path& path) {
  std::vector<std::pair<std::string, std::vector<double>>> columns;
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return columns;
  std::stringstream header(line);
  for (std::string name; std::getline(header, name, ',');) columns.push_back({name, {}});
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::stringstream row(line);
    std::size_t i = 0;
    for (std::string cell; std::getline(row, cell, ',') && i < columns.size(); ++i) {
      double value = std::nan("");
      try {
        value = std::stod(cell);
      } catch (const std::exception&) {
      }
      columns[i].second.push_back(value);
    }
    for (; i < columns.size(); ++i) columns[i].second.push_back(std::nan(""));
  }
  return columns;
}

void write_curves(H5::Group& parent, const std::string& name, const fs::path& csv) {
  const auto columns = read_csv(csv);
  if (columns.empty()) return;
  auto group = parent.createGroup(name);
  for (const auto& [column, values] : columns) write_series(group, column, values);
}

std::vector<double> numbers(const json& list) {
  std::vector<double> out;
  if (list.is_array())
    for (const auto& value : list) out.push_back(value.is_number() ? value.get<double>() : std::nan(""));
  return out;
}

void write_latent_stats(H5::H5File& file, const json& report, double& variance_raw,
                        double& variance_rescaled) {
  if (!report.is_object()) return;
  auto group = file.createGroup("/latent_stats");
  const auto& stats = report.value("statistics", json::object());
  write_array(group, "channel_mean", numbers(stats.value("channel_mean", json::array())));
  write_array(group, "channel_std", numbers(stats.value("channel_std", json::array())));
  for (const char* key : {"mean", "std", "min", "max", "images"})
    if (stats.contains(key)) set_json(group, key, stats.at(key));
  const auto& rescaling = report.value("rescaling", json::object());
  set_string(group, "rescaling", rescaling.value("mode", std::string("none")));
  write_array(group, "scale", numbers(rescaling.value("scale", json::array())));
  write_array(group, "shift", numbers(rescaling.value("shift", json::array())));
  // The paper's scale factor (Sec. G): z' = scale_factor * z, the reciprocal of the latents' std under
  // `std` rescaling (LatentLab divides by `scale`); 1 without rescaling.
  const auto scale = numbers(rescaling.value("scale", json::array()));
  set_number(group, "scale_factor", !scale.empty() && scale.front() > 0 ? 1.0 / scale.front() : 1.0);
  variance_raw = report.value("variance_raw", 1.0);
  variance_rescaled = report.value("variance_rescaled", 1.0);
  set_number(group, "variance_raw", variance_raw);
  set_number(group, "variance_rescaled", variance_rescaled);
  if (stats.contains("histogram")) {
    auto histogram = group.createGroup("histogram");
    write_array(histogram, "edges", numbers(stats["histogram"].value("edges", json::array())));
    write_array(histogram, "counts", numbers(stats["histogram"].value("counts", json::array())));
    set_json(histogram, "below", stats["histogram"].value("below", json(0)));
    set_json(histogram, "above", stats["histogram"].value("above", json(0)));
  }
}

// The first samples as one uint8 grid [C, H, W].
torch::Tensor sample_grid(const fs::path& samples_npy, std::int64_t count) {
  auto samples = io::read_npy(samples_npy).to(torch::kFloat32);
  samples = samples.slice(0, 0, std::min<std::int64_t>(count, samples.size(0)));
  const auto n = samples.size(0);
  const auto columns = static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const auto rows = (n + columns - 1) / columns;
  const auto c = samples.size(1), h = samples.size(2), w = samples.size(3);
  auto grid = torch::full({c, rows * h, columns * w}, -1.0f);
  for (std::int64_t i = 0; i < n; ++i)
    grid.slice(1, (i / columns) * h, (i / columns + 1) * h)
        .slice(2, (i % columns) * w, (i % columns + 1) * w) = samples[i];
  return io::to_pixels(grid.unsqueeze(0))[0];
}

void write_file(const fs::path& path, const TrialFileInput& in) {
  H5::H5File file(path.string(), H5F_ACC_TRUNC);
  auto root = file.openGroup("/");
  set_string(root, "trial_id", in.id);
  set_string(root, "axis_values", in.values.dump());
  set_string(root, "config", in.config.dump());
  io::Sha256 hasher;
  hasher.update(in.config.dump());
  set_string(root, "config_sha256", hasher.hex_digest());
  set_string(root, "status", in.status);
  set_string(root, "error", in.error);
  set_string(root, "plugins", in.plugins.dump());
  for (const auto& item : in.provenance.items()) set_json(root, item.key(), item.value());
  for (const auto& item : in.values.items()) set_json(root, "axis." + item.key(), item.value());

  double variance_raw = 1, variance_rescaled = 1;
  if (in.autoencoder) {
    auto group = file.createGroup("/autoencoder");
    write_curves(group, "train", *in.autoencoder / "train.csv");
    write_curves(group, "eval", *in.autoencoder / "eval.csv");
    const auto config = read_json(*in.autoencoder / "config.json");
    if (config.is_object()) set_string(group, "config", config.dump());
    if (in.reconstruction) {
      // The paper's Tab. 8 columns: PSNR, SSIM, (PSIM = LPIPS, with the user's weights), rFID; VQ usage.
      const auto metrics = read_json(*in.reconstruction / "metrics.json");
      auto reconstruction = group.createGroup("reconstruction");
      for (const char* key : {"psnr", "ssim", "psim", "l1", "rfid", "codebook_usage", "perplexity",
                              "codebook_size", "images", "f"})
        if (metrics.contains(key)) set_json(reconstruction, key, metrics.at(key));
    }
  }
  if (in.latent)
    write_latent_stats(file, read_json(*in.latent / "latent_stats.json"), variance_raw, variance_rescaled);
  if (!in.alpha.empty()) {
    // log SNR(t) of the schedule for unit-variance data; the latents' effective log SNR adds log Var.
    auto group = file.createGroup("/snr");
    std::vector<double> t, log_snr, raw, rescaled;
    for (std::size_t i = 0; i < in.alpha.size(); ++i) {
      t.push_back(static_cast<double>(i + 1));
      log_snr.push_back(2.0 * std::log(in.alpha[i]) - 2.0 * std::log(in.sigma[i]));
      raw.push_back(log_snr.back() + std::log(variance_raw));
      rescaled.push_back(log_snr.back() + std::log(variance_rescaled));
    }
    write_array(group, "t", t);
    write_array(group, "alpha_t", in.alpha);
    write_array(group, "sigma_t", in.sigma);
    write_array(group, "log_snr", log_snr);
    write_array(group, "log_snr_eff_raw", raw);
    write_array(group, "log_snr_eff_rescaled", rescaled);
  }
  if (in.denoiser) {
    auto group = file.createGroup("/denoiser");
    write_curves(group, "train", *in.denoiser / "train.csv");
    write_curves(group, "eval", *in.denoiser / "eval.csv");
    const auto config = read_json(*in.denoiser / "config.json");
    if (config.is_object()) set_string(group, "config", config.dump());
  }
  if (!in.evals.empty()) {
    auto evals = file.createGroup("/eval");
    for (const auto& eval : in.evals) {
      auto group = evals.createGroup(eval.label);
      set_string(group, "sampler", eval.sample_config.value("sampler", json::object()).dump());
      set_string(group, "guider", eval.sample_config.value("guider", json::object()).dump());
      set_json(group, "steps", eval.sample_config.value("steps", json()));
      if (eval.samples) {
        const auto record = read_json(*eval.samples / "samples.json");
        for (const auto& [from, to] :
             std::vector<std::pair<std::string, std::string>>{{"nfe_per_run", "nfe"},
                                                              {"seconds", "sampling_seconds"},
                                                              {"samples_per_second", "samples_per_second"},
                                                              {"count", "count"}})
          if (record.contains(from)) set_json(group, to, record.at(from));
        if (fs::exists(*eval.samples / "samples.npy"))
          write_image(group, "samples", sample_grid(*eval.samples / "samples.npy", 16));
      }
      if (eval.metrics) {
        const auto metrics = read_json(*eval.metrics / "metrics.json");
        for (const char* key : {"fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall",
                                "n_a", "n_b", "task", "accuracy", "accuracy_chance", "ref_psnr", "ref_ssim"})
          if (metrics.contains(key)) set_json(group, key, metrics.at(key));
        if (metrics.contains("features")) set_json(group, "features", metrics.at("features"));
        if (metrics.contains("fingerprint"))
          set_json(group, "feature_fingerprint", metrics.at("fingerprint"));
      }
    }
  }
  file.close();
}

}  // namespace

void write_trial_file(const fs::path& path, const TrialFileInput& input) {
  write_atomically(path, [&](const fs::path& temporary) {
    try {
      H5::Exception::dontPrint();
      write_file(temporary, input);
    } catch (const H5::Exception& e) {
      throw Error("HDF5: " + e.getDetailMsg());
    }
  });
}

}  // namespace latentlab::sweep
