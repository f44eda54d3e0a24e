// The pickle virtual machine of read_torch_file: protocols 2 to 5 as torch.save writes them. It
// builds values, never runs code: the few functions torch.save pickles (tensor rebuilders,
// OrderedDict, torch.Size, ...) are interpreted here, every other global becomes an inert record.
// Opcode semantics follow CPython's Lib/pickle.py (_Unpickler.load_*).
#include "pickle_reader.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::io::detail {

void ByteInput::read(void* into, std::uint64_t n) {
  if (n > remaining()) throw Malformed("a length or an opcode reaches past the end (truncated file?)");
  if (n == 0) return;
  in_.read(static_cast<char*>(into), static_cast<std::streamsize>(n));
  const auto got = static_cast<std::uint64_t>(in_.gcount());
  offset_ += got;
  if (got != n) throw Malformed("the data ends early (truncated file?)");
}

namespace {

using Kind = PickleValue::Kind;
using Items = PickleValue::Items;
using Entries = PickleValue::Entries;

// Opcodes, named as in pickle.py.
// clang-format off
enum Opcode : std::uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', BININT = 'J', BININT1 = 'K',
  BININT2 = 'M', NONE = 'N', BINPERSID = 'Q', REDUCE = 'R', BINSTRING = 'T', SHORT_BINSTRING = 'U',
  BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e',
  BINGET = 'h', LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', BINPUT = 'q', LONG_BINPUT = 'r',
  SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G', BINBYTES = 'B',
  SHORT_BINBYTES = 'C', PROTO = 0x80, NEWOBJ = 0x81, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87,
  NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b, SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91,
  NEWOBJ_EX = 0x92, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95, BYTEARRAY8 = 0x96,
};
// clang-format on

PickleValue make(Kind kind) {
  PickleValue value;
  value.kind = kind;
  return value;
}

PickleValue make_int(std::int64_t integer) {
  auto value = make(Kind::Int);
  value.integer = integer;
  return value;
}

PickleValue make_float(double real) {
  auto value = make(Kind::Float);
  value.real = real;
  return value;
}

PickleValue make_text(Kind kind, std::string text) {
  auto value = make(kind);
  value.text = std::move(text);
  return value;
}

PickleValue make_items(Kind kind, Items items) {
  auto value = make(kind);
  value.items = std::make_shared<Items>(std::move(items));
  return value;
}

PickleValue make_dict(Entries entries) {
  auto value = make(Kind::Dict);
  value.entries = std::make_shared<Entries>(std::move(entries));
  return value;
}

PickleValue make_tensor(torch::Tensor tensor) {
  auto value = make(Kind::Tensor);
  value.tensor = std::move(tensor);
  return value;
}

PickleValue make_global(std::string module, std::string name) {
  // Python 3 reads the Python 2 names of protocol-2 pickles this way (pickle's fix_imports).
  if (module == "__builtin__") module = "builtins";
  if (module == "copy_reg") module = "copyreg";
  auto value = make(Kind::Global);
  value.object = std::make_shared<PickleObject>();
  value.object->module = std::move(module);
  value.object->name = std::move(name);
  return value;
}

PickleValue make_object(const PickleObject& type, Items args) {
  auto value = make(Kind::Object);
  value.object = std::make_shared<PickleObject>();
  value.object->module = type.module;
  value.object->name = type.name;
  value.object->args = std::move(args);
  return value;
}

bool names(const PickleObject& object, const char* module, const char* name) {
  return object.module == module && object.name == name;
}

const Items* sequence(const PickleValue& value) {
  return (value.kind == Kind::Tuple || value.kind == Kind::List) && value.items ? value.items.get() : nullptr;
}

std::int64_t as_int(const PickleValue& value, const std::string& what) {
  if (value.kind != Kind::Int) throw Malformed(what + " is a " + value.describe() + ", not an int");
  return value.integer;
}

