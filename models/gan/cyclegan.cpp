// CycleGAN (Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation
// using Cycle-Consistent Adversarial Networks"): two generators, G: A → B and
// F: B → A, learned from unpaired images of the two domains, each with a
// discriminator on its output domain (D_B judges G(a), D_A judges F(b)). The
// objective (eq. 3) adds to the two adversarial losses the cycle consistency
// λ (‖F(G(a)) − a‖₁ + ‖G(F(b)) − b‖₁) (eq. 2), and, as the paper does for
// photos (§5.2), the identity loss λ_idt λ (‖G(b) − b‖₁ + ‖F(a) − a‖₁).
//
// As §4 and the authors' code (junyanz/pytorch-CycleGAN-and-pix2pix) train it:
//   - least-squares adversarial losses (gan::least_squares_*);
//   - λ = 10 (--lambda-cycle), λ_idt = 0.5 (--lambda-identity, a fraction of λ);
//   - each step updates both generators on one Adam (the loss above, the
//     discriminators fixed), then both discriminators on another, each on real
//     images of its domain against generated ones drawn from a history of 50
//     (--pool; cyclegan::ImagePool);
//   - Adam lr 2e-4, β₁ 0.5, the lr constant for the first half of the run and
//     then decayed linearly to 0 (--decay-start; cyclegan::lr_factor);
//   - weights ~ N(0, 0.02), biases 0 (gan::dcgan_init), instance normalization
//     without affine parameters, convolutions with biases.
//
// The generator (Johnson et al. 2016's network; §7.2 "c7s1-64, d128, d256,
// R256 × n, u128, u64, c7s1-3"), f = --features, n = --blocks:
//   reflection pad 3, 7×7 conv C → f, IN, ReLU;
//   two 3×3 stride-2 convs f → 2f → 4f, each IN, ReLU;
//   n residual blocks x + [reflection pad 1, 3×3 conv, IN, ReLU, reflection pad 1, 3×3 conv, IN](x);
//   two 3×3 stride-2 transposed convs 4f → 2f → f (output padding 1), each IN, ReLU;
//   reflection pad 3, 7×7 conv f → C, tanh (images in [−1, 1]).
// The paper uses n = 6 at 128 px and 9 at 256 px, f = 64.
// The discriminator (PatchGAN, Isola et al. 2017; §7.2 "C64-C128-C256-C512"), k = --d-layers:
//   4×4 stride-2 conv C → f, LeakyReLU(0.2) (no normalization);
//   k − 1 4×4 stride-2 convs doubling the width (at most 8f), IN, LeakyReLU(0.2);
//   a 4×4 stride-1 conv (doubling once more), IN, LeakyReLU(0.2); a 4×4 stride-1 conv to 1:
// one output per patch. k = 3 is the paper's 70×70 PatchGAN at 256 px; at 28 px
// the default k = 2 judges 34×34 patches (4 × 4 outputs) and k = 1 16×16 ones.
//
// Data: two Fashion-MNIST classes (--domains, sneaker and ankle boot by default),
// two image folders (--data-a, --data-b) or the CycleGAN layout under --data
// (trainA/ trainB/ testA/ testB/); see data::Dataset::TwoDomains. Folder images are
// resized to 286/256 of --image-size, randomly cropped to it and flipped (§7.1).
#include "models/gan/cyclegan.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "models/gan/adversarial.h"

