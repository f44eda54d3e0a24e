#pragma once
// Seeded inpainting masks (the `masked` conditioner and the inpainting metrics; docs/conditioning.md):
// boxes or irregular brush strokes, the two kinds of the LaMa masks the paper's inpainting
// experiments use (Sec. 4.5), at a small scale.
#include <cstdint>
#include <string>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab {

enum class MaskShape {
  Boxes,    // one or two axis-aligned rectangles, sides 1/4 to 1/2 of the image's
  Strokes,  // one to three brush strokes: polylines of 2-5 segments, 3-8% of the side wide
  Mixed,    // each mask boxes or strokes with equal probability
};

// "boxes", "strokes" or "mixed"; throws ConfigError naming the choices otherwise.
LATENTLAB_API MaskShape mask_shape_from_string(const std::string& name);
LATENTLAB_API std::string to_string(MaskShape shape);

// [B, 1, H, W] float32 on the CPU, 1 where the image is to be generated and 0 where it is kept. Every
// mask covers at least one pixel and leaves at least one. The same generator state gives the same masks.
LATENTLAB_API torch::Tensor make_masks(MaskShape shape, std::int64_t batch, std::int64_t height,
                                       std::int64_t width, at::Generator& generator);

}  // namespace latentlab
