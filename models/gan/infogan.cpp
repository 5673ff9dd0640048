// InfoGAN (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by
// Information Maximizing Generative Adversarial Nets"): the generator's input is
// split into incompressible noise z and a latent code c, and the game adds a
// lower bound L_I on the mutual information I(c; G(z, c)) so that c comes to
// control salient factors of the images, without labels:
//   min_{G,Q} max_D V_InfoGAN(D, G, Q) = V(D, G) − λ L_I(G, Q)                        (eq. 6)
//   L_I(G, Q) = E_{c~P(c), x~G(z,c)}[log Q(c|x)] + H(c) ≤ I(c; G(z, c))               (eq. 4-5)
// (the L_I pieces: gan::categorical_information, gan::gaussian_information).
//
// The MNIST setup of §7.1 and appendix C.1: z ~ N(0, I) of 62 dimensions
// (--latent-dim), c₁ ~ Cat(K = 10, p = 0.1) and c₂, c₃ ~ U(−1, 1). Q(c₁|x) is a
// softmax; Q(c₂, c₃|x) a factored Gaussian whose σ is fixed at 1, as the paper's
// MNIST code does (fix_std), or learned per sample (--learn-std: Q also
// outputs log σ²). λ is 1 for c₁ (--lambda-cat) and, with σ fixed, 1 for the
// continuous codes too (--lambda-cont; §6 suggests a smaller λ when the
// differential entropy puts L_I off the GAN losses' scale).
//
// Networks (appendix C.1, Table 1; width w = 64 (--width) gives the paper's):
//   G: [z, onehot(c₁), c₂, c₃] (74) → FC 16w, BN, ReLU → FC 2w·7·7, BN, ReLU →
//      4×4 upconv w stride 2, BN, ReLU → 4×4 upconv 1 stride 2, tanh: [1, 28, 28] in [−1, 1]
//   trunk: 4×4 conv w stride 2, lReLU → 4×4 conv 2w stride 2, BN, lReLU → FC 16w, BN, lReLU
//   D head: FC 1 (logit);  Q head: FC 2w, BN, lReLU → FC 10 + 2 (+ 2 log σ² with --learn-std)
// leaky ReLU slope 0.2 (DCGAN's; the paper does not give it), DCGAN's N(0, 0.02)
// initialization (gan::dcgan_init), as PyTorch-GAN's infogan.py.
//
// Training, each step: one batch of fakes G(z, c) with c from its prior; the
// discriminator update (trunk, D head and Q head, one Adam, lr 2e-4) descends
// −V − λ L_I on the data and the (detached) fakes; then the generator update
// (Adam, lr 1e-3: appendix C's rates) descends its non-saturating loss
// −log D(G(z, c)) − λ L_I through the updated D and Q. So G and Q both ascend L_I,
// as eq. 6 asks and the paper's code does (Q's parameters sit with D's in its
// optimizer). Logged: d_loss and g_loss (the adversarial parts alone), L_I (λ-weighted,
// what the updates add) and L_I(c1) (its categorical term, at most log 10 ≈ 2.303),
// D(x), D(G(z)).
#include <cmath>

#include "models/gan/adversarial.h"

namespace loom::models {
namespace {

constexpr int64_t kCategories = 10;  // c₁'s values
constexpr int64_t kContinuous = 2;   // c₂, c₃

// A layer followed by batch norm has no bias: the norm's mean subtraction cancels
// it, so its gradient is zero but for rounding, which Adam would turn into steps of ±lr.
constexpr bool kNoBias = false;

nn::ConvOptions stride2(bool bias = true) {
  nn::ConvOptions o;
  o.params.stride = {2, 2};
  o.params.padding = {1, 1};
  o.bias = bias;
  return o;
}

// The shared trunk and its two heads: D(x) = σ(d(trunk(x))) and Q(c|x) from q(trunk(x)).
class Discriminator : public nn::Module {
 public:
  Discriminator(int64_t w, int64_t q_outputs) {
    auto leaky = [] { return std::make_shared<nn::LeakyReLU>(0.2); };
    trunk = register_module("trunk", std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
        std::make_shared<nn::Conv2d>(1, w, 4, stride2()), leaky(),
        std::make_shared<nn::Conv2d>(w, 2 * w, 4, stride2(kNoBias)), std::make_shared<nn::BatchNorm2d>(2 * w), leaky(),
        std::make_shared<nn::Flatten>(),
        std::make_shared<nn::Linear>(2 * w * 7 * 7, 16 * w, kNoBias), std::make_shared<nn::BatchNorm1d>(16 * w), leaky()}));
    d = register_module("d", std::make_shared<nn::Linear>(16 * w, 1));
    q = register_module("q", std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
        std::make_shared<nn::Linear>(16 * w, 2 * w, kNoBias), std::make_shared<nn::BatchNorm1d>(2 * w), leaky(),
        std::make_shared<nn::Linear>(2 * w, q_outputs)}));
  }
  std::string name() const override { return "InfoGanDiscriminator"; }
  std::shared_ptr<nn::Sequential> trunk, q;
  std::shared_ptr<nn::Linear> d;
};

