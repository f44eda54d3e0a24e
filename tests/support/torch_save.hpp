#pragma once
// Writing files as Python's torch.save does (the pickle opcodes, the memo, the zip records), so tests
// can make PyTorch files without Python.
#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace latentlab::testing {

// How torch.save pickles one tensor: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
// with the storage replaced by the persistent id ('storage', torch.<Type>Storage, key, 'cpu', numel).
struct TensorSpec {
  std::string storage_class;  // "FloatStorage"
  std::string key;            // "0"
  std::int64_t numel;         // of the storage
  std::int64_t offset;
  std::vector<std::int64_t> size, stride;
  std::string storage_module = "torch";
  std::string rebuild = "_rebuild_tensor_v2";  // or "_rebuild_tensor" (torch < 0.4: 4 arguments)
};

// Emits pickle opcodes as pickle.py does, memo included: the same global or shared string (the same
// Python object: 'storage', 'cpu', a storage key) comes back with BINGET.
class PickleWriter {
 public:
  explicit PickleWriter(int protocol, bool legacy_ids = false)
      : protocol_(protocol), legacy_ids_(legacy_ids) {}
  std::string bytes;

  void op(int code) { bytes += static_cast<char>(code); }
  void little(std::uint64_t value, int n) {
    for (int i = 0; i < n; ++i) op(static_cast<int>((value >> (8 * i)) & 0xff));
  }
  void proto() {
    op(0x80);
    op(protocol_);
  }
  void memoize() {
    if (protocol_ >= 4) {
      op(0x94);  // MEMOIZE
    } else if (next_ < 256) {
      op('q');  // BINPUT
      op(static_cast<int>(next_));
    } else {
      op('r');  // LONG_BINPUT
      little(next_, 4);
    }
    ++next_;
  }
  void get(std::uint32_t index) {
    if (index < 256) {
      op('h');  // BINGET
      op(static_cast<int>(index));
    } else {
      op('j');  // LONG_BINGET
      little(index, 4);
    }
  }
  void str(const std::string& text, bool shared = false) {
    if (shared && shared_.count("s:" + text)) return get(shared_["s:" + text]);
    if (protocol_ >= 4 && text.size() < 256) {
      op(0x8c);  // SHORT_BINUNICODE
      op(static_cast<int>(text.size()));
    } else {
      op('X');  // BINUNICODE
      little(text.size(), 4);
    }
    bytes += text;
    if (shared) shared_["s:" + text] = next_;
    memoize();
  }
  void global(const std::string& module, const std::string& name) {
    const auto id = "g:" + module + "." + name;
    if (shared_.count(id)) return get(shared_[id]);
    if (protocol_ >= 4) {
      str(module);
      str(name);
      op(0x93);  // STACK_GLOBAL
    } else {
      op('c');  // GLOBAL
      bytes += module + "\n" + name + "\n";
    }
    shared_[id] = next_;
    memoize();
  }
  void integer(std::int64_t value) {
    if (value >= 0 && value <= 0xff) {
      op('K');  // BININT1
      op(static_cast<int>(value));
    } else if (value >= 0 && value <= 0xffff) {
      op('M');  // BININT2
      little(static_cast<std::uint64_t>(value), 2);
    } else if (value >= INT32_MIN && value <= INT32_MAX) {
      op('J');  // BININT
      little(static_cast<std::uint32_t>(static_cast<std::int32_t>(value)), 4);
    } else {
      op(0x8a);  // LONG1, 8 bytes
      op(8);
      little(static_cast<std::uint64_t>(value), 8);
    }
  }
  void real(double value) {
    op('G');  // BINFLOAT, big-endian
    std::uint64_t bits;
    std::memcpy(&bits, &value, 8);
    for (int i = 7; i >= 0; --i) op(static_cast<int>((bits >> (8 * i)) & 0xff));
  }
  void boolean(bool value) { op(value ? 0x88 : 0x89); }
  void none() { op('N'); }
  void mark() { op('('); }
  void stop() { op('.'); }
  void empty_tuple() { op(')'); }
  void tuple_of_ints(const std::vector<std::int64_t>& values) {  // as save_tuple writes a small tuple
    if (values.empty()) return empty_tuple();
    if (values.size() > 3) mark();
    for (const auto v : values) integer(v);
    op(values.size() > 3 ? 't' : 0x84 + static_cast<int>(values.size()));  // TUPLE or TUPLE1..3
    memoize();
  }
  void empty_dict() {
    op('}');
    memoize();
  }
  void empty_list() {
    op(']');
    memoize();
  }
  void ordered_dict() {  // OrderedDict.__reduce__: (OrderedDict, ()), items follow with SETITEMS
    global("collections", "OrderedDict");
    empty_tuple();
    op('R');
    memoize();
  }
  void tensor(const TensorSpec& spec) {
    global("torch._utils", spec.rebuild);
    mark();
    mark();  // the persistent id
    str("storage", true);
    global(spec.storage_module, spec.storage_class);
    str(spec.key, true);
    str("cpu", true);
    integer(spec.numel);
    if (legacy_ids_) none();  // the legacy format's view_metadata
    op('t');
    memoize();
    op('Q');  // BINPERSID
    integer(spec.offset);
    tuple_of_ints(spec.size);
    tuple_of_ints(spec.stride);
    if (spec.rebuild == "_rebuild_tensor_v2") {
      boolean(false);  // requires_grad
      ordered_dict();  // backward_hooks
    }
    op('t');
    memoize();
    op('R');
    memoize();
  }
  // nn.Module.state_dict(): an OrderedDict of tensors with a _metadata attribute, set by BUILD.
  void state_dict(const std::vector<std::pair<std::string, TensorSpec>>& entries) {
    ordered_dict();
    if (entries.size() > 1) mark();
    for (const auto& [name, spec] : entries) {
      str(name);
      tensor(spec);
    }
    op(entries.size() > 1 ? 'u' : 's');  // SETITEMS, or SETITEM for one item
    empty_dict();
    str("_metadata");
    ordered_dict();
    str("");
    empty_dict();
    str("version");
    integer(1);
    op('s');
    op('s');
    op('s');
    op('b');  // BUILD
  }

