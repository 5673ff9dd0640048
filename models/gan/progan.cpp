// Progressive GAN (Karras et al. 2018; models/gan/progan.h has the schedule and
// the networks). Training as the paper's appendix A.1 and its reference code:
//   - WGAN-GP (Gulrajani et al. 2017, eq. 3) with λ = --gp-weight (10) and one
//     critic step per generator step; the critic's loss also has the drift term
//     ε_drift·E[D(x)²], ε_drift = --drift (1e-3), which keeps its scores near 0;
//   - Adam with lr 1e-3, β₁ 0, β₂ 0.99 for both networks (§A.1);
//   - equalized learning rate, pixelwise normalization in G, the minibatch
//     standard deviation in D (progan.h);
//   - z ~ N(0, I), pixel-normalized: a point on the sphere of radius √latent_dim;
//   - samples (and evaluation) from an exponential moving average of G's weights
//     (§A.1: decay 0.999; the reference code's half-life of 10k images, which is
//     0.999 at its batch of 16): decay 0.5^(batch / --ema-half-life) per step
//     (1000 images by default, for the CPU-sized phases), checkpointed as the
//     module "generator_ema".
// The growth is a pure function of the images shown, step index × batch size
// (growth_at), so a checkpoint taken mid-fade resumes at the same α; the
// generator's buffer "images" records the count, for sampling a loaded model
// at the growth it had reached. Every step logs "resolution" and "alpha".
//
// Data (--image-size): 32, Fashion-MNIST padded from 28×28 to 32×32 with the
// background value −1 (two pixels each side); 64 or 128, RGB images from --data DIR
// (one sub-folder per class, train/ and test/ when it has both), resized.
// Samples are at the current resolution, nearest-upsampled to the final one,
// clamped to the data range [−1, 1] (the reference code clips when it writes
// images); for Fashion-MNIST cropped back to the central 28×28 (the inverse of the
// padding), which is what `loom eval`'s Fréchet distance, precision and recall are
// measured on: the classifier's features take 28×28 grey images.
#include "models/gan/progan.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "models/gan/adversarial.h"

