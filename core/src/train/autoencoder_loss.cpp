#include "latentlab/train/autoencoder_loss.hpp"

#include <cmath>

#include "config_json.hpp"
#include "latentlab/error.hpp"
#include "latentlab/params.hpp"
#include "latentlab/strings.hpp"

namespace latentlab {

namespace {

const ParamSchema& loss_schema() {
  static const ParamSchema schema =
      ParamSchema()
          .choice(
              "perceptual", "none", {"lpips", "vgg", "none"},
              "perceptual term: LPIPS (needs perceptual_weights), its uncalibrated VGG16 baseline, or none")
          .number("perceptual_weight", 1.0, "weight w_p of the perceptual term", Range::at_least(0))
          .integer("disc_start", 50001,
                   "the GAN terms are on after this many steps (the reference's global_step >= disc_start)",
                   Range::at_least(0))
          .number("disc_weight", 0.5, "multiplies the adaptive GAN weight", Range::at_least(0))
          .number("disc_factor", 1.0, "weight of the GAN terms once active (0: no GAN)", Range::at_least(0))
          .integer("disc_layers", 3, "strided layers of the patch discriminator", Range::closed(1, 6))
          .integer("disc_channels", 64, "width of the discriminator's first layer", Range::at_least(1))
          .choice("disc_loss", "hinge", {"hinge", "vanilla"}, "discriminator loss")
          .choice("reduction", "auto", {"auto", "sum", "mean"},
                  "reconstruction term: summed over pixels and averaged over the batch (the reference KL "
                  "loss), or averaged (the reference VQ loss); auto picks by regulariser")
          .choice("learn_logvar", "off", {"off", "on"},
                  "train the scalar logvar of the reconstruction term rec / exp(logvar) + logvar (the "
                  "reference keeps it fixed at logvar_init)")
          .number("logvar_init", 0.0, "initial logvar", Range::any());
  return schema;
}

}  // namespace

Stage1LossConfig Stage1LossConfig::from_json(const nlohmann::json& json) {
  nlohmann::json given = json.is_null() ? nlohmann::json::object() : json;
  if (!given.is_object()) throw ConfigError("loss: expected a JSON object, got " + given.dump());
  Stage1LossConfig c;
  if (given.contains("perceptual_weights")) {
    c.perceptual_weights = detail::file_names(given.at("perceptual_weights"), "loss.perceptual_weights");
    given.erase("perceptual_weights");
  }
  const auto p = loss_schema().validate(given, "loss", "loss");
  c.perceptual = p.get_string("perceptual");
  c.perceptual_weight = p.get_float("perceptual_weight");
  c.disc_start = p.get_int("disc_start");
  c.disc_weight = p.get_float("disc_weight");
  c.disc_factor = p.get_float("disc_factor");
  c.disc_layers = p.get_int("disc_layers");
  c.disc_channels = p.get_int("disc_channels");
  c.disc_loss = p.get_string("disc_loss");
  c.reduction = p.get_string("reduction");
  c.learn_logvar = p.get_string("learn_logvar");
  c.logvar_init = p.get_float("logvar_init");
  if (c.perceptual != "none" && c.perceptual_weights.empty())
    throw ConfigError("loss.perceptual_weights: perceptual '" + c.perceptual +
                      "' needs the VGG16 weights: a reference first-stage checkpoint, or torchvision's "
                      "vgg16-397923af.pth plus taming's vgg.pth (see docs/autoencoders.md); or set "
                      "\"perceptual\": \"none\"");
  return c;
}

nlohmann::json Stage1LossConfig::to_json() const {
  return {{"perceptual", perceptual},
          {"perceptual_weight", perceptual_weight},
          {"perceptual_weights", perceptual_weights},
          {"disc_start", disc_start},
          {"disc_weight", disc_weight},
          {"disc_factor", disc_factor},
          {"disc_layers", disc_layers},
          {"disc_channels", disc_channels},
          {"disc_loss", disc_loss},
          {"reduction", reduction},
          {"learn_logvar", learn_logvar},
          {"logvar_init", logvar_init}};
}

torch::Tensor adaptive_gan_weight(const torch::Tensor& rec_loss, const torch::Tensor& gan_loss,
                                  const torch::Tensor& last_layer, double disc_weight) {
  const auto rec_grad = torch::autograd::grad({rec_loss}, {last_layer}, {}, true)[0];
  const auto gan_grad = torch::autograd::grad({gan_loss}, {last_layer}, {}, true)[0];
  const auto weight = rec_grad.norm() / (gan_grad.norm() + 1e-4);
  return weight.clamp(0.0, 1e4).detach() * disc_weight;
}

torch::Tensor hinge_d_loss(const torch::Tensor& logits_real, const torch::Tensor& logits_fake) {
  return 0.5 * (torch::relu(1.0 - logits_real).mean() + torch::relu(1.0 + logits_fake).mean());
}

torch::Tensor vanilla_d_loss(const torch::Tensor& logits_real, const torch::Tensor& logits_fake) {
  return 0.5 * (torch::softplus(-logits_real).mean() + torch::softplus(logits_fake).mean());
}

Stage1LossImpl::Stage1LossImpl(const Stage1LossConfig& config, const std::string& regularizer,
                               std::int64_t image_channels)
    : config_(config) {
  const bool kl = regularizer == "kl";
  sum_reduction_ = config.reduction == "sum" || (config.reduction == "auto" && kl);
  // The reference keeps loss.logvar out of its optimiser (a fixed scale); "on" learns it.
  const bool learn_logvar = config.learn_logvar == "on";
  logvar_ = register_parameter("logvar", torch::full({}, config.logvar_init), learn_logvar);
  discriminator_ = register_module(
      "discriminator", nn::PatchDiscriminator(image_channels, config.disc_channels, config.disc_layers));
  if (config.perceptual != "none") {
    // Not registered: its weights come from the user's files, not from our checkpoints.
    perceptual_ = nn::Lpips(config.perceptual == "lpips");
    perceptual_->load(std::vector<std::filesystem::path>(config.perceptual_weights.begin(),
                                                         config.perceptual_weights.end()));
  }
}

void Stage1LossImpl::move_to(torch::Device device) {
  to(device);
  if (perceptual_) perceptual_->to(device);
}

std::vector<torch::Tensor> Stage1LossImpl::generator_parameters() const {
  if (logvar_.requires_grad()) return {logvar_};
  return {};
}

Stage1Terms Stage1LossImpl::generator_loss(const torch::Tensor& x, const AutoencoderOutput& out,
                                           std::int64_t step, const torch::Tensor& last_layer) {
  const auto& x_hat = out.reconstruction;
  const double batch = static_cast<double>(x.size(0));
  auto rec = (x - x_hat).abs();  // [B, C, H, W]
  Stage1Terms terms;
  torch::Tensor p_loss;
  if (perceptual_) {
    p_loss = perceptual_->forward(x, x_hat);  // [B, 1, 1, 1], broadcast over pixels as the reference
    rec = rec + config_.perceptual_weight * p_loss;
  }
  const auto nll = rec / torch::exp(logvar_) + logvar_;
  const auto nll_loss = sum_reduction_ ? nll.sum() / batch : nll.mean();
  auto loss = nll_loss + out.regularizer;
  const double disc_factor = gan_active(step) ? config_.disc_factor : 0.0;
  if (disc_factor > 0) {
    const auto g_loss = -discriminator_->forward(x_hat).mean();
    const auto d_weight = last_layer.defined() && is_training()
                              ? adaptive_gan_weight(nll_loss, g_loss, last_layer, config_.disc_weight)
                              : torch::zeros({}, x.options());
    loss = loss + d_weight * disc_factor * g_loss;
    terms.logs.emplace_back("g_loss", g_loss.detach());
    terms.logs.emplace_back("d_weight", d_weight.detach());
  } else {  // the same columns at every step (nan before disc_start)
    terms.logs.emplace_back("g_loss", torch::full({}, std::nan("")));
    terms.logs.emplace_back("d_weight", torch::full({}, std::nan("")));
  }
  terms.loss = loss;
  terms.logs.emplace_back("rec_loss", (x - x_hat).abs().mean().detach());
  if (p_loss.defined()) terms.logs.emplace_back("p_loss", p_loss.mean().detach());
  terms.logs.emplace_back("nll_loss", nll_loss.detach());
  terms.logs.emplace_back("logvar", logvar_.detach());
  return terms;
}

Stage1Terms Stage1LossImpl::discriminator_loss(const torch::Tensor& x, const torch::Tensor& x_hat,
                                               std::int64_t step) {
  const double disc_factor = gan_active(step) ? config_.disc_factor : 0.0;
  const auto logits_real = discriminator_->forward(x.detach());
  const auto logits_fake = discriminator_->forward(x_hat.detach());
  const auto d_loss = config_.disc_loss == "hinge" ? hinge_d_loss(logits_real, logits_fake)
                                                   : vanilla_d_loss(logits_real, logits_fake);
  Stage1Terms terms;
  terms.loss = disc_factor * d_loss;
  terms.logs = {{"d_loss", d_loss.detach()},
                {"logits_real", logits_real.mean().detach()},
                {"logits_fake", logits_fake.mean().detach()}};
  return terms;
}

}  // namespace latentlab
