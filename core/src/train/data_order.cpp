#include "latentlab/train/data_order.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include "latentlab/error.hpp"

namespace latentlab {

DataOrder::DataOrder(std::int64_t size, std::int64_t batch_size, std::uint64_t seed, bool hflip)
    : size_(size), batch_size_(batch_size), seed_(seed), hflip_(hflip) {
  if (batch_size < 1) throw ConfigError("batch_size must be >= 1, got " + std::to_string(batch_size));
  if (size < batch_size)
    throw ConfigError("the dataset has " + std::to_string(size) + " examples, fewer than one batch of " +
                      std::to_string(batch_size) + "; lower the batch size or use more data");
}

void DataOrder::prepare_epoch() {
  if (prepared_epoch_ == position_.epoch) return;
  // One generator per epoch, seeded from (seed, epoch): any epoch can be rebuilt without the others.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed_ * 1000003ULL +
                                                            static_cast<std::uint64_t>(position_.epoch));
  permutation_ = torch::randperm(size_, generator, torch::kLong);
  flips_ = hflip_ ? torch::rand({size_}, generator) < 0.5 : torch::zeros({size_}, torch::kBool);
  prepared_epoch_ = position_.epoch;
}

void DataOrder::set_position(const DataPosition& position) {
  if (position.epoch < 0 || position.offset < 0 || position.offset + batch_size_ > size_)
    throw Error("data position (epoch " + std::to_string(position.epoch) + ", offset " +
                std::to_string(position.offset) + ") does not fit a dataset of " + std::to_string(size_) +
                " examples in batches of " + std::to_string(batch_size_) + "; did the dataset change?");
  position_ = position;
}

Batch DataOrder::next(const Dataset& dataset) {
  prepare_epoch();
  const auto indices_tensor = permutation_.slice(0, position_.offset, position_.offset + batch_size_);  // [B]
  const auto flips = flips_.slice(0, position_.offset, position_.offset + batch_size_);                 // [B]
  std::vector<std::int64_t> indices(indices_tensor.data_ptr<std::int64_t>(),
                                    indices_tensor.data_ptr<std::int64_t>() + batch_size_);
  Batch batch = dataset.get_batch(indices);
  if (hflip_ && flips.any().item<bool>())  // [B, C, H, W], mirrored along W where drawn
    batch.images = torch::where(flips.view({-1, 1, 1, 1}), batch.images.flip({3}), batch.images);
  position_.offset += batch_size_;
  if (position_.offset + batch_size_ > size_) {
    ++position_.epoch;
    position_.offset = 0;
  }
  return batch;
}

}  // namespace latentlab