 private:
  int protocol_;
  bool legacy_ids_;
  std::uint32_t next_ = 0;
  std::map<std::string, std::uint32_t> shared_;
};

inline std::string raw(const torch::Tensor& tensor) {
  const auto data = tensor.contiguous();
  return std::string(static_cast<const char*>(data.data_ptr()), data.nbytes());
}

// The zip as torch.save writes it: data.pkl, byteorder, data/<key>; the writer adds "version" ("3\n").
inline void write_zip(const std::filesystem::path& path, const std::string& pickle,
                      const std::vector<std::pair<std::string, std::string>>& storages,
                      bool with_pickle = true, const std::string& byteorder = "little") {
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  if (with_pickle) writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  if (!byteorder.empty()) writer.writeRecord("byteorder", byteorder.data(), byteorder.size());
  for (const auto& [key, data] : storages) writer.writeRecord("data/" + key, data.data(), data.size());
  writer.writeEndOfFile();
}

// torch.save(OrderedDict(tensors)) of float32 tensors, each with its own storage.
inline void write_state_dict_file(const std::filesystem::path& path,
                                  const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  PickleWriter writer(2);
  writer.proto();
  std::vector<std::pair<std::string, TensorSpec>> entries;
  std::vector<std::pair<std::string, std::string>> storages;
  for (const auto& [name, tensor] : tensors) {
    const auto data = tensor.to(torch::kFloat32).contiguous();
    const auto key = std::to_string(storages.size());
    std::vector<std::int64_t> stride(data.strides().begin(), data.strides().end());
    entries.push_back({name, {"FloatStorage", key, data.numel(), 0, data.sizes().vec(), stride}});
    storages.emplace_back(key, raw(data));
  }
  writer.state_dict(entries);
  writer.stop();
  write_zip(path, writer.bytes, storages);
}

}  // namespace latentlab::testing
