// The conformance checks of the Autoencoder kind (plugin_checks.hpp).
#include <ATen/CPUGeneratorImpl.h>

#include <sstream>

#include "latentlab/error.hpp"
#include "latentlab/nn/state_dict.hpp"
#include "latentlab/plugin_checks.hpp"
#include "latentlab/strings.hpp"

#include "check_util.hpp"

namespace latentlab {

using detail::check;

namespace {

std::string shape_problem(const torch::Tensor& t, const std::vector<std::int64_t>& expected,
                          const char* what) {
  if (!t.defined()) return std::string(what) + " is undefined";
  if (t.sizes() != c10::IntArrayRef(expected))
    return std::string(what) + " has shape " + nn::shape_text(t.sizes()) + ", expected " +
           nn::shape_text(expected);
  if (t.scalar_type() != torch::kFloat32) return std::string(what) + " is not float32";
  if (!torch::isfinite(t).all().item<bool>()) return std::string(what) + " has non-finite values";
  return {};
}

}  // namespace

std::vector<CheckResult> check_autoencoder(const std::function<std::shared_ptr<Autoencoder>()>& make) {
  std::vector<CheckResult> results;
  const auto a = make(), b = make();
  const auto f = a->downsampling_factor(), c = a->latent_channels(), C = a->image_channels();
  const auto side = f * std::max<std::int64_t>(2, 16 / std::max<std::int64_t>(f, 1));
  const auto h = side / std::max<std::int64_t>(f, 1);
  auto seed = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto x = at::rand({2, C, side, side}, seed, torch::TensorOptions().dtype(torch::kFloat32)) * 2 - 1;
  const auto x_copy = x.clone();
  results.push_back(
      check("f is a power of two in 1..32; latent and image channels >= 1", [&]() -> std::string {
        if (f < 1 || f > 32 || (f & (f - 1)) != 0) return "f = " + std::to_string(f);
        if (c < 1 || C < 1) return "channels " + std::to_string(c) + ", " + std::to_string(C);
        return {};
      }));
  a->module().eval();
  torch::Tensor z;
  results.push_back(check("encode: [B, C, H, W] -> [B, c, H/f, W/f], finite float32", [&]() -> std::string {
    torch::NoGradGuard no_grad;
    auto generator = at::make_generator<at::CPUGeneratorImpl>(1);
    z = a->encode(x, generator);
    return shape_problem(z, {2, c, h, h}, "z");
  }));
  results.push_back(
      check("decode: [B, c, h, w] -> [B, C, h f, w f]; reconstruct keeps x's shape", [&]() -> std::string {
        torch::NoGradGuard no_grad;
        if (!z.defined()) return "no latent to decode";
        const auto problem = shape_problem(a->decode(z), {2, C, side, side}, "decode(z)");
        return problem.empty() ? shape_problem(a->reconstruct(x), {2, C, side, side}, "reconstruct(x)")
                               : problem;
      }));
  results.push_back(
      check("deterministic: the same generator seed gives the same latents; reconstruct "
            "repeats exactly",
            [&]() -> std::string {
              torch::NoGradGuard no_grad;
              auto g1 = at::make_generator<at::CPUGeneratorImpl>(9);
              auto g2 = at::make_generator<at::CPUGeneratorImpl>(9);
              if (!torch::equal(a->encode(x, g1), a->encode(x, g2))) return "encode differs";
              if (!torch::equal(a->reconstruct(x), a->reconstruct(x))) return "reconstruct differs";
              return {};
            }));
  results.push_back(
      check("save/load round trip: a second instance loaded from the first's archive "
            "reconstructs identically",
            [&]() -> std::string {
              torch::serialize::OutputArchive out;
              a->module().save(out);
              std::ostringstream bytes;
              out.save_to(bytes);
              torch::serialize::InputArchive in;
              std::istringstream read(bytes.str());
              in.load_from(read);
              b->module().load(in);
              b->module().eval();
              torch::NoGradGuard no_grad;
              if (!torch::equal(a->reconstruct(x), b->reconstruct(x)))
                return "the loaded instance reconstructs differently";
              return {};
            }));
  results.push_back(
      check("training pass: x_hat of x's shape, a finite scalar regulariser >= 0, finite "
            "gradients for every trainable parameter it reaches",
            [&]() -> std::string {
              a->module().train();
              auto generator = at::make_generator<at::CPUGeneratorImpl>(2);
              const auto out = a->forward(x, generator);
              a->module().eval();
              auto problem = shape_problem(out.reconstruction, {2, C, side, side}, "x_hat");
              if (!problem.empty()) return problem;
              if (!out.regularizer.defined() || out.regularizer.numel() != 1)
                return "the regulariser is not a scalar";
              const double reg = out.regularizer.item<double>();
              if (!std::isfinite(reg) || reg < 0) return "regulariser " + format_number(reg);
              for (const auto& [name, value] : out.logs)
                if (value.numel() != 1 || !std::isfinite(value.item<double>()))
                  return "log '" + name + "' is not a finite scalar";
              if (a->module().parameters().empty()) return {};
              ((out.reconstruction - x).abs().mean() + out.regularizer).backward();
              for (const auto& item : a->module().named_parameters())
                if (item.value().grad().defined() && !torch::isfinite(item.value().grad()).all().item<bool>())
                  return "non-finite gradient at " + item.key();
              if (!a->last_layer().defined()) return "last_layer() is undefined";
              if (!a->last_layer().grad().defined())
                return "no gradient reached last_layer() (the adaptive GAN weight needs one)";
              return {};
            }));
  results.push_back(
      check("decode is differentiable in z (post-hoc guidance needs the gradient)", [&]() -> std::string {
        if (!z.defined()) return "no latent";
        const auto leaf = z.detach().clone().requires_grad_(true);
        a->decode(leaf).pow(2).sum().backward();
        if (!leaf.grad().defined()) return "no gradient reached z";
        if (!torch::isfinite(leaf.grad()).all().item<bool>()) return "non-finite gradient";
        return {};
      }));
  results.push_back(check(
      "VQ: code_indices gives [B, h, w] in [0, codebook_size); others: undefined", [&]() -> std::string {
        torch::NoGradGuard no_grad;
        const auto indices = a->code_indices(x);
        const auto K = a->codebook_size();
        if (K == 0) return indices.defined() ? "indices without a codebook" : "";
        if (!indices.defined() || indices.sizes() != c10::IntArrayRef({2, h, h})) return "indices shape";
        if (indices.min().item<std::int64_t>() < 0 || indices.max().item<std::int64_t>() >= K)
          return "index out of range";
        return {};
      }));
  results.push_back(check("x is left untouched", [&]() -> std::string {
    return torch::equal(x, x_copy) ? "" : "an input image was modified in place";
  }));
  return results;
}

}  // namespace latentlab
