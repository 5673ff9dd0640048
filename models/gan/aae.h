// The adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow & Frey 2016,
// "Adversarial Autoencoders", §2): a deterministic autoencoder whose code
// distribution q(z) = ∫ q(z|x) p_data(x) dx is matched to a prior p(z) by a GAN on
// the codes, in place of the VAE's KL(q(z|x) ‖ p(z)) term. The prior need only be
// sampled, so it may have no closed-form density or KL: a ring of ten elongated
// Gaussians or a swiss roll (the paper's Figures 2 and 4). models/gan/aae.cpp has
// the training step and the networks; this header is what its tests reach.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "models/model.h"

namespace loom::models {

// The prior p(z) imposed on the codes (--prior).
enum class AaePrior {
  Gaussian,   // N(0, I) in latent_dim dimensions
  Mixture,    // 10 equally likely 2-D Gaussians on a ring (kAaeMixture); 2-D only
  SwissRoll,  // a 2-D spiral, uniform along its arc parameter (sample_aae_prior); 2-D only
};
// "gaussian", "mixture", "swissroll" (as --prior spells them); an Error naming --prior otherwise.
AaePrior parse_aae_prior(const std::string& name);

// The ring of the mixture prior, as the AAE reference sampler draws it
// (musyoku/adversarial-autoencoder, aae/sampler.py): component k of 10 is
// N(0, diag(σ_r², σ_t²)) rotated by θ_k = 2πk/10 and shifted `radius` along θ_k,
// so its mean is radius·(cos θ_k, sin θ_k), σ_r = 0.5 along the ray and σ_t = 0.05
// across it: ten petals that meet near the origin.
struct AaeMixture {
  static constexpr int64_t components = 10;
  static constexpr double radius = 1.4, sigma_radial = 0.5, sigma_tangential = 0.05;
};

// n draws from prior p in `dim` dimensions: float32 [n, dim] on `device`, every
// random number from g (the same draws on every device). Gaussian: randn. Mixture:
// a component k = ⌊10u⌋, u ~ U[0, 1), and (a, b) ~ N(0, diag(σ_r², σ_t²)) mapped to
// R(θ_k)·(a, b) + radius·(cos θ_k, sin θ_k). Swiss roll (the same reference sampler):
// s = √u, u ~ U[0, 1), z = 3s·(cos 4πs, sin 4πs), a spiral of two turns out to
// radius 3 with as many points per unit of u (not of arc length); it has no width,
// so it has no density in the plane. Throws loom::Error for n < 1, dim < 1, or a
// 2-D prior with dim ≠ 2 (naming --latent-dim).
Tensor sample_aae_prior(AaePrior p, int64_t n, int64_t dim, Device device, Generator& g);

// log p(z) of codes z [N, dim] (any float dtype and device) under p: float64 [N] on
// the CPU, nats. The swiss roll has no density: an Error.
Tensor aae_prior_log_density(AaePrior p, const Tensor& z);

// The boundary t of the prior's highest-density region holding `mass` of it,
// {z : p(z) ≥ t}: the (1 − mass) quantile of log p(z) over `draws` prior draws from
// g (nats). For N(0, I₂) and mass 0.95, t = −χ²₂(0.95)/2 − log 2π = ln 0.05 − log 2π.
double aae_prior_hdr_threshold(AaePrior p, int64_t dim, double mass, int64_t draws, Generator& g);

class Aae : public Model {
 public:
  // c holds the aae options (resolve_config). Throws loom::Error for an unknown
  // --prior or a 2-D prior with --latent-dim other than 2.
  explicit Aae(const Config& c);

  ModelKind kind() const override { return ModelKind::Sampler; }
  // Fashion-MNIST in [0, 1], binarized afresh each batch: the decoder's Bernoulli
  // likelihood is then a proper one and the reconstruction loss is in nats.
  DataSpec data_spec() const override { return {.lo = 0, .hi = 1, .binarize = true}; }
  // The paper's §2 step on one minibatch: reconstruction_phase, discriminator_phase,
  // generator_phase. Returns "recon" (nats per image), "d_loss", "g_loss", and
  // "D(p)" and "D(q)", D's mean probability that prior draws and codes are prior draws.
  Losses train_step(const Batch& batch, Step& step) override;
  // Capturable as a CUDA graph with the Gaussian prior (drawn on the device); the 2-D
  // priors are drawn on the host and copied in.
  bool cuda_graph_capable() const override { return prior_ == AaePrior::Gaussian; }
  // n Bernoulli means sigmoid(f(z)) of prior draws z (drawn from g): [n, 1, 28, 28] in [0, 1].
  Tensor sample(int64_t n, const Condition& c, Generator& g) override;
  // With latent_dim 2: the codes of images [B, 1, 28, 28] and B prior draws from g; else nothing.
  LatentCodes latent_codes(const Tensor& images, Generator& g) override;
  // Batch means over held-out images: "recon" (−log p(x|z(x)), nats per image),
  // "d_loss" (D's loss on their codes against as many prior draws from a fixed stream),
  // "d_accuracy" (the fraction of both D classifies right at threshold 1/2: 1/2 when
  // the codes cannot be told from the prior), and for the priors with a density
  // "in_hdr", the fraction of codes inside the prior's 95% highest-density region
  // {z : p(z) ≥ t}, t estimated once from 20000 prior draws (0.95 for codes
  // distributed as the prior).
  Losses evaluate(const Batch& batch, const EvalOptions& o) override;
  std::vector<std::pair<std::string, nn::Module*>> modules() override;
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() override;

  // The three phases of §2, each one Adam step of its own optimizer, returning its loss
  // (a scalar on the device).
  // (1) Reconstruction: encoder and decoder descend −log p(x | z = q(x)), nats per image.
  Tensor reconstruction_phase(const Tensor& images);
  // (2) Regularization, discriminator: D descends gan::discriminator_loss with
  //     prior draws (default generator) as real and the codes q(x) as fake.
  struct DiscriminatorStep {
    Tensor loss, d_prior, d_codes;  // the loss; mean D(z) on prior draws and on codes
  };
  DiscriminatorStep discriminator_phase(const Tensor& images);
  // (3) Regularization, generator: the encoder descends the non-saturating
  //     gan::generator_loss, −log D(q(x)), to make its codes pass for prior draws.
  Tensor generator_phase(const Tensor& images);

  // The code z = q(x) of images [B, 1, 28, 28]: [B, latent_dim]. An Error for another shape.
  Tensor encode(const Tensor& images);
  int64_t latent_dim() const { return latent_; }

 private:
  Tensor decode_logits(const Tensor& z);  // [B, 784] Bernoulli logits
  Tensor discriminate(const Tensor& z);   // [B] logits of "z is a prior draw"
  double hdr_threshold();                 // aae_prior_hdr_threshold for in_hdr, computed once

  Device device_;
  AaePrior prior_;
  int64_t latent_;
  double hdr_threshold_ = 0;
  bool hdr_known_ = false;
  std::shared_ptr<nn::Sequential> encoder_, decoder_, discriminator_;
  // reconstruction: encoder + decoder; D; the encoder as the code generator.
  std::unique_ptr<optim::Adam> ae_opt_, d_opt_, g_opt_;
};

}  // namespace loom::models
