// The adversarial autoencoder (Makhzani et al. 2016, "Adversarial Autoencoders");
// the interface and the priors are described in models/gan/aae.h.
//
// It lives with the GANs rather than the VAE: it has no posterior variance, no
// reparameterized draw and no ELBO to share, while its regularizer is the GAN value
// function (Goodfellow et al. 2014, eq. 1) played on the codes,
//   min_q max_D  E_{z~p(z)}[log D(z)] + E_{x~p_data}[log(1 − D(q(x)))],
// with the encoder q as the generator (gan::discriminator_loss, gan::generator_loss).
// At the optimum the aggregated posterior q(z) equals p(z) (Thm. 1 of the GAN
// paper), so decoding prior draws gives samples of the data (§2).
//
// Training, per minibatch (§2), each phase with its own Adam optimizer:
//   (1) reconstruction: encoder and decoder descend −log p(x | q(x)) (Bernoulli pixels);
//   (2) regularization, D: D descends −log D(z) − log(1 − D(q(x))), z ~ p(z);
//   (3) regularization, generator: the encoder descends −log D(q(x)) (the
//       non-saturating loss; the paper's §2 updates the encoder "to confuse D").
// (1) uses --lr; (2) and (3) use --reg-lr, as the paper gives the reconstruction
// and regularization phases their own learning rates (App. A: SGD with momentum;
// Adam here, as in the common PyTorch ports). Both default to 1e-3 with β₁ = 0.5
// (DCGAN's, for the adversarial phases): in 300 steps on Fashion-MNIST (h = 256,
// mixture prior) --reg-lr 2e-4 left the codes spread out to |z| ≈ 5, far outside
// the ring, 1e-3 put them on its scale, and 5e-3 kept D from learning (held-out
// d_accuracy 0.40) while the reconstruction stalled (374 nats against 284).
//
// Networks (the paper's MNIST setup, App. A, at --hidden 1000): the encoder
// 784-h-h-d and the decoder d-h-h-784 (ReLU; a linear code, Bernoulli logits out),
// the discriminator d-h-h-1 (ReLU). Fashion-MNIST, binarized; --latent-dim 2 (the
// paper's pictures: `loom train` draws the codes of the test images by class
// beside the prior, codes.png).
#include "models/gan/aae.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "models/gan/adversarial.h"

namespace loom::models {
namespace {

constexpr int64_t kSide = 28, kPixels = kSide * kSide;
constexpr double kPi = std::numbers::pi;
constexpr double kHdrMass = 0.95;         // evaluate()'s in_hdr: the region holding 95% of the prior
constexpr int64_t kHdrDraws = 20000;      // prior draws its boundary is estimated from
constexpr uint64_t kHdrSeed = 0xAAE95ull;  // ... from a fixed stream: every evaluation alike

bool two_dimensional(AaePrior p) { return p != AaePrior::Gaussian; }

const char* prior_name(AaePrior p) {
  return p == AaePrior::Gaussian ? "gaussian" : p == AaePrior::Mixture ? "mixture" : "swissroll";
}

double mixture_angle(int64_t k) { return 2 * kPi * static_cast<double>(k) / AaeMixture::components; }

void check_images(const Tensor& images) {
  LOOM_CHECK(images.dim() == 4 && images.size(1) == 1 && images.size(2) == kSide && images.size(3) == kSide,
             "aae: images must be [B, 1, 28, 28], got ", images.shape());
}

}  // namespace

AaePrior parse_aae_prior(const std::string& name) {
  if (name == "gaussian") return AaePrior::Gaussian;
  if (name == "mixture") return AaePrior::Mixture;
  if (name == "swissroll") return AaePrior::SwissRoll;
  throw Error(str("aae: --prior must be gaussian, mixture or swissroll, got '", name, "'"));
}

Tensor sample_aae_prior(AaePrior p, int64_t n, int64_t dim, Device device, Generator& g) {
  LOOM_CHECK(n >= 1 && dim >= 1, "aae: prior draws need n >= 1 and dim >= 1, got n = ", n, ", dim = ", dim);
  LOOM_CHECK(!two_dimensional(p) || dim == 2, "aae: --prior ", prior_name(p), " is 2-D and needs --latent-dim 2, got ",
             dim);
  const TensorOptions f32{DType::Float32, device};
  if (p == AaePrior::Gaussian) return randn({n, dim}, f32, &g);
  // The 2-D priors need sines and cosines of random angles: drawn on the CPU in
  // float64 (Philox gives every device the same numbers), then moved.
  const TensorOptions f64{DType::Float64};
  const std::vector<double> u = rand({n}, f64, &g).to_vector<double>();  // U(0, 1]
  std::vector<double> z(static_cast<size_t>(2 * n));
  if (p == AaePrior::Mixture) {
    const std::vector<double> e = randn({n, 2}, f64, &g).to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      // 1 − u is in [0, 1): k = ⌊10(1 − u)⌋ in 0..9, each with probability 1/10.
      const int64_t k = std::min<int64_t>(AaeMixture::components - 1,
                                          static_cast<int64_t>((1 - u[i]) * AaeMixture::components));
      const double th = mixture_angle(k), c = std::cos(th), s = std::sin(th);
      const double a = AaeMixture::sigma_radial * e[2 * i] + AaeMixture::radius,
                   b = AaeMixture::sigma_tangential * e[2 * i + 1];
      z[2 * i] = c * a - s * b;
      z[2 * i + 1] = s * a + c * b;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const double s = std::sqrt(1 - u[i]);
      z[2 * i] = 3 * s * std::cos(4 * kPi * s);
      z[2 * i + 1] = 3 * s * std::sin(4 * kPi * s);
    }
  }
  return from_vector(z, {n, 2}, f64).to(DType::Float32).to(device);
}

