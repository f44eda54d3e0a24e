// torch.save files: the tests write them byte for byte as Python does (pickle opcodes as pickle.py
// emits them for torch.save's objects, the zip through LibTorch's own PyTorchStreamWriter, which is
// what torch.save uses), since Python is not available to make reference files.
#include <gtest/gtest.h>

#include <caffe2/serialize/inline_container.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>

#include "latentlab/error.hpp"
#include "latentlab/io/torch_file.hpp"
#include "support/torch_save.hpp"

namespace latentlab {
namespace {

using io::PickleValue;
using testing::PickleWriter;
using testing::raw;
using testing::TensorSpec;
using testing::write_zip;
using Kind = PickleValue::Kind;

std::filesystem::path temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("latentlab_torch_file_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string error_of(const std::function<void()>& read) {
  try {
    read();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

// Two tensors in the layout of a small model, saved as one OrderedDict.
std::string small_state_dict_pickle(int protocol) {
  PickleWriter w(protocol);
  w.proto();
  w.state_dict({{"encoder.conv_in.weight", {"FloatStorage", "0", 6, 0, {2, 3}, {3, 1}}},
                {"encoder.conv_in.bias", {"FloatStorage", "1", 2, 0, {2}, {1}}}});
  w.stop();
  return w.bytes;
}

torch::Tensor weight() {
  return torch::arange(6, torch::kFloat32).view({2, 3}) * 0.5 - 1;
}
torch::Tensor bias() {
  return torch::tensor({0.25f, -4.0f});
}

TEST(TorchFile, OrderedDictStateDictRoundTrips) {
  const auto dir = temp_dir("plain");
  const auto half = torch::tensor({0.5, -1.25, 3.0}, torch::kFloat16);
  const auto bf16 = torch::tensor({1.0, -2.0}, torch::kBFloat16);
  const auto step = torch::scalar_tensor(7, torch::kInt64);
  PickleWriter w(2);
  w.proto();
  w.state_dict({
      {"encoder.conv_in.weight", {"FloatStorage", "0", 6, 0, {2, 3}, {3, 1}}},
      {"encoder.conv_in.bias", {"HalfStorage", "1", 3, 0, {3}, {1}}},
      {"encoder.view", {"FloatStorage", "0", 6, 1, {2, 2}, {1, 3}}},   // a transposed view of storage 0
      {"bn.num_batches_tracked", {"LongStorage", "2", 1, 0, {}, {}}},  // 0-d
      {"emb", {"BFloat16Storage", "3", 2, 0, {2}, {1}}},
  });
  w.stop();
  write_zip(dir / "model.pt", w.bytes,
            {{"0", raw(weight())}, {"1", raw(half)}, {"2", raw(step)}, {"3", raw(bf16)}});

  const auto tensors = io::read_torch_state_dict(dir / "model.pt");
  ASSERT_EQ(tensors.size(), 5u);
  EXPECT_EQ(tensors[0].first, "encoder.conv_in.weight");  // file order
  EXPECT_EQ(tensors[1].first, "encoder.conv_in.bias");
  EXPECT_EQ(tensors[2].first, "encoder.view");
  EXPECT_EQ(tensors[3].first, "bn.num_batches_tracked");
  EXPECT_EQ(tensors[4].first, "emb");
  EXPECT_TRUE(torch::equal(tensors[0].second, weight()));
  EXPECT_EQ(tensors[1].second.scalar_type(), torch::kFloat16);
  EXPECT_TRUE(torch::equal(tensors[1].second.to(torch::kFloat32), half.to(torch::kFloat32)));
  const auto view = weight().reshape({-1}).as_strided({2, 2}, {1, 3}, 1);  // [[-0.5, 1], [0, 1.5]]
  EXPECT_TRUE(torch::equal(tensors[2].second, view));
  EXPECT_TRUE(tensors[2].second.is_contiguous());
  EXPECT_EQ(tensors[3].second.dim(), 0);
  EXPECT_EQ(tensors[3].second.item<std::int64_t>(), 7);
  EXPECT_EQ(tensors[4].second.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(tensors[4].second.to(torch::kFloat32), bf16.to(torch::kFloat32)));
  // The view was copied: writing to it leaves the weight alone.
  tensors[2].second.fill_(100);
  EXPECT_TRUE(torch::equal(tensors[0].second, weight()));

  const auto root = io::read_torch_file(dir / "model.pt");
  ASSERT_EQ(root.kind, Kind::Dict);
  EXPECT_EQ(root.entries->size(), 5u);
  ASSERT_NE(root.find("emb"), nullptr);
  EXPECT_EQ(root.find("emb")->kind, Kind::Tensor);
  EXPECT_EQ(root.find("missing"), nullptr);
}

TEST(TorchFile, LightningCheckpointGivesItsStateDict) {
  const auto dir = temp_dir("lightning");
  PickleWriter w(2);
  w.proto();
  w.empty_dict();
  w.mark();
  w.str("epoch");
  w.integer(3);
  w.str("global_step");
  w.integer(1000);
  w.str("pytorch-lightning_version");
  w.str("1.4.2");
  w.str("state_dict");
  w.state_dict(
      {{"model.diffusion_model.input_blocks.0.0.weight", {"FloatStorage", "0", 6, 0, {2, 3}, {3, 1}}},
       {"first_stage_model.encoder.conv_in.bias", {"FloatStorage", "1", 2, 0, {2}, {1}}}});
  w.str("callbacks");  // {ModelCheckpoint: {'best_model_path': ''}}: a class as a key
  w.empty_dict();
  w.global("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint");
  w.empty_dict();
  w.str("best_model_path");
  w.str("");
  w.op('s');
  w.op('s');
  w.str("optimizer_states");  // [{'state': {0: {'step': 10, 'exp_avg': T}}, 'param_groups': [{'lr': 1e-4,
                              // ...}]}]
  w.empty_list();
  w.empty_dict();
  w.mark();
  w.str("state");
  w.empty_dict();
  w.integer(0);
  w.empty_dict();
  w.mark();
  w.str("step");
  w.integer(10);
  w.str("exp_avg");
  w.tensor({"FloatStorage", "2", 2, 0, {2}, {1}});
  w.op('u');
  w.op('s');
  w.str("param_groups");
  w.empty_list();
  w.empty_dict();
  w.mark();
  w.str("lr");
  w.real(1e-4);
  w.str("params");
  w.empty_list();
  w.integer(0);
  w.op('a');
  w.op('u');
  w.op('a');
  w.op('u');
  w.op('a');
  w.str("lr_schedulers");
  w.empty_list();
  w.str("hyper_parameters");  // an AttributeDict: a dict subclass, so NEWOBJ then SETITEMS
  w.global("pytorch_lightning.utilities.parsing", "AttributeDict");
  w.empty_tuple();
  w.op(0x81);  // NEWOBJ
  w.memoize();
  w.mark();
  w.str("base_learning_rate");
  w.real(2e-6);
  w.str("name");
  w.str("ldm");
  w.op('u');
  w.str("args");  // an argparse.Namespace: NEWOBJ then BUILD with its __dict__
  w.global("argparse", "Namespace");
  w.empty_tuple();
  w.op(0x81);
  w.memoize();
  w.empty_dict();
  w.str("seed");
  w.integer(-23);
  w.op('s');
  w.op('b');
  w.op('u');
  w.stop();
  write_zip(dir / "last.ckpt", w.bytes,
            {{"0", raw(weight())}, {"1", raw(bias())}, {"2", raw(torch::tensor({9.0f, 8.0f}))}});

  const auto tensors = io::read_torch_state_dict(dir / "last.ckpt");
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[0].first, "model.diffusion_model.input_blocks.0.0.weight");
  EXPECT_EQ(tensors[1].first, "first_stage_model.encoder.conv_in.bias");
  EXPECT_TRUE(torch::equal(tensors[0].second, weight()));
  EXPECT_TRUE(torch::equal(tensors[1].second, bias()));

  const auto root = io::read_torch_file(dir / "last.ckpt");
  ASSERT_EQ(root.kind, Kind::Dict);
  EXPECT_EQ(root.find("global_step")->integer, 1000);
  EXPECT_EQ(root.find("epoch")->integer, 3);
  EXPECT_EQ(root.find("pytorch-lightning_version")->text, "1.4.2");
  const auto* hyper = root.find("hyper_parameters");
  ASSERT_EQ(hyper->kind, Kind::Object);
  EXPECT_EQ(hyper->object->name, "AttributeDict");
  EXPECT_DOUBLE_EQ(hyper->find("base_learning_rate")->real, 2e-6);
  EXPECT_EQ(hyper->find("name")->text, "ldm");
  const auto* args = root.find("args");
  ASSERT_EQ(args->kind, Kind::Object);
  EXPECT_EQ(args->object->module, "argparse");
  EXPECT_EQ(args->object->state.find("seed")->integer, -23);
  const auto& optimizer = root.find("optimizer_states")->items->at(0);
  const auto& state = optimizer.find("state")->entries->at(0);
  EXPECT_EQ(state.first.integer, 0);
  EXPECT_TRUE(torch::equal(state.second.find("exp_avg")->tensor, torch::tensor({9.0f, 8.0f})));
  EXPECT_DOUBLE_EQ(optimizer.find("param_groups")->items->at(0).find("lr")->real, 1e-4);
  // Everything under string keys, the optimizer's int-keyed state left out.
  const auto all = io::collect_tensors(root);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, "state_dict.model.diffusion_model.input_blocks.0.0.weight");
}

TEST(TorchFile, ReadsProtocolFourWithFrames) {
  const auto dir = temp_dir("protocol4");
  PickleWriter w(4);  // the body of one frame
  w.empty_dict();
  w.mark();
  w.str("state_dict");
  w.state_dict({{"encoder.conv_in.weight", {"FloatStorage", "0", 6, 0, {2, 3}, {3, 1}}},
                {"encoder.conv_in.bias", {"FloatStorage", "1", 2, 0, {2}, {1}}}});
  w.str("blob");
  w.op('C');  // SHORT_BINBYTES
  w.op(3);
  w.bytes += std::string("\x00\x01\xff", 3);
  w.memoize();
  w.str("tags");
  w.op(0x8f);  // EMPTY_SET
  w.memoize();
  w.mark();
  w.integer(1);
  w.integer(2);
  w.op(0x90);  // ADDITEMS
  w.str("huge");
  w.op(0x8a);  // LONG1: 2**70
  w.op(9);
  w.little(0, 8);
  w.op(0x40);
  w.str("negative");
  w.integer(-5);
  w.op('u');
  w.stop();
  std::string pickle = "\x80\x04\x95";  // PROTO 4, then FRAME with the body's length
  for (int i = 0; i < 8; ++i) pickle += static_cast<char>((w.bytes.size() >> (8 * i)) & 0xff);
  pickle += w.bytes;
  write_zip(dir / "p4.pt", pickle, {{"0", raw(weight())}, {"1", raw(bias())}});

  const auto tensors = io::read_torch_state_dict(dir / "p4.pt");
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_TRUE(torch::equal(tensors[0].second, weight()));
  EXPECT_TRUE(torch::equal(tensors[1].second, bias()));
  const auto root = io::read_torch_file(dir / "p4.pt");
  EXPECT_EQ(root.find("blob")->kind, Kind::Bytes);
  EXPECT_EQ(root.find("blob")->text, std::string("\x00\x01\xff", 3));
  EXPECT_EQ(root.find("tags")->items->size(), 2u);
  EXPECT_EQ(root.find("huge")->kind, Kind::Float);
  EXPECT_DOUBLE_EQ(root.find("huge")->real, std::ldexp(1.0, 70));
  EXPECT_EQ(root.find("negative")->integer, -5);
}

// The legacy stream of torch 0.4 to 1.5: magic, protocol version, system info, the object, its
// storage keys, then each storage's element count and bytes.
std::string legacy_file(bool little_endian = true) {
  std::string file = "\x80\x02\x8a\x0a";
  file += std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10) + ".";
  file += "\x80\x02M\xe9\x03.";  // 1001
  PickleWriter info(2);
  info.proto();
  info.empty_dict();
  info.mark();
  info.str("protocol_version");
  info.integer(1001);
  info.str("little_endian");
  info.boolean(little_endian);
  info.str("type_sizes");
  info.empty_dict();
  info.mark();
  info.str("short");
  info.integer(2);
  info.str("int");
  info.integer(4);
  info.str("long");
  info.integer(4);
  info.op('u');
  info.op('u');
  info.stop();
  file += info.bytes;
  PickleWriter w(2, /*legacy_ids=*/true);
  w.proto();
  TensorSpec gpu{"FloatStorage", "94458332016400", 2, 0, {2}, {1}, "torch.cuda"};
  TensorSpec old{"FloatStorage", "94458332015872", 6, 0, {2, 3}, {3, 1}, "torch", "_rebuild_tensor"};
  w.state_dict({{"features.0.weight", old}, {"features.0.bias", gpu}});
  w.stop();
  file += w.bytes;
  PickleWriter keys(2);
  keys.proto();
  keys.empty_list();
  keys.mark();
  keys.str("94458332015872");
  keys.str("94458332016400");
  keys.op('e');  // APPENDS
  keys.stop();
  file += keys.bytes;
  for (const auto& tensor : {weight(), bias()}) {
    for (int i = 0; i < 8; ++i) file += static_cast<char>((tensor.numel() >> (8 * i)) & 0xff);
    file += raw(tensor);
  }
  return file;
}

TEST(TorchFile, ReadsTheLegacyFormat) {
  const auto dir = temp_dir("legacy");
  write_bytes(dir / "vgg.pth", legacy_file());
  const auto tensors = io::read_torch_state_dict(dir / "vgg.pth");
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[0].first, "features.0.weight");
  EXPECT_TRUE(torch::equal(tensors[0].second, weight()));
  EXPECT_TRUE(torch::equal(tensors[1].second, bias()));

