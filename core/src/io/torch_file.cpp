// read_torch_file: the containers around torch.save's pickle. The zip format (torch >= 1.6) keeps the
// pickle in <archive>/data.pkl and each storage in <archive>/data/<key>; the legacy format (torch
// 0.4 to 1.5, and torch.save(..., _use_new_zipfile_serialization=False)) is a stream of pickles
// (magic number, protocol version, system info, the object, its storage keys) followed by each
// storage's element count and bytes. See torch/serialization.py (_save, _legacy_save, _load).
#include "latentlab/io/torch_file.hpp"

#include <caffe2/serialize/inline_container.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"
#include "pickle_reader.hpp"

namespace latentlab::io {

const PickleValue* PickleValue::find(const std::string& key) const {
  const Entries* list = kind == Kind::Dict               ? entries.get()
                        : kind == Kind::Object && object ? &object->dict_items
                                                         : nullptr;
  if (list == nullptr) return nullptr;
  for (const auto& entry : *list)
    if (entry.first.kind == Kind::String && entry.first.text == key) return &entry.second;
  return nullptr;
}

std::string PickleValue::describe() const {
  const auto qualified = [&] { return object ? object->module + "." + object->name : std::string("?"); };
  switch (kind) {
    case Kind::None:
      return "None";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str";
    case Kind::Bytes:
      return "bytes";
    case Kind::List:
      return "list";
    case Kind::Tuple:
      return "tuple";
    case Kind::Dict:
      return "dict";
    case Kind::Tensor:
      return "tensor";
    case Kind::Global:
      return "global " + qualified();
    case Kind::Object:
      return "object " + qualified();
  }
  return "value";
}

namespace {

using detail::ByteInput;
using detail::Malformed;
using detail::Unsupported;
using Kind = PickleValue::Kind;

std::string first_line(const c10::Error& e) {  // the rest is LibTorch's source location
  return latentlab::first_line(e.what_without_backtrace());
}

PickleValue tensor_value(torch::Tensor tensor) {
  PickleValue value;
  value.kind = Kind::Tensor;
  value.tensor = std::move(tensor);
  return value;
}

// The legacy format begins with pickle.dump(0x1950a86a20f9469cfc6c): LONG1, 10 bytes little-endian.
constexpr std::uint8_t kLegacyMagic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                         0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr const char* kResave = "re-save it with torch >= 1.6: torch.save(torch.load(F), F2)";

enum class Format { Zip, Legacy };

// Which format the first bytes announce; throws Error for everything else, saying what it looks like.
Format sniff(const std::filesystem::path& path) {
  const auto file = path.string();
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error))
    throw Error("PyTorch file " + file + " does not exist (or is not a regular file)");
  std::ifstream in(path, std::ios::binary);
  std::string head(512, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(in.gcount()));
  if (head.empty()) throw Error(file + " is empty, not a PyTorch file; download or save it again");
  if (head.compare(0, 4, "PK\x03\x04") == 0) return Format::Zip;
  const auto start = head.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(head.size(), 32));
  if (static_cast<std::uint8_t>(head[0]) == 0x80 &&
      std::search(head.begin(), start, std::begin(kLegacyMagic), std::end(kLegacyMagic),
                  [](char a, std::uint8_t b) { return static_cast<std::uint8_t>(a) == b; }) != start)
    return Format::Legacy;
  if (head.size() >= 262 && head.compare(257, 5, "ustar") == 0)
    throw Error(
        file +
        " is a tar archive, the torch.save format of PyTorch before 0.4, which LatentLab cannot read; " +
        kResave);
  if (static_cast<std::uint8_t>(head[0]) == 0x80)
    throw Error(
        file +
        " is a Python pickle but not a torch.save file (no zip archive, no torch.save magic number); " +
        "save the weights with torch.save(model.state_dict(), F)");
  if (head.size() > 8 && head[8] == '{')
    throw Error(file + " looks like a safetensors file, not a PyTorch file; convert it with " +
                "torch.save(safetensors.torch.load_file(F), F2)");
  throw Error(file + " is not a PyTorch file (neither torch.save's zip archive nor its legacy format); " +
              "expected a .ckpt/.pt/.pth file written by torch.save");
}

