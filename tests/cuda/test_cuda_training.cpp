// CUDA against the CPU reference end to end: small models built from the nn
// layers train K steps on both devices from the same initial parameters (built
// on the CPU from a seeded generator, then copied), on the same batches, with
// the same optimizer; the loss at every step, the final parameters and buffers,
// and an eval-mode forward pass afterwards must agree. Then each registered
// model (models/models.def) goes through what `loom train`, `loom eval` and
// `loom sample` run, from scratch and resumed, on synthetic data. Random draws
// inside a step (dropout masks, reparameterization noise) come from Philox
// streams that are identical on every device, so both runs see the same ones.
// Every allocation is poisoned while these tests run; without a CUDA device
// every test is skipped.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>

#include "kernels/memory.h"
#include "tests/cuda/cuda_test.h"
#include "tests/gradcheck.h"
#include "models/vae/vae.h"
#include "tests/temp_dir.h"
#include "tools/train.h"

using namespace loom;
using namespace loom::testing;

namespace {

const Device kCuda = Device::cuda(0);
const std::vector<DType> kFloatTypes = {DType::Float32, DType::Float64};
constexpr int kSteps = 5;
constexpr uint64_t kSeed = 17;

class CudaTraining : public CudaTest {};

// How far a trained quantity may drift from the CPU's: |cuda − cpu| ≤ t + t·|cpu|.
// One op on the GPU stays within base·√n of the CPU (the op tests' bound,
// tests/cuda/test_cuda_ops.cpp: base 4e-6 in float32 for CUDA-vs-libm ulps and
// FMA contraction, 1e-12 in float64; n the length of the longest sum behind a
// value, here the batch-norm statistics and weight gradients summed over batch
// × pixels). A run chains about 2·depth such ops per step (forward and
// backward) over `steps` steps. Their rounding errors are independent, and over
// so few small steps the network is a smooth map with gains of order one, so
// they add up like a random walk, as the terms of a sum do in the op tests:
// t = base·√n · √(2·depth·steps). That is ~1e-3 in float32 and ~1e-10 in
// float64, while a wrong element in any kernel moves a trained parameter by the
// order of the learning rate (Adam steps every parameter by ≈ lr = 1e-2). The
// emulator (tests/cuda_emu: the same libm, no FMA contraction) stays within
// 3e-7 in float32 and 5e-16 in float64; the margin is for a real GPU.
double train_tol(DType dt, int64_t longest_sum, int depth, int steps) {
  const double base = dt == DType::Float32 ? 4e-6 : 1e-12;
  return base * std::sqrt(static_cast<double>(longest_sum) * 2 * depth * steps);
}

struct Batch {
  Tensor x, y;  // y: int64 labels, or undefined where the model needs none
};

// A model with its training loss; the generator feeds its sampling noise.
class TrainableNet : public nn::Module {
 public:
  virtual Tensor loss(const Batch& b, Generator& noise) = 0;
};

// A Sequential net trained with cross entropy.
class Classifier : public TrainableNet {
 public:
  explicit Classifier(std::vector<nn::ModulePtr> layers)
      : net_(register_module("net", std::make_shared<nn::Sequential>(std::move(layers)))) {}
  Tensor loss(const Batch& b, Generator&) override { return cross_entropy((*net_)(b.x), b.y); }