namespace loom::models {
namespace cyclegan {

Tensor cycle_consistency_loss(const Tensor& x, const Tensor& reconstruction) {
  LOOM_CHECK(x.shape() == reconstruction.shape(), "cycle_consistency_loss: images ", x.shape(),
             " and reconstructions ", reconstruction.shape(), " differ in shape");
  return l1_loss(reconstruction, x);
}

ImagePool::ImagePool(int64_t capacity, int64_t channels, int64_t size) : capacity_(capacity) {
  LOOM_CHECK(capacity >= 0 && channels >= 1 && size >= 1, "ImagePool: expected capacity >= 0, channels and size >= 1, got ",
             capacity, ", ", channels, ", ", size);
  register_buffer("images", &images, zeros({capacity, channels, size, size}));
  register_buffer("count", &count, zeros({}, TensorOptions{DType::Int64}));
}

Tensor ImagePool::query(const Tensor& batch) {
  LOOM_CHECK(batch.dim() == 4 && batch.size(1) == images.size(1) && batch.size(2) == images.size(2) &&
                 batch.size(3) == images.size(3),
             "ImagePool: expected images [B, ", images.size(1), ", ", images.size(2), ", ", images.size(3), "], got ",
             batch.shape());
  if (capacity_ == 0) return batch;
  NoGrad ng;
  const int64_t n = batch.size(0);
  const TensorOptions f64{DType::Float64, batch.device()};
  const auto value = [&](double v) { return full({}, v, f64); };
  const double cap = static_cast<double>(capacity_);
  const Tensor u = rand({n, 2}, f64);
  // The rule image by image, as a fixed number of tensor ops on the device (nothing read on
  // the host, whatever the batch: a CycleGAN step stays capturable as a CUDA graph).
  // Indices in float64, exact below 2^53. Image i of the batch writes slot w_i: the next
  // free one while the buffer fills (filled + i < capacity), else, when it returns a
  // stored image (u₁ > 1/2), slot j_i = min(capacity − 1, ⌊u₂ · capacity⌋); else none (−1).
  const Tensor i = arange(0, static_cast<double>(n), 1, f64), filled = count.to(DType::Float64);
  const Tensor j = clamp(reshape(slice(u, 1, 1, 2), {n}) * cap, 0.0, cap - 1).to(DType::Int64).to(DType::Float64);
  const Tensor fill = lt(filled + i, value(cap));
  const Tensor take = (1.0 - fill) * gt(reshape(slice(u, 1, 0, 1), {n}), value(0.5));
  const Tensor w = where(fill, filled + i, where(take, j, value(-1)));
  // Rows of [stored; batch]: image i returns what slot j_i holds when its turn comes, the
  // last earlier image to write j_i (i' < i, w_i' = j_i) or the stored image j_i; slot s ends
  // with the last image to write it, or keeps its own.
  const Tensor rows = unsqueeze(i, 1), cols = unsqueeze(i, 0);
  const Tensor last_earlier = max((cols + 1.0) * lt(cols, rows) * eq(unsqueeze(w, 0), unsqueeze(j, 1)), {1}) - 1.0;
  const Tensor returned =
      where(take, where(ge(last_earlier, value(0)), last_earlier + cap, j), i + cap).to(DType::Int64);
  const Tensor slots = arange(0, cap, 1, f64);
  const Tensor last_writer = max((rows + 1.0) * eq(unsqueeze(w, 1), unsqueeze(slots, 0)), {0}) - 1.0;
  const Tensor slot = where(ge(last_writer, value(0)), last_writer + cap, slots).to(DType::Int64);
  const Tensor all = concat({images, batch.detach()}, 0);
  // In place: a graph holds these buffers' addresses.
  images.copy_(index_select(all, 0, slot));
  count.copy_(minimum(filled + static_cast<double>(n), value(cap)).to(DType::Int64));
  return index_select(all, 0, returned);
}

double lr_factor(int64_t step, int64_t total, double decay_start) {
  const auto constant = static_cast<int64_t>(std::floor(decay_start * static_cast<double>(total)));
  if (constant >= total) return 1;
  return std::min(1.0, static_cast<double>(total - step) / static_cast<double>(total - constant));
}

}  // namespace cyclegan

namespace {

using nn::ConvOptions;

nn::ModulePtr reflection_pad(int64_t p) {
  return std::make_shared<nn::Lambda>("ReflectionPad2d", [p](const Tensor& x) {
    return pad2d(x, {p, p, p, p}, PadMode::Reflect);
  });
}
nn::ModulePtr instance_norm(int64_t c) { return std::make_shared<nn::InstanceNorm2d>(c); }

// x + body(x): a residual block of the generator.
class ResidualBlock : public nn::Module {
 public:
  explicit ResidualBlock(int64_t width) {
    body_ = register_module("body", std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
                                        reflection_pad(1), std::make_shared<nn::Conv2d>(width, width, 3),
                                        instance_norm(width), std::make_shared<nn::ReLU>(), reflection_pad(1),
                                        std::make_shared<nn::Conv2d>(width, width, 3), instance_norm(width)}));
  }
  Tensor forward(const Tensor& x) override { return x + (*body_)(x); }
  std::string name() const override { return "ResidualBlock"; }

 private:
  std::shared_ptr<nn::Sequential> body_;
};