namespace loom::models {

Growth growth_at(int64_t images, const GrowthSchedule& s) {
  LOOM_CHECK(s.levels >= 1 && s.fade_images >= 1 && s.stable_images >= 1,
             "progan: a growth schedule needs levels, fade and stable images >= 1, got ", s.levels, ", ",
             s.fade_images, ", ", s.stable_images);
  LOOM_CHECK(images >= 0, "progan: images shown must be >= 0, got ", images);
  if (images < s.stable_images || s.levels == 1) return {0, 1.0};
  const int64_t t = images - s.stable_images, period = s.fade_images + s.stable_images;
  const int64_t level = 1 + t / period;
  if (level >= s.levels) return {s.levels - 1, 1.0};
  const int64_t into = t % period;
  return {level, into < s.fade_images ? static_cast<double>(into) / static_cast<double>(s.fade_images) : 1.0};
}

int64_t progan_width(int64_t level, int64_t features) {
  return level <= 3 ? features : std::max<int64_t>(1, features >> (level - 3));
}

namespace {

constexpr double kSlope = 0.2;  // LeakyReLU's, throughout (§A.1)
constexpr int64_t kMaxLevels = 10;  // 4·2^9 = 2048: beyond any image this model reads
const ConvParams kSame{.padding = {1, 1}};

void check_growth(const char* net, int64_t level, double alpha, int64_t levels) {
  LOOM_CHECK(level >= 0 && level < levels && alpha >= 0 && alpha <= 1, net, ": level ", level, " must be in [0, ",
             levels, ") and alpha ", alpha, " in [0, 1]");
}

// The blend of a fade, written so that α = 0 and α = 1 give old and new exactly; with
// g's α tensor when it has one (Growth::alpha_tensor).
Tensor fade(const Tensor& old_path, const Tensor& new_path, const Growth& g) {
  if (g.alpha_tensor.defined()) return (1.0 - g.alpha_tensor) * old_path + g.alpha_tensor * new_path;
  return (1 - g.alpha) * old_path + g.alpha * new_path;
}

}  // namespace

ProGenerator::ProGenerator(int64_t latent_dim, int64_t channels, int64_t levels, int64_t features)
    : width0_(progan_width(0, features)) {
  LOOM_CHECK(latent_dim >= 1 && channels >= 1 && features >= 1 && levels >= 1 && levels <= kMaxLevels,
             "ProGenerator: need latent_dim, channels, features >= 1 and levels in 1..", kMaxLevels, ", got ",
             latent_dim, ", ", channels, ", ", features, ", ", levels);
  // The reference code's 4×4 "dense" layer: gain √2/4 (a 4×4 transposed convolution of a 1×1 input).
  dense_ = register_module("dense", std::make_shared<nn::EqualizedLinear>(latent_dim, 16 * width0_, true,
                                                                         std::sqrt(2.0) / 4));
  auto conv = [&](const std::string& name, int64_t in, int64_t out) {
    convs_.push_back(register_module(name, std::make_shared<nn::EqualizedConv2d>(in, out, 3, kSame)));
  };
  for (int64_t l = 0; l < levels; ++l) {
    const int64_t w = progan_width(l, features);
    if (l == 0) {
      conv("level0.conv", w, w);
    } else {
      conv(str("level", l, ".conv0"), progan_width(l - 1, features), w);
      conv(str("level", l, ".conv1"), w, w);
    }
    to_rgb_.push_back(
        register_module(str("level", l, ".to_rgb"), std::make_shared<nn::EqualizedConv2d>(w, channels, 1,
                                                                                          ConvParams{}, true, 1.0)));
  }
}

Tensor ProGenerator::block(int64_t level, const Tensor& h) {
  auto act = [](const Tensor& x) { return nn::pixel_norm(leaky_relu(x, kSlope)); };
  if (level == 0) {
    const Tensor x = act(reshape((*dense_)(nn::pixel_norm(h)), {h.size(0), width0_, 4, 4}));
    return act((*convs_[0])(x));
  }
  const size_t i = static_cast<size_t>(2 * level - 1);
  return act((*convs_[i + 1])(act((*convs_[i])(upsample_nearest2d(h, 2)))));
}

Tensor ProGenerator::forward(const Tensor& z, int64_t level, double alpha) { return forward(z, Growth{level, alpha}); }

Tensor ProGenerator::forward(const Tensor& z, const Growth& g) {
  const int64_t level = g.level;
  check_growth("ProGenerator", level, g.alpha, levels());
  LOOM_CHECK(z.dim() == 2 && z.size(1) == dense_->weight.size(1), "ProGenerator: expected z [B, ",
             dense_->weight.size(1), "], got ", z.shape());
  Tensor h = block(0, z);
  for (int64_t l = 1; l < level; ++l) h = block(l, h);
  if (level == 0) return (*to_rgb_[0])(h);
  const Tensor image = (*to_rgb_[level])(block(level, h));
  if (g.alpha == 1) return image;
  return fade(upsample_nearest2d((*to_rgb_[level - 1])(h), 2), image, g);
}

ProDiscriminator::ProDiscriminator(int64_t channels, int64_t levels, int64_t features) : channels_(channels) {
  LOOM_CHECK(channels >= 1 && features >= 1 && levels >= 1 && levels <= kMaxLevels,
             "ProDiscriminator: need channels, features >= 1 and levels in 1..", kMaxLevels, ", got ", channels, ", ",
             features, ", ", levels);
  auto conv = [&](const std::string& name, int64_t in, int64_t out) {
    convs_.push_back(register_module(name, std::make_shared<nn::EqualizedConv2d>(in, out, 3, kSame)));
  };
  const int64_t w0 = progan_width(0, features);
  conv("level0.conv", w0 + 1, w0);  // after the minibatch-stddev channel
  for (int64_t l = 1; l < levels; ++l) {
    const int64_t w = progan_width(l, features);
    conv(str("level", l, ".conv0"), w, w);
    conv(str("level", l, ".conv1"), w, progan_width(l - 1, features));
  }
  for (int64_t l = 0; l < levels; ++l)
    from_rgb_.push_back(register_module(str("level", l, ".from_rgb"),
                                        std::make_shared<nn::EqualizedConv2d>(channels, progan_width(l, features), 1)));
  dense_ = register_module("dense", std::make_shared<nn::EqualizedLinear>(16 * w0, w0));
  score_ = register_module("score", std::make_shared<nn::EqualizedLinear>(w0, 1, true, 1.0));
}

Tensor ProDiscriminator::block(int64_t level, const Tensor& h) {
  if (level == 0) {
    // Groups of the largest size ≤ 4 that divides the batch (the paper's 4 when it does).
    int64_t group = std::min<int64_t>(4, h.size(0));
    while (h.size(0) % group != 0) --group;
    const Tensor x = leaky_relu((*convs_[0])(nn::minibatch_stddev(h, group)), kSlope);
    return reshape((*score_)(leaky_relu((*dense_)(flatten(x, 1)), kSlope)), {h.size(0)});
  }
  const size_t i = static_cast<size_t>(2 * level - 1);
  return avg_pool2d(leaky_relu((*convs_[i + 1])(leaky_relu((*convs_[i])(h), kSlope)), kSlope), {2, 2});
}

Tensor ProDiscriminator::forward(const Tensor& x, int64_t level, double alpha) { return forward(x, Growth{level, alpha}); }

Tensor ProDiscriminator::forward(const Tensor& x, const Growth& g) {
  const int64_t levels = static_cast<int64_t>(from_rgb_.size()), level = g.level;
  check_growth("ProDiscriminator", level, g.alpha, levels);
  const int64_t r = int64_t{4} << level;
  LOOM_CHECK(x.dim() == 4 && x.size(0) >= 1 && x.size(1) == channels_ && x.size(2) == r && x.size(3) == r,
             "ProDiscriminator: expected images [B, ", channels_, ", ", r, ", ", r, "] at level ", level, ", got ",
             x.shape());
  auto from_rgb = [&](int64_t l, const Tensor& images) { return leaky_relu((*from_rgb_[l])(images), kSlope); };
  Tensor h = from_rgb(level, x);
  if (level > 0) {
    h = block(level, h);
    if (g.alpha < 1) h = fade(from_rgb(level - 1, avg_pool2d(x, {2, 2})), h, g);
    for (int64_t l = level - 1; l >= 1; --l) h = block(l, h);
  }
  return block(0, h);
}

Tensor progan_reals(const Tensor& x, const Growth& g) {
  const int64_t r = g.resolution();
  LOOM_CHECK(x.dim() == 4 && x.size(2) == x.size(3) && x.size(2) >= r && x.size(2) % r == 0,
             "progan: real images [B, C, S, S] must have S a multiple of ", r, ", got ", x.shape());
  const int64_t k = x.size(2) / r;
  const Tensor at = k == 1 ? x : avg_pool2d(x, {k, k});
  if (g.alpha == 1) return at;
  return fade(upsample_nearest2d(avg_pool2d(at, {2, 2}), 2), at, g);
}

namespace {

// Fashion-MNIST's 28×28 images sit in the middle of the 32×32 the networks grow to.
constexpr int64_t kFashionPad = 2;

class Progan : public gan::AdversarialModel {
 public:
  explicit Progan(const Config& c)
      : AdversarialModel(c),
        size_(std::stoll(c.text("image_size"))),
        channels_(size_ == 32 ? 1 : 3),
        batch_size_(c.batch_size.value_or(64)),
        schedule_{.levels = static_cast<int64_t>(std::lround(std::log2(static_cast<double>(size_) / 4))) + 1,
                  .fade_images = c.integer("fade_images"),
                  .stable_images = c.integer("stable_images")},
        gp_weight_(c.real("gp_weight")),
        drift_(c.real("drift")),
        ema_decay_(c.integer("ema_half_life") > 0
                       ? std::pow(0.5, static_cast<double>(batch_size_) / static_cast<double>(c.integer("ema_half_life")))
                       : 0) {
    const int64_t f = c.integer("features");
    generator_ = std::make_shared<GrowingGenerator>(latent_, channels_, schedule_.levels, f);
    discriminator_ = std::make_shared<ProDiscriminator>(channels_, schedule_.levels, f);
    adopt(*generator_, *discriminator_, adam_from(c), adam_from(c));
    if (ema_decay_ > 0) {
      smoothed_ = std::make_shared<GrowingGenerator>(latent_, channels_, schedule_.levels, f);
      smoothed_->to(device_);
      smoothed_->load_state_dict(generator_->state_dict());
      add_module("generator_ema", *smoothed_);
      // The average lives in smoothed_'s own weights (a resumed run loads them in place).
      ema_.emplace(optim::EMA::into(*smoothed_, ema_decay_));
    }
    alpha_ = ones({}, TensorOptions{DType::Float64, device_});
  }

