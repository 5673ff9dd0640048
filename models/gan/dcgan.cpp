// DCGAN (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning
// with Deep Convolutional Generative Adversarial Networks"): the GAN game of
// Goodfellow et al. 2014 (models/gan/gan.cpp) played by convolutional networks
// built to the paper's guidelines (§3):
//   - no pooling: D downsamples with strided convolutions, G upsamples with
//     fractionally-strided (transposed) convolutions;
//   - batch normalization in both, except on G's output layer and D's input layer;
//   - no fully connected hidden layers: z [B, nz] is G's input as a 1×1 map
//     [B, nz, 1, 1], and D ends in one convolution over its last map (a logit);
//   - ReLU in G with tanh on the output (images in [−1, 1]); LeakyReLU(0.2) in D.
// Training (§4): weights ~ N(0, 0.02) and batch-norm scales ~ N(1, 0.02)
// (gan::dcgan_init), Adam with lr 2e-4 and β₁ 0.5. Each step updates D once on a
// real batch x and G(z) (z ~ N(0, I), G(z) detached), descending
//   −(1/m) Σ [log D(x) + log(1 − D(G(z)))]
// then G once on the same G(z) through the updated D, descending −log D(G(z))
// (--loss nonsaturating, Goodfellow et al. §3; --loss minimax: log(1 − D(G(z))))
// — the order of the PyTorch DCGAN example. The paper draws z uniformly; like
// that example, z ~ N(0, I) here (and the latent walks of `loom sample
// --interpolate` follow great circles, as White 2016 recommends for a Gaussian prior).
//
// Two resolutions (--image-size), f = --features (ngf = ndf, the example's 64):
//   28: Fashion-MNIST, 1 channel. G: z → 2f×7×7 → f×14×14 → 1×28×28.
//       D: 1×28×28 → f×14×14 → 2f×7×7 → logit.
//   64: any image folder (--data DIR: one sub-folder per class, train/ and test/
//       when it has both), RGB. The paper's networks (Fig. 1):
//       G: z → 8f×4×4 → 4f×8×8 → 2f×16×16 → f×32×32 → 3×64×64.
//       D: 3×64×64 → f×32×32 → 2f×16×16 → 4f×8×8 → 8f×4×4 → logit.
// Every upsampling and downsampling layer is a 4×4 kernel with stride 2 and
// padding 1; G's first layer is a k×k transposed convolution of the 1×1 input
// (k = 7 or 4) and D's last a k×k convolution to 1×1. No layer has a bias, as in
// the PyTorch example (batch normalization's shift β takes its place where it follows).
#include <algorithm>

#include "models/gan/adversarial.h"

namespace loom::models {
namespace {

// `loom sample dcgan --interpolate`: walks of this many steps, one per row.
constexpr int64_t kWalkSteps = 8;

class Dcgan : public gan::AdversarialModel {
 public:
  explicit Dcgan(const Config& c)
      : AdversarialModel(c), size_(std::stoll(c.text("image_size"))), channels_(size_ == 64 ? 3 : 1) {
    generator_ = gan::dcgan_generator(latent_, channels_, size_, c.integer("features"));
    discriminator_ = gan::dcgan_discriminator(channels_, size_, c.integer("features"));
    adopt(*generator_, *discriminator_, adam_from(c), adam_from(c));
  }

  DataSpec data_spec() const override {
    if (size_ == 64)
      return {.dataset = data::Dataset::ImageFolder, .toy = {}, .size = 64, .channels = 3, .lo = -1, .hi = 1,
              .binarize = false};
    return {};  // Fashion-MNIST, 28×28 grey, in [−1, 1]
  }

  // Capturable: one batch, device tensors only, the schedule redone by before_replay.
  bool cuda_graph_capable() const override { return true; }
  Losses train_step(const Batch& batch, Step& step) override {
    schedule_lr(step);
    const Tensor& x = batch.images;
    const Tensor fake = generate(noise(x.size(0), nullptr));
    // D's update does not reach G: it sees G(z) detached.
    const Tensor real_logits = discriminate(x), fake_logits = discriminate(fake.detach());
    const Tensor d_loss = gan::discriminator_loss(real_logits, fake_logits);
    gan::descend(*d_opt_, d_loss);
    const Tensor g_loss = gan::generator_loss(discriminate(fake), loss_);
    gan::descend(*g_opt_, g_loss);
    return gan::adversarial_losses(d_loss, g_loss, real_logits, fake_logits);
  }

  Tensor sample(int64_t n, const Condition&, Generator& g) override {
    NoGrad ng;
    return generate(noise(n, &g));
  }

  Conditions conditions() const override { return {.labels = false, .prompt = false, .images = false,
                                                    .interpolate = true, .codes = 0}; }

  // With c.interpolate: ⌈n / 8⌉ rows, each G along a walk of 8 steps from one
  // z ~ N(0, I) to another by slerp (gan::latent_walks; the paper's §6.1 walks
  // in the latent space). Otherwise n independent samples.
  GridLayout grid_layout(int64_t n, const Condition& c) const override {
    if (!c.interpolate) return Model::grid_layout(n, c);
    return {std::max<int64_t>(1, (n + kWalkSteps - 1) / kWalkSteps) * kWalkSteps, kWalkSteps};
  }
  SampleGrid sample_grid(int64_t n, const Condition& c, Generator& g) override {
    if (!c.interpolate) return Model::sample_grid(n, c, g);
    NoGrad ng;
    const int64_t rows = grid_layout(n, c).count / kWalkSteps;
    return {generate(gan::latent_walks(rows, kWalkSteps, latent_, device_, g)), kWalkSteps};
  }

  // Held-out images against as many samples: the discriminator's loss (log 4
  // when it cannot tell them apart). The samples come from a fixed stream, so
  // every evaluation compares alike.
  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    Generator g(0);
    const Tensor fake = sample(batch.images.size(0), {}, g);
    return {{"d_loss", gan::discriminator_loss(discriminate(batch.images), discriminate(fake)).item()}};
  }

 private:
  // z float32 [B, nz] → images [B, C, size, size] in [−1, 1].
  Tensor generate(const Tensor& z) { return (*generator_)(reshape(z, {z.size(0), latent_, 1, 1})); }
  // images [B, C, size, size] → logits [B].
  Tensor discriminate(const Tensor& x) { return reshape((*discriminator_)(x), {x.size(0)}); }

  int64_t size_, channels_;
  std::shared_ptr<nn::Sequential> generator_, discriminator_;
};

}  // namespace

std::unique_ptr<Model> make_dcgan(const Config& c) { return std::make_unique<Dcgan>(c); }
std::vector<OptionSpec> options_dcgan() {
  std::vector<OptionSpec> o = gan::adversarial_options(100);
  o.push_back(integer_option("features", 64, Range::closed(1, 1024),
                             "base width f (ngf = ndf): G's last and D's first feature maps have f channels"));
  o.push_back(choice_option("image_size", "28", {"28", "64"},
                            "28: Fashion-MNIST, grey; 64: the paper's networks on RGB images from --data DIR"));
  return o;
}

}  // namespace loom::models
