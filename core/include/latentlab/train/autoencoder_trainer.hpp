#pragma once
// Stage 1: trains an autoencoder with the objective of Eq. 25 (reconstruction, perceptual term, patch
// discriminator, regulariser), two Adam optimisers (autoencoder + logvar, discriminator), held-out
// reconstruction metrics (PSNR, SSIM, codebook usage), atomic checkpoints with exact resumption, and at
// the end the latent statistics and rescaling stage 2 uses, written with the weights to autoencoder.pt.
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>

#include "latentlab/autoencoder.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/export.hpp"
#include "latentlab/schedule.hpp"
#include "latentlab/train/autoencoder_config.hpp"
#include "latentlab/train/denoiser_trainer.hpp"
#include "latentlab/train/metric_sink.hpp"

namespace latentlab {

struct AutoencoderTrainerParts {
  std::shared_ptr<Dataset> train_data;
  std::shared_ptr<Dataset> held_out;
  // Builds the autoencoder of config.autoencoder. The trainer calls it once, after seeding LibTorch's
  // generator with the run's seed, so that the initial weights follow from the config.
  std::function<std::shared_ptr<Autoencoder>()> make_autoencoder;
  std::shared_ptr<Schedule> snr_schedule;  // for the SNR_eff table
};

// Reconstruction metrics of an autoencoder on held-out images.
struct ReconstructionMetrics {
  std::int64_t images = 0;
  double psnr = 0, ssim = 0, l1 = 0;  // means over images; l1 on [-1, 1]
  double codebook_usage = -1;         // VQ: fraction of codes used; -1 otherwise
  double perplexity = -1;             // VQ: exp(entropy of code frequencies); -1 otherwise
};

// Runs reconstruct() over the first `images` examples of `data` on `device`, under autocast to
// `precision` (the metrics and `each` in float32). `each`, when given, sees every batch (originals,
// reconstructions in float32) as they are made.
LATENTLAB_API ReconstructionMetrics
evaluate_reconstruction(Autoencoder& autoencoder, const Dataset& data, std::int64_t images,
                        std::int64_t batch_size, torch::Device device,
                        const std::function<void(const torch::Tensor&, const torch::Tensor&)>& each = nullptr,
                        Precision precision = Precision::fp32);

class LATENTLAB_API AutoencoderTrainer {
 public:
  // Checks that data, autoencoder and config fit together (ConfigError otherwise).
  AutoencoderTrainer(AutoencoderTrainConfig config, AutoencoderTrainerParts parts, MetricSink& sink);
  ~AutoencoderTrainer();

  std::filesystem::path checkpoint_path() const;  // <output>/checkpoint.pt
  // Restores everything from the checkpoint; returns its step (see DenoiserTrainer::resume).
  std::int64_t resume();
  // Trains up to `steps`; on `stop`, checkpoints and returns interrupted. Throws DivergenceError on a
  // non-finite loss. At the end writes <output>/autoencoder.pt and latent_stats.json.
  TrainOutcome run(const std::atomic<bool>& stop);

  // The autoencoder being trained (in train mode during run()).
  Autoencoder& autoencoder();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace latentlab
