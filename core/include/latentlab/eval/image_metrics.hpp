#pragma once
// Full-reference image metrics for reconstructions: PSNR and SSIM (Wang et al. 2004), on images in
// [-1, 1] mapped to [0, 1] (data range 1), computed in float64.
#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::eval {

// x, y: [B, C, H, W] in [-1, 1] (clamped) -> [B] PSNR in dB = 10 log10(1 / MSE); +inf for equal images.
LATENTLAB_API torch::Tensor psnr(const torch::Tensor& x, const torch::Tensor& y);

// x, y: [B, C, H, W] in [-1, 1] (clamped), H, W >= 11 -> [B] mean SSIM: an 11x11 Gaussian window with
// sigma 1.5 over the valid region, K1 = 0.01, K2 = 0.03, averaged over positions and channels (the
// convention of Wang et al.'s reference code and pytorch-msssim).
LATENTLAB_API torch::Tensor ssim(const torch::Tensor& x, const torch::Tensor& y);

// The same within a region (inpainting: the pixels that were generated). mask: [B, 1, H, W] in [0, 1],
// covering at least one pixel of every image. PSNR over the masked pixels (all channels); SSIM's map
// averaged over the window centres inside the mask (NaN for an image whose mask lies entirely within
// 5 pixels of the border).
LATENTLAB_API torch::Tensor masked_psnr(const torch::Tensor& x, const torch::Tensor& y,
                                        const torch::Tensor& mask);
LATENTLAB_API torch::Tensor masked_ssim(const torch::Tensor& x, const torch::Tensor& y,
                                        const torch::Tensor& mask);

}  // namespace latentlab::eval