 private:
  std::shared_ptr<nn::Sequential> net_;
};

// conv (no bias: batch norm removes a per-channel shift, so a bias gradient is
// 0 up to rounding, and Adam turns rounding noise into ±lr steps that differ
// between devices) → batch norm → leaky ReLU → max pool → conv → ReLU →
// avg pool → linear.
constexpr int64_t kConvClasses = 5;
std::shared_ptr<Classifier> conv_classifier() {
  using namespace nn;
  const ConvParams same{.padding = {1, 1}};
  return std::make_shared<Classifier>(std::vector<ModulePtr>{
      std::make_shared<Conv2d>(1, 4, 3, ConvOptions{.params = same, .bias = false}), std::make_shared<BatchNorm2d>(4),
      std::make_shared<LeakyReLU>(0.1),
      std::make_shared<Lambda>("MaxPool2d", [](const Tensor& x) { return max_pool2d(x, {2, 2}); }),
      std::make_shared<Conv2d>(4, 6, 3, ConvOptions{.params = same}), std::make_shared<ReLU>(),
      std::make_shared<Lambda>("AvgPool2d", [](const Tensor& x) { return avg_pool2d(x, {2, 2}); }),
      std::make_shared<Flatten>(),
      std::make_shared<Linear>(6 * 2 * 2, kConvClasses)});
}

// linear → layer norm → SiLU → dropout → linear → tanh → linear.
// Dropout stays on: its masks come from the default generator's Philox stream.
constexpr int64_t kMlpIn = 10, kMlpClasses = 4;
std::shared_ptr<Classifier> mlp() {
  using namespace nn;
  return std::make_shared<Classifier>(std::vector<ModulePtr>{
      std::make_shared<Linear>(kMlpIn, 16), std::make_shared<LayerNorm>(Shape{16}), std::make_shared<SiLU>(),
      std::make_shared<Dropout>(0.25), std::make_shared<Linear>(16, 16), std::make_shared<Tanh>(),
      std::make_shared<Linear>(16, kMlpClasses)});
}

// A VAE on 6×6 binary images: MLP encoder to (μ, log σ²) of 3 latents, one
// reparameterized sample, decoder linear → transposed conv (3×3 → 6×6) → group
// norm → ELU → conv; loss = mean over the batch of BCE-with-logits + KL(q ‖ N(0, I)).
class TinyVae : public TrainableNet {
 public:
  static constexpr int64_t kSide = 6, kLatent = 3;
  TinyVae() {
    using namespace nn;
    encoder_ = register_module("encoder", std::make_shared<Sequential>(std::vector<ModulePtr>{
        std::make_shared<Flatten>(), std::make_shared<Linear>(kSide * kSide, 16), std::make_shared<ReLU>(),
        std::make_shared<Linear>(16, 2 * kLatent)}));
    decoder_ = register_module("decoder", std::make_shared<Sequential>(std::vector<ModulePtr>{
        std::make_shared<Linear>(kLatent, 2 * 3 * 3), std::make_shared<Unflatten>(Shape{2, 3, 3}),
        std::make_shared<ConvTranspose2d>(2, 4, 4, ConvOptions{.params = {.stride = {2, 2}, .padding = {1, 1}}}),
        std::make_shared<GroupNorm>(2, 4), std::make_shared<ELU>(),
        std::make_shared<Conv2d>(4, 1, 3, ConvOptions{.params = {.padding = {1, 1}}})}));
  }
  Tensor loss(const Batch& b, Generator& noise) override {
    Tensor h = (*encoder_)(b.x);
    Tensor mu = slice(h, 1, 0, kLatent), log_var = slice(h, 1, kLatent, 2 * kLatent);
    Tensor z = mu + exp(log_var * 0.5) * randn(mu.shape(), mu.options(), &noise);
    Tensor recon = sum(binary_cross_entropy_with_logits((*decoder_)(z), b.x, Reduction::None), {1, 2, 3});
    Tensor zero = zeros_like(mu);
    return mean(recon + sum(kl_diag_gaussians(mu, log_var, zero, zero), {1}));
  }