// PyTorchStreamReader with LibTorch's errors turned into messages for a person.
class ZipArchive {
 public:
  explicit ZipArchive(std::string file) : file_(std::move(file)) {
    try {
      reader_ = std::make_unique<caffe2::serialize::PyTorchStreamReader>(file_);
    } catch (const c10::Error& e) {
      throw Error(file_ + " is a zip archive that LibTorch cannot read as torch.save's (" + first_line(e) +
                  "): it is truncated, damaged or not written by torch.save; download or save it again");
    }
  }

  template <typename F>
  auto guard(const std::string& name, F&& read) -> decltype(read()) {
    try {
      return read();
    } catch (const c10::Error& e) {
      throw Error("cannot read record " + name + " of " + file_ + " (" + first_line(e) +
                  "); the file is damaged: download or save it again");
    }
  }

  bool has(const std::string& name) {
    return guard(name, [&] { return reader_->hasRecord(name); });
  }

  // The record's bytes; the shared pointer keeps them alive (tensors made from them hold it).
  std::pair<std::shared_ptr<at::DataPtr>, std::size_t> get(const std::string& name) {
    return guard(name, [&] {
      auto record = reader_->getRecord(name);
      return std::make_pair(std::make_shared<at::DataPtr>(std::move(std::get<0>(record))),
                            std::get<1>(record));
    });
  }

 private:
  std::string file_;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader_;
};

// The fields of ('storage', storage class, key, location, numel[, view]) with their types checked.
struct StorageId {
  torch::ScalarType dtype;
  std::string key;
  std::int64_t numel;
  const PickleValue* view;  // legacy format only: None or (view key, offset, numel)
};

StorageId parse_storage_id(const PickleValue& id, std::size_t fields) {
  const auto* items = id.kind == Kind::Tuple && id.items ? id.items.get() : nullptr;
  if (items == nullptr || items->size() < fields || (*items)[0].text != "storage")
    throw Malformed("a persistent id is a " + id.describe() + ", not torch.save's ('storage', ...) tuple");
  const auto& type = (*items)[1];
  const auto dtype = detail::storage_dtype(type);
  if (!dtype && type.kind == Kind::Global)
    throw Unsupported("a storage of type " + type.object->module + "." + type.object->name +
                      ", which LatentLab cannot read (supported: float64/32/16, bfloat16, int64/32/16/8, "
                      "uint8, bool, complex)");
  if (!dtype) throw Malformed("a storage's class is a " + type.describe());
  const auto& key = (*items)[2];
  const auto& numel = (*items)[4];
  if (key.kind != Kind::String || numel.kind != Kind::Int || numel.integer < 0)
    throw Malformed("a storage id has a key of type " + key.describe() + " and a size of type " +
                    numel.describe());
  return {*dtype, key.text, numel.integer, fields > 5 ? &(*items)[5] : nullptr};
}

// Zip format: storage <key> is the record data/<key>; each is loaded once and shared by its views.
class ZipStorages {
 public:
  ZipStorages(ZipArchive& zip, std::string file) : zip_(zip), file_(std::move(file)) {}

  PickleValue operator()(const PickleValue& id) {
    const auto storage = parse_storage_id(id, 5);
    auto found = cache_.find(storage.key);
    if (found == cache_.end()) found = cache_.emplace(storage.key, load(storage)).first;
    return tensor_value(detail::reinterpret_storage(found->second, storage.dtype));
  }