  DataSpec data_spec() const override {
    if (size_ == 32) return {};  // Fashion-MNIST, 28×28 grey in [−1, 1], padded in train_step
    return {.dataset = data::Dataset::ImageFolder, .toy = {}, .size = size_, .channels = 3, .lo = -1, .hi = 1,
            .binarize = false};
  }

  // Capturable as a CUDA graph phase by phase (graph_phase: each level, fading or stable, has its
  // own shapes and layers): the fade's α read from a device scalar, the images shown and the
  // learning rate written by before_replay, the average of G's weights restaged.
  bool cuda_graph_capable() const override { return true; }
  int64_t graph_phase(const Step& step) const override {
    const Growth g = growth(step);
    return 2 * g.level + (g.alpha < 1 ? 1 : 0);
  }

  Losses train_step(const Batch& batch, Step& step) override {
    before_replay(step);
    Growth g = growth(step);
    g.alpha_tensor = alpha_.to(DType::Float32);
    const Tensor real = progan_reals(full_size(batch.images), g);
    const int64_t b = real.size(0);
    const Tensor fake = generate(noise(b, nullptr), g);
    auto critic = [&](const Tensor& x) { return discriminator_->forward(x, g); };
    const Tensor real_scores = critic(real), fake_scores = critic(fake.detach());
    const Tensor wasserstein = mean(real_scores) - mean(fake_scores);
    const Tensor penalty = gan::gradient_penalty(critic, gan::penalty_points(real, fake, nullptr));
    const Tensor d_loss = -wasserstein + gp_weight_ * penalty + drift_ * mean(square(real_scores));
    gan::descend(*d_opt_, d_loss);
    const Tensor g_loss = -mean(critic(fake));
    gan::descend(*g_opt_, g_loss);
    if (ema_) ema_->update(*generator_);
    return step_losses({{"d_loss", d_loss},
                        {"g_loss", g_loss},
                        {"wasserstein", wasserstein},
                        {"gradient_penalty", penalty},
                        {"resolution", full({}, static_cast<double>(g.resolution()), TensorOptions{DType::Float64, device_})},
                        {"alpha", alpha_}});
  }

