// Smoke test of LatentLab's engine on another LibTorch (2.x, with CUDA when it has a GPU), built by
// tools/compat/libtorch2_check.sh: the UNet on the GPU against the CPU (values and gradients), the
// objective and the ELBO on the GPU, a short training run on the GPU that is interrupted and resumed,
// the first-stage networks and loss on the GPU, a PyTorch-made reference checkpoint read with this
// LibTorch, the FID Inception and FID's eigensolvers, and the UNet's and Inception's GPU throughput. Exit
// status 1 when a check fails.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "latentlab/diffusion/elbo.hpp"
#include "latentlab/eval/generative_metrics.hpp"
#include "latentlab/io/torch_file.hpp"
#include "latentlab/nn/autoencoder_net.hpp"
#include "latentlab/nn/inception_v3.hpp"
#include "latentlab/nn/state_dict.hpp"
#include "latentlab/nn/unet.hpp"
#include "latentlab/train/autoencoder_loss.hpp"
#include "latentlab/train/denoiser_trainer.hpp"

using namespace latentlab;

namespace {

int failures = 0;
void expect(bool ok, const std::string& what) {
  std::printf("[%s] %s\n", ok ? "pass" : "FAIL", what.c_str());
  failures += ok ? 0 : 1;
}

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.cpu() - b.cpu()).abs().max() / b.cpu().abs().max().clamp_min(1e-12)).item<double>();
}

class NoiseDataset : public Dataset {
 public:
  NoiseDataset() : images_(torch::rand({64, 1, 8, 8}) * 2 - 1) {}
  std::int64_t size() const override { return images_.size(0); }
  std::int64_t channels() const override { return 1; }
  std::int64_t resolution() const override { return 8; }
  std::int64_t num_classes() const override { return 0; }
  Batch get_batch(const std::vector<std::int64_t>& indices) const override {
    return {images_.index_select(0, torch::tensor(indices, torch::kLong)), {}};
  }

 private:
  torch::Tensor images_;
};

class Unweighted : public LossWeighting {
 public:
  std::vector<double> weights(const Schedule& s) const override {
    return std::vector<double>(static_cast<std::size_t>(s.num_steps()), 1.0);
  }
};

class NullSink : public MetricSink {
 public:
  std::vector<double> losses;
  void write(const std::string& series, std::int64_t, const MetricValues& values) override {
    if (series == "train") losses.push_back(values.at(0).second);
  }
};

}  // namespace

