// Conditional GAN (Mirza & Osindero 2014, "Conditional Generative Adversarial
// Nets"): the generator and the discriminator are both fed the class y, so the
// two-player game of Goodfellow et al. (2014) becomes
//   min_G max_D V(D, G) = E_{x,y ~ p_data}[log D(x|y)] + E_{z ~ p_z, y ~ p_data}[log(1 − D(G(z|y)|y))]   (eq. 2)
// and G(z|y) learns p(x|y): `loom sample cgan --label sneaker` draws sneakers.
//
// Conditioning (§4.1): y enters as a one-hot vector concatenated to z, and to the
// flattened image in D, as in the paper. A learned embedding (PyTorch-GAN's
// cgan.py uses nn.Embedding(10, 10)) adds nothing here: the first linear layer
// of each network already multiplies the one-hot by a learned matrix, and an
// embedding in front of it is only a second factor of that product.
//
// Networks (--arch): mlp, the paper's kind, MLPs with leaky ReLU (slope 0.2), as models/gan/gan.cpp:
//   G: [z, onehot(y)] → h → 2h → 4h → 784, tanh, reshaped to [1, 28, 28] in [−1, 1];
//   D: [flatten(x), onehot(y)] → 2h → h → 1 logit;
// or conv, DCGAN's 28×28 networks (gan::dcgan_generator/discriminator, f = --features) with the
// condition concatenated the convolutional way: G's input is [z, onehot(y)] as a 1×1 map of nz + 10
// channels, D's is the image with onehot(y) tiled into 10 more planes (as the conditional DCGANs
// of the PyTorch examples and StarGAN's generator take a label).
// Each step is one discriminator update on a minibatch of data (x, y) and of
// fakes G(z|y) with the same labels y (so fakes follow the data's class
// frequencies, eq. 2's y ~ p_data), then one generator update on fresh noise,
// with the non-saturating loss −log D(G(z|y)|y) (--loss nonsaturating, the
// default) or eq. 2's log(1 − D(G(z|y)|y)) (--loss minimax). Adam (lr 2e-4,
// β₁ 0.5, β₂ 0.999), as the PyTorch examples.
#include "models/gan/adversarial.h"

namespace loom::models {
namespace {

constexpr int64_t kClasses = 10;  // Fashion-MNIST

class Cgan : public gan::AdversarialModel {
 public:
  explicit Cgan(const Config& c) : AdversarialModel(c), conv_(c.text("arch") == "conv") {
    if (conv_) {
      generator_ = gan::dcgan_generator(latent_ + kClasses, 1, 28, c.integer("features"));
      discriminator_ = gan::dcgan_discriminator(1 + kClasses, 28, c.integer("features"));
    } else {
      const int64_t h = c.integer("hidden");
      auto leaky = [](const Tensor& x) { return leaky_relu(x, 0.2); };
      generator_ = nn::mlp({latent_ + kClasses, h, 2 * h, 4 * h, 784}, leaky);
      discriminator_ = nn::mlp({784 + kClasses, 2 * h, h, 1}, leaky);
    }
    adopt(*generator_, *discriminator_, adam_from(c), adam_from(c));
  }

  Conditions conditions() const override {
    return {.labels = true, .prompt = false, .images = false, .interpolate = false, .codes = 0};
  }

  // Capturable: one batch, its labels checked on the device, the schedule redone by before_replay.
  bool cuda_graph_capable() const override { return true; }
  Losses train_step(const Batch& batch, Step& step) override {
    schedule_lr(step);
    const Tensor& x = batch.images;
    const Tensor y = onehot(batch.labels);
    const int64_t b = x.size(0);
    Tensor fake;
    {
      NoGrad ng;  // D's update does not reach G
      fake = generate(noise(b, nullptr), y);
    }
    const Tensor real_logits = discriminate(x, y), fake_logits = discriminate(fake, y);
    Tensor d_loss = gan::discriminator_loss(real_logits, fake_logits);
    gan::descend(*d_opt_, d_loss);
    Tensor g_loss = gan::generator_loss(discriminate(generate(noise(b, nullptr), y), y), loss_);
    gan::descend(*g_opt_, g_loss);
    return gan::adversarial_losses(d_loss, g_loss, real_logits, fake_logits);
  }