class InfoGan : public gan::AdversarialModel {
 public:
  explicit InfoGan(const Config& c)
      : AdversarialModel(c),
        lambda_cat_(c.real("lambda_cat")),
        lambda_cont_(c.real("lambda_cont")),
        learn_std_(c.flag("learn_std")) {
    const int64_t w = c.integer("width");
    generator_ = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
        std::make_shared<nn::Linear>(latent_ + kCategories + kContinuous, 16 * w, kNoBias),
        std::make_shared<nn::BatchNorm1d>(16 * w), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(16 * w, 2 * w * 7 * 7, kNoBias), std::make_shared<nn::BatchNorm1d>(2 * w * 7 * 7),
        std::make_shared<nn::ReLU>(), std::make_shared<nn::Unflatten>(Shape{2 * w, 7, 7}),
        std::make_shared<nn::ConvTranspose2d>(2 * w, w, 4, stride2(kNoBias)), std::make_shared<nn::BatchNorm2d>(w),
        std::make_shared<nn::ReLU>(), std::make_shared<nn::ConvTranspose2d>(w, 1, 4, stride2()),
        std::make_shared<nn::Tanh>()});
    discriminator_ = std::make_shared<Discriminator>(w, kCategories + kContinuous * (learn_std_ ? 2 : 1));
    gan::dcgan_init(*generator_);
    gan::dcgan_init(*discriminator_);
    optim::AdamOptions g_adam = adam_from(c);
    g_adam.lr = c.real("g_lr");
    // Q's parameters are in the discriminator's optimizer (it updates trunk, D and Q together).
    adopt(*generator_, *discriminator_, g_adam, adam_from(c));
  }

  Conditions conditions() const override {
    return {.labels = false, .prompt = false, .images = false, .interpolate = false, .codes = kCategories};
  }

  // Capturable: one batch, the codes drawn on the device, the schedule redone by before_replay.
  bool cuda_graph_capable() const override { return true; }
  Losses train_step(const Batch& batch, Step& step) override {
    schedule_lr(step);
    const Tensor& x = batch.images;
    const Codes c = prior(x.size(0), nullptr);
    const Tensor fake = generate(c);
    // D and Q: descend −V(D, G) − λ L_I on the data and on the fakes, G held fixed.
    const Tensor real_logits = d_logits(discriminator_->trunk->forward(x));
    const Tensor fake_features = discriminator_->trunk->forward(fake.detach());
    const Tensor fake_logits = d_logits(fake_features);
    const Tensor d_loss = gan::discriminator_loss(real_logits, fake_logits);
    gan::descend(*d_opt_, d_loss - information(fake_features, c).weighted);
    // G: descend −log D(G(z, c)) − λ L_I through the updated D and Q.
    const Tensor features = discriminator_->trunk->forward(fake);
    const Tensor g_loss = gan::generator_loss(d_logits(features), gan::GeneratorLoss::NonSaturating);
    const Information info = information(features, c);
    gan::descend(*g_opt_, g_loss - info.weighted);
    NoGrad ng;
    return step_losses({{"d_loss", d_loss},
                        {"g_loss", g_loss},
                        {"L_I", info.weighted},
                        {"L_I(c1)", info.categorical},
                        {"D(x)", mean(sigmoid(real_logits))},
                        {"D(G(z))", mean(sigmoid(fake_logits))}});
  }

  // n samples [n, 1, 28, 28] in [−1, 1]; c₁ = c.codes (int64 [n] in [0, 10), on
  // any device) when given, else drawn from its prior, as z, c₂ and c₃ are (from g).
  // An Error when c.codes is not [n].
  Tensor sample(int64_t n, const Condition& c, Generator& g) override {
    NoGrad ng;
    Codes codes;
    if (c.codes.defined()) {
      LOOM_CHECK(c.codes.dim() == 1 && c.codes.size(0) == n, "infogan: expected codes [", n, "], got ",
                 c.codes.shape());
      codes.z = noise(n, &g);
      codes.categorical = c.codes.to(device_);
      codes.continuous = uniform({n, kContinuous}, -1, 1, opts(), &g);
    } else {
      codes = prior(n, &g);
    }
    return generate(codes);
  }

  // Without codes, the paper's Figure 2 layout: c₁ = 0..9 down the 10 rows, c₂
  // from −1 to 1 along max(1, n / 10) columns (0 for one column), c₃ = 0, and one
  // z for the whole grid, so rows differ only in c₁ and columns only in c₂. With
  // codes: n samples of them in a square grid.
  GridLayout grid_layout(int64_t n, const Condition& c) const override {
    if (c.codes.defined()) return {n, 0};
    const int64_t columns = std::max<int64_t>(1, n / kCategories);
    return {kCategories * columns, columns};
  }
  SampleGrid sample_grid(int64_t n, const Condition& c, Generator& g) override {
    if (c.codes.defined()) return {sample(n, c, g), 0};
    const auto [m, columns] = grid_layout(n, c);
    std::vector<int64_t> c1;
    std::vector<float> cont;
    for (int64_t row = 0; row < kCategories; ++row)
      for (int64_t col = 0; col < columns; ++col) {
        c1.push_back(row);
        cont.push_back(columns == 1 ? 0.0f : static_cast<float>(-1.0 + 2.0 * static_cast<double>(col) / static_cast<double>(columns - 1)));
        cont.push_back(0.0f);
      }
    NoGrad ng;
    Codes codes;
    codes.z = expand(randn({1, latent_}, opts(), &g), {m, latent_});
    codes.categorical = from_vector(c1, {m}).to(device_);
    codes.continuous = from_vector(cont, {m, kContinuous}).to(device_);
    return {generate(codes), columns};
  }

  // On held-out images against as many fakes from a fixed stream: the
  // discriminator's loss, L_I(c₁), and "q_accuracy", how often Q's most likely
  // c₁ is the code the fake was drawn with.
  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    Generator g(0);
    const Codes c = prior(batch.images.size(0), &g);
    const Tensor features = discriminator_->trunk->forward(generate(c));
    const Information info = information(features, c);
    return {{"d_loss", gan::discriminator_loss(d_logits(discriminator_->trunk->forward(batch.images)), d_logits(features)).item()},
            {"L_I(c1)", info.categorical.item()},
            {"q_accuracy", mean(eq(argmax(slice(discriminator_->q->forward(features), 1, 0, kCategories), 1), c.categorical).to(DType::Float64)).item()}};
  }

 private:
  struct Codes {
    Tensor z;            // float32 [B, latent]
    Tensor categorical;  // int64 [B]: c₁
    Tensor continuous;   // float32 [B, 2]: c₂, c₃
  };
  struct Information {
    Tensor categorical;  // L_I of c₁
    Tensor weighted;     // λ_cat L_I(c₁) + λ_cont L_I(c₂, c₃)
  };

  TensorOptions opts() const { return TensorOptions{DType::Float32, device_}; }
  // z, c₁, c₂, c₃ from their priors, in that order, from g (nullptr: the default generator).
  Codes prior(int64_t n, Generator* g) const {
    Codes c;
    c.z = noise(n, g);
    c.categorical = randint(kCategories, {n}, opts(), g);
    c.continuous = uniform({n, kContinuous}, -1, 1, opts(), g);
    return c;
  }
  Tensor generate(const Codes& c) {
    return (*generator_)(concat({c.z, one_hot(c.categorical, kCategories), c.continuous}, 1));
  }
  Tensor d_logits(const Tensor& features) { return reshape(discriminator_->d->forward(features), {features.size(0)}); }
  // L_I(G, Q) of the codes c from the trunk's features of G(z, c).
  Information information(const Tensor& features, const Codes& c) {
    const Tensor q = discriminator_->q->forward(features);
    const Tensor mu = slice(q, 1, kCategories, kCategories + kContinuous);
    const Tensor log_var = learn_std_ ? slice(q, 1, kCategories + kContinuous, kCategories + 2 * kContinuous)
                                      : zeros({1}, opts());
    Information info;
    info.categorical = gan::categorical_information(slice(q, 1, 0, kCategories), c.categorical);
    info.weighted = lambda_cat_ * info.categorical + lambda_cont_ * gan::gaussian_information(c.continuous, mu, log_var);
    return info;
  }

  double lambda_cat_, lambda_cont_;
  bool learn_std_;
  std::shared_ptr<nn::Sequential> generator_;
  std::shared_ptr<Discriminator> discriminator_;
};

}  // namespace

std::unique_ptr<Model> make_infogan(const Config& c) { return std::make_unique<InfoGan>(c); }
std::vector<OptionSpec> options_infogan() {
  std::vector<OptionSpec> o = adam_options(2e-4, 0.5, 0.999);
  o.front().help = "learning rate of D and Q (appendix C: 2e-4)";
  o.push_back(real_option("g_lr", 1e-3, Range::positive(), "learning rate of G (appendix C: 1e-3)"));
  o.push_back(latent_dim_option(62));
  o.push_back(integer_option("width", 64, Range::closed(1, 1024),
                             "w: D's convs have w and 2w channels and its FC 16w units (G mirrors them); 64 as the paper"));
  o.push_back(real_option("lambda_cat", 1, Range::at_least(0), "lambda: weight of L_I for the categorical code c1"));
  o.push_back(real_option("lambda_cont", 1, Range::at_least(0), "lambda: weight of L_I for the continuous codes c2, c3"));
  o.push_back(switch_option("learn_std", "Q learns the std of c2, c3 per sample (default: fixed at 1)"));
  o.push_back(gan::lr_schedule_option());
  return o;
}

}  // namespace loom::models