  // The host side of a step: the learning rate, and the device values the step reads, α and
  // the count of images G will have seen, written here and never inside a capture (a write
  // recorded there would replay the capture's values).
  void before_replay(const Step& step) override {
    schedule_lr(step);
    if (CudaGraph::capturing()) return;
    alpha_.fill_(growth(step).alpha);
    generator_->set_images((step.index + 1) * batch_size_);
  }

  Tensor sample(int64_t n, const Condition&, Generator& g) override {
    NoGrad ng;
    const Growth at = growth_at(sampler().images(), schedule_);
    Tensor x = sampler().forward(noise(n, &g), at.level, at.alpha);
    if (at.resolution() < size_) x = upsample_nearest2d(x, size_ / at.resolution());
    if (size_ == 32) x = pad(x, {-kFashionPad, -kFashionPad, -kFashionPad, -kFashionPad});
    return clamp(x, -1, 1);
  }

  // G and D: the average of G is no free parameter.
  int64_t parameter_count() override {
    int64_t n = 0;
    for (nn::Module* m : {static_cast<nn::Module*>(generator_.get()), static_cast<nn::Module*>(discriminator_.get())})
      for (const Tensor& p : m->parameters()) n += p.numel();
    return n;
  }

  // Held-out images against as many samples (of the sampling generator) from a
  // fixed stream, at the growth reached: the critic's estimate of the Wasserstein distance, E[D(x)] − E[D(G(z))].
  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    Generator stream(0);
    const Growth at = growth_at(sampler().images(), schedule_);
    const Tensor real = progan_reals(full_size(batch.images), at);
    const Tensor fake = sampler().forward(noise(real.size(0), &stream), at.level, at.alpha);
    return {{"wasserstein", (mean(discriminator_->forward(real, at.level, at.alpha)) -
                             mean(discriminator_->forward(fake, at.level, at.alpha))).item()}};
  }