std::shared_ptr<nn::Sequential> make_generator(int64_t channels, int64_t f, int64_t blocks) {
  using namespace nn;
  auto g = std::make_shared<Sequential>();
  auto normed = [&](ModulePtr layer, int64_t width) {
    g->push_back(std::move(layer));
    g->push_back(instance_norm(width));
    g->push_back(std::make_shared<ReLU>());
  };
  const ConvOptions down{.params = {.stride = {2, 2}, .padding = {1, 1}}, .bias = true, .tensors = {}};
  const ConvOptions up{.params = {.stride = {2, 2}, .padding = {1, 1}, .dilation = {1, 1}, .output_padding = {1, 1}},
                       .bias = true, .tensors = {}};
  g->push_back(reflection_pad(3));
  normed(std::make_shared<Conv2d>(channels, f, 7), f);
  normed(std::make_shared<Conv2d>(f, 2 * f, 3, down), 2 * f);
  normed(std::make_shared<Conv2d>(2 * f, 4 * f, 3, down), 4 * f);
  for (int64_t i = 0; i < blocks; ++i) g->push_back(std::make_shared<ResidualBlock>(4 * f));
  normed(std::make_shared<ConvTranspose2d>(4 * f, 2 * f, 3, up), 2 * f);
  normed(std::make_shared<ConvTranspose2d>(2 * f, f, 3, up), f);
  g->push_back(reflection_pad(3));
  g->push_back(std::make_shared<Conv2d>(f, channels, 7));
  g->push_back(std::make_shared<Tanh>());
  return g;
}

std::shared_ptr<nn::Sequential> make_discriminator(int64_t channels, int64_t f, int64_t layers) {
  using namespace nn;
  auto d = std::make_shared<Sequential>();
  const ConvOptions strided{.params = {.stride = {2, 2}, .padding = {1, 1}}, .bias = true, .tensors = {}};
  const ConvOptions single{.params = {.padding = {1, 1}}, .bias = true, .tensors = {}};
  d->push_back(std::make_shared<Conv2d>(channels, f, 4, strided));
  d->push_back(std::make_shared<LeakyReLU>(0.2));
  int64_t width = f;
  for (int64_t k = 1; k <= layers; ++k) {
    const int64_t next = f * std::min<int64_t>(int64_t(1) << k, 8);
    d->push_back(std::make_shared<Conv2d>(width, next, 4, k < layers ? strided : single));
    d->push_back(instance_norm(next));
    d->push_back(std::make_shared<LeakyReLU>(0.2));
    width = next;
  }
  d->push_back(std::make_shared<Conv2d>(width, 1, 4, single));
  return d;
}

// Two networks as one module (their parameters under "<first>." and "<second>."):
// what AdversarialModel holds as its generator and its discriminator.
class Pair : public nn::Module {
 public:
  Pair(const std::string& first, nn::ModulePtr a, const std::string& second, nn::ModulePtr b) {
    register_module(first, std::move(a));
    register_module(second, std::move(b));
  }
  std::string name() const override { return "Pair"; }
};

// --domains: two Fashion-MNIST classes by name or index, "sneaker,ankle_boot".
std::array<int64_t, 2> parse_domains(const std::string& text) {
  const size_t comma = text.find(',');
  LOOM_CHECK(comma != std::string::npos && text.find(',', comma + 1) == std::string::npos,
             "--domains must name two Fashion-MNIST classes as A,B (e.g. sneaker,ankle_boot), got '", text, "'");
  std::array<int64_t, 2> out{};
  const std::string names[2] = {text.substr(0, comma), text.substr(comma + 1)};
  for (int i = 0; i < 2; ++i) {
    out[i] = data::fashion_mnist_class(names[i]);
    LOOM_CHECK(out[i] >= 0, "--domains: '", names[i], "' is not a Fashion-MNIST class (names such as sneaker, ",
               "ankle_boot, t-shirt, or indices 0-9)");
  }
  LOOM_CHECK(out[0] != out[1], "--domains: both domains are class ", out[0], "; give two different classes");
  return out;
}

class CycleGan : public gan::AdversarialModel {
 public:
  explicit CycleGan(const Config& c)
      : AdversarialModel(c),
        size_(std::stoll(c.text("image_size"))),
        channels_(c.flag("rgb") ? 3 : 1),
        lambda_(c.real("lambda_cycle")),
        identity_(c.real("lambda_identity")),
        decay_start_(c.real("decay_start")),
        pool_a_(c.integer("pool"), channels_, size_),
        pool_b_(c.integer("pool"), channels_, size_) {
    spec_.dataset = data::Dataset::TwoDomains;
    spec_.size = size_;
    spec_.channels = channels_;
    spec_.dirs = {c.text("data_a"), c.text("data_b")};
    LOOM_CHECK(spec_.dirs[0].empty() == spec_.dirs[1].empty(), "cyclegan: give both --data-a DIR and --data-b DIR");
    if (data::two_domains_from_fashion_mnist(spec_, c.data_dir)) {
      spec_.classes = parse_domains(c.text("domains"));
    } else {
      LOOM_CHECK(!c.given.count("domains"), "cyclegan: --domains chooses Fashion-MNIST classes; it has no effect ",
                 "on image folders");
      spec_.load_size = (size_ * 286 + 128) / 256;  // the paper's 286 for 256
      spec_.flip = true;
    }
    const int64_t f = c.integer("features");
    const int64_t blocks = c.integer("blocks"), layers = c.integer("d_layers");
    g_ab_ = make_generator(channels_, f, blocks);
    g_ba_ = make_generator(channels_, f, blocks);
    d_a_ = make_discriminator(channels_, f, layers);
    d_b_ = make_discriminator(channels_, f, layers);
    generators_ = std::make_unique<Pair>("a2b", g_ab_, "b2a", g_ba_);
    discriminators_ = std::make_unique<Pair>("a", d_a_, "b", d_b_);
    gan::dcgan_init(*generators_);
    gan::dcgan_init(*discriminators_);
    adopt(*generators_, *discriminators_, adam_from(c), adam_from(c));
    pool_a_.to(device_);
    pool_b_.to(device_);
    add_module("pool_b", pool_b_);
    add_module("pool_a", pool_a_);
  }

