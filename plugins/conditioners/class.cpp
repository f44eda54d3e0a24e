// `class`: a learned embedding table over the classes plus a null class, one token per example:
// labels [B] -> (B, 1, d), the class conditioning of the paper's class-conditional LDMs (Sec. 4.3,
// through cross-attention). The null class (index num_classes) is the unconditional value.
#include <string>

#include "conditioners.hpp"
#include "latentlab/error.hpp"

namespace latentlab::conditioners {
namespace {

class ClassTokens final : public Conditioner {
 public:
  explicit ClassTokens(const Params& params)
      : dim_(params.get_int("dim")), classes_(params.get_int("num_classes")) {}

  ConditionerOutput output() const override { return ConditionerOutput::Tokens; }
  ConditionSource source() const override { return ConditionSource::Labels; }
  std::string task() const override { return "class"; }

  void setup(const ConditionerSetup& setup) override {
    if (classes_ == 0) classes_ = setup.num_classes;
    if (classes_ == 0)
      throw ConfigError(
          "the data has no class labels; use a labelled dataset (fashion-mnist, or an image folder with one "
          "sub-folder per class and \"labels\": true) or set num_classes");
    if (setup.num_classes > classes_)
      throw ConfigError("num_classes: the data has " + std::to_string(setup.num_classes) +
                        " classes, more than num_classes = " + std::to_string(classes_));
    // Index classes_ is the null class.
    table_ = module_.register_module("embedding", torch::nn::Embedding(classes_ + 1, dim_));
  }

  std::int64_t width() const override { return dim_; }
  std::int64_t tokens() const override { return 1; }

  torch::Tensor encode(const ConditionInputs& inputs) override {
    if (!table_) throw Error("conditioner 'class': encode before setup");
    if (!inputs.labels.defined()) throw Error("conditioner 'class' needs class labels; the batch has none");
    const auto device = table_->weight.device();
    auto labels = inputs.labels.to(device, torch::kInt64);
    // Checked where it costs no device synchronisation (labels on the CPU); on a GPU an index out of
    // range fails in the embedding kernel instead.
    if (labels.is_cpu() && labels.numel() > 0 &&
        (labels.min().item<std::int64_t>() < 0 || labels.max().item<std::int64_t>() >= classes_))
      throw Error("conditioner 'class': labels must be in [0, " + std::to_string(classes_) + ")");
    const auto drop = drop_rows(inputs.drop, labels.size(0), device);
    labels = torch::where(drop, torch::full_like(labels, classes_), labels);
    return table_->forward(labels).unsqueeze(1);  // [B, 1, d]
  }

  torch::nn::Module& module() override { return module_; }

 private:
  std::int64_t dim_, classes_;
  torch::nn::Module module_;
  torch::nn::Embedding table_{nullptr};
};

}  // namespace

ParamSchema class_schema() {
  return ParamSchema()
      .integer("dim", 64, "d: the width of the class token (the UNet's context_dim)", Range::at_least(1))
      .integer("num_classes", 0, "classes of the table (0: the data's); index num_classes is the null class",
               Range::at_least(0));
}

std::unique_ptr<Conditioner> make_class(const Params& params) {
  return std::make_unique<ClassTokens>(params);
}

}  // namespace latentlab::conditioners