 private:
  torch::Tensor load(const StorageId& storage) {
    const auto name = "data/" + storage.key;
    if (!zip_.has(name))
      throw Error(file_ + " lacks the record " + name +
                  " that its data.pkl refers to; the file is truncated " +
                  "or damaged: download or save it again");
    const auto record = zip_.get(name);
    const auto element = static_cast<std::int64_t>(c10::elementSize(storage.dtype));
    const auto bytes = static_cast<std::int64_t>(record.second);
    if (storage.numel > bytes / element || storage.numel * element != bytes)
      throw Error(file_ + ": record " + name + " holds " + std::to_string(bytes) +
                  " bytes, but data.pkl says " + std::to_string(storage.numel) + " " +
                  c10::toString(storage.dtype) + " values (" + std::to_string(storage.numel * element) +
                  " bytes); the file is damaged: download or save it again");
    const auto options = torch::TensorOptions().dtype(storage.dtype);
    if (storage.numel == 0) return torch::empty({0}, options);
    // No copy: the tensor owns the record's memory through the deleter's reference.
    const auto data = record.first;
    return torch::from_blob(
        data->get(), {storage.numel}, [data](void*) { (void)data; }, options);
  }

  ZipArchive& zip_;
  std::string file_;
  std::map<std::string, torch::Tensor> cache_;
};

// Legacy format: storages are allocated when the pickle names them and filled from the bytes that
// follow the pickle, so the tensors built meanwhile are views of memory not yet read.
class LegacyStorages {
 public:
  explicit LegacyStorages(std::uint64_t data_bytes) : data_bytes_(data_bytes) {}

  PickleValue operator()(const PickleValue& id) {
    // ('module', class, source file, source) of a pickled nn.Module: the class is all we keep.
    if (id.kind == Kind::Tuple && id.items && id.items->size() >= 2 && (*id.items)[0].text == "module")
      return (*id.items)[1];
    const auto storage = parse_storage_id(id, 6);
    const auto element = static_cast<std::int64_t>(c10::elementSize(storage.dtype));
    if (static_cast<std::uint64_t>(storage.numel) > data_bytes_ / static_cast<std::uint64_t>(element))
      throw Malformed("a storage of " + std::to_string(storage.numel) + " values is larger than the file");
    auto& root = roots_[storage.key];
    if (!root.defined()) root = torch::empty({storage.numel}, torch::TensorOptions().dtype(storage.dtype));
    auto flat = detail::reinterpret_storage(root, storage.dtype);
    if (storage.view == nullptr || storage.view->kind == Kind::None) return tensor_value(flat);
    // A storage view of torch < 0.4: (view key, offset, numel) within the root storage.
    const auto* view =
        storage.view->kind == Kind::Tuple && storage.view->items ? storage.view->items.get() : nullptr;
    if (view == nullptr || view->size() != 3 || (*view)[1].kind != Kind::Int || (*view)[2].kind != Kind::Int)
      throw Malformed("a storage view is a " + storage.view->describe() + ", not (key, offset, size)");
    const auto offset = (*view)[1].integer, size = (*view)[2].integer;
    if (offset < 0 || size < 0 || offset > flat.numel() - size)
      throw Malformed("a storage view reaches outside its storage");
    return tensor_value(flat.narrow(0, offset, size));
  }

  // Reads the storages' data in the order of `keys` (the pickle that follows the object): for each,
  // its element count (int64, little-endian) and its bytes.
  void fill(ByteInput& in, const PickleValue& keys, const std::string& file) {
    const auto damaged = [&](const std::string& what) {
      return Error(file + " is damaged (" + what + "); download or save it again");
    };
    if (keys.kind != Kind::List || !keys.items) throw damaged("the storage list is a " + keys.describe());
    std::set<std::string> filled;
    for (const auto& key : *keys.items) {
      const auto found = roots_.find(key.text);
      if (key.kind != Kind::String || found == roots_.end())
        throw damaged("the storage list names a storage the object does not use");
      auto& root = found->second;
      std::uint8_t count[8];
      in.read(count, 8);
      std::uint64_t numel = 0;
      for (std::size_t i = 8; i-- > 0;) numel = (numel << 8) | count[i];
      if (numel != static_cast<std::uint64_t>(root.numel()))
        throw damaged("storage " + key.text + " has " + std::to_string(numel) + " values in the data but " +
                      std::to_string(root.numel()) + " in the pickle");
      in.read(root.data_ptr(), static_cast<std::uint64_t>(root.numel()) * root.element_size());
      filled.insert(key.text);
    }
    for (const auto& root : roots_)
      if (!filled.count(root.first)) throw damaged("storage " + root.first + " has no data");
  }

