#pragma once
// Deterministic data order: a seeded permutation per epoch (and per-example horizontal flips), a pure
// function of (seed, epoch), so a run resumes from its position alone.
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "latentlab/dataset.hpp"
#include "latentlab/export.hpp"

namespace latentlab {

// Where the next batch starts.
struct DataPosition {
  std::int64_t epoch = 0;
  std::int64_t offset = 0;  // into the epoch's permutation
};

class LATENTLAB_API DataOrder {
 public:
  // Batches of `batch_size` examples out of `size`; the last partial batch of an epoch is dropped.
  // `hflip`: each example is mirrored left-right with probability 1/2, decided per epoch.
  DataOrder(std::int64_t size, std::int64_t batch_size, std::uint64_t seed, bool hflip);

  // The next batch from `dataset` (images flipped where drawn), advancing the position.
  Batch next(const Dataset& dataset);

  const DataPosition& position() const { return position_; }
  void set_position(const DataPosition& position);
  std::int64_t batches_per_epoch() const { return size_ / batch_size_; }

 private:
  void prepare_epoch();

  std::int64_t size_, batch_size_;
  std::uint64_t seed_;
  bool hflip_;
  DataPosition position_;
  std::int64_t prepared_epoch_ = -1;
  torch::Tensor permutation_;  // [size] int64
  torch::Tensor flips_;        // [size] bool, by position in the permutation
};

}  // namespace latentlab