Tensor aae_prior_log_density(AaePrior p, const Tensor& z) {
  LOOM_CHECK(z.dim() == 2 && z.size(0) >= 1, "aae: codes must be [N, dim], got ", z.shape());
  LOOM_CHECK(p != AaePrior::SwissRoll, "aae: the swiss roll prior lies on a curve and has no density");
  LOOM_CHECK(!two_dimensional(p) || z.size(1) == 2, "aae: --prior ", prior_name(p), " is 2-D, got codes ", z.shape());
  const int64_t n = z.size(0), d = z.size(1);
  const std::vector<double> v = z.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  std::vector<double> out(static_cast<size_t>(n));
  const double log_2pi = std::log(2 * kPi);
  for (int64_t i = 0; i < n; ++i) {
    const double* zi = v.data() + i * d;
    if (p == AaePrior::Gaussian) {
      double sq = 0;
      for (int64_t j = 0; j < d; ++j) sq += zi[j] * zi[j];
      out[i] = -0.5 * sq - 0.5 * static_cast<double>(d) * log_2pi;
      continue;
    }
    // log (1/10) Σ_k N(R(−θ_k) z − (radius, 0); 0, diag(σ_r², σ_t²)), summed stably.
    std::vector<double> lk(AaeMixture::components);
    for (int64_t k = 0; k < AaeMixture::components; ++k) {
      const double th = mixture_angle(k), c = std::cos(th), s = std::sin(th);
      const double a = (c * zi[0] + s * zi[1] - AaeMixture::radius) / AaeMixture::sigma_radial,
                   b = (-s * zi[0] + c * zi[1]) / AaeMixture::sigma_tangential;
      lk[k] = -0.5 * (a * a + b * b) - log_2pi - std::log(AaeMixture::sigma_radial * AaeMixture::sigma_tangential);
    }
    const double m = *std::max_element(lk.begin(), lk.end());
    double sum = 0;
    for (double l : lk) sum += std::exp(l - m);
    out[i] = m + std::log(sum / AaeMixture::components);
  }
  return from_vector(out, {n}, TensorOptions{DType::Float64});
}

double aae_prior_hdr_threshold(AaePrior p, int64_t dim, double mass, int64_t draws, Generator& g) {
  LOOM_CHECK(mass > 0 && mass < 1 && draws >= 1, "aae: a highest-density region needs mass in (0, 1) and draws >= 1");
  std::vector<double> lp = aae_prior_log_density(p, sample_aae_prior(p, draws, dim, Device::cpu(), g)).to_vector<double>();
  const auto q = lp.begin() + static_cast<std::ptrdiff_t>((1 - mass) * static_cast<double>(draws));
  std::nth_element(lp.begin(), q, lp.end());
  return *q;
}

Aae::Aae(const Config& c)
    : device_(c.device), prior_(parse_aae_prior(c.text("prior"))), latent_(c.integer("latent_dim")) {
  LOOM_CHECK(!two_dimensional(prior_) || latent_ == 2, "aae: --prior ", c.text("prior"),
             " is 2-D and needs --latent-dim 2, got --latent-dim ", latent_);
  const int64_t h = c.integer("hidden");
  auto relu = [](const Tensor& x) { return loom::relu(x); };
  encoder_ = nn::mlp({kPixels, h, h, latent_}, relu);
  decoder_ = nn::mlp({latent_, h, h, kPixels}, relu);
  discriminator_ = nn::mlp({latent_, h, h, 1}, relu);
  encoder_->to(device_);
  decoder_->to(device_);
  discriminator_->to(device_);
  std::vector<Tensor> ae = encoder_->parameters();
  for (const Tensor& p : decoder_->parameters()) ae.push_back(p);
  optim::AdamOptions reg = adam_from(c);
  reg.lr = c.real("reg_lr");
  ae_opt_ = std::make_unique<optim::Adam>(ae, adam_from(c));
  d_opt_ = std::make_unique<optim::Adam>(discriminator_->parameters(), reg);
  g_opt_ = std::make_unique<optim::Adam>(encoder_->parameters(), reg);
}

Losses Aae::train_step(const Batch& batch, Step&) {
  const Tensor recon = reconstruction_phase(batch.images);
  const DiscriminatorStep d = discriminator_phase(batch.images);
  const Tensor g = generator_phase(batch.images);
  return step_losses({{"recon", recon}, {"d_loss", d.loss}, {"g_loss", g}, {"D(p)", d.d_prior}, {"D(q)", d.d_codes}});
}

