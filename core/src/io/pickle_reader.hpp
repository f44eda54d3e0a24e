#pragma once
// Internal to the core library: the pickle virtual machine behind read_torch_file (torch_file.cpp
// handles the containers around the pickle: the zip archive or the legacy stream).
#include <cstdint>
#include <functional>
#include <istream>
#include <optional>
#include <stdexcept>
#include <string>

#include <torch/torch.h>

#include "latentlab/io/torch_file.hpp"

namespace latentlab::io::detail {

// A damaged pickle. unpickle() turns it into an Error that names the file and the byte offset; it
// is a separate type so that helpers which do not know the offset can report one.
class Malformed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Data that is well-formed but that LatentLab cannot represent (a quantized storage, a dtype this
// LibTorch lacks). Turned into an Error that names the file like Malformed, without "corrupt".
class Unsupported : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The bytes of a pickle: a stream whose length is known, so that no length field of a damaged file
// makes us allocate more than the file holds. Counts the offset for messages.
class ByteInput {
 public:
  ByteInput(std::istream& in, std::uint64_t size) : in_(in), size_(size) {}
  std::uint64_t offset() const { return offset_; }
  std::uint64_t remaining() const { return size_ - offset_; }
  // Reads exactly `n` bytes into `into`; throws Malformed when the input ends first.
  void read(void* into, std::uint64_t n);

 private:
  std::istream& in_;
  std::uint64_t size_;
  std::uint64_t offset_ = 0;
};

// Resolves a persistent id (BINPERSID): torch.save stores each storage outside the pickle and puts
// ('storage', storage class, key, location, numel, ...) in its place. Returns the storage as a flat
// 1-d tensor of its dtype; throws Malformed for an id of the wrong shape.
using PersistentLoad = std::function<PickleValue(const PickleValue& id)>;

// Runs one pickle from `in`, up to and including its STOP opcode, and returns the object it built.
// Tensors in the result are views of the storages persistent_load returned (read_torch_file makes
// them own their memory afterwards). `where` names the pickle in messages: "F (data.pkl)".
PickleValue unpickle(ByteInput& in, const std::string& where, const PersistentLoad& persistent_load);

// dtype of a storage class torch.save names: torch.FloatStorage -> kFloat (also torch.cuda.* of
// legacy files saved from a GPU; torch.UntypedStorage -> kByte). nullopt for other classes.
std::optional<torch::ScalarType> storage_dtype(const PickleValue& storage_class);

// Reinterprets the bytes of a flat storage tensor as `dtype`, sharing its memory.
torch::Tensor reinterpret_storage(const torch::Tensor& storage, torch::ScalarType dtype);

}  // namespace latentlab::io::detail