 private:
  std::shared_ptr<nn::Sequential> encoder_, decoder_;
};

std::vector<int64_t> labels_for(int64_t n, int64_t classes, int step) {
  std::vector<int64_t> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = (3 * i + step) % classes;
  return out;
}

struct Case {
  const char* name;
  std::function<std::shared_ptr<TrainableNet>()> build;
  std::function<Batch(int step)> batch;  // float32 on the CPU
  int64_t longest_sum;                   // for train_tol
  int depth;                             // ops per forward pass, for train_tol
  double sgd_lr;                         // small enough for momentum SGD to stay stable
};

std::vector<Case> cases() {
  return {
      {"conv classifier", [] { return conv_classifier(); },
       [](int step) {
         Generator g(100 + step);
         return Batch{uniform({4, 1, 8, 8}, -1, 1, {}, &g),
                      from_vector(labels_for(4, kConvClasses, step), {4})};
       },
       4 * 8 * 8, 10, 0.05},
      {"mlp", [] { return mlp(); },
       [](int step) {
         Generator g(200 + step);
         return Batch{randn({8, kMlpIn}, {}, &g), from_vector(labels_for(8, kMlpClasses, step), {8})};
       },
       16, 10, 0.05},
      {"vae", [] { return std::make_shared<TinyVae>(); },
       [](int step) {
         Generator g(300 + step);
         return Batch{bernoulli(uniform({4, 1, TinyVae::kSide, TinyVae::kSide}, 0, 1, {}, &g), &g), {}};
       },
       // The loss sums 36 pixels: gradients ~36 times larger than the classifiers'.
       4 * TinyVae::kSide * TinyVae::kSide, 14, 0.005},
  };
}

enum class OptKind { Adam, SgdMomentum };

std::unique_ptr<optim::Optimizer> make_optimizer(OptKind k, std::vector<Tensor> params, double sgd_lr) {
  if (k == OptKind::Adam) return std::make_unique<optim::Adam>(std::move(params), optim::AdamOptions{.lr = 1e-2});
  return std::make_unique<optim::SGD>(std::move(params),
                                      optim::SGDOptions{.lr = sgd_lr, .momentum = 0.9, .weight_decay = 1e-3});
}

struct TrainedRun {
  std::vector<double> losses;           // before each step's update
  std::map<std::string, Tensor> state;  // parameters and buffers after the last step, on the CPU
  double moved = 0;                     // max |θ_final − θ_initial| over every parameter element
  double eval_loss = 0;                 // eval mode (running statistics, no dropout) on batch 0
};

TrainedRun train_on(const Case& c, DType dt, OptKind k, Device d) {
  manual_seed(kSeed);  // parameter init and dropout draw from the default generator
  std::shared_ptr<TrainableNet> net = c.build();
  net->to(dt);
  net->to(d);
  const std::vector<Tensor> params = net->parameters();
  std::unique_ptr<optim::Optimizer> opt = make_optimizer(k, params, c.sgd_lr);
  std::vector<Tensor> initial;
  for (const Tensor& p : params) initial.push_back(p.detach().clone());
  Generator noise(kSeed + 1);
  auto on_device = [&](Batch b) {
    return Batch{b.x.to(dt).to(d), b.y.defined() ? b.y.to(d) : Tensor()};
  };
  TrainedRun r;
  for (int step = 0; step < kSteps; ++step) {
    Tensor loss = net->loss(on_device(c.batch(step)), noise);
    opt->zero_grad();
    backward(loss);
    opt->step();
    r.losses.push_back(loss.item());
  }
  NoGrad ng;
  for (auto& [name, t] : net->state_dict()) r.state[name] = t.to(Device::cpu());
  for (size_t i = 0; i < initial.size(); ++i)
    r.moved = std::max(r.moved, max(abs(params[i] - initial[i])).item());
  net->eval();
  Generator eval_noise(kSeed + 2);
  r.eval_loss = net->loss(on_device(c.batch(0)), eval_noise).item();
  return r;
}

void expect_near(double cuda, double cpu, double t, const std::string& what) {
  EXPECT_LE(std::abs(cuda - cpu), t + t * std::abs(cpu)) << what << ": cuda " << cuda << ", cpu " << cpu;
}

}  // namespace

TEST_F(CudaTraining, SmallModelsTrainAsOnCpu) {
  for (const Case& c : cases())
    for (DType dt : kFloatTypes)
      for (OptKind k : {OptKind::Adam, OptKind::SgdMomentum}) {
        SCOPED_TRACE(str(c.name, " ", dtype_name(dt), k == OptKind::Adam ? " adam" : " sgd momentum"));
        const TrainedRun cpu = train_on(c, dt, k, Device::cpu()), gpu = train_on(c, dt, k, kCuda);
        const double t = train_tol(dt, c.longest_sum, c.depth, kSteps);
        for (int step = 0; step < kSteps; ++step)
          expect_near(gpu.losses[step], cpu.losses[step], t, str("loss at step ", step));
        // Training moved the parameters by over ten times the tolerance, so agreeing within it means something.
        EXPECT_GT(cpu.moved, 10 * t);
        ASSERT_EQ(gpu.state.size(), cpu.state.size());
        for (const auto& [name, value] : cpu.state) {
          SCOPED_TRACE(name);
          expect_tensors_near(gpu.state.at(name), value, t, t);
        }
        expect_near(gpu.eval_loss, cpu.eval_loss, t, "eval-mode loss");
      }
}

// ---- the registered models -------------------------------------------------------------------------

