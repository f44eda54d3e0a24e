#include "latentlab/conditioner.hpp"

#include "latentlab/error.hpp"

namespace latentlab {

Conditioner::~Conditioner() = default;

std::int64_t ConditionInputs::batch_size() const {
  if (labels.defined()) return labels.size(0);
  if (!captions.empty()) return static_cast<std::int64_t>(captions.size());
  if (images.defined()) return images.size(0);
  if (masks.defined()) return masks.size(0);
  if (drop.defined()) return drop.size(0);
  return 0;
}

ConditionInputs ConditionInputs::slice(std::int64_t start, std::int64_t end) const {
  const auto rows = [&](const torch::Tensor& x) { return x.defined() ? x.slice(0, start, end) : x; };
  ConditionInputs part;
  part.labels = rows(labels);
  if (!captions.empty()) {
    if (end > static_cast<std::int64_t>(captions.size()) || start < 0 || start > end)
      throw Error("ConditionInputs::slice: rows [" + std::to_string(start) + ", " + std::to_string(end) +
                  ") of " + std::to_string(captions.size()) + " captions");
    part.captions.assign(captions.begin() + start, captions.begin() + end);
  }
  part.images = rows(images);
  part.masks = rows(masks);
  part.drop = rows(drop);
  return part;
}

std::string to_string(ConditionerOutput output) {
  return output == ConditionerOutput::Tokens ? "tokens" : "map";
}

std::string to_string(ConditionSource source) {
  switch (source) {
    case ConditionSource::Labels:
      return "labels";
    case ConditionSource::Captions:
      return "captions";
    case ConditionSource::Images:
      return "images";
  }
  return "?";
}

}  // namespace latentlab