  DataSpec data_spec() const override { return spec_; }

  // One step on batch.images (domain A) and batch.images_b (domain B): the
  // generators' update, then the discriminators'. Losses as the authors' code names
  // them by domain: D_A, D_B (each discriminator's), G_A2B, G_B2A (the generators'
  // adversarial terms), cycle_A, cycle_B (λ-weighted), idt_A, idt_B (the
  // λ_idt λ-weighted identity terms, when λ_idt > 0).
  // Capturable as a CUDA graph: one batch, the pools' draws and bookkeeping on the device,
  // the learning rate's decay redone by before_replay.
  bool cuda_graph_capable() const override { return true; }
  Losses train_step(const Batch& batch, Step& step) override {
    before_replay(step);
    const Tensor &a = batch.images, &b = batch.images_b;
    LOOM_CHECK(a.defined() && b.defined(), "cyclegan: a training batch needs images of both domains");
    const Tensor fake_b = (*g_ab_)(a), fake_a = (*g_ba_)(b);
    const Tensor cycle_a = lambda_ * cyclegan::cycle_consistency_loss(a, (*g_ba_)(fake_b));
    const Tensor cycle_b = lambda_ * cyclegan::cycle_consistency_loss(b, (*g_ab_)(fake_a));
    const Tensor adv_ab = gan::least_squares_generator_loss((*d_b_)(fake_b));
    const Tensor adv_ba = gan::least_squares_generator_loss((*d_a_)(fake_a));
    Tensor g_loss = adv_ab + adv_ba + cycle_a + cycle_b;
    Tensor idt_a, idt_b;
    if (identity_ > 0) {
      // G should leave B's images as they are, and F A's.
      idt_b = identity_ * lambda_ * cyclegan::cycle_consistency_loss(b, (*g_ab_)(b));
      idt_a = identity_ * lambda_ * cyclegan::cycle_consistency_loss(a, (*g_ba_)(a));
      g_loss = g_loss + idt_a + idt_b;
    }
    gan::descend(*g_opt_, g_loss);
    const Tensor d_a = gan::least_squares_discriminator_loss((*d_a_)(a), (*d_a_)(pool_a_.query(fake_a.detach())));
    const Tensor d_b = gan::least_squares_discriminator_loss((*d_b_)(b), (*d_b_)(pool_b_.query(fake_b.detach())));
    gan::descend(*d_opt_, d_a + d_b);
    // The losses are read back only now, so a CUDA step waits for its kernels once, at its end.
    std::vector<std::pair<std::string, Tensor>> losses{{"G_A2B", adv_ab}, {"G_B2A", adv_ba}, {"cycle_A", cycle_a},
                                                       {"cycle_B", cycle_b}, {"D_A", d_a},       {"D_B", d_b}};
    if (identity_ > 0) losses.insert(losses.end(), {{"idt_A", idt_a}, {"idt_B", idt_b}});
    return step_losses(losses);
  }

  // The linear decay of both learning rates (cyclegan::lr_factor) at step.index.
  void before_replay(const Step& step) override {
    const double lr = cyclegan::lr_factor(step.index, step.total, decay_start_);
    g_opt_->scale_lr(lr);
    d_opt_->scale_lr(lr);
  }