std::vector<std::int64_t> int_list(const PickleValue& value, const std::string& what) {
  const auto* items = sequence(value);
  if (items == nullptr) throw Malformed(what + " is a " + value.describe() + ", not a tuple of ints");
  std::vector<std::int64_t> out;
  for (const auto& item : *items) out.push_back(as_int(item, what + "'s element"));
  return out;
}

// LONG1/LONG4 payload: little-endian two's complement of any length.
PickleValue decode_long(const std::string& bytes) {
  const auto n = bytes.size();
  if (n == 0) return make_int(0);
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(bytes[i]); };
  const bool negative = (byte(n - 1) & 0x80) != 0;
  bool fits = n <= 8;
  if (!fits) {  // longer encodings still fit when the extra bytes only repeat the sign
    fits = ((byte(7) & 0x80) != 0) == negative;
    for (std::size_t i = 8; i < n && fits; ++i) fits = byte(i) == (negative ? 0xff : 0x00);
  }
  if (fits) {
    std::uint64_t bits = negative ? ~std::uint64_t{0} : 0;
    for (std::size_t i = 0; i < std::min<std::size_t>(n, 8); ++i) {
      bits &= ~(std::uint64_t{0xff} << (8 * i));
      bits |= std::uint64_t{byte(i)} << (8 * i);
    }
    return make_int(static_cast<std::int64_t>(bits));
  }
  // Beyond int64 (torch's legacy magic number, hashes in hyper-parameters): an approximation is enough.
  double value = 0;
  for (std::size_t i = n; i-- > 0;) value = value * 256 + byte(i);
  if (negative) value -= std::ldexp(1.0, static_cast<int>(std::min<std::size_t>(8 * n, 4096)));
  return make_float(value);
}

