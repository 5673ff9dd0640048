// Variational autoencoder (Kingma & Welling 2014) on Fashion-MNIST, and its
// importance-weighted variant (Burda et al. 2016); the interface is models/vae.h.
//
//   ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))  ≤  IWAE_k(x)  ≤  IWAE_{k+1}(x)  ≤  log p(x)
// Expectations use reparameterized draws z = μ + σ ⊙ ε, ε ~ N(0, I), so the
// gradient flows through μ and σ (the reparameterization trick); the default
// loss takes one draw and the closed-form KL for diagonal Gaussians. The MLP and
// the convolutional variants differ only in the two networks built here: every
// bound and estimate is written once, on (μ, log σ²) and the decoder's logits.
#include "models/vae/vae.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace loom::models {
namespace {

constexpr int64_t kSide = 28, kPixels = kSide * kSide;
constexpr int64_t kEvalDraws = 16;  // evaluate()'s "elbo" and "iwae16"

struct Networks {
  std::shared_ptr<nn::Sequential> encoder, decoder;
};

// The two networks of VaeArch (models/vae.h says where each comes from).
Networks build_networks(VaeArch arch, int64_t latent) {
  using namespace nn;
  auto relu = [] { return std::make_shared<ReLU>(); };
  if (arch == VaeArch::Mlp)
    return {std::make_shared<Sequential>(std::vector<ModulePtr>{std::make_shared<Flatten>(),
                                                                std::make_shared<Linear>(kPixels, 400), relu(),
                                                                std::make_shared<Linear>(400, 2 * latent)}),
            std::make_shared<Sequential>(std::vector<ModulePtr>{std::make_shared<Linear>(latent, 400), relu(),
                                                                std::make_shared<Linear>(400, kPixels)})};
  const ConvOptions down{.params = {.stride = {2, 2}, .padding = {1, 1}}};
  const ConvOptions up{.params = {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}}};
  const ConvOptions same{.params = {.padding = {1, 1}}};
  const int64_t features = 64 * 7 * 7;
  return {std::make_shared<Sequential>(std::vector<ModulePtr>{
              std::make_shared<Conv2d>(1, 32, 3, down), relu(), std::make_shared<Conv2d>(32, 64, 3, down), relu(),
              std::make_shared<Flatten>(), std::make_shared<Linear>(features, 2 * latent)}),
          std::make_shared<Sequential>(std::vector<ModulePtr>{
              std::make_shared<Linear>(latent, features), relu(), std::make_shared<Unflatten>(Shape{64, 7, 7}),
              std::make_shared<ConvTranspose2d>(64, 64, 3, up), relu(),
              std::make_shared<ConvTranspose2d>(64, 32, 3, up), relu(),
              std::make_shared<ConvTranspose2d>(32, 1, 3, same)})};
}

// IWAE_k per image from log weights [k, B]: logsumexp over the k draws − log k, [B]
// (Burda et al. eq. 8); its gradient is eq. 14's Σ_i w̃_i ∇ log w_i.
Tensor iwae_bound(const Tensor& log_w) {
  return logsumexp(log_w, {0}) - std::log(static_cast<double>(log_w.size(0)));
}

void check_images(const Tensor& images) {
  LOOM_CHECK(images.dim() == 4 && images.size(1) == 1 && images.size(2) == kSide && images.size(3) == kSide,
             "vae: images must be [B, 1, 28, 28], got ", images.shape());
}

}  // namespace

Vae::Vae(const Config& c) : device_(c.device), latent_(c.integer("latent_dim")), iwae_k_(c.integer("iwae_k")) {
  LOOM_CHECK(c.text("arch") == "mlp" || c.text("arch") == "conv", "vae: --arch must be mlp or conv, got ", c.text("arch"));
  Networks n = build_networks(c.text("arch") == "conv" ? VaeArch::Conv : VaeArch::Mlp, latent_);
  encoder_ = n.encoder;
  decoder_ = n.decoder;
  encoder_->to(device_);
  decoder_->to(device_);
  std::vector<Tensor> params = encoder_->parameters();
  for (const Tensor& p : decoder_->parameters()) params.push_back(p);
  opt_ = std::make_unique<optim::Adam>(params, adam_from(c));
}

Losses Vae::train_step(const Batch& batch, Step&) {
  const Tensor& images = batch.images;
  const Posterior q = encode(images);
  const Tensor kl = kl_to_prior(q);
  Tensor loss;
  if (iwae_k_ == 0) {
    loss = -mean(draw(q, images, 1).log_px_z - kl);
  } else {
    loss = -mean(iwae_bound(draw(q, images, iwae_k_).log_w()));
  }
  opt_->zero_grad();
  backward(loss);
  opt_->step();
  NoGrad ng;
  return step_losses({{"loss", loss}, {"kl", mean(kl)}});
}

Losses Vae::evaluate(const Batch& batch, const EvalOptions& o) {
  const Tensor& images = batch.images;
  const Posterior q = encode(images);
  const Tensor kl = kl_to_prior(q);
  const Draws d = draw(q, images, kEvalDraws);
  Losses out{{"elbo", mean(d.log_px_z - kl).item()},
             {"iwae16", mean(iwae_bound(d.log_w())).item()},
             {"kl", mean(kl).item()}};
  if (o.importance_samples > 0) {
    out["nll"] = -mean(importance_log_likelihood(images, o.importance_samples)).item();
    out["bits_per_dim"] = out["nll"] / (static_cast<double>(kPixels) * std::log(2.0));
    out["importance_samples"] = static_cast<double>(o.importance_samples);
  }
  return out;
}

