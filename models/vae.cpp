// Variational autoencoder (Kingma & Welling 2014) on Fashion-MNIST.
//
//   q(z|x) = N(μ(x), diag σ²(x)),  p(z) = N(0, I),  p(x|z) = Bernoulli(sigmoid(f(z)))
//   ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))  ≤  log p(x)
// The expectation uses one reparameterized sample z = μ + σ ⊙ ε, ε ~ N(0, I),
// so the gradient flows through μ and σ (the reparameterization trick); the KL
// is the closed form for diagonal Gaussians. Evaluation also reports the
// importance-weighted bound (Burda et al. 2016) with k samples, which is
// tighter: ELBO ≤ IWAE_k ≤ log p(x).
#include <cmath>

#include "models/model.h"

namespace loom::models {
namespace {

class Vae : public Model {
 public:
  explicit Vae(const Config& c) : device_(c.device), latent_(c.integer("latent_dim")) {
    using namespace nn;
    encoder_ = std::make_shared<Sequential>(std::vector<ModulePtr>{
        std::make_shared<Flatten>(), std::make_shared<Linear>(784, 400), std::make_shared<ReLU>(),
        std::make_shared<Linear>(400, 2 * latent_)});
    decoder_ = std::make_shared<Sequential>(std::vector<ModulePtr>{
        std::make_shared<Linear>(latent_, 400), std::make_shared<ReLU>(), std::make_shared<Linear>(400, 784)});
    encoder_->to(device_);
    decoder_->to(device_);
    std::vector<Tensor> params = encoder_->parameters();
    for (const Tensor& p : decoder_->parameters()) params.push_back(p);
    opt_ = std::make_unique<optim::Adam>(params, adam_from(c));
  }

  ModelKind kind() const override { return ModelKind::LatentVariable; }
  DataSpec data_spec() const override { return {.lo = 0, .hi = 1, .binarize = true}; }

  Losses train_step(const Batch& batch, Step&) override {
    Terms t = terms(batch.images, 1, nullptr);
    Tensor loss = -mean(t.log_px_z - t.kl);
    opt_->zero_grad();
    backward(loss);
    opt_->step();
    NoGrad ng;
    return {{"loss", loss.item()}, {"kl", mean(t.kl).item()}};
  }

  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    const Tensor& images = batch.images;
    const int64_t k = 16;
    Terms t = terms(images, k, nullptr);
    // log p(x,z_i)/q(z_i|x) per sample: [k, B]; IWAE_k = logsumexp_i(·) − log k.
    Tensor log_w = reshape(t.log_px_z + t.log_pz - t.log_qz, {k, images.size(0)});
    Tensor elbo = mean(t.log_px_z - t.kl);
    Tensor iwae = mean(logsumexp(log_w, {0}) - std::log(static_cast<double>(k)));
    return {{"elbo", elbo.item()}, {"iwae16", iwae.item()}, {"kl", mean(t.kl).item()}};
  }

  Tensor sample(int64_t n, const Condition&, Generator& g) override {
    NoGrad ng;
    Tensor z = randn({n, latent_}, TensorOptions{DType::Float32, device_}, &g);
    return reshape(sigmoid((*decoder_)(z)), {n, 1, 28, 28});
  }

  std::vector<std::pair<std::string, nn::Module*>> modules() override {
    return {{"encoder", encoder_.get()}, {"decoder", decoder_.get()}};
  }
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() override { return {{"adam", opt_.get()}}; }

 private:
  struct Terms {
    Tensor log_px_z, kl, log_pz, log_qz;  // per sample, [k·B]
  };

  // k reparameterized samples per image, stacked as [k·B].
  Terms terms(const Tensor& images, int64_t k, Generator* g) {
    const int64_t b = images.size(0);
    Tensor h = (*encoder_)(images);
    Tensor mu = slice(h, 1, 0, latent_), log_var = slice(h, 1, latent_, 2 * latent_);
    Tensor x = reshape(images, {b, 784});
    if (k > 1) {
      mu = reshape(expand(unsqueeze(mu, 0), {k, b, latent_}), {k * b, latent_});
      log_var = reshape(expand(unsqueeze(log_var, 0), {k, b, latent_}), {k * b, latent_});
      x = reshape(expand(unsqueeze(x, 0), {k, b, 784}), {k * b, 784});
    }
    Tensor eps = randn(mu.shape(), mu.options(), g);
    Tensor z = mu + exp(log_var * 0.5) * eps;
    Tensor logits = (*decoder_)(z);
    Terms t;
    // log Bernoulli(x | sigmoid(l)) = −BCE(l, x)
    t.log_px_z = -sum(binary_cross_entropy_with_logits(logits, x, Reduction::None), {1});
    Tensor zero = zeros_like(mu);
    t.kl = sum(kl_diag_gaussians(mu, log_var, zero, zero), {1});
    t.log_pz = sum(gaussian_log_prob(z, zero, zero), {1});
    t.log_qz = sum(gaussian_log_prob(z, mu, log_var), {1});
    return t;
  }

  Device device_;
  int64_t latent_;
  std::shared_ptr<nn::Sequential> encoder_, decoder_;
  std::unique_ptr<optim::Adam> opt_;
};

}  // namespace

std::unique_ptr<Model> make_vae(const Config& c) { return std::make_unique<Vae>(c); }
std::vector<OptionSpec> options_vae() {
  std::vector<OptionSpec> o = adam_options(1e-3, 0.9, 0.999);
  o.push_back(latent_dim_option(20));
  return o;
}

}  // namespace loom::models