  // n samples [n, 1, 28, 28] in [−1, 1]: of the classes c.labels (int64 [n], on
  // any device) when given, else of the classes 0, 1, ..., 9, 0, 1, ... in turn.
  // An Error when c.labels is not [n].
  Tensor sample(int64_t n, const Condition& c, Generator& g) override {
    NoGrad ng;
    return generate(noise(n, &g), onehot(labels_for(n, c)));
  }

  // Without labels: one row per class (0 at the top), max(1, n / 10) columns;
  // with labels: n samples of them in a square grid.
  GridLayout grid_layout(int64_t n, const Condition& c) const override {
    if (c.labels.defined()) return {n, 0};
    const int64_t columns = std::max<int64_t>(1, n / kClasses);
    return {kClasses * columns, columns};
  }
  SampleGrid sample_grid(int64_t n, const Condition& c, Generator& g) override {
    if (c.labels.defined()) return {sample(n, c, g), 0};
    const auto [count, columns] = grid_layout(n, c);
    Condition rows;
    rows.labels = cycling_labels(count, columns);
    return {sample(count, rows, g), columns};
  }

  // The discriminator's loss on held-out (x, y) against as many samples of the
  // same classes, from a fixed noise stream, so every evaluation compares alike.
  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    Generator g(0);
    const Tensor y = onehot(batch.labels);
    const Tensor fake = generate(noise(batch.images.size(0), &g), y);
    return {{"d_loss", gan::discriminator_loss(discriminate(batch.images, y), discriminate(fake, y)).item()}};
  }

 private:
  Tensor onehot(const Tensor& labels) const { return one_hot(labels.to(device_), kClasses); }
  Tensor labels_for(int64_t n, const Condition& c) const {
    if (!c.labels.defined()) return cycling_labels(n, 1);
    LOOM_CHECK(c.labels.dim() == 1 && c.labels.size(0) == n, "cgan: expected labels [", n, "], got ", c.labels.shape());
    return c.labels;
  }
  // z [B, nz], y one-hot [B, 10] → images [B, 1, 28, 28] in [−1, 1].
  Tensor generate(const Tensor& z, const Tensor& y) {
    const Tensor zy = concat({z, y}, 1);
    if (conv_) return (*generator_)(reshape(zy, {z.size(0), latent_ + kClasses, 1, 1}));
    return reshape(tanh((*generator_)(zy)), {z.size(0), 1, 28, 28});
  }
  // images [B, 1, 28, 28], y one-hot [B, 10] → logits [B].
  Tensor discriminate(const Tensor& x, const Tensor& y) {
    const int64_t b = x.size(0);
    if (conv_) return reshape((*discriminator_)(concat({x, gan::tile_labels(y, 28, 28)}, 1)), {b});
    return reshape((*discriminator_)(concat({flatten(x, 1), y}, 1)), {b});
  }

  bool conv_;
  std::shared_ptr<nn::Sequential> generator_, discriminator_;
};

}  // namespace

std::unique_ptr<Model> make_cgan(const Config& c) { return std::make_unique<Cgan>(c); }
std::vector<OptionSpec> options_cgan() {
  std::vector<OptionSpec> o = gan::adversarial_options(100);
  o.push_back(choice_option("arch", "mlp", {"mlp", "conv"},
                            "networks: mlp (the paper's kind, --hidden) or conv (DCGAN's 28x28 networks, --features; "
                            "y tiled into D's input planes)"));
  o.push_back(integer_option("hidden", 256, Range::closed(1, 4096), "mlp's width h: G is [z, y]-h-2h-4h-x, D is [x, y]-2h-h-1"));
  o.push_back(integer_option("features", 64, Range::closed(1, 1024), "conv's base width f, as dcgan's"));
  return o;
}

}  // namespace loom::models