int main() {
  std::printf("LibTorch %s, CUDA available: %s\n", TORCH_VERSION, torch::cuda::is_available() ? "yes" : "no");
  const torch::Device gpu =
      torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  at::globalContext().setAllowTF32CuDNN(false);  // compare in true float32
  at::globalContext().setAllowTF32CuBLAS(false);

  const auto config = nn::UNetConfig::from_json({{"in_channels", 4},
                                                 {"out_channels", 4},
                                                 {"model_channels", 64},
                                                 {"channel_mult", {1, 2, 2}},
                                                 {"num_res_blocks", 2},
                                                 {"attention_resolutions", {1, 2}},
                                                 {"num_head_channels", 32},
                                                 {"context_dim", 64}},
                                                "unet");
  torch::manual_seed(0);
  nn::UNet cpu_model(config), gpu_model(config);
  {
    torch::NoGradGuard no_grad;
    auto cpu_params = cpu_model->parameters();
    auto gpu_params = gpu_model->parameters();
    for (std::size_t i = 0; i < cpu_params.size(); ++i) {
      cpu_params[i].add_(0.05 * torch::randn_like(cpu_params[i]));  // wake the zero-initialised layers
      gpu_params[i].copy_(cpu_params[i]);
    }
  }
  gpu_model->to(gpu);
  const auto x = torch::randn({8, 4, 8, 8}), t = torch::randint(1, 1001, {8}),
             context = torch::randn({8, 3, 64});
  const auto out_cpu = cpu_model->forward(x, t, context);
  const auto out_gpu = gpu_model->forward(x.to(gpu), t.to(gpu), context.to(gpu));
  const double forward_error = relative_error(out_gpu, out_cpu);
  expect(forward_error < 1e-4,
         "UNet forward on " + gpu.str() + " vs CPU: relative error " + std::to_string(forward_error));
  out_cpu.pow(2).sum().backward();
  out_gpu.pow(2).sum().backward();
  double grad_error = 0;
  auto cpu_params = cpu_model->parameters();
  auto gpu_params = gpu_model->parameters();
  for (std::size_t i = 0; i < cpu_params.size(); ++i)
    grad_error = std::max(grad_error, relative_error(gpu_params[i].grad(), cpu_params[i].grad()));
  expect(grad_error < 1e-3,
         "UNet gradients on " + gpu.str() + " vs CPU: worst relative error " + std::to_string(grad_error));

  // Objective and ELBO on the device: the draws come from a CPU generator and are moved.
  std::vector<double> betas(100, 0.02);
  const DiscreteSchedule schedule(betas);
  const ForwardProcess process(schedule);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(1);
  nn::UNet pixel(nn::UNetConfig::from_json({{"in_channels", 1},
                                            {"out_channels", 1},
                                            {"model_channels", 32},
                                            {"channel_mult", {1, 1}},
                                            {"num_res_blocks", 1},
                                            {"attention_resolutions", {2}}},
                                           "unet"));
  pixel->to(gpu);
  const DenoiserFn fn = [&](const torch::Tensor& z, const torch::Tensor& steps) {
    return pixel->forward(z, steps);
  };
  const auto elbo =
      estimate_elbo(fn, process, Prediction::Eps, torch::rand({16, 1, 8, 8}, gpu) * 2 - 1, 4, 8, generator);
  expect(std::isfinite(elbo.total_bpd),
         "ELBO on " + gpu.str() + ": " + std::to_string(elbo.total_bpd) + " bits/dim");

  // A short run on the device, interrupted after step 6 and resumed.
  const auto dir = std::filesystem::temp_directory_path() / "latentlab_cuda_smoke";
  std::filesystem::remove_all(dir);
  const nlohmann::json run = {
      {"output", dir.string()},
      {"device", gpu.str()},
      {"data", {{"dataset", "noise"}}},
      {"unet",
       {{"in_channels", 1},
        {"out_channels", 1},
        {"model_channels", 32},
        {"channel_mult", {1, 1}},
        {"num_res_blocks", 1},
        {"attention_resolutions", {2}}}},
      {"train", {{"steps", 12}, {"batch_size", 8}, {"checkpoint_every", 6}, {"lr", 1e-3}}},
      {"eval", {{"every", 6}, {"samples", 16}}}};
  auto parts = [&] {
    DenoiserTrainerParts p;
    p.train_data = p.held_out = std::make_shared<NoiseDataset>();
    p.schedule = std::make_shared<DiscreteSchedule>(betas);
    p.weighting = std::make_shared<Unweighted>();
    return p;
  };
  NullSink first, second;
  std::atomic<bool> stop{false};
  {
    auto cfg = DenoiserTrainConfig::from_json(run);
    cfg.steps = 6;
    DenoiserTrainer(cfg, parts(), first).run(stop);
  }
  DenoiserTrainer resumed(DenoiserTrainConfig::from_json(run), parts(), second);
  const auto from = resumed.resume();
  resumed.run(stop);
  bool finite = true;
  for (const double l : first.losses) finite = finite && std::isfinite(l);
  for (const double l : second.losses) finite = finite && std::isfinite(l);
  expect(from == 6 && second.losses.size() == 6 && finite,
         "train-denoiser on " + gpu.str() + ": 6 steps, checkpoint, resume at step " + std::to_string(from) +
             ", 6 more; last loss " +
             (second.losses.empty() ? std::string("?") : std::to_string(second.losses.back())));

  // The first stage: the reference kl-f8 encoder/decoder on the device against the CPU, the stage-1
  // loss with the GAN terms and the adaptive weight, and the PyTorch-made fixture through this LibTorch.
  {
    nn::AutoencoderNetConfig ae;
    ae.in_channels = ae.out_ch = 3;
    ae.ch = 128;
    ae.ch_mult = {1, 2, 4, 4};
    ae.num_res_blocks = 2;
    ae.z_channels = 4;
    torch::manual_seed(1);
    nn::Encoder enc_cpu(ae), enc_gpu(ae);
    nn::Decoder dec_cpu(ae), dec_gpu(ae);
    {
      torch::NoGradGuard no_grad;
      auto a = enc_cpu->parameters(), b = enc_gpu->parameters();
      for (std::size_t i = 0; i < a.size(); ++i) b[i].copy_(a[i]);
      a = dec_cpu->parameters(), b = dec_gpu->parameters();
      for (std::size_t i = 0; i < a.size(); ++i) b[i].copy_(a[i]);
    }
    enc_gpu->to(gpu);
    dec_gpu->to(gpu);
    const auto images = torch::rand({2, 3, 64, 64}) * 2 - 1;
    torch::NoGradGuard no_grad;
    const auto z_cpu = enc_cpu->forward(images), z_gpu = enc_gpu->forward(images.to(gpu));
    const auto x_cpu = dec_cpu->forward(z_cpu.slice(1, 0, 4)), x_gpu = dec_gpu->forward(z_gpu.slice(1, 0, 4));
    const double error = std::max(relative_error(z_gpu, z_cpu), relative_error(x_gpu, x_cpu));
    expect(error < 1e-4,
           "kl-f8 encoder/decoder on " + gpu.str() + " vs CPU: relative error " + std::to_string(error));
  }
  {
    Stage1LossConfig config;
    config.disc_start = 1;
    Stage1Loss loss(config, "kl", 3);
    loss->move_to(gpu);
    const auto last = torch::ones({1}, torch::TensorOptions().device(gpu)).requires_grad_(true);
    const auto x = torch::rand({4, 3, 32, 32}, gpu) * 2 - 1;
    const auto x_hat = (torch::rand({4, 3, 32, 32}, gpu) * 2 - 1) * last;
    const auto g = loss->generator_loss(x, {x_hat, torch::zeros({}, gpu), {}}, 1, last);
    g.loss.backward();
    const auto d = loss->discriminator_loss(x, x_hat, 1);
    d.loss.backward();
    expect(
        std::isfinite(g.loss.item<double>()) && std::isfinite(d.loss.item<double>()) && last.grad().defined(),
        "stage-1 loss with the GAN terms on " + gpu.str() + ": generator " +
            std::to_string(g.loss.item<double>()) + ", discriminator " +
            std::to_string(d.loss.item<double>()));
  }
  {
    // tests/fixtures/reference: made by PyTorch (tools/make_reference_fixtures.py).
    const std::filesystem::path fixtures = "tests/fixtures/reference";
    nn::AutoencoderNetConfig ae;
    ae.in_channels = ae.out_ch = 1;
    ae.ch = 4;
    ae.ch_mult = {1, 2};
    ae.num_res_blocks = 1;
    ae.attn_resolutions = {8};
    ae.resolution = 16;
    ae.z_channels = 2;
    ae.norm_groups = 2;
    torch::nn::Module root;
    auto encoder = root.register_module("encoder", nn::Encoder(ae));
    auto decoder = root.register_module("decoder", nn::Decoder(ae));
    auto quant = root.register_module("quant_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 4, 1)));
    auto post = root.register_module("post_quant_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 2, 1)));
    nn::NamedTensors tensors;
    for (auto& [key, tensor] : io::read_torch_state_dict(fixtures / "kl_tiny.ckpt"))
      if (key.rfind("loss.", 0) != 0) tensors.emplace_back(key, tensor);
    const auto report = nn::load_state_dict(root, tensors);
    root.to(gpu);
    const auto expected = io::read_torch_file(fixtures / "kl_tiny_expected.pt");
    torch::NoGradGuard no_grad;
    const auto mean = quant->forward(encoder->forward(expected.find("x")->tensor.to(gpu))).slice(1, 0, 2);
    const auto x_hat = decoder->forward(post->forward(mean));
    const double error = relative_error(x_hat, expected.find("reconstruction")->tensor);
    expect(report.complete() && error < 1e-4,
           "reference kl checkpoint (PyTorch-made) read with this LibTorch, reconstructed on " + gpu.str() +
               ": relative error " + std::to_string(error) +
               (report.complete() ? "" : "; " + report.summary()));
  }

  // The FID Inception on the device against the CPU (random weights), both preprocessings; FID's two
  // trace-sqrt methods with this LibTorch's eigensolvers; Inception throughput on the device.
  {
    torch::manual_seed(3);
    nn::FidInceptionV3 cpu_net;
    cpu_net->eval();
    nn::FidInceptionV3 gpu_net;
    gpu_net->eval();
    nn::load_state_dict(*gpu_net, nn::state_dict(*cpu_net));
    gpu_net->to(gpu);
    torch::NoGradGuard no_grad;
    const auto images = torch::randint(0, 256, {4, 3, 64, 48}).to(torch::kUInt8);
    for (const auto mode : {nn::InceptionPreprocess::kTorchFidelity, nn::InceptionPreprocess::kPytorchFid}) {
      const auto want = cpu_net->forward(nn::inception_input(images, mode)).pool;
      const auto got = gpu_net->forward(nn::inception_input(images.to(gpu), mode)).pool;
      const double error = relative_error(got, want);
      expect(error < 1e-3, "FID Inception on " + gpu.str() + " (" + nn::to_string(mode) +
                               ") against the CPU: relative error " + std::to_string(error));
    }
    const auto a = torch::randn({300, 64}, torch::kFloat64),
               b = torch::randn({300, 64}, torch::kFloat64) * 1.3;
    const auto sa = a.t().mm(a) / 299.0, sb = b.t().mm(b) / 299.0;
    const double symmetric = eval::trace_sqrt_product(sa, sb, eval::TraceSqrtMethod::kSymmetric);
    const double general = eval::trace_sqrt_product(sa, sb, eval::TraceSqrtMethod::kEigenvalues);
    expect(std::abs(symmetric - general) < 1e-8 * general, "FID trace sqrt: symmetric " +
                                                               std::to_string(symmetric) +
                                                               " vs eigenvalues " + std::to_string(general));
    const auto batch = torch::randint(0, 256, {100, 3, 32, 32}).to(torch::kUInt8).to(gpu);
    for (int i = 0; i < 3; ++i)
      gpu_net->forward(nn::inception_input(batch, nn::InceptionPreprocess::kTorchFidelity));
    if (gpu.is_cuda()) torch::cuda::synchronize();
    const auto start = std::chrono::steady_clock::now();
    int calls = 0;
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 2.0) {
      gpu_net->forward(nn::inception_input(batch, nn::InceptionPreprocess::kTorchFidelity));
      ++calls;
      if (gpu.is_cuda()) torch::cuda::synchronize();
    }
    std::printf(
        "[info] FID Inception on %s: %.0f images/s (batch 100, float32)\n", gpu.str().c_str(),
        100.0 * calls / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }

  // Throughput of the benchmark UNet on the device (TF32 allowed again, as a user would run it).
  at::globalContext().setAllowTF32CuDNN(true);
  at::globalContext().setAllowTF32CuBLAS(true);
  for (const std::int64_t batch : {1, 64}) {
    auto xb = torch::randn({batch, 4, 8, 8}, gpu), cb = torch::randn({batch, 1, 64}, gpu);
    auto tb = torch::randint(1, 1001, {batch}, torch::TensorOptions().device(gpu).dtype(torch::kLong));
    torch::optim::AdamW optimizer(gpu_model->parameters(), torch::optim::AdamWOptions(1e-4));
    auto step = [&] {
      optimizer.zero_grad();
      gpu_model->forward(xb, tb, cb).pow(2).mean().backward();
      optimizer.step();
    };
    auto eval = [&] {
      torch::NoGradGuard no_grad;
      gpu_model->forward(xb, tb, cb);
    };
    auto rate = [&](auto&& fn) {
      for (int i = 0; i < 5; ++i) fn();
      if (gpu.is_cuda()) torch::cuda::synchronize();
      const auto start = std::chrono::steady_clock::now();
      int calls = 0;
      while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 2.0) {
        fn();
        ++calls;
        if (gpu.is_cuda()) torch::cuda::synchronize();
      }
      return static_cast<double>(batch) * calls /
             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    const double train = rate(step), evals = rate(eval);
    std::printf("[info] %s batch %lld: %.1f train samples/s, %.1f denoiser evals/s\n", gpu.str().c_str(),
                static_cast<long long>(batch), train, evals);
  }
  std::printf("%d check(s) failed\n", failures);
  return failures == 0 ? 0 : 1;
}
