// The built-in conditioners' library: `class`, `tokens`, `lowres`, `masked` (docs/conditioning.md).
#include "conditioners.hpp"
#include "latentlab/plugin.hpp"

namespace latentlab::conditioners {

torch::Tensor drop_rows(const torch::Tensor& drop, std::int64_t batch, torch::Device device) {
  if (!drop.defined())
    return torch::zeros({batch}, torch::TensorOptions().dtype(torch::kBool).device(device));
  if (drop.dim() != 1 || drop.size(0) != batch)
    throw Error("conditioner: drop must be [" + std::to_string(batch) + "], got " +
                std::to_string(drop.dim()) + " dimensions");
  return drop.to(device, torch::kBool);
}

namespace {

void register_factories(Registrar& registrar) {
  registrar.add<Conditioner>("class",
                             "class labels -> one learned token (B, 1, d) for cross-attention, with a null "
                             "class as the unconditional value",
                             class_schema(), make_class);
  registrar.add<Conditioner>(
      "tokens",
      "captions -> tau_theta tokens (B, M, d): a word tokenizer built from the training "
      "captions, token and position embeddings, pre-norm transformer blocks, final "
      "LayerNorm (Appendix E.2.1)",
      tokens_schema(), make_tokens);
  registrar.add<Conditioner>("lowres",
                             "super-resolution: the image downsampled by k (antialiased bicubic), brought to "
                             "the latent grid for concatenation",
                             lowres_schema(), make_lowres);
  registrar.add<Conditioner>("masked",
                             "inpainting: the masked image's latent and the mask at latent resolution, for "
                             "concatenation; seeded box or stroke masks",
                             masked_schema(), make_masked);
}

}  // namespace
}  // namespace latentlab::conditioners

LATENTLAB_PLUGIN("latentlab-conditioners", LATENTLAB_VERSION_STRING,
                 latentlab::conditioners::register_factories)