 private:
  // The generator with the count of images it has trained on (buffer "images",
  // int64 [1]), which says at which growth a loaded model samples.
  class GrowingGenerator : public ProGenerator {
   public:
    GrowingGenerator(int64_t latent, int64_t channels, int64_t levels, int64_t features)
        : ProGenerator(latent, channels, levels, features) {
      register_buffer("images", &images_, zeros({1}, TensorOptions{DType::Int64}));
    }
    int64_t images() const { return images_.to(Device::cpu()).to_vector<int64_t>()[0]; }
    void set_images(int64_t n) { images_.fill_(static_cast<double>(n)); }

   private:
    Tensor images_;
  };

  // A batch of the data set's images at the final size (Fashion-MNIST padded).
  Tensor full_size(const Tensor& x) const {
    return size_ == 32 ? pad(x, {kFashionPad, kFashionPad, kFashionPad, kFashionPad}, -1.0) : x;
  }
  Tensor generate(const Tensor& z, const Growth& g) { return generator_->forward(z, g); }
  // The growth at the start of a training step.
  Growth growth(const Step& step) const { return growth_at(step.index * batch_size_, schedule_); }
  // What samples: the average of G's weights, or G itself without one.
  GrowingGenerator& sampler() { return smoothed_ ? *smoothed_ : *generator_; }

  int64_t size_, channels_, batch_size_;
  GrowthSchedule schedule_;
  double gp_weight_, drift_, ema_decay_;
  std::shared_ptr<GrowingGenerator> generator_, smoothed_;  // smoothed_: the average, when --ema-half-life > 0
  std::optional<optim::EMA> ema_;
  std::shared_ptr<ProDiscriminator> discriminator_;
  Tensor alpha_;  // float64 0-d on device_: the fade's α of the step under way
};

}  // namespace

std::unique_ptr<Model> make_progan(const Config& c) { return std::make_unique<Progan>(c); }
std::vector<OptionSpec> options_progan() {
  std::vector<OptionSpec> o = adam_options(1e-3, 0.0, 0.99);
  o.push_back(latent_dim_option(128));
  o.push_back(gan::lr_schedule_option());
  o.push_back(integer_option("features", 32, Range::closed(1, 1024),
                             "feature maps of every level up to 32x32, halved at each level after (the paper's 512)"));
  o.push_back(choice_option("image_size", "32", {"32", "64", "128"},
                            "final resolution: 32, Fashion-MNIST padded from 28x28; 64 or 128, RGB images from --data DIR"));
  o.push_back(integer_option("fade_images", 12800, Range::closed(1, 1e12),
                             "training images over which each new level fades in (the paper's 800k)"));
  o.push_back(integer_option("stable_images", 12800, Range::closed(1, 1e12),
                             "training images at each level once faded in (the paper's 800k); the last level trains on"));
  o.push_back(real_option("gp_weight", 10, Range::at_least(0), "WGAN-GP penalty weight lambda (Gulrajani et al. eq. 3)"));
  // The reference code's half-life is 10k images beside its 800k per phase; scaled
  // with the phases it would be 160 here, hardly an average, while 10k would lag most
  // of a phase behind G.
  o.push_back(integer_option("ema_half_life", 1000, Range::closed(0, 1e12),
                             "samples come from an exponential moving average of G's weights with this half-life in "
                             "training images (the reference code's 10k); 0: from G itself"));
  o.push_back(real_option("drift", 1e-3, Range::at_least(0), "drift penalty epsilon on E[D(x)^2] (ProGAN A.1)"));
  return o;
}

}  // namespace loom::models
