#include "latentlab/analysis/results.hpp"

#include <H5Cpp.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::analysis {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool has_link(const H5::H5Location& location, const std::string& name) {
  return H5Lexists(location.getId(), name.c_str(), H5P_DEFAULT) > 0;
}

// An attribute as JSON: strings as strings, numbers as numbers; arrays (not LatentLab's) as null.
json read_attribute(const H5::Attribute& attribute) {
  if (attribute.getSpace().getSimpleExtentNpoints() != 1) return nullptr;
  switch (attribute.getTypeClass()) {
    case H5T_STRING: {
      std::string text;
      attribute.read(attribute.getStrType(), text);
      return text;
    }
    case H5T_FLOAT: {
      double value = kNaN;
      attribute.read(H5::PredType::NATIVE_DOUBLE, &value);
      return value;
    }
    case H5T_INTEGER: {
      std::int64_t value = 0;
      attribute.read(H5::PredType::NATIVE_INT64, &value);
      return value;
    }
    default:
      return nullptr;
  }
}

json attributes(const H5::H5Object& object) {
  json out = json::object();
  const int count = object.getNumAttrs();
  for (int i = 0; i < count; ++i) {
    const auto attribute = object.openAttribute(static_cast<unsigned>(i));
    out[attribute.getName()] = read_attribute(attribute);
  }
  return out;
}

double number_of(const json& value) {
  if (value.is_number()) return value.get<double>();
  return kNaN;
}

std::vector<double> read_dataset(const H5::DataSet& dataset) {
  const auto space = dataset.getSpace();
  std::vector<double> values(static_cast<std::size_t>(space.getSimpleExtentNpoints()));
  if (!values.empty()) dataset.read(values.data(), H5::PredType::NATIVE_DOUBLE);
  return values;
}

std::map<std::string, std::vector<double>> columns_of(const H5::Group& group) {
  std::map<std::string, std::vector<double>> out;
  for (hsize_t i = 0; i < group.getNumObjs(); ++i) {
    const auto name = group.getObjnameByIdx(i);
    if (group.childObjType(name) != H5O_TYPE_DATASET) continue;
    const auto dataset = group.openDataSet(name);
    if (dataset.getSpace().getSimpleExtentNdims() != 1) continue;
    out[name] = read_dataset(dataset);
  }
  return out;
}

// The name of a plugin choice stored as JSON ({"name", "params"}, or a bare name).
std::string choice_name(const json& value) {
  json choice = value;
  if (value.is_string()) choice = json::parse(value.get<std::string>(), nullptr, false);
  if (choice.is_discarded()) return value.get<std::string>();  // a bare name
  if (choice.is_object()) return choice.value("name", std::string());
  if (choice.is_string()) return choice.get<std::string>();
  return "";
}