// Protocol 2 pickles bytes as _codecs.encode(text, 'latin1'): the code points of text are the bytes.
bool latin1_to_bytes(const std::string& utf8, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<std::uint8_t>(utf8[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if ((c & 0xe0) == 0xc0 && i + 1 < utf8.size()) {
      const unsigned code = ((c & 0x1fu) << 6) | (static_cast<std::uint8_t>(utf8[++i]) & 0x3fu);
      if (code > 0xff) return false;
      out += static_cast<char>(code);
    } else {
      return false;
    }
  }
  return true;
}

// torch.float32 and the other dtype globals torch 2.x pickles (e.g. for _rebuild_tensor_v3).
std::optional<torch::ScalarType> dtype_global(const PickleValue& value) {
  // clang-format off
  static const std::map<std::string, torch::ScalarType> dtypes = {
      {"float32", torch::kFloat32}, {"float", torch::kFloat32}, {"float64", torch::kFloat64},
      {"double", torch::kFloat64}, {"float16", torch::kFloat16}, {"half", torch::kFloat16},
      {"bfloat16", torch::kBFloat16}, {"int64", torch::kInt64}, {"long", torch::kInt64},
      {"int32", torch::kInt32}, {"int", torch::kInt32}, {"int16", torch::kInt16}, {"short", torch::kInt16},
      {"int8", torch::kInt8}, {"uint8", torch::kUInt8}, {"bool", torch::kBool},
      {"complex64", torch::kComplexFloat}, {"cfloat", torch::kComplexFloat},
      {"complex128", torch::kComplexDouble}, {"cdouble", torch::kComplexDouble}};
  // clang-format on
  if (value.kind != Kind::Global || !value.object || value.object->module != "torch") return std::nullopt;
  const auto found = dtypes.find(value.object->name);
  if (found == dtypes.end()) return std::nullopt;
  return found->second;
}

// Refuses views that reach outside their storage before LibTorch sees them, so that a damaged file
// cannot make us read foreign memory. Same rule as Tensor.set_(storage, offset, size, stride).
void check_view(std::int64_t storage_numel, std::int64_t offset, const std::vector<std::int64_t>& size,
                const std::vector<std::int64_t>& stride) {
  if (size.size() != stride.size() || size.size() > 64)
    throw Malformed("a tensor has " + std::to_string(size.size()) + " sizes but " +
                    std::to_string(stride.size()) + " strides");
  if (offset < 0) throw Malformed("a tensor has a negative storage offset");
  bool empty = false;
  std::int64_t numel = 1;
  for (std::size_t d = 0; d < size.size(); ++d) {
    if (size[d] < 0 || stride[d] < 0) throw Malformed("a tensor has a negative size or stride");
    empty = empty || size[d] == 0;
    if (!empty && __builtin_mul_overflow(numel, size[d], &numel))
      throw Malformed("a tensor's size overflows int64");
  }
  const auto past_end =
      Malformed("a tensor (offset " + std::to_string(offset) + ") reaches past the end of its storage of " +
                std::to_string(storage_numel) + " elements");
  if (empty) {
    if (offset > storage_numel) throw past_end;
    return;
  }
  std::int64_t last = offset;  // the highest element index the view touches
  if (last >= storage_numel) throw past_end;
  for (std::size_t d = 0; d < size.size(); ++d) {
    const auto reach = size[d] - 1;
    if (reach > 0 && stride[d] > 0 && reach > (storage_numel - 1 - last) / stride[d]) throw past_end;
    last += reach * stride[d];
  }
}

class Unpickler {
 public:
  Unpickler(ByteInput& in, const PersistentLoad& persistent_load)
      : in_(in), persistent_load_(persistent_load) {}

  PickleValue run() {
    while (step()) {
    }
    return std::move(result_);
  }
  std::uint64_t opcode_offset() const { return opcode_offset_; }

 private:
  template <typename T>
  T little() {  // an unsigned little-endian integer of sizeof(T) bytes
    std::uint8_t raw[sizeof(T)];
    in_.read(raw, sizeof(T));
    std::uint64_t value = 0;
    for (std::size_t i = sizeof(T); i-- > 0;) value = (value << 8) | raw[i];
    return static_cast<T>(value);
  }

  std::string bytes(std::uint64_t n) {
    if (n > in_.remaining())
      throw Malformed("a length of " + std::to_string(n) + " bytes reaches past the end");
    std::string out(static_cast<std::size_t>(n), '\0');
    in_.read(out.data(), n);
    return out;
  }

  std::string line() {  // GLOBAL's module and name, each ended by '\n'
    std::string out;
    for (char c = 0;;) {
      in_.read(&c, 1);
      if (c == '\n') return out;
      if (out.size() > 4096) throw Malformed("a GLOBAL name is longer than 4096 characters");
      out += c;
    }
  }

  // Stack index of the innermost MARK: pickle.py moves the values below a MARK to a separate stack,
  // so no opcode may pop below it.
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }

  void push(PickleValue value) { stack_.push_back(std::move(value)); }

  PickleValue& top() {
    if (stack_.size() <= floor())
      throw Malformed("stack underflow (an opcode needs a value that is not there)");
    return stack_.back();
  }

  PickleValue pop() {
    auto value = std::move(top());
    stack_.pop_back();
    return value;
  }

  Items pop_n(std::size_t n) {
    if (stack_.size() < floor() + n) throw Malformed("stack underflow (a TUPLE opcode lacks elements)");
    Items items(std::make_move_iterator(stack_.end() - static_cast<std::ptrdiff_t>(n)),
                std::make_move_iterator(stack_.end()));
    stack_.resize(stack_.size() - n);
    return items;
  }

  Items pop_mark() {
    if (marks_.empty()) throw Malformed("an opcode needs a MARK that is not there");
    const auto mark = marks_.back();
    marks_.pop_back();
    return pop_n(stack_.size() - mark);
  }

  void memo_put(std::uint64_t index) { memo_[index] = top(); }

  PickleValue memo_get(std::uint64_t index) {
    const auto found = memo_.find(index);
    if (found == memo_.end())
      throw Malformed("memo entry " + std::to_string(index) + " is read before it is set");
    return found->second;
  }

  void append(Items items) {
    auto& target = top();
    if (target.kind == Kind::List && target.items) {
      for (auto& item : items) target.items->push_back(std::move(item));
    } else if (target.kind == Kind::Object) {  // a list subclass
      for (auto& item : items) target.object->list_items.push_back(std::move(item));
    } else {
      throw Malformed("APPEND to a " + target.describe());
    }
  }

  void set_items(Items items) {
    if (items.size() % 2 != 0) throw Malformed("SETITEMS with an odd number of values");
    auto& target = top();
    // Keys are appended, not looked up: pickles come from dicts, whose keys are unique.
    Entries* entries = target.kind == Kind::Dict && target.entries ? target.entries.get()
                       : target.kind == Kind::Object               ? &target.object->dict_items
                                                                   : nullptr;
    if (entries == nullptr) throw Malformed("SETITEM on a " + target.describe());
    for (std::size_t i = 0; i < items.size(); i += 2)
      entries->emplace_back(std::move(items[i]), std::move(items[i + 1]));
  }

  PickleValue dict_from(const Items& args, const PickleObject& type) {
    if (args.empty()) return make_dict({});
    if (args[0].kind == Kind::Dict && args[0].entries) return make_dict(*args[0].entries);
    Entries entries;
    if (const auto* pairs = sequence(args[0])) {
      for (const auto& pair : *pairs) {
        const auto* kv = sequence(pair);
        if (kv == nullptr || kv->size() != 2) return make_object(type, args);
        entries.emplace_back((*kv)[0], (*kv)[1]);
      }
      return make_dict(std::move(entries));
    }
    return make_object(type, args);
  }

  // REDUCE: function(*args). Only functions that rebuild data are interpreted.
  PickleValue call(const PickleValue& function, Items args, int depth = 0) {
    if ((function.kind != Kind::Global && function.kind != Kind::Object) || !function.object)
      throw Malformed("REDUCE calls a " + function.describe() + ", not a class or function");
    const auto& type = *function.object;
    if (function.kind == Kind::Object) return make_object(type, std::move(args));
    if (type.module == "torch._utils") {
      if (type.name == "_rebuild_tensor" || type.name == "_rebuild_tensor_v2" ||
          type.name == "_rebuild_tensor_v3")
        return rebuild_tensor(type.name, args);
      if (type.name == "_rebuild_parameter" || type.name == "_rebuild_parameter_with_state") {
        if (args.empty() || args[0].kind != Kind::Tensor) throw Malformed(type.name + " without a tensor");
        return args[0];  // nn.Parameter(data): the data is what we keep
      }
    }
    if (type.module == "torch._tensor" &&
        (type.name == "_rebuild_from_type_v2" || type.name == "_rebuild_from_type")) {
      // A Tensor subclass: (rebuild function, subclass, its arguments, python state).
      if (args.size() < 3 || sequence(args[2]) == nullptr || depth > 4)
        throw Malformed(type.name + " with arguments torch does not write");
      return call(args[0], *sequence(args[2]), depth + 1);
    }
    if (names(type, "torch", "Size") || names(type, "builtins", "tuple"))
      return make_items(Kind::Tuple, args.empty() || !sequence(args[0]) ? Items{} : *sequence(args[0]));
    if (names(type, "collections", "OrderedDict") || names(type, "builtins", "dict"))
      return dict_from(args, type);
    if (names(type, "builtins", "set") || names(type, "builtins", "frozenset") ||
        names(type, "builtins", "list"))
      return make_items(Kind::List, args.empty() || !sequence(args[0]) ? Items{} : *sequence(args[0]));
    std::string decoded;
    if (names(type, "_codecs", "encode") && args.size() == 2 && args[0].kind == Kind::String &&
        args[1].kind == Kind::String && (args[1].text == "latin1" || args[1].text == "latin-1") &&
        latin1_to_bytes(args[0].text, decoded))
      return make_text(Kind::Bytes, decoded);
    if ((names(type, "builtins", "bytes") || names(type, "builtins", "bytearray")) &&
        (args.empty() || args[0].kind == Kind::Bytes))
      return make_text(Kind::Bytes, args.empty() ? std::string() : args[0].text);
    return make_object(type, std::move(args));
  }

  // NEWOBJ: cls.__new__(cls, *args); containers start empty and SETITEMS/APPENDS fill them.
  PickleValue instantiate(const PickleValue& cls, Items args) {
    if ((cls.kind != Kind::Global && cls.kind != Kind::Object) || !cls.object)
      throw Malformed("NEWOBJ on a " + cls.describe() + ", not a class");
    const auto& type = *cls.object;
    if (cls.kind == Kind::Object) return make_object(type, std::move(args));  // a class built at load time
    if (names(type, "collections", "OrderedDict") || names(type, "builtins", "dict")) return make_dict({});
    if (names(type, "builtins", "set") || names(type, "builtins", "frozenset") ||
        names(type, "builtins", "list"))
      return make_items(Kind::List, {});
    return make_object(type, std::move(args));
  }

  // torch._utils._rebuild_tensor(storage, offset, size, stride), _v2 (+ requires_grad, hooks[, metadata])
  // and _v3 (+ requires_grad, hooks, dtype[, metadata]). requires_grad, hooks and metadata are dropped.
  PickleValue rebuild_tensor(const std::string& name, const Items& args) {
    const std::size_t needed = name == "_rebuild_tensor" ? 4 : name == "_rebuild_tensor_v2" ? 6 : 7;
    if (args.size() < needed)
      throw Malformed("torch._utils." + name + " is given " + std::to_string(args.size()) +
                      " arguments, not " + std::to_string(needed));
    if (args[0].kind != Kind::Tensor)
      throw Malformed(name + "'s storage is a " + args[0].describe() + ", not a storage");
    auto storage = args[0].tensor;
    if (name == "_rebuild_tensor_v3") {
      const auto dtype = dtype_global(args[6]);
      if (!dtype)
        throw Unsupported("a tensor of dtype " + args[6].describe() + ", which LatentLab cannot read");
      storage = reinterpret_storage(storage, *dtype);
    }
    const auto offset = as_int(args[1], "a tensor's storage offset");
    const auto size = int_list(args[2], "a tensor's size");
    const auto stride = int_list(args[3], "a tensor's stride");
    check_view(storage.numel(), offset, size, stride);
    try {
      // as_strided's offset counts from the start of the storage, not of the (legacy view) tensor.
      return make_tensor(storage.as_strided(size, stride, storage.storage_offset() + offset));
    } catch (const c10::Error& e) {
      throw Malformed(std::string("LibTorch refuses a tensor: ") + e.what_without_backtrace());
    }
  }

  bool step();

  ByteInput& in_;
  const PersistentLoad& persistent_load_;
  std::vector<PickleValue> stack_;
  std::vector<std::size_t> marks_;  // stack sizes at each open MARK
  std::unordered_map<std::uint64_t, PickleValue> memo_;
  std::uint64_t opcode_offset_ = 0;
  PickleValue result_;
};

