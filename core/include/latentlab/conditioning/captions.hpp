#pragma once
// Captions generated from class labels, so that text-to-image runs offline on a labelled dataset
// (captioned Fashion-MNIST, docs/conditioning.md): each example gets one of several templates
// naming its class, and the evaluation asks for classes with templates the model never saw.
#include <cstdint>
#include <string>
#include <vector>

#include "latentlab/export.hpp"

namespace latentlab {

// The templates of the training captions; "{}" stands for the class with its article ("a coat").
LATENTLAB_API const std::vector<std::string>& training_caption_templates();
// Templates that no training caption uses (with words no training caption has), for the evaluation.
LATENTLAB_API const std::vector<std::string>& held_out_caption_templates();

// A class name as a caption says it: lower case, '/' read as "or", '_' as a space
// ("T-shirt/top" -> "t-shirt or top").
LATENTLAB_API std::string caption_noun(const std::string& class_name);
// `templ` with its "{}" replaced by the noun and its article ("an ankle boot").
LATENTLAB_API std::string fill_caption(const std::string& templ, const std::string& class_name);
// The caption of example `index` of class `class_name`: a training template chosen by a hash of the
// index and `seed`, the same on every call.
LATENTLAB_API std::string example_caption(std::int64_t index, const std::string& class_name,
                                          std::uint64_t seed = 0);

}  // namespace latentlab