  // The translations of c.images (A's into B, or with c.b_to_a B's into A); n is their count.
  Tensor sample(int64_t n, const Condition& c, Generator&) override {
    LOOM_CHECK(c.images.defined(), "cyclegan translates images: give them with --input PATH|DIR");
    LOOM_CHECK(c.images.size(0) == n, "cyclegan: asked for ", n, " translations of ", c.images.size(0), " images");
    NoGrad ng;
    return translate(c.images, c.b_to_a);
  }
  Conditions conditions() const override {
    return {.labels = false, .prompt = false, .images = true, .interpolate = false, .codes = 0, .directions = true};
  }
  // A triple per input image: the input, its translation, and the translation
  // translated back (the reconstruction the cycle loss asks to equal the input);
  // ⌈√(n/3)⌉ triples to a row, so that the grid is about square.
  GridLayout grid_layout(int64_t n, const Condition&) const override {
    const auto per_row = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n) / 3.0)));
    return {3 * n, 3 * std::max<int64_t>(1, per_row)};
  }
  SampleGrid sample_grid(int64_t n, const Condition& c, Generator& g) override {
    const Tensor translated = sample(n, c, g);
    NoGrad ng;
    const Tensor back = translate(translated, !c.b_to_a);
    const Tensor triples = stack({c.images, translated, back}, 1);  // [n, 3, C, H, W]
    return {reshape(triples, {3 * n, channels_, size_, size_}), grid_layout(n, c).columns};
  }

  // Cycle consistency on held-out images of both domains: mean |F(G(a)) − a| and
  // |G(F(b)) − b| in [0, 1] pixel units ("cycle_l1_A", "cycle_l1_B").
  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    LOOM_CHECK(batch.images_b.defined(), "cyclegan: evaluation needs held-out images of both domains");
    const double unit = 1.0 / (spec_.hi - spec_.lo);
    const Tensor &a = batch.images, &b = batch.images_b;
    return {{"cycle_l1_A", cyclegan::cycle_consistency_loss(a, translate(translate(a, false), true)).item() * unit},
            {"cycle_l1_B", cyclegan::cycle_consistency_loss(b, translate(translate(b, true), false)).item() * unit}};
  }

 private:
  Tensor translate(const Tensor& x, bool b_to_a) { return b_to_a ? (*g_ba_)(x) : (*g_ab_)(x); }

  int64_t size_, channels_;
  double lambda_, identity_, decay_start_;
  DataSpec spec_;
  std::shared_ptr<nn::Sequential> g_ab_, g_ba_, d_a_, d_b_;
  std::unique_ptr<Pair> generators_, discriminators_;
  cyclegan::ImagePool pool_a_, pool_b_;
};

}  // namespace

std::unique_ptr<Model> make_cyclegan(const Config& c) { return std::make_unique<CycleGan>(c); }
std::vector<OptionSpec> options_cyclegan() {
  std::vector<OptionSpec> o = adam_options(2e-4, 0.5, 0.999);
  o.push_back(integer_option("features", 8, Range::closed(1, 1024),
                             "base width f of both networks (the paper's 64): the generator's first and last "
                             "feature maps and the discriminator's first have f channels"));
  o.push_back(integer_option("blocks", 2, Range::closed(0, 64),
                             "residual blocks of the generators (the paper's 6 at 128 px, 9 at 256 px)"));
  o.push_back(integer_option("d_layers", 2, Range::closed(1, 8),
                             "stride-2 layers of the PatchGAN discriminators: 3 is the paper's 70x70 PatchGAN at 256 "
                             "px; 2 judges 34x34 patches, 1 16x16"));
  o.push_back(choice_option("image_size", "28", {"28", "32", "64", "128", "256"},
                            "side of the square images (the paper's 256; Fashion-MNIST's 28 is resized to 32 and up)"));
  o.push_back(switch_option("rgb", "RGB images (image folders of photos); grey otherwise"));
  o.push_back(real_option("lambda_cycle", 10, Range::at_least(0), "weight lambda of the cycle-consistency loss"));
  o.push_back(real_option("lambda_identity", 0.5, Range::at_least(0),
                          "weight of the identity loss, as a fraction of lambda (0: none)"));
  o.push_back(integer_option("pool", 50, Range::closed(0, 10000),
                             "generated images kept for the discriminators (0: only the current batch)"));
  o.push_back(real_option("decay_start", 0.5, Range::closed(0, 1),
                          "fraction of the run at a constant lr, before it decays linearly to 0 (1: constant)"));
  o.push_back(text_option("domains", "sneaker,ankle_boot",
                          "the two Fashion-MNIST classes A,B translated between (names or indices 0-9)"));
  o.push_back(text_option("data_a", "", "an image folder of domain A (with --data-b; both splits)"));
  o.push_back(text_option("data_b", "", "an image folder of domain B (with --data-a)"));
  return o;
}

}  // namespace loom::models