namespace {

// 16 random Fashion-MNIST-shaped images with labels 0..9, and 16 more as a second
// domain (which only two-domain models read): the driver needs no files.
data::LabeledImages synthetic_split(data::Split split) {
  Generator g(split == data::Split::Train ? 1 : 2);
  data::LabeledImages d{rand({16, 1, 28, 28}, {}, &g), from_vector(labels_for(16, 10, 0), {16})};
  d.images_b = rand({16, 1, 28, 28}, {}, &g);
  return d;
}

// The registered models are float32; their longest sum is the classifier's
// 3136-input linear layer (longer than its first conv's weight gradient over
// 2 × 28 × 28 pixels), behind about 10 ops per forward pass, over at most 2 steps.
const double kModelTol = train_tol(DType::Float32, 64 * 7 * 7, 10, 2);

// The same run on both devices: the steps' losses, the held-out metrics (taken
// with the updated parameters) and every tensor of the checkpoint (parameters,
// Adam moments, generator states) agree within tol.
void expect_same_run(const tools::TrainResult& gpu, const tools::TrainResult& cpu, double tol) {
  EXPECT_EQ(gpu.steps, cpu.steps);
  ASSERT_EQ(gpu.last.size(), cpu.last.size());
  for (const auto& [name, v] : cpu.last) expect_near(gpu.last.at(name), v, tol, str("step ", name));
  ASSERT_EQ(gpu.eval.size(), cpu.eval.size());
  for (const auto& [name, v] : cpu.eval) expect_near(gpu.eval.at(name), v, tol, str("held-out ", name));
  EXPECT_TRUE(std::filesystem::exists(gpu.samples));
  const Safetensors ck_cpu = load_safetensors(cpu.checkpoint), ck_gpu = load_safetensors(gpu.checkpoint);
  ASSERT_EQ(ck_gpu.tensors.size(), ck_cpu.tensors.size());
  for (const auto& [name, value] : ck_cpu.tensors) {
    SCOPED_TRACE(name);
    expect_tensors_near(ck_gpu.at(name), value, tol, tol);
  }
}

// What `loom train MODEL --device cuda [--resume CKPT]` runs, on synthetic data:
// the driver seeds the default generator, builds the model on the CPU and moves
// it, moves each batch to the device, takes a step through Model::train_step,
// evaluates, writes a sample grid and a checkpoint from device tensors; resuming
// loads a checkpoint's parameters and Adam moments onto the device. One step on
// either device, then a second from the CPU run's checkpoint on either, agree
// within tol; the CPU's first run is returned. options are model options, eo how
// the held-out metrics are computed; the runs write to folders dir/<tag>_*.
tools::TrainResult expect_driver_runs_agree(
    const std::string& model, const std::string& dir, const std::string& tag, double tol,
    const models::OptionValues& options = {}, const models::EvalOptions& eo = {},
    const std::function<data::LabeledImages(data::Split)>& load_data = synthetic_split) {
  auto run = [&](Device d, int64_t steps, const std::string& resume, const std::string& out) {
    tools::TrainOptions o;
    o.model = model;
    o.config.batch_size = 2;
    o.config.device = d;
    o.config.seed = kSeed;
    o.steps = steps;
    o.resume = resume;
    o.n_samples = 1;  // sampling is compared below (evaluate_and_sample); the driver need only write a grid
    o.eval_size = 4;  // also the classifier's sample grid: the evaluated images
    o.progress = false;
    o.load_data = load_data;
    o.config.options = options;
    o.eval_options = eo;
    o.out_dir = str(dir, "/", tag, "_", out);
    return tools::train(o);
  };
  const tools::TrainResult cpu = run(Device::cpu(), 1, "", "cpu"), gpu = run(kCuda, 1, "", "cuda");
  {
    SCOPED_TRACE("first step");
    expect_same_run(gpu, cpu, tol);
  }
  {
    // The second step, from the CPU run's checkpoint, on either device.
    SCOPED_TRACE("resumed from the CPU's checkpoint");
    expect_same_run(run(kCuda, 2, cpu.checkpoint, "cuda_resumed"), run(Device::cpu(), 2, cpu.checkpoint, "cpu_resumed"),
                    tol);
  }
  return cpu;
}

}  // namespace