  const auto whole = legacy_file();
  write_bytes(dir / "cut.pth", whole.substr(0, whole.size() - 4));
  EXPECT_CONTAINS(error_of([&] { io::read_torch_file(dir / "cut.pth"); }), "truncated");
  write_bytes(dir / "big.pth", legacy_file(false));
  EXPECT_CONTAINS(error_of([&] { io::read_torch_file(dir / "big.pth"); }), "big-endian");
}

TEST(TorchFile, TopLevelTensorIsNoStateDict) {
  const auto dir = temp_dir("tensor");
  PickleWriter w(2);
  w.proto();
  w.tensor({"FloatStorage", "0", 6, 0, {3, 2}, {1, 3}});
  w.stop();
  write_zip(dir / "t.pt", w.bytes, {{"0", raw(weight())}});
  const auto root = io::read_torch_file(dir / "t.pt");
  ASSERT_EQ(root.kind, Kind::Tensor);
  EXPECT_TRUE(torch::equal(root.tensor, weight().t()));
  EXPECT_TRUE(root.tensor.is_contiguous());
  EXPECT_CONTAINS(error_of([&] { io::read_torch_state_dict(dir / "t.pt"); }), "single tensor");
}

TEST(TorchFile, DamagedOrForeignFilesAreClearErrors) {
  const auto dir = temp_dir("bad");
  EXPECT_CONTAINS(error_of([&] { io::read_torch_file(dir / "missing.ckpt"); }), "does not exist");

  std::ofstream(dir / "notes.txt") << "just some text\n";
  EXPECT_CONTAINS(error_of([&] { io::read_torch_file(dir / "notes.txt"); }), "not a PyTorch file");

  write_bytes(dir / "plain.pkl", "\x80\x02N.");
  EXPECT_CONTAINS(error_of([&] { io::read_torch_file(dir / "plain.pkl"); }), "not a torch.save file");

  const auto pickle = small_state_dict_pickle(2);
  const std::vector<std::pair<std::string, std::string>> storages = {{"0", raw(weight())},
                                                                     {"1", raw(bias())}};
  write_zip(dir / "cut.pt", pickle.substr(0, pickle.size() / 2), storages);
  const auto cut = error_of([&] { io::read_torch_file(dir / "cut.pt"); });
  EXPECT_CONTAINS(cut, "corrupt pickle in " + (dir / "cut.pt").string() + " (data.pkl) at byte");

  write_zip(dir / "nopickle.pt", pickle, storages, /*with_pickle=*/false);
  EXPECT_CONTAINS(error_of([&] { io::read_torch_file(dir / "nopickle.pt"); }), "without data.pkl");

  write_zip(dir / "short.pt", pickle, {{"0", raw(weight()).substr(0, 8)}, {"1", raw(bias())}});
  const auto short_record = error_of([&] { io::read_torch_file(dir / "short.pt"); });
  EXPECT_CONTAINS(short_record, "data/0 holds 8 bytes");
  EXPECT_CONTAINS(short_record, "24 bytes");

  write_zip(dir / "lost.pt", pickle, {{"0", raw(weight())}});
  EXPECT_CONTAINS(error_of([&] { io::read_torch_file(dir / "lost.pt"); }), "lacks the record data/1");

  write_zip(dir / "big.pt", pickle, storages, true, "big");
  EXPECT_CONTAINS(error_of([&] { io::read_torch_file(dir / "big.pt"); }), "big-endian");

  const std::vector<std::pair<std::string, std::string>> opcodes = {
      {std::string("\x80\x02\xff", 3), "opcode 0xff"},
      {"\x80\x02.", "stack underflow"},
      {"\x80\x02h\x05.", "memo entry 5"},
      {"\x80\x02K\x01u.", "MARK"},
      {"\x80\x02X\xff\xff\xff\x7f", "past the end"}};
  for (const auto& [bytes, message] : opcodes) {
    write_zip(dir / "op.pt", bytes, {});
    const auto text = error_of([&] { io::read_torch_file(dir / "op.pt"); });
    EXPECT_CONTAINS(text, "corrupt pickle");
    EXPECT_CONTAINS(text, message);
  }

  PickleWriter w(2);
  w.proto();
  w.tensor({"QInt8Storage", "0", 4, 0, {4}, {1}});
  w.stop();
  write_zip(dir / "quantized.pt", w.bytes, {{"0", std::string(4, '\0')}});
  EXPECT_CONTAINS(error_of([&] { io::read_torch_file(dir / "quantized.pt"); }), "torch.QInt8Storage");

  PickleWriter outside(2);  // a view reaching past its storage
  outside.proto();
  outside.tensor({"FloatStorage", "0", 6, 4, {2, 3}, {3, 1}});
  outside.stop();
  write_zip(dir / "outside.pt", outside.bytes, {{"0", raw(weight())}});
  EXPECT_CONTAINS(error_of([&] { io::read_torch_file(dir / "outside.pt"); }), "past the end of its storage");
}

}  // namespace
}  // namespace latentlab