 private:
  std::uint64_t data_bytes_;
  std::map<std::string, torch::Tensor> roots_;
};

PickleValue read_zip(const std::filesystem::path& path) {
  const auto file = path.string();
  ZipArchive zip(file);
  if (zip.has("byteorder")) {  // written by torch 2.x; files without it are little-endian
    const auto record = zip.get("byteorder");
    std::string order;
    if (record.second > 0) order.assign(static_cast<const char*>(record.first->get()), record.second);
    order.erase(std::remove_if(order.begin(), order.end(),
                               [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }),
                order.end());
    if (order != "little")
      throw Error(
          file + " was saved on a big-endian machine (byteorder '" + order +
          "'); LatentLab reads little-endian files only: load and save it again on an x86 or ARM machine");
  }
  if (!zip.has("data.pkl"))
    throw Error(file +
                " is a zip archive without data.pkl, so not a torch.save file; expected a .ckpt/.pt/.pth " +
                "file written by torch.save");
  const auto record = zip.get("data.pkl");
  std::istringstream stream(record.second > 0
                                ? std::string(static_cast<const char*>(record.first->get()), record.second)
                                : std::string());
  ByteInput in(stream, record.second);
  ZipStorages storages(zip, file);
  return detail::unpickle(in, file + " (data.pkl)",
                          [&storages](const PickleValue& id) { return storages(id); });
}

PickleValue read_legacy(const std::filesystem::path& path) {
  const auto file = path.string();
  const auto where = file + " (legacy torch.save format)";
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw Error("cannot open " + file + " for reading (permissions?)");
  ByteInput in(stream, std::filesystem::file_size(path));
  detail::unpickle(in, where, nullptr);  // the magic number, which sniff() has seen
  const auto version = detail::unpickle(in, where, nullptr);
  if (version.kind != Kind::Int || version.integer != 1001)
    throw Error(file +
                " has a legacy torch.save protocol version other than 1001, which LatentLab cannot read; " +
                kResave);
  const auto system = detail::unpickle(in, where, nullptr);
  if (const auto* little = system.find("little_endian");
      little && little->kind == Kind::Bool && !little->boolean)
    throw Error(file + " was saved on a big-endian machine; LatentLab reads little-endian files only: " +
                kResave + " on an x86 or ARM machine");
  LegacyStorages storages(in.remaining());
  auto root = detail::unpickle(in, where, [&storages](const PickleValue& id) { return storages(id); });
  const auto keys = detail::unpickle(in, where, nullptr);
  try {
    storages.fill(in, keys, file);
  } catch (const Malformed& e) {
    throw Error(file + " is truncated (" + e.what() + "); download or save it again");
  }
  return root;
}

// Makes every tensor of the tree own contiguous memory: a view that covers a whole storage keeps it
// (no copy, the common case of a state dict), any other view, or a second tensor on an already used
// storage, is copied, so that no two results alias each other. The same tensor object reached twice
// through the memo stays one tensor.
class Finalizer {
 public:
  explicit Finalizer(std::string file) : file_(std::move(file)) {}

  void visit(PickleValue& value) {
    switch (value.kind) {
      case Kind::Tensor:
        value.tensor = own(value.tensor);
        break;
      case Kind::List:
      case Kind::Tuple:
        if (value.items && first_visit(value.items.get()))
          for (auto& item : *value.items) visit(item);
        break;
      case Kind::Dict:
        if (value.entries && first_visit(value.entries.get()))
          for (auto& entry : *value.entries) {
            visit(entry.first);
            visit(entry.second);
          }
        break;
      case Kind::Object:
        if (value.object && first_visit(value.object.get())) {
          for (auto& item : value.object->args) visit(item);
          visit(value.object->state);
          for (auto& item : value.object->list_items) visit(item);
          for (auto& entry : value.object->dict_items) {
            visit(entry.first);
            visit(entry.second);
          }
        }
        break;
      default:
        break;
    }
  }