namespace {
// Small networks for the models whose defaults would take minutes in the
// emulator (every kernel the defaults run also runs at these sizes).
models::OptionValues small_options(const std::string& model) {
  if (model == "nade") return {{"hidden", "16"}};
  if (model == "pixelcnn") return {{"channels", "8"}, {"blocks", "1"}};
  if (model == "pixelrnn") return {{"hidden", "4"}};
  if (model == "gan") return {{"hidden", "16"}, {"latent_dim", "8"}};
  if (model == "cgan") return {{"hidden", "16"}, {"latent_dim", "8"}};
  if (model == "infogan") return {{"width", "4"}, {"latent_dim", "6"}, {"learn_std", "true"}};
  if (model == "aae") return {{"hidden", "16"}, {"prior", "mixture"}};
  if (model == "dcgan") return {{"features", "4"}, {"latent_dim", "8"}};
  if (model == "cyclegan") return {{"features", "2"}, {"blocks", "1"}, {"d_layers", "1"}, {"pool", "2"}};
  // Ten domains, so that every label of the synthetic data (i mod 10) is a domain; two critic updates per step.
  if (model == "stargan")
    return {{"features", "2"}, {"blocks", "1"}, {"d_layers", "1"}, {"d_steps", "2"}, {"domains", "0,1,2,3,4,5,6,7,8,9"}};
  // Batches of 2: step 1 of the second run fades 8×8 in at α = 1/4.
  if (model == "progan")
    return {{"features", "4"}, {"latent_dim", "8"}, {"stable_images", "1"}, {"fade_images", "4"}};
  // The label grid holds 10 samples: 2 DDIM steps each, unguided (one pass a step).
  if (model == "ddpm")
    return {{"base", "4"}, {"groups", "2"}, {"mult", "1,2"}, {"attention", "1"}, {"timesteps", "4"},
            {"schedule", "cosine"}, {"condition", "label"}, {"guidance", "0"}, {"sample_steps", "2"}};
  if (model == "puzzlegan") return {{"features", "2"}, {"code_dim", "8"}};
  if (model == "text2image")
    return {{"g_width", "4"}, {"d_width", "4"}, {"latent_dim", "8"}, {"word_dim", "8"}, {"embed_dim", "8"}, {"text_dim", "4"}};
  return {};
}
}  // namespace

// Each registered model through the driver (expect_driver_runs_agree), then
// loaded from the CPU run's checkpoint for `loom eval` and `loom sample`. One
// test per model, so that ctest spreads them over the cores.
class RegisteredModelOnCuda : public CudaTest, public ::testing::WithParamInterface<std::string> {};

std::vector<std::string> registered_names() {
  std::vector<std::string> names;
  for (const models::Registration& r : models::registry()) names.push_back(r.name);
  return names;
}

TEST_P(RegisteredModelOnCuda, TrainsThroughTheDriverAsOnCpu) {
  TempDir dir;
  const std::string& name = GetParam();
  const tools::TrainResult cpu =
      expect_driver_runs_agree(name, dir.path(), name, kModelTol, small_options(name));
  // `loom eval` and `loom sample`: the CPU run's checkpoint loaded onto either
  // device evaluates held-out images and then samples alike (the classifier's
  // samples are the evaluated images, ordered by predicted class).
  std::unique_ptr<models::Model> on_cpu = tools::load_model(name, cpu.checkpoint, Device::cpu()),
                                 on_gpu = tools::load_model(name, cpu.checkpoint, kCuda);
  on_cpu->train(false);
  on_gpu->train(false);
  NoGrad ng;
  const data::LabeledImages held_out = synthetic_split(data::Split::Test);
  const Tensor x = slice(held_out.images, 0, 0, 4), y = slice(held_out.labels, 0, 0, 4);
  const auto evaluate_and_sample = [&](models::Model& m, Device d) {
    manual_seed(kSeed);  // the VAE's importance samples
    models::Batch b;
    b.images = x.to(d);
    b.labels = y.to(d);
    models::Condition c;
    if (m.conditions().images) {  // a translation model: the held-out images of the second domain, and translations
      b.images_b = slice(held_out.images_b, 0, 0, 4).to(d);
      c.images = b.images;
    }
    models::Losses l = m.evaluate(b, {});
    Generator g(kSeed);
    return std::make_pair(l, m.sample(4, c, g).to(Device::cpu()));
  };
  const auto [lc, sc] = evaluate_and_sample(*on_cpu, Device::cpu());
  const auto [lg, sg] = evaluate_and_sample(*on_gpu, kCuda);
  for (const auto& [metric, v] : lc) expect_near(lg.at(metric), v, kModelTol, str("loaded, held-out ", metric));
  expect_tensors_near(sg, sc, kModelTol, kModelTol);
}