Tensor Aae::reconstruction_phase(const Tensor& images) {
  const Tensor x = reshape(images, {images.size(0), kPixels});
  Tensor loss = binary_cross_entropy_with_logits(decode_logits(encode(images)), x, Reduction::Sum) /
                static_cast<double>(images.size(0));
  gan::descend(*ae_opt_, loss);
  return loss.detach();
}

Aae::DiscriminatorStep Aae::discriminator_phase(const Tensor& images) {
  Tensor codes;
  {
    NoGrad ng;  // D's update does not reach the encoder
    codes = encode(images);
  }
  const Tensor prior = sample_aae_prior(prior_, images.size(0), latent_, device_, default_generator());
  const Tensor prior_logits = discriminate(prior), code_logits = discriminate(codes);
  Tensor loss = gan::discriminator_loss(prior_logits, code_logits);
  gan::descend(*d_opt_, loss);
  NoGrad ng;
  return {loss.detach(), mean(sigmoid(prior_logits)), mean(sigmoid(code_logits))};
}

Tensor Aae::generator_phase(const Tensor& images) {
  Tensor loss = gan::generator_loss(discriminate(encode(images)), gan::GeneratorLoss::NonSaturating);
  gan::descend(*g_opt_, loss);  // also fills D's gradients, which d_opt_ clears before its next step
  return loss.detach();
}

Tensor Aae::sample(int64_t n, const Condition&, Generator& g) {
  NoGrad ng;
  return reshape(sigmoid(decode_logits(sample_aae_prior(prior_, n, latent_, device_, g))), {n, 1, kSide, kSide});
}

LatentCodes Aae::latent_codes(const Tensor& images, Generator& g) {
  if (latent_ != 2) return {};
  NoGrad ng;
  return {encode(images), sample_aae_prior(prior_, images.size(0), 2, device_, g)};
}

Losses Aae::evaluate(const Batch& batch, const EvalOptions&) {
  const Tensor& images = batch.images;
  const int64_t b = images.size(0);
  const Tensor codes = encode(images);
  const Tensor x = reshape(images, {b, kPixels});
  Generator g(0);
  const Tensor prior_logits = discriminate(sample_aae_prior(prior_, b, latent_, device_, g)),
               code_logits = discriminate(codes);
  const Tensor zero = zeros({1}, TensorOptions{DType::Float32, device_});
  const double right = sum(gt(prior_logits, zero)).item() + sum(le(code_logits, zero)).item();
  Losses l{{"recon", binary_cross_entropy_with_logits(decode_logits(codes), x, Reduction::Sum).item() /
                         static_cast<double>(b)},
           {"d_loss", gan::discriminator_loss(prior_logits, code_logits).item()},
           {"d_accuracy", right / static_cast<double>(2 * b)}};
  if (prior_ != AaePrior::SwissRoll)
    l["in_hdr"] = mean(ge(aae_prior_log_density(prior_, codes), scalar(hdr_threshold(), {DType::Float64}))).item();
  return l;
}

double Aae::hdr_threshold() {
  if (!hdr_known_) {
    Generator g(kHdrSeed);
    hdr_threshold_ = aae_prior_hdr_threshold(prior_, latent_, kHdrMass, kHdrDraws, g);
    hdr_known_ = true;
  }
  return hdr_threshold_;
}

std::vector<std::pair<std::string, nn::Module*>> Aae::modules() {
  return {{"encoder", encoder_.get()}, {"decoder", decoder_.get()}, {"discriminator", discriminator_.get()}};
}

std::vector<std::pair<std::string, optim::Optimizer*>> Aae::optimizers() {
  return {{"reconstruction", ae_opt_.get()}, {"discriminator", d_opt_.get()}, {"generator", g_opt_.get()}};
}

Tensor Aae::encode(const Tensor& images) {
  check_images(images);
  return (*encoder_)(reshape(images, {images.size(0), kPixels}));
}

Tensor Aae::decode_logits(const Tensor& z) { return (*decoder_)(z); }

Tensor Aae::discriminate(const Tensor& z) { return reshape((*discriminator_)(z), {z.size(0)}); }

std::unique_ptr<Model> make_aae(const Config& c) { return std::make_unique<Aae>(c); }
std::vector<OptionSpec> options_aae() {
  std::vector<OptionSpec> o = adam_options(1e-3, 0.5, 0.999);
  o.push_back(real_option("reg_lr", 1e-3, Range::positive(),
                          "Adam learning rate of the regularization phases: the code discriminator and the encoder as its generator"));
  o.push_back(latent_dim_option(2));
  o.push_back(choice_option("prior", "gaussian", {"gaussian", "mixture", "swissroll"},
                            "p(z) imposed on the codes: N(0, I), a ring of 10 2-D Gaussians, or a 2-D swiss roll"));
  o.push_back(integer_option("hidden", 1000, Range::closed(1, 4096), "width h: encoder 784-h-h-d, decoder d-h-h-784, D d-h-h-1"));
  return o;
}

}  // namespace loom::models