Tensor Vae::score(const Tensor& images, const EvalOptions& o) {
  return importance_log_likelihood(images, o.importance_samples > 0 ? o.importance_samples : kDefaultImportanceSamples);
}

Tensor Vae::sample(int64_t n, const Condition&, Generator& g) {
  NoGrad ng;
  Tensor z = randn({n, latent_}, TensorOptions{DType::Float32, device_}, &g);
  return reshape(sigmoid((*decoder_)(z)), {n, 1, kSide, kSide});
}

std::vector<std::pair<std::string, nn::Module*>> Vae::modules() {
  return {{"encoder", encoder_.get()}, {"decoder", decoder_.get()}};
}

std::vector<std::pair<std::string, optim::Optimizer*>> Vae::optimizers() { return {{"adam", opt_.get()}}; }

Vae::Posterior Vae::encode(const Tensor& images) {
  check_images(images);
  Tensor h = (*encoder_)(images);
  return {slice(h, 1, 0, latent_), slice(h, 1, latent_, 2 * latent_)};
}

Tensor Vae::kl_to_prior(const Posterior& q) {
  Tensor zero = zeros_like(q.mu);
  return sum(kl_diag_gaussians(q.mu, q.log_var, zero, zero), {1});
}

Vae::Draws Vae::draw(const Posterior& q, const Tensor& images, int64_t k, Generator* g) {
  LOOM_CHECK(k >= 1, "vae: draws per image must be >= 1, got ", k);
  check_images(images);
  const int64_t b = images.size(0);
  LOOM_CHECK(q.mu.size(0) == b, "vae: a posterior of ", q.mu.size(0), " images drawn for ", b, " images");
  Tensor mu = q.mu, log_var = q.log_var;
  if (k > 1) {  // draw i of image b is row i·B + b
    mu = reshape(expand(unsqueeze(mu, 0), {k, b, latent_}), {k * b, latent_});
    log_var = reshape(expand(unsqueeze(log_var, 0), {k, b, latent_}), {k * b, latent_});
  }
  Tensor eps = randn(mu.shape(), mu.options(), g);
  Tensor z = mu + exp(log_var * 0.5) * eps;
  Tensor logits = reshape((*decoder_)(z), {k, b, kPixels});
  Tensor zero = zeros_like(mu);
  auto per_image = [&](const Tensor& rows) { return reshape(sum(rows, {1}), {k, b}); };
  // log Bernoulli(x | sigmoid(l)) = x·l − softplus(l) (= −BCE(l, x)), x broadcast over the draws:
  // three elementwise passes where binary_cross_entropy_with_logits takes about twelve, and they
  // are most of the cost of importance_log_likelihood.
  return {sum(reshape(images, {b, kPixels}) * logits - softplus(logits), {2}),
          per_image(gaussian_log_prob(z, zero, zero)), per_image(gaussian_log_prob(z, mu, log_var))};
}

Tensor Vae::importance_log_likelihood(const Tensor& images, int64_t K, int64_t chunk, Generator* g) {
  LOOM_CHECK(K >= 1, "vae: importance samples K must be >= 1, got ", K);
  LOOM_CHECK(chunk >= 1, "vae: importance chunk must be >= 1, got ", chunk);
  check_images(images);
  const int64_t b = images.size(0);
  LOOM_CHECK(b >= 1, "vae: importance_log_likelihood of no images");
  NoGrad ng;
  // Blocks of images, each decoded `per_pass` draws per image at a time.
  const int64_t block = std::min(b, chunk), per_pass = std::min(K, std::max<int64_t>(1, chunk / block));
  std::vector<Tensor> blocks;
  for (int64_t i = 0; i < b; i += block) {
    const Tensor x = slice(images, 0, i, std::min(b, i + block));
    const Posterior q = encode(x);
    Tensor lse;  // float64 log Σ w over the draws so far, [block]
    for (int64_t done = 0; done < K; done += per_pass) {
      const Tensor pass = logsumexp(draw(q, x, std::min(per_pass, K - done), g).log_w().to(DType::Float64), {0});
      lse = lse.defined() ? logsumexp(stack({lse, pass}, 0), {0}) : pass;
    }
    blocks.push_back(lse - std::log(static_cast<double>(K)));
  }
  return concat(blocks, 0);
}

std::unique_ptr<Vae> make_vae_model(Config c) {
  return std::make_unique<Vae>(resolve_config(find_model("vae"), std::move(c)));
}

std::unique_ptr<Model> make_vae(const Config& c) { return std::make_unique<Vae>(c); }
std::vector<OptionSpec> options_vae() {
  std::vector<OptionSpec> o = adam_options(1e-3, 0.9, 0.999);
  o.push_back(latent_dim_option(20));
  o.push_back(choice_option("arch", "mlp", {"mlp", "conv"},
                            "encoder and decoder: mlp (784-400-z, Kingma & Welling) or conv (the Keras VAE example)"));
  o.push_back(integer_option("iwae_k", 0, Range::closed(0, 100000),
                             "train on -IWAE_k with k samples (Burda et al. eq. 8); 0: the ELBO, closed-form KL"));
  return o;
}

}  // namespace loom::models
