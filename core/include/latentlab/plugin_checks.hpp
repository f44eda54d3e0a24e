#pragma once
// The conformance checks every plugin kind must pass, built-in or a researcher's.
// Run them with `latentlab plugins check NAME`; the test suite runs them on the built-ins.
#include <functional>
#include <memory>
#include <vector>

#include "latentlab/autoencoder.hpp"
#include "latentlab/conditioner.hpp"

#include "latentlab/dataset.hpp"
#include "latentlab/export.hpp"
#include "latentlab/feature_extractor.hpp"
#include "latentlab/guider.hpp"
#include "latentlab/schedule_checks.hpp"
#include "latentlab/weighting.hpp"

namespace latentlab {

// On schedules with T = 1, 10 and 1000 (LDM's linear one among them):
//  - weights() returns T values, finite and >= 0, not all 0, and the same values when asked twice;
//  - the t proposal the trainer builds from timestep_sampling() is a distribution with p(t) > 0
//    wherever w(t) > 0 (otherwise the importance-sampled objective would be biased).
LATENTLAB_API std::vector<CheckResult> check_weighting(const LossWeighting& weighting);

// On up to 8 examples (the first, the last and some between):
//  - size() >= 1, channels() and resolution() >= 1, num_classes() >= 0, class_names() empty or
//    num_classes() long;
//  - get_batch gives images [B, C, R, R] float32, finite, in [-1, 1], and labels [B] int64 in
//    [0, num_classes) exactly when num_classes() > 0;
//  - the same indices give the same tensors, and a batch equals its examples fetched one by one;
//  - an index outside [0, size()) is an error.
LATENTLAB_API std::vector<CheckResult> check_dataset(const Dataset& dataset);

// With a class-conditional analytic model on images [2, 1, 8, 8] (differentiable in z_t), its
// unconditional input, the identity decoder, a mask of the top half, and an observation y of the
// image's size or of a power-of-two downsampling of it (the first size the guider accepts), on LDM's
// linear schedule:
//  - guide() accepts these inputs, and eps_hat(z_t, t) has z_t's shape and dtype (float32 and
//    float64), is finite, and leaves z_t untouched, at t = 1, T/2 and T;
//  - it works with gradients off (as `latentlab sample` calls it) and gives the same values twice.
LATENTLAB_API std::vector<CheckResult> check_guider(const Guider& guider);

// On random images [2, C, S, S] (S = 16, or 2f when f > 8), with two instances from `make`:
//  - f is a power of two in 1..32; encode gives [2, c, S/f, S/f], decode and reconstruct [2, C, S, S],
//    finite float32; the same generator seed gives the same latents;
//  - a second instance loaded from the first's saved module reconstructs identically;
//  - the training pass gives x_hat of x's shape and a finite scalar regulariser >= 0, and gradients
//    reach the decoder's last layer (when there are parameters), and decode is differentiable in z;
//  - VQ code indices are in range; x is never modified.
LATENTLAB_API std::vector<CheckResult> check_autoencoder(
    const std::function<std::shared_ptr<Autoencoder>()>& make);

// On seeded random uint8 images [4, 3, 32, 32], and grey [4, 1, 32, 32] and [2, 3, 40, 56] ones:
//  - feature_dim() >= 1, num_logits() >= 0, a non-empty fingerprint();
//  - features [B, D] float32 on the CPU and finite; logits [B, K] exactly when K > 0; input untouched;
//  - the same images give the same features, and an image alone gives its features in a batch.
LATENTLAB_API std::vector<CheckResult> check_feature_extractor(FeatureExtractor& extractor);

// Set up for grey 16x16 images with three named classes, a few captions, and a 4-channel f = 4 first
// stage; on a batch of 4 with labels, captions and images (and what complete() draws, seeded):
//  - encode gives tokens [4, M, d] (M = tokens(), d = width()) or maps [4, C', 4, 4], float32, finite,
//    without touching the inputs; the same inputs give the same output, other inputs another;
//  - rows with `drop` get one unconditional value, the same for every example, and the other rows
//    their conditional value;
//  - a second instance given state() before setup() and the first's module weights gives the same
//    output; gradients reach the parameters (when there are any).
LATENTLAB_API std::vector<CheckResult> check_conditioner(
    const std::function<std::shared_ptr<Conditioner>()>& make);

}  // namespace latentlab