// What a finished trial's file says.
void read_trial_file(TrialResult& trial) {
  const H5::H5File file(trial.file.string(), H5F_ACC_RDONLY);
  const auto root = attributes(file);
  trial.status = root.value("status", trial.status);
  trial.error = root.value("error", std::string());
  for (const auto& [key, value] : root.items()) {
    if (key == "config" || key == "axis_values" || key.rfind("axis.", 0) == 0) continue;
    if (key == "plugins" && value.is_string())
      trial.provenance[key] = json::parse(value.get<std::string>(), nullptr, false);
    else
      trial.provenance[key] = value;
  }
  if (root.contains("axis_values") && root["axis_values"].is_string()) {
    const auto values = json::parse(root["axis_values"].get<std::string>(), nullptr, false);
    if (values.is_object()) trial.values = values;
  }
  if (has_link(file, "autoencoder") && has_link(file, "autoencoder/reconstruction")) {
    const auto reconstruction = attributes(file.openGroup("/autoencoder/reconstruction"));
    for (const char* key : {"psnr", "ssim", "psim", "l1", "rfid", "codebook_usage", "perplexity"})
      if (reconstruction.contains(key)) trial.metrics[key] = number_of(reconstruction[key]);
  }
  if (has_link(file, "latent_stats")) {
    const auto stats = attributes(file.openGroup("/latent_stats"));
    if (stats.contains("std")) trial.metrics["latent_std"] = number_of(stats["std"]);
    if (stats.contains("scale_factor")) trial.metrics["scale_factor"] = number_of(stats["scale_factor"]);
  }
  if (has_link(file, "denoiser") && has_link(file, "denoiser/eval")) {
    const auto columns = columns_of(file.openGroup("/denoiser/eval"));
    for (const char* key : {"elbo_bpd", "loss_simple"}) {
      const auto it = columns.find(key);
      if (it != columns.end() && !it->second.empty()) trial.metrics[key] = it->second.back();
    }
  }
  if (has_link(file, "denoiser") && has_link(file, "denoiser/train")) {
    const auto columns = columns_of(file.openGroup("/denoiser/train"));
    const auto it = columns.find("loss");
    if (it != columns.end() && !it->second.empty()) trial.metrics["train_loss"] = it->second.back();
  }
  if (!has_link(file, "eval")) return;
  const auto evals = file.openGroup("/eval");
  std::vector<EvalResult> read;
  for (hsize_t i = 0; i < evals.getNumObjs(); ++i) {
    EvalResult eval;
    eval.label = evals.getObjnameByIdx(i);
    const auto group = attributes(evals.openGroup(eval.label));
    eval.sampler = choice_name(group.value("sampler", json()));
    eval.guider = choice_name(group.value("guider", json()));
    eval.steps = number_of(group.value("steps", json()));
    const std::pair<const char*, const char*> names[] = {{"fid", "fid"},
                                                         {"kid_mean", "kid"},
                                                         {"kid_std", "kid_std"},
                                                         {"is_mean", "is"},
                                                         {"is_std", "is_std"},
                                                         {"precision", "precision"},
                                                         {"recall", "recall"},
                                                         {"nfe", "nfe"},
                                                         {"accuracy", "accuracy"},
                                                         {"ref_psnr", "ref_psnr"},
                                                         {"ref_ssim", "ref_ssim"},
                                                         {"samples_per_second", "throughput"},
                                                         {"sampling_seconds", "sampling_seconds"}};
    for (const auto& [from, to] : names)
      if (group.contains(from)) eval.metrics[to] = number_of(group[from]);
    read.push_back(eval);
  }
  // The order the spec lists them in, where the sweep index gave it; HDF5 lists names sorted.
  if (!trial.evals.empty()) {
    for (auto& planned : trial.evals)
      for (const auto& found : read)
        if (found.label == planned.label) planned = found;
    for (const auto& found : read) {
      bool known = false;
      for (const auto& planned : trial.evals) known = known || planned.label == found.label;
      if (!known) trial.evals.push_back(found);
    }
  } else {
    trial.evals = read;
  }
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

std::string value_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "null";
  if (value.is_object() && value.contains("name") && value["name"].is_string() &&
      value.size() == (value.contains("params") ? 2u : 1u)) {
    std::string text = value["name"].get<std::string>();
    const auto params = value.value("params", json::object());
    if (!params.is_object() || params.empty()) return text;
    std::vector<std::string> parts;
    for (const auto& [key, item] : params.items()) parts.push_back(key + "=" + value_text(item));
    return text + "(" + join(parts) + ")";
  }
  return value.dump();
}

