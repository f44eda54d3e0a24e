#include "latentlab/conditioning/masks.hpp"

#include <algorithm>
#include <cmath>

#include "latentlab/error.hpp"

namespace latentlab {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Uniform draws in [0, 1) from the generator, handed out one at a time.
class Draws {
 public:
  explicit Draws(at::Generator& generator) : generator_(generator) {}
  double uniform() {
    if (next_ >= buffer_.size(0)) {
      buffer_ = torch::rand({64}, generator_, torch::kFloat64);
      next_ = 0;
    }
    return buffer_[next_++].item<double>();
  }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  std::int64_t integer(std::int64_t low, std::int64_t high) {  // in [low, high]
    return std::min(high, low + static_cast<std::int64_t>(uniform() * static_cast<double>(high - low + 1)));
  }

 private:
  at::Generator& generator_;
  torch::Tensor buffer_ = torch::empty({0}, torch::kFloat64);
  std::int64_t next_ = 0;
};

void draw_boxes(float* mask, std::int64_t H, std::int64_t W, Draws& draws) {
  const auto boxes = draws.integer(1, 2);
  for (std::int64_t b = 0; b < boxes; ++b) {
    const auto h = std::max<std::int64_t>(1, std::llround(draws.uniform(0.25, 0.5) * static_cast<double>(H)));
    const auto w = std::max<std::int64_t>(1, std::llround(draws.uniform(0.25, 0.5) * static_cast<double>(W)));
    const auto top = draws.integer(0, H - h), left = draws.integer(0, W - w);
    for (std::int64_t y = top; y < top + h; ++y)
      for (std::int64_t x = left; x < left + w; ++x) mask[y * W + x] = 1.0F;
  }
}

void draw_disk(float* mask, std::int64_t H, std::int64_t W, double cy, double cx, double radius) {
  const auto y0 = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor(cy - radius)));
  const auto y1 = std::min<std::int64_t>(H - 1, static_cast<std::int64_t>(std::ceil(cy + radius)));
  const auto x0 = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor(cx - radius)));
  const auto x1 = std::min<std::int64_t>(W - 1, static_cast<std::int64_t>(std::ceil(cx + radius)));
  for (std::int64_t y = y0; y <= y1; ++y)
    for (std::int64_t x = x0; x <= x1; ++x) {
      const double dy = static_cast<double>(y) + 0.5 - cy, dx = static_cast<double>(x) + 0.5 - cx;
      if (dy * dy + dx * dx <= radius * radius) mask[y * W + x] = 1.0F;
    }
}

void draw_strokes(float* mask, std::int64_t H, std::int64_t W, Draws& draws) {
  const double side = static_cast<double>(std::min(H, W));
  const auto strokes = draws.integer(1, 3);
  for (std::int64_t s = 0; s < strokes; ++s) {
    // A brush at least one pixel wide, 3-8% of the side.
    const double radius = std::max(0.75, 0.5 * draws.uniform(0.03, 0.08) * side);
    double y = draws.uniform(0.0, static_cast<double>(H)), x = draws.uniform(0.0, static_cast<double>(W));
    double angle = draws.uniform(0.0, 2.0 * kPi);
    const auto segments = draws.integer(2, 5);
    for (std::int64_t k = 0; k < segments; ++k) {
      angle += draws.uniform(-0.6 * kPi, 0.6 * kPi);
      const double length = draws.uniform(0.1, 0.3) * side;
      const double ny = std::clamp(y + length * std::sin(angle), 0.0, static_cast<double>(H));
      const double nx = std::clamp(x + length * std::cos(angle), 0.0, static_cast<double>(W));
      const auto n = static_cast<std::int64_t>(std::ceil(2.0 * std::hypot(ny - y, nx - x))) + 1;
      for (std::int64_t i = 0; i <= n; ++i) {
        const double u = static_cast<double>(i) / static_cast<double>(n);
        draw_disk(mask, H, W, y + u * (ny - y), x + u * (nx - x), radius);
      }
      y = ny;
      x = nx;
    }
  }
}

}  // namespace

MaskShape mask_shape_from_string(const std::string& name) {
  if (name == "boxes") return MaskShape::Boxes;
  if (name == "strokes") return MaskShape::Strokes;
  if (name == "mixed") return MaskShape::Mixed;
  throw ConfigError("masks: expected \"boxes\", \"strokes\" or \"mixed\", got \"" + name + "\"");
}

std::string to_string(MaskShape shape) {
  switch (shape) {
    case MaskShape::Boxes:
      return "boxes";
    case MaskShape::Strokes:
      return "strokes";
    case MaskShape::Mixed:
      return "mixed";
  }
  return "?";
}

torch::Tensor make_masks(MaskShape shape, std::int64_t batch, std::int64_t height, std::int64_t width,
                         at::Generator& generator) {
  if (batch < 0 || height < 2 || width < 2)
    throw ConfigError("masks: need a batch >= 0 and images of at least 2x2 pixels, got " +
                      std::to_string(batch) + " x " + std::to_string(height) + "x" + std::to_string(width));
  auto masks = torch::zeros({batch, 1, height, width}, torch::kFloat32);
  auto* data = masks.data_ptr<float>();
  Draws draws(generator);
  const auto area = height * width;
  for (std::int64_t b = 0; b < batch; ++b) {
    float* mask = data + b * area;
    const bool boxes = shape == MaskShape::Boxes || (shape == MaskShape::Mixed && draws.uniform() < 0.5);
    if (boxes)
      draw_boxes(mask, height, width, draws);
    else
      draw_strokes(mask, height, width, draws);
    // Keep at least one pixel and mask at least one (a stroke can leave the image only partly).
    float covered = 0;
    for (std::int64_t i = 0; i < area; ++i) covered += mask[i];
    if (covered == 0) mask[(height / 2) * width + width / 2] = 1.0F;
    if (covered == static_cast<float>(area)) mask[0] = 0.0F;
  }
  return masks;
}

}  // namespace latentlab