 private:
  bool first_visit(const void* container) { return visited_.insert(container).second; }

  torch::Tensor own(const torch::Tensor& tensor) {
    const auto found = done_.find(tensor.unsafeGetTensorImpl());
    if (found != done_.end()) return found->second.second;
    auto result = tensor;
    const bool whole = tensor.is_contiguous() && tensor.storage_offset() == 0 &&
                       tensor.numel() * static_cast<std::int64_t>(tensor.element_size()) ==
                           static_cast<std::int64_t>(tensor.storage().nbytes());
    if (!whole || !claimed_.insert(tensor.storage().unsafeGetStorageImpl()).second) {
      try {
        result = tensor.clone(at::MemoryFormat::Contiguous);
      } catch (const c10::Error& e) {
        throw Error(file_ + ": cannot copy a tensor of size " + c10::str(tensor.sizes()) + " (" +
                    first_line(e) + ")");
      }
    }
    // Keeping the original alive keeps its address from being reused by another tensor meanwhile.
    done_.emplace(tensor.unsafeGetTensorImpl(), std::make_pair(tensor, result));
    return result;
  }

  std::string file_;
  std::unordered_set<const void*> visited_;
  std::unordered_set<const void*> claimed_;  // storages a result already owns
  std::unordered_map<const void*, std::pair<torch::Tensor, torch::Tensor>> done_;
};

void collect(const PickleValue& value, const std::string& prefix, std::unordered_set<const void*>& seen,
             std::vector<std::pair<std::string, torch::Tensor>>& out) {
  const PickleValue::Entries* entries = value.kind == Kind::Dict ? value.entries.get()
                                        : value.kind == Kind::Object && value.object
                                            ? &value.object->dict_items
                                            : nullptr;
  if (entries == nullptr || !seen.insert(entries).second) return;
  for (const auto& [key, item] : *entries) {
    if (key.kind != Kind::String) continue;
    const auto path = prefix.empty() ? key.text : prefix + "." + key.text;
    if (item.kind == Kind::Tensor)
      out.emplace_back(path, item.tensor);
    else
      collect(item, path, seen, out);
  }
}

bool is_dict_like(const PickleValue& value) {
  return value.kind == Kind::Dict ||
         (value.kind == Kind::Object && value.object && !value.object->dict_items.empty());
}

}  // namespace

PickleValue read_torch_file(const std::filesystem::path& path) {
  auto root = sniff(path) == Format::Zip ? read_zip(path) : read_legacy(path);
  Finalizer(path.string()).visit(root);
  return root;
}

std::vector<std::pair<std::string, torch::Tensor>> collect_tensors(const PickleValue& value) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::unordered_set<const void*> seen;
  collect(value, "", seen, out);
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> read_torch_state_dict(const std::filesystem::path& path) {
  const auto root = read_torch_file(path);
  const auto file = path.string();
  if (is_dict_like(root)) {
    const auto* state_dict = root.find("state_dict");
    return collect_tensors(state_dict && is_dict_like(*state_dict) ? *state_dict : root);
  }
  if (root.kind == Kind::Tensor)
    throw Error(file +
                " holds a single tensor, not a state dict; read it with read_torch_file, or save a dict: " +
                "torch.save({'name': tensor}, F)");
  if (root.kind == Kind::Object)
    throw Error(file + " holds a pickled " + root.object->module + "." + root.object->name +
                " object (torch.save(model)?), not a state dict; save the weights with " +
                "torch.save(model.state_dict(), F)");
  throw Error(file + " holds a " + root.describe() +
              ", not a state dict (a dict of tensors); save one with " + "torch.save(model.state_dict(), F)");
}

}  // namespace latentlab::io