// Executes one opcode; false after STOP.
bool Unpickler::step() {
  opcode_offset_ = in_.offset();
  const auto op = little<std::uint8_t>();
  switch (op) {
    case PROTO:
      if (const auto protocol = little<std::uint8_t>(); protocol > 5)
        throw Malformed("pickle protocol " + std::to_string(protocol) + " is newer than 5");
      break;
    case FRAME:  // frames follow each other: read straight through them
      little<std::uint64_t>();
      break;
    case STOP:
      result_ = pop();
      return false;
    case MARK:
      marks_.push_back(stack_.size());
      break;
    case POP:
      if (stack_.size() > floor())
        stack_.pop_back();
      else
        pop_mark();
      break;
    case POP_MARK:
      pop_mark();
      break;
    case DUP:
      push(top());
      break;
    case NONE:
      push(make(Kind::None));
      break;
    case NEWTRUE:
    case NEWFALSE: {
      auto value = make(Kind::Bool);
      value.boolean = op == NEWTRUE;
      push(std::move(value));
      break;
    }
    case BININT:
      push(make_int(static_cast<std::int32_t>(little<std::uint32_t>())));
      break;
    case BININT1:
      push(make_int(little<std::uint8_t>()));
      break;
    case BININT2:
      push(make_int(little<std::uint16_t>()));
      break;
    case LONG1:
      push(decode_long(bytes(little<std::uint8_t>())));
      break;
    case LONG4: {
      const auto n = static_cast<std::int32_t>(little<std::uint32_t>());
      if (n < 0) throw Malformed("LONG4 with a negative length");
      push(decode_long(bytes(static_cast<std::uint64_t>(n))));
      break;
    }
    case BINFLOAT: {  // big-endian IEEE 754 double
      std::uint8_t raw[8];
      in_.read(raw, 8);
      std::uint64_t bits = 0;
      for (const auto byte : raw) bits = (bits << 8) | byte;
      double real;
      std::memcpy(&real, &bits, sizeof(real));
      push(make_float(real));
      break;
    }
    case SHORT_BINUNICODE:
    case SHORT_BINSTRING:
      push(make_text(Kind::String, bytes(little<std::uint8_t>())));
      break;
    case BINUNICODE:
      push(make_text(Kind::String, bytes(little<std::uint32_t>())));
      break;
    case BINSTRING: {
      const auto n = static_cast<std::int32_t>(little<std::uint32_t>());
      if (n < 0) throw Malformed("BINSTRING with a negative length");
      push(make_text(Kind::String, bytes(static_cast<std::uint64_t>(n))));
      break;
    }
    case BINUNICODE8:
      push(make_text(Kind::String, bytes(little<std::uint64_t>())));
      break;
    case SHORT_BINBYTES:
      push(make_text(Kind::Bytes, bytes(little<std::uint8_t>())));
      break;
    case BINBYTES:
      push(make_text(Kind::Bytes, bytes(little<std::uint32_t>())));
      break;
    case BINBYTES8:
    case BYTEARRAY8:
      push(make_text(Kind::Bytes, bytes(little<std::uint64_t>())));
      break;
    case EMPTY_DICT:
      push(make_dict({}));
      break;
    case EMPTY_LIST:
    case EMPTY_SET:
      push(make_items(Kind::List, {}));
      break;
    case EMPTY_TUPLE:
      push(make_items(Kind::Tuple, {}));
      break;
    case TUPLE:
      push(make_items(Kind::Tuple, pop_mark()));
      break;
    case TUPLE1:
    case TUPLE2:
    case TUPLE3:
      push(make_items(Kind::Tuple, pop_n(op - TUPLE1 + 1u)));
      break;
    case LIST:
    case FROZENSET:
      push(make_items(Kind::List, pop_mark()));
      break;
    case DICT: {
      auto items = pop_mark();
      push(make_dict({}));
      set_items(std::move(items));
      break;
    }
    case APPEND:
      append(pop_n(1));
      break;
    case APPENDS:
    case ADDITEMS:
      append(pop_mark());
      break;
    case SETITEM:
      set_items(pop_n(2));
      break;
    case SETITEMS:
      set_items(pop_mark());
      break;
    case BINPUT:
      memo_put(little<std::uint8_t>());
      break;
    case LONG_BINPUT:
      memo_put(little<std::uint32_t>());
      break;
    case MEMOIZE:
      memo_put(memo_.size());
      break;
    case BINGET:
      push(memo_get(little<std::uint8_t>()));
      break;
    case LONG_BINGET:
      push(memo_get(little<std::uint32_t>()));
      break;
    case GLOBAL: {
      auto module = line();
      push(make_global(std::move(module), line()));
      break;
    }
    case STACK_GLOBAL: {
      auto name = pop();
      auto module = pop();
      if (module.kind != Kind::String || name.kind != Kind::String)
        throw Malformed("STACK_GLOBAL with a " + module.describe() + " and a " + name.describe() +
                        ", not two str");
      push(make_global(std::move(module.text), std::move(name.text)));
      break;
    }
    case REDUCE: {
      auto args = pop();
      auto function = pop();
      if (args.kind != Kind::Tuple || !args.items)
        throw Malformed("REDUCE with a " + args.describe() + ", not a tuple");
      push(call(function, *args.items));
      break;
    }
    case BUILD: {
      // obj.__setstate__(state). Kept for objects; dicts (OrderedDict's _metadata) and tensors
      // carry nothing we use in it.
      auto state = pop();
      if (auto& target = top(); target.kind == Kind::Object) target.object->state = std::move(state);
      break;
    }
    case NEWOBJ:
    case NEWOBJ_EX: {
      if (op == NEWOBJ_EX) pop();  // keyword arguments: never needed to rebuild data
      auto args = pop();
      auto cls = pop();
      if (args.kind != Kind::Tuple || !args.items)
        throw Malformed("NEWOBJ with a " + args.describe() + ", not a tuple");
      push(instantiate(cls, *args.items));
      break;
    }
    case BINPERSID: {
      auto id = pop();
      if (!persistent_load_) throw Malformed("a persistent id (BINPERSID) where torch.save writes none");
      push(persistent_load_(id));
      break;
    }
    default: {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", op);
      throw Malformed(std::string("unknown or unsupported opcode ") + hex +
                      " (torch.save writes pickle protocols 2 to 5 without out-of-band buffers)");
    }
  }
  return true;
}

}  // namespace

