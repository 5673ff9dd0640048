// The original GAN (Goodfellow et al. 2014, "Generative Adversarial Nets"): an MLP
// generator G(z), z ~ N(0, I), and an MLP discriminator D(x) = σ(logit), trained by
// the paper's Algorithm 1: each step, k (--d-steps) discriminator updates, each on
// its own minibatch of data and of noise, ascending
//   (1/m) Σ [log D(x) + log(1 − D(G(z)))]                    (Algorithm 1, eq. 1)
// then one generator update on fresh noise, descending log(1 − D(G(z))) (--loss
// minimax, as eq. 1 reads) or −log D(G(z)) (--loss nonsaturating, §3: the same
// fixed point with gradients that do not vanish while D rejects every sample).
// Adam (lr 2e-4, β₁ 0.5) rather than the paper's momentum SGD, as the PyTorch
// examples do. For a fixed G the optimal discriminator is
// D*(x) = p_data / (p_data + p_G) (Prop. 1) and V(D*, G) = 2·JSD(p_data ‖ p_G) − log 4
// (Thm. 1): `loom derive jsd` checks both numerically.
//
// Data (--dataset): Fashion-MNIST (images in [−1, 1], tanh output) or a 2-D toy set
// (linear output; the sample picture is a scatter over the data, and evaluation
// reports the Fréchet distance of the samples in the plane and, on the mixtures,
// the modes covered and the fraction of high-quality samples).
#include "models/gan/adversarial.h"

namespace loom::models {
namespace {

class Gan : public gan::AdversarialModel {
 public:
  explicit Gan(const Config& c)
      : AdversarialModel(c), data_(c.text("dataset")), toy_(data_ != "fashion-mnist"), d_steps_(c.integer("d_steps")) {
    const int64_t h = c.integer("hidden"), out = toy_ ? 2 : 784;
    auto leaky = [](const Tensor& x) { return leaky_relu(x, 0.2); };
    // G: z → h → 2h → 4h → x; D: x → 2h → h → logit (the PyTorch-GAN gan.py shapes at h = 256, without batch norm).
    generator_ = nn::mlp({latent_, h, 2 * h, 4 * h, out}, leaky);
    discriminator_ = nn::mlp({out, 2 * h, h, 1}, leaky);
    adopt(*generator_, *discriminator_, adam_from(c), adam_from(c));
  }

  DataSpec data_spec() const override {
    if (toy_) return {.dataset = data::Dataset::Toy2d, .toy = data_};
    return {};  // Fashion-MNIST in [−1, 1]
  }

  // Capturable: k batches a step (batches_per_step), losses on the device, the schedule redone by before_replay.
  bool cuda_graph_capable() const override { return true; }
  int64_t batches_per_step() const override { return d_steps_; }
  Losses train_step(const Batch& batch, Step& step) override {
    schedule_lr(step);
    Tensor d_loss, d_real, d_fake;  // the mean of the k critic losses; D(x) and D(G(z)) of the last
    for (int64_t k = 0; k < d_steps_; ++k) {
      const Tensor x = k == 0 ? batch.images : step.next_batch().images;
      Tensor fake;
      {
        NoGrad ng;  // D's update does not reach G
        fake = generate(noise(x.size(0), nullptr));
      }
      const Tensor real_logits = discriminate(x), fake_logits = discriminate(fake);
      Tensor loss = gan::discriminator_loss(real_logits, fake_logits);
      gan::descend(*d_opt_, loss);
      NoGrad ng;
      const Tensor part = loss.detach() / static_cast<double>(d_steps_);
      d_loss = k == 0 ? part : d_loss + part;
      d_real = mean(sigmoid(real_logits));
      d_fake = mean(sigmoid(fake_logits));
    }
    Tensor g_loss = gan::generator_loss(discriminate(generate(noise(batch.images.size(0), nullptr))), loss_);
    gan::descend(*g_opt_, g_loss);
    return step_losses({{"d_loss", d_loss}, {"g_loss", g_loss}, {"D(x)", d_real}, {"D(G(z))", d_fake}});
  }

  Tensor sample(int64_t n, const Condition&, Generator& g) override {
    NoGrad ng;
    return generate(noise(n, &g));
  }

  // Held-out data against as many samples from a fixed stream (so every evaluation
  // compares alike): the discriminator's loss. On 2-D data the driver measures the
  // samples in the plane as a whole (tools::evaluate: fd_2d, modes_covered, high_quality).
  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    Generator g(0);
    const Tensor fake = sample(batch.images.size(0), {}, g);
    return {{"d_loss", gan::discriminator_loss(discriminate(batch.images), discriminate(fake)).item()}};
  }

 private:
  Tensor generate(const Tensor& z) {
    Tensor x = (*generator_)(z);
    return toy_ ? x : reshape(tanh(x), {z.size(0), 1, 28, 28});
  }
  Tensor discriminate(const Tensor& x) { return reshape((*discriminator_)(flatten(x, 1)), {x.size(0)}); }

  std::string data_;
  bool toy_;
  int64_t d_steps_;
  std::shared_ptr<nn::Sequential> generator_, discriminator_;
};

}  // namespace

std::unique_ptr<Model> make_gan(const Config& c) { return std::make_unique<Gan>(c); }
std::vector<OptionSpec> options_gan() {
  std::vector<OptionSpec> o = gan::adversarial_options(100);
  o.push_back(choice_option("dataset", "fashion-mnist", {"fashion-mnist", "8gaussians", "25gaussians", "swissroll", "moons"},
                            "what to learn: Fashion-MNIST images or a 2-D toy set"));
  o.push_back(integer_option("d_steps", 1, Range::closed(1, 100), "discriminator updates per generator update (k)"));
  o.push_back(integer_option("hidden", 256, Range::closed(1, 4096), "width h: G is z-h-2h-4h-x, D is x-2h-h-1"));
  return o;
}

}  // namespace loom::models