INSTANTIATE_TEST_SUITE_P(CudaTraining, RegisteredModelOnCuda, ::testing::ValuesIn(registered_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// StarGAN on binary attributes (--attr-file, --attrs: CelebA's mode) instead of one-hot domains: the
// labels are [N, 2] attribute rows, the critic's head is trained with a BCE per attribute and the
// targets flip attributes. The attribute file names the labels only; the synthetic images and their
// attributes (label bits 0 and 1) come from the loader, as for every model here.
namespace {
data::LabeledImages attribute_split(data::Split split) {
  data::LabeledImages d = synthetic_split(split);
  const std::vector<int64_t> labels = d.labels.to_vector<int64_t>();
  std::vector<float> bits;
  for (int64_t y : labels) bits.insert(bits.end(), {static_cast<float>(y & 1), static_cast<float>((y >> 1) & 1)});
  d.labels = from_vector(bits, {static_cast<int64_t>(labels.size()), 2});
  return d;
}
models::OptionValues attribute_options(const std::string& dir) {
  return {{"features", "2"}, {"blocks", "1"},       {"d_layers", "1"},
          {"d_steps", "2"},  {"attr_file", dir + "/attrs.txt"}, {"attrs", "Male,Blond"}};
}
}  // namespace

TEST_F(CudaTest, StarGanOnBinaryAttributesTrainsAsOnCpu) {
  TempDir dir;
  expect_driver_runs_agree("stargan", dir.path(), "stargan_attributes", kModelTol, attribute_options(dir.path()), {},
                           attribute_split);
}

// The VAE's variants (models/vae/vae.h) through the same driver runs: the
// convolutional networks trained on −IWAE_3 and evaluated with the
// importance-sampled log p(x) that evaluate() adds with K = 8 ("nll"), and the
// MLP on −IWAE_1 (the Monte-Carlo KL; the registered model covers the closed
// form). The emulator makes conv runs the suite's slowest: one of them. The conv
// decoder's longest sum is its last transposed conv's weight gradient over
// 3 draws × 2 images × 28 × 28 pixels, behind about 20 ops per forward pass.
struct VaeVariant {
  std::string tag;
  models::OptionValues options;
  int64_t importance_samples;
};
void PrintTo(const VaeVariant& v, std::ostream* os) { *os << v.tag; }  // gtest's and ctest's test names
class VaeVariantOnCuda : public CudaTest, public ::testing::WithParamInterface<VaeVariant> {};

TEST_P(VaeVariantOnCuda, TrainsThroughTheDriverAsOnCpu) {
  TempDir dir;
  const VaeVariant& v = GetParam();
  const double tol = train_tol(DType::Float32, 3 * 2 * 28 * 28, 20, 2);
  const tools::TrainResult r =
      expect_driver_runs_agree("vae", dir.path(), v.tag, tol, v.options, {.importance_samples = v.importance_samples});
  EXPECT_EQ(r.eval.count("nll"), v.importance_samples > 0 ? 1u : 0u);
}

INSTANTIATE_TEST_SUITE_P(CudaTraining, VaeVariantOnCuda,
                         ::testing::Values(VaeVariant{"conv_iwae3", {{"arch", "conv"}, {"iwae_k", "3"}}, 8},
                                           VaeVariant{"mlp_iwae1", {{"iwae_k", "1"}}, 0}),
                         [](const ::testing::TestParamInfo<VaeVariant>& info) { return info.param.tag; });

// `loom train --cuda-graph` (TrainOptions::cuda_graph): the second step captured as a CUDA graph
// and it and the third replayed gives the eager run's losses and checkpoint bit for bit, with a
// learning-rate schedule (dcgan's cosine, set before each replay) and fresh noise every step.
class CudaGraphTraining : public CudaTest, public ::testing::WithParamInterface<std::string> {};

namespace {
// `steps` steps of `name` through the driver, eagerly and with --cuda-graph (3: one eager step, the capture,
// two replays): the same losses and a byte-identical checkpoint.
void expect_graphed_run_is_eager(const std::string& name, const models::OptionValues& options, const std::string& dir,
                                 std::function<data::LabeledImages(data::Split)> load_data = synthetic_split,
                                 int64_t steps = 3) {
  auto run = [&](bool graph) {
    tools::TrainOptions o;
    o.model = name;
    o.config.batch_size = 2;
    o.config.device = kCuda;
    o.config.seed = kSeed;
    o.config.options = options;
    o.steps = steps;
    o.n_samples = 0;
    o.eval_size = 0;
    o.progress = false;
    o.load_data = load_data;
    o.cuda_graph = graph;
    o.out_dir = str(dir, "/", graph ? "graph" : "eager");
    return tools::train(o);
  };
  const tools::TrainResult eager = run(false), graphed = run(true);
  EXPECT_EQ(graphed.last, eager.last);
  const Safetensors a = load_safetensors(eager.checkpoint), b = load_safetensors(graphed.checkpoint);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [key, t] : a.tensors) {
    const Tensor& u = b.at(key);
    ASSERT_EQ(u.shape(), t.shape()) << key;
    ASSERT_EQ(u.dtype(), t.dtype()) << key;
    EXPECT_EQ(std::memcmp(u.data_ptr(), t.data_ptr(), t.numel() * dtype_size(t.dtype())), 0) << key << " differs";
  }
}
}  // namespace

TEST_P(CudaGraphTraining, ReplayedStepsGiveTheEagerRunBitForBit) {
  TempDir dir;
  const std::string& name = GetParam();
  models::OptionValues options = small_options(name);
  if (name == "dcgan") options["lr_schedule"] = "cosine";
  if (name == "markov" || name == "bernoulli") options["fit"] = "gd";
  if (name == "aae") options["prior"] = "gaussian";  // the 2-D priors are drawn on the host
  if (name == "gan") options["d_steps"] = "2";        // a second batch a step, drawn before each replay
  expect_graphed_run_is_eager(name, options, dir.path());
}

// StarGAN on binary attributes: each critic batch's targets are its attributes in a random order, drawn
// and sorted on the device (stargan::sort_order).
TEST_F(CudaTest, StarGanOnBinaryAttributesGraphsAsEager) {
  TempDir dir;
  expect_graphed_run_is_eager("stargan", attribute_options(dir.path()), dir.path(), attribute_split);
}

// DDPM conditioned on text: each image's caption composed on the host with its batch (prepare_batch),
// padded to the longest caption, its length counted on the device.
TEST_F(CudaTest, DdpmOnCaptionsGraphsAsEager) {
  TempDir dir;
  models::OptionValues options = small_options("ddpm");
  options["condition"] = "text";
  options["word_dim"] = "4";
  options["embed_dim"] = "4";
  expect_graphed_run_is_eager("ddpm", options, dir.path());
}

// ProGAN, phase by phase (Model::graph_phase): batches of 2, level 0 for 1 image, then each level fading
// in over 8 images (α = 1/8, 3/8, 5/8, 7/8 at steps 1-4) and stable for 1. Steps 0 and 1 run eagerly (a
// new phase each), step 2 is captured, 3 and 4 replay it under a new α each, step 5 (level 2 fading in)
// runs eagerly, step 6 is captured anew.
TEST_F(CudaTest, ProganGraphsEachPhaseAsEager) {
  TempDir dir;
  expect_graphed_run_is_eager("progan", {{"features", "4"}, {"latent_dim", "8"}, {"stable_images", "1"},
                                         {"fade_images", "8"}},
                              dir.path(), synthetic_split, 7);
}

INSTANTIATE_TEST_SUITE_P(CudaTraining, CudaGraphTraining,
                         ::testing::Values("classifier", "vae", "gan", "dcgan", "cgan", "infogan", "stargan", "aae",
                                           "bernoulli", "markov", "nade", "pixelcnn", "pixelrnn", "puzzlegan", "ddpm",
                                           "cyclegan", "progan", "text2image"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST_F(CudaTest, CudaGraphTrainingRefusesWhatItCannotCapture) {
  TempDir dir;
  tools::TrainOptions o;
  o.model = "aae";  // its mixture prior is drawn on the host
  o.config.batch_size = 2;
  o.config.device = kCuda;
  o.config.options = small_options("aae");
  o.steps = 2;
  o.n_samples = 0;
  o.eval_size = 0;
  o.progress = false;
  o.load_data = synthetic_split;
  o.cuda_graph = true;
  o.out_dir = dir.path();
  expect_error([&] { tools::train(o); }, {"--cuda-graph", "aae", "cannot be captured"});
  o.model = "vae";
  o.config.options = {};
  o.config.device = Device::cpu();
  expect_error([&] { tools::train(o); }, {"--cuda-graph needs a CUDA device"});
}
