#pragma once
// Files written by Python's torch.save: the zip format of torch >= 1.6 (PyTorch Lightning .ckpt
// checkpoints, .pt/.pth state dicts) and the older pickle-stream format (torchvision, LPIPS and
// pytorch-fid weights from before 2020). Used to import reference weights without Python.
//
// Nothing in the file is ever executed: the pickle is interpreted by a small virtual machine that
// knows the handful of functions torch.save uses to rebuild tensors and containers; every other
// class or function the pickle names is kept as an inert PickleObject record.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::io {

struct PickleObject;

// One value of the object tree a pickle describes. A tagged struct (only the fields of `kind` are
// set) rather than a std::variant, so that callers can read it without visitors. Lists, tuples, dicts
// and objects are held by shared_ptr because pickle's memo lets one container appear in several
// places: copying a PickleValue copies a reference to them, not the container.
struct LATENTLAB_API PickleValue {
  enum class Kind { None, Bool, Int, Float, String, Bytes, List, Tuple, Dict, Tensor, Global, Object };
  using Items = std::vector<PickleValue>;
  using Entries = std::vector<std::pair<PickleValue, PickleValue>>;

  Kind kind = Kind::None;
  bool boolean = false;      // Bool
  std::int64_t integer = 0;  // Int
  // Float; also an integer too large for int64 (approximately; they never matter for weights).
  double real = 0.0;
  std::string text;                      // String (UTF-8) or Bytes (raw)
  std::shared_ptr<Items> items;          // List (sets and frozensets read as lists too), Tuple
  std::shared_ptr<Entries> entries;      // Dict and collections.OrderedDict, in insertion order
  torch::Tensor tensor;                  // Tensor: CPU, contiguous, owning its memory
  std::shared_ptr<PickleObject> object;  // Global and Object

  // The value at string key `key` of a Dict (or of an Object with dict items, e.g. Lightning's
  // AttributeDict), or nullptr when there is none.
  const PickleValue* find(const std::string& key) const;
  // For messages: "int", "dict", "tensor", "object argparse.Namespace", ...
  std::string describe() const;
};

// A Python class or function the file names (Kind::Global) and, once the pickle called or
// instantiated it (Kind::Object), what it was given. Examples: Lightning's hyper_parameters
// (argparse.Namespace, omegaconf.DictConfig), numpy scalars in callback states.
struct LATENTLAB_API PickleObject {
  std::string module;               // "argparse"
  std::string name;                 // "Namespace"
  PickleValue::Items args;          // the arguments of the call (REDUCE) or of cls.__new__ (NEWOBJ)
  PickleValue state;                // what BUILD passed to __setstate__ (None when there was no BUILD)
  PickleValue::Items list_items;    // items APPENDed to it (list subclasses)
  PickleValue::Entries dict_items;  // items SETITEM'd on it (dict subclasses)
};

// Reads a torch.save file and returns its top-level object, with every tensor in it as a CPU tensor
// of the saved dtype, shape and values (views saved together become independent contiguous tensors;
// requires_grad is dropped). Example: a Lightning checkpoint gives a Dict with "epoch" (Int),
// "global_step" (Int), "state_dict" (Dict of Tensor), "hyper_parameters" (Object or Dict), ...
// Throws Error naming the file, the problem and the fix when the file is missing, is not a
// torch.save file, is damaged, or holds data this reader cannot represent (big-endian, quantized).
LATENTLAB_API PickleValue read_torch_file(const std::filesystem::path& path);

// The tensors in `value` by dotted path, in file order: descends dicts (and objects with dict
// items) through their string keys only, so an optimizer's per-parameter state (int keys) and
// tensors inside lists or tuples are left out. {"a": {"b": T}} gives {"a.b": T}.
LATENTLAB_API std::vector<std::pair<std::string, torch::Tensor>> collect_tensors(const PickleValue& value);

// The state dict of a torch.save file: the tensors of the top-level dict's "state_dict" entry when
// it has one (Lightning checkpoints), else of the top-level dict itself (a plain or ordered state
// dict: {"conv.weight": T, ...}; nested dicts give prefixed names such as "model.conv.weight").
// Paths as collect_tensors gives them. Throws Error when the file holds no dict (e.g. a pickled
// nn.Module or a single tensor), besides read_torch_file's errors.
LATENTLAB_API std::vector<std::pair<std::string, torch::Tensor>> read_torch_state_dict(
    const std::filesystem::path& path);

}  // namespace latentlab::io
