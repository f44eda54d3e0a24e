// The conformance checks of the Conditioner kind (plugin_checks.hpp).
#include <ATen/CPUGeneratorImpl.h>

#include <sstream>

#include "latentlab/error.hpp"
#include "latentlab/nn/state_dict.hpp"
#include "latentlab/plugin_checks.hpp"

#include "check_util.hpp"

namespace latentlab {

using detail::check;

namespace {

namespace F = torch::nn::functional;

constexpr std::int64_t kBatch = 4, kSide = 16, kLatentSide = 4, kLatentChannels = 4, kClasses = 3;

// Grey 16x16 images with three classes and captions, and a 4-channel f = 4 "first stage" (an average
// pool, repeated over the channels): what the checks set a conditioner up with.
ConditionerSetup check_setup() {
  ConditionerSetup setup;
  setup.image_channels = 1;
  setup.resolution = kSide;
  setup.latent_channels = kLatentChannels;
  setup.latent_size = kLatentSide;
  setup.num_classes = kClasses;
  setup.class_names = {"coat", "bag", "ankle boot"};
  setup.captions = {"a coat", "a photo of a bag", "an ankle boot", "a small photo of a coat",
                    "a bag, centred"};
  setup.encode = [](const torch::Tensor& x) {
    return F::avg_pool2d(x, F::AvgPool2dFuncOptions(kSide / kLatentSide)).repeat({1, kLatentChannels, 1, 1});
  };
  return setup;
}

// Inputs of every kind for rows `first`.. (labels, captions, images), the same for the same `first`.
ConditionInputs check_inputs(std::int64_t first) {
  ConditionInputs inputs;
  inputs.labels = torch::arange(first, first + kBatch, torch::kInt64).remainder(kClasses);
  const std::vector<std::string> captions = {"a coat", "a photo of a bag", "an ankle boot", "a bag, centred",
                                             "a small photo of a coat"};
  for (std::int64_t i = first; i < first + kBatch; ++i)
    inputs.captions.push_back(captions[static_cast<std::size_t>(i) % captions.size()]);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(17 + static_cast<std::uint64_t>(first));
  inputs.images =
      at::rand({kBatch, 1, kSide, kSide}, generator, torch::TensorOptions().dtype(torch::kFloat32)) * 2 - 1;
  return inputs;
}

// The inputs completed (masks drawn) from a fixed seed.
ConditionInputs completed(const Conditioner& conditioner, ConditionInputs inputs, std::uint64_t seed = 3) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  conditioner.complete(inputs, generator);
  return inputs;
}

torch::Tensor encoded(Conditioner& conditioner, const ConditionInputs& inputs) {
  torch::NoGradGuard no_grad;
  return conditioner.encode(inputs).to(torch::kCPU);
}

}  // namespace

std::vector<CheckResult> check_conditioner(const std::function<std::shared_ptr<Conditioner>()>& make) {
  std::vector<CheckResult> results;
  const auto a = make();
  const auto setup = check_setup();
  results.push_back(
      check("setup() on labelled, captioned 16x16 images with f = 4 latents", [&]() -> std::string {
        a->setup(setup);
        a->module().eval();
        return {};
      }));
  if (!results.back().passed) return results;
  const bool tokens = a->output() == ConditionerOutput::Tokens;
  const auto inputs = completed(*a, check_inputs(0));
  results.push_back(
      check(std::string("encode() gives ") + (tokens ? "tokens [B, M, d]" : "maps [B, C', 4, 4]") +
                ", float32 and finite; the inputs are untouched",
            [&]() -> std::string {
              if (a->width() < 1) return "width() is " + std::to_string(a->width());
              if (tokens && a->tokens() < 1) return "tokens() is " + std::to_string(a->tokens());
              const auto images = inputs.images.clone();
              const auto out = encoded(*a, inputs);
              const std::vector<std::int64_t> expected =
                  tokens ? std::vector<std::int64_t>{kBatch, a->tokens(), a->width()}
                         : std::vector<std::int64_t>{kBatch, a->width(), kLatentSide, kLatentSide};
              if (out.sizes() != c10::IntArrayRef(expected))
                return "shape " + nn::shape_text(out.sizes()) + ", expected " + nn::shape_text(expected);
              if (out.scalar_type() != torch::kFloat32) return "not float32";
              if (!torch::isfinite(out).all().item<bool>()) return "non-finite values";
              if (!torch::equal(images, inputs.images)) return "encode() changed the images";
              return {};
            }));
  results.push_back(check("the same inputs give the same output; complete() is seeded", [&]() -> std::string {
    if (!torch::equal(encoded(*a, inputs), encoded(*a, completed(*a, check_inputs(0)))))
      return "two calls differ";
    return {};
  }));
  results.push_back(check("the condition matters: other inputs change the output", [&]() -> std::string {
    if (torch::equal(encoded(*a, inputs), encoded(*a, completed(*a, check_inputs(1), 4))))
      return "other labels, captions and images gave the same output";
    return {};
  }));
  results.push_back(
      check("dropped rows get one unconditional value; the others are unchanged", [&]() -> std::string {
        auto dropped = inputs;
        dropped.drop = torch::ones({kBatch}, torch::kBool);
        const auto none = encoded(*a, dropped);
        for (std::int64_t i = 1; i < kBatch; ++i)
          if (!torch::allclose(none[i], none[0]))
            return "the unconditional value of example " + std::to_string(i) + " differs from example 0's";
        auto some = inputs;
        some.drop = torch::tensor({true, false, true, false});
        const auto mixed = encoded(*a, some), kept = encoded(*a, inputs);
        for (std::int64_t i = 0; i < kBatch; ++i) {
          const auto& expected = i % 2 == 0 ? none[i] : kept[i];
          if (!torch::allclose(mixed[i], expected, 1e-5, 1e-6))
            return "row " + std::to_string(i) + " of a partly dropped batch is not its " +
                   (i % 2 == 0 ? "unconditional" : "conditional") + " value";
        }
        return {};
      }));
  results.push_back(
      check("state() and the module's weights rebuild it: a second instance gives the same output",
            [&]() -> std::string {
              const auto b = make();
              b->load_state(a->state());
              b->setup(setup);
              std::ostringstream bytes;
              torch::serialize::OutputArchive out;
              a->module().save(out);
              out.save_to(bytes);
              std::istringstream in_bytes(bytes.str());
              torch::serialize::InputArchive in;
              in.load_from(in_bytes);
              b->module().load(in);
              b->module().eval();
              if (!torch::allclose(encoded(*a, inputs), encoded(*b, inputs)))
                return "the rebuilt conditioner's output differs";
              return {};
            }));
  if (!a->module().parameters().empty())
    results.push_back(check("gradients reach its parameters", [&]() -> std::string {
      a->module().zero_grad();
      a->encode(inputs).pow(2).sum().backward();
      for (const auto& p : a->module().parameters())
        if (p.grad().defined() && p.grad().abs().sum().item<double>() > 0) return {};
      return "no parameter has a non-zero gradient";
    }));
  return results;
}

}  // namespace latentlab