std::optional<torch::ScalarType> storage_dtype(const PickleValue& storage_class) {
  // clang-format off
  static const std::map<std::string, torch::ScalarType> classes = {
      {"FloatStorage", torch::kFloat32}, {"DoubleStorage", torch::kFloat64}, {"HalfStorage", torch::kFloat16},
      {"BFloat16Storage", torch::kBFloat16}, {"LongStorage", torch::kInt64}, {"IntStorage", torch::kInt32},
      {"ShortStorage", torch::kInt16}, {"CharStorage", torch::kInt8}, {"ByteStorage", torch::kUInt8},
      {"BoolStorage", torch::kBool}, {"ComplexFloatStorage", torch::kComplexFloat},
      {"ComplexDoubleStorage", torch::kComplexDouble}, {"UntypedStorage", torch::kUInt8},
      {"_UntypedStorage", torch::kUInt8}};
  // clang-format on
  if (storage_class.kind != Kind::Global || !storage_class.object) return std::nullopt;
  const auto& module = storage_class.object->module;
  if (module != "torch" && module != "torch.cuda" && module != "torch.storage") return std::nullopt;
  const auto found = classes.find(storage_class.object->name);
  if (found == classes.end()) return std::nullopt;
  return found->second;
}

torch::Tensor reinterpret_storage(const torch::Tensor& storage, torch::ScalarType dtype) {
  if (storage.scalar_type() == dtype) return storage;
  const auto bytes = storage.numel() * static_cast<std::int64_t>(storage.element_size());
  const auto element = static_cast<std::int64_t>(c10::elementSize(dtype));
  if (bytes % element != 0)
    throw Malformed("a storage of " + std::to_string(bytes) + " bytes is read as " + c10::toString(dtype) +
                    " values of " + std::to_string(element) + " bytes");
  if (bytes == 0) return torch::empty({0}, torch::TensorOptions().dtype(dtype));
  // Shares the memory: a legacy file fills its storages only after the pickle.
  const torch::Tensor keep = storage;
  return torch::from_blob(
      storage.data_ptr(), {bytes / element}, [keep](void*) { (void)keep; },
      torch::TensorOptions().dtype(dtype));
}

PickleValue unpickle(ByteInput& in, const std::string& where, const PersistentLoad& persistent_load) {
  Unpickler machine(in, persistent_load);
  const auto position = [&] { return " at byte " + std::to_string(machine.opcode_offset()); };
  try {
    return machine.run();
  } catch (const Malformed& e) {
    throw Error("corrupt pickle in " + where + position() + ": " + e.what() +
                "; the file is damaged or was not written by torch.save: download or save it again");
  } catch (const Unsupported& e) {
    throw Error(where + position() + " holds " + e.what());
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    throw Error("corrupt pickle in " + where + position() + ": " + first_line(message));
  }
}

}  // namespace latentlab::io::detail