Results load_results(const fs::path& folder) {
  const auto index_file = folder / "sweep.json";
  if (!fs::is_directory(folder))
    throw ConfigError("no results folder " + folder.string() +
                      "; give the folder `latentlab run SPEC` wrote (results/NAME, the spec's name)");
  if (!fs::exists(index_file))
    throw ConfigError(folder.string() +
                      " holds no sweep.json, so it is not a sweep's results folder; give the folder "
                      "`latentlab run SPEC` wrote (results/NAME)");
  const auto index = json::parse(read_text(index_file), nullptr, false);
  if (!index.is_object() || !index.contains("trials") || !index["trials"].is_array() ||
      !index.value("axes", json::array()).is_array())
    throw ConfigError(index_file.string() +
                      " is not a sweep index (not JSON, or no \"trials\"); re-run `latentlab run SPEC` "
                      "to write it again (finished stages are not recomputed)");
  Results results;
  results.folder = folder;
  const auto text = [](const json& object, const char* key, const std::string& otherwise = "") {
    const auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : otherwise;
  };
  const auto damaged = [&](const std::string& what) {
    return ConfigError(
        index_file.string() + ": " + what +
        "; it is not a sweep index LatentLab wrote: re-run `latentlab run SPEC` to write it again "
        "(finished stages are not recomputed)");
  };
  results.name = text(index, "name", folder.filename().string());
  results.description = text(index, "description");
  results.updated = text(index, "updated");
  for (const auto& axis : index.value("axes", json::array())) {
    if (!axis.is_object() || !axis.value("values", json()).is_array())
      throw damaged("an axis without values");
    AxisInfo info;
    info.name = text(axis, "name");
    info.path = text(axis, "path", info.name);
    info.zip = text(axis, "zip");
    for (const auto& value : axis["values"]) info.values.push_back(value);
    results.axes.push_back(info);
  }
  for (const auto& entry : index["trials"]) {
    if (!entry.is_object() || !entry.contains("id")) throw damaged("a trial without an id");
    TrialResult trial;
    trial.id = text(entry, "id");
    trial.status = text(entry, "status", "waiting");
    trial.error = text(entry, "error");
    if (entry.value("values", json()).is_object()) trial.values = entry["values"];
    for (const auto& planned : entry.value("evals", json::array())) {
      if (!planned.is_object()) continue;
      EvalResult eval;
      eval.label = text(planned, "label");
      eval.sampler = text(planned, "sampler");
      eval.guider = text(planned, "guider");
      eval.steps = number_of(planned.value("steps", json()));
      trial.evals.push_back(eval);
    }
    const auto file = folder / "trials" / (trial.id + ".h5");
    if (fs::exists(file)) {
      trial.file = file;
      try {
        H5::Exception::dontPrint();
        read_trial_file(trial);
      } catch (const H5::Exception& e) {
        throw Error("cannot read the trial file " + file.string() + " (" + e.getDetailMsg() +
                    "); it may be damaged: delete it and re-run `latentlab run SPEC` to write it again");
      }
    }
    results.trials.push_back(std::move(trial));
  }
  return results;
}

std::map<std::string, std::vector<double>> read_columns(const fs::path& file, const std::string& group) {
  try {
    H5::Exception::dontPrint();
    const H5::H5File h5(file.string(), H5F_ACC_RDONLY);
    std::string path;
    std::stringstream parts(group);
    for (std::string part; std::getline(parts, part, '/');) {
      path += (path.empty() ? "" : "/") + part;
      if (!has_link(h5, path)) return {};
    }
    return columns_of(h5.openGroup("/" + group));
  } catch (const H5::Exception& e) {
    throw Error("cannot read " + group + " from " + file.string() + " (" + e.getDetailMsg() + ")");
  }
}

std::optional<Image> read_sample_grid(const fs::path& file, const std::string& label) {
  try {
    H5::Exception::dontPrint();
    const H5::H5File h5(file.string(), H5F_ACC_RDONLY);
    const auto path = "eval/" + label + "/samples";
    if (!has_link(h5, "eval") || !has_link(h5, "eval/" + label) || !has_link(h5, path)) return std::nullopt;
    const auto dataset = h5.openDataSet("/" + path);
    const auto space = dataset.getSpace();
    const int rank = space.getSimpleExtentNdims();
    if (rank != 2 && rank != 3) return std::nullopt;
    hsize_t dims[3] = {0, 0, 1};
    space.getSimpleExtentDims(dims);
    Image image;
    image.height = static_cast<int>(dims[0]);
    image.width = static_cast<int>(dims[1]);
    image.channels = rank == 3 ? static_cast<int>(dims[2]) : 1;
    image.pixels.resize(static_cast<std::size_t>(image.height) * image.width * image.channels);
    dataset.read(image.pixels.data(), H5::PredType::NATIVE_UINT8);
    return image;
  } catch (const H5::Exception& e) {
    throw Error("cannot read the samples of " + label + " from " + file.string() + " (" + e.getDetailMsg() +
                ")");
  }
}

}  // namespace latentlab::analysis
