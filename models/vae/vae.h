// The variational autoencoder (Kingma & Welling 2014) with its variants: an MLP
// or a convolutional encoder/decoder, training on the ELBO or on the
// importance-weighted bound IWAE_k (Burda, Grosse & Salakhutdinov 2016), and
// log p(x) estimated by importance sampling. The model options choose the variant:
// --arch mlp|conv, --iwae-k K (0: the ELBO), --latent-dim, Adam's --lr --b1 --b2.
//
// Every density is per image, in nats, on images [B, 1, 28, 28] with pixels in
// {0, 1} (float32, the model's device) and a latent z of latent_dim
// dimensions:
//   q(z|x) = N(μ(x), diag σ²(x)),  p(z) = N(0, I),  p(x|z) = Π_j Bernoulli(x_j | sigmoid(f_j(z))).
#pragma once

#include <cstdint>
#include <memory>

#include "models/model.h"

namespace loom::models {

// The encoder (images → (μ, log σ²) [B, 2·latent]) and decoder (z → 784 Bernoulli logits).
enum class VaeArch {
  // Kingma & Welling 2014's MLP encoder and decoder (App. C), sized and activated as PyTorch's
  // examples/vae: 784 → 400 → 2·latent and latent → 400 → 784, ReLU.
  Mlp,
  // The Keras VAE example (F. Chollet, keras.io/examples/generative/vae): encoder conv 1→32 and 32→64,
  // 3×3, stride 2, padding 1 (28 → 14 → 7), ReLU, then linear 64·7·7 → 2·latent (Keras has a 16-unit
  // ReLU layer before its μ and log σ² heads; here the conv features feed them directly, as in
  // TensorFlow's CVAE tutorial). Decoder: linear latent → 64·7·7, ReLU, transposed convs 64→64 and
  // 64→32 (3×3, stride 2, padding 1, output padding 1: 7 → 14 → 28), ReLU, and 32→1 (3×3, stride 1,
  // padding 1) giving the logits. About 18 times the MLP decoder's multiply-adds per latent draw.
  Conv,
};

// importance_log_likelihood's defaults. K = 1000 draws per image (the literature reports
// K = 5000: Burda et al. 2016, §5) costs the MLP about 70 CPU-seconds per 1000 images (measured
// on 2 shared CPU cores: 118 s of wall time), so the 10 000 Fashion-MNIST test images take about
// 12 CPU-minutes; the conv decoder costs about 12 times as much per draw. 1024 draws per decoder
// pass bound the memory (a pass's activations: about 10 MiB in the MLP decoder, 170 MiB in the conv one).
inline constexpr int64_t kDefaultImportanceSamples = 1000;
inline constexpr int64_t kDefaultImportanceChunk = 1024;

// The loss --iwae-k selects.
//   0: train on the ELBO with one reparameterized draw and the closed-form KL (Kingma & Welling
  // 2014, eq. 10; their estimator B, eq. 7). k ≥ 1: train on −IWAE_k, Burda et al. eq. 8,
  //   IWAE_k(x) = log (1/k) Σ_i p(x, z_i) / q(z_i|x),  z_1..z_k ~ q(z|x) reparameterized,
  // whose gradient autograd takes through the logsumexp as eqs. 13–14: Σ_i w̃_i ∇ log w_i with
  // the normalized importance weights w̃_i = w_i / Σ_j w_j. k = 1 is the ELBO with the KL
//   estimated from the draw, log q(z|x) − log p(z) (estimator A, eq. 6), not the closed form.

class Vae : public Model {
 public:
  // c holds the vae options (resolve_config). Throws loom::Error for an unknown --arch.
  explicit Vae(const Config& c);

  ModelKind kind() const override { return ModelKind::LatentVariable; }
  DataSpec data_spec() const override { return {.lo = 0, .hi = 1, .binarize = true}; }
  // One Adam step on the loss --iwae-k selects. Returns "loss" (the batch mean of
  // −ELBO or −IWAE_k, nats) and "kl" (the batch mean of the closed-form KL(q(z|x) ‖ p(z))).
  Losses train_step(const Batch& batch, Step& step) override;
  // Capturable as a CUDA graph: one batch, device tensors only, no per-step host state.
  bool cuda_graph_capable() const override { return true; }
  // Batch means, in nats, from 16 draws per image from the default generator: "elbo" (closed-form
  // KL), "iwae16", "kl"; with o.importance_samples = K > 0 also "nll" = −log p̂(x) (the K-sample
  // importance estimate, importance_log_likelihood) and "bits_per_dim" = nll / (784 ln 2).
  Losses evaluate(const Batch& batch, const EvalOptions& o) override;
  // log p̂(x) per image (importance_log_likelihood with K = o.importance_samples, or
  // kDefaultImportanceSamples when 0): float64 [B], nats.
  Tensor score(const Tensor& images, const EvalOptions& o) override;
  // n Bernoulli means sigmoid(f(z)), z ~ N(0, I): [n, 1, 28, 28] in [0, 1].
  Tensor sample(int64_t n, const Condition& c, Generator& g) override;
  std::vector<std::pair<std::string, nn::Module*>> modules() override;
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() override;

  // q(z|x) of images [B, 1, 28, 28]: μ and log σ², each [B, latent_dim]. Throws loom::Error for
  // another image shape.
  struct Posterior {
    Tensor mu, log_var;
  };
  Posterior encode(const Tensor& images);
  // KL(q(z|x) ‖ N(0, I)) in closed form, ½ Σ_d (μ² + σ² − 1 − log σ²): [B], nats.
  static Tensor kl_to_prior(const Posterior& q);

  // The log densities of k reparameterized draws z = μ + σ ⊙ ε per image, each [k, B] (nats):
  // draw i of image b uses row i·B + b of ε = randn([k·B, latent_dim], g) (the default generator
  // when g is null), drawn before the decoder runs.
  struct Draws {
    Tensor log_px_z, log_pz, log_qz;
    // log w = log p(x|z) + log p(z) − log q(z|x), the log importance weights: [k, B].
    Tensor log_w() const { return log_px_z + log_pz - log_qz; }
  };
  // images [B, 1, 28, 28] are those q was encoded from; loom::Error for k < 1 or another shape.
  Draws draw(const Posterior& q, const Tensor& images, int64_t k, Generator* g = nullptr);

  // log p̂(x) = log (1/K) Σ_{i ≤ K} p(x, z_i) / q(z_i|x), z_i ~ q(z|x), per image: float64 [B] on the
  // images' device, nats. This is one draw of IWAE_K, so E[log p̂(x)] ≤ log p(x) and rises to it
  // as K grows (Burda et al. 2016, Theorem 1; the K = 5000 estimate of their §5). The weights of
  // each pass are summed in float64 by logsumexp, and the passes combined the same way; a pass
  // decodes at most `chunk` draws (images go in blocks of at most `chunk`), so memory stays
  // bounded whatever K and B. No tape is recorded. Draws come from g (the default generator when null).
  // Throws loom::Error for K < 1, chunk < 1 or images not [B ≥ 1, 1, 28, 28].
  Tensor importance_log_likelihood(const Tensor& images, int64_t K = kDefaultImportanceSamples,
                                   int64_t chunk = kDefaultImportanceChunk, Generator* g = nullptr);
  int64_t latent_dim() const { return latent_; }

 private:
  Device device_;
  int64_t latent_;
  int64_t iwae_k_;
  std::shared_ptr<nn::Sequential> encoder_, decoder_;
  std::unique_ptr<optim::Adam> opt_;
};

// The VAE c's options describe, on c.device; the vae registration's defaults fill
// in what c leaves unset (resolve_config), and a bad value throws as there.
std::unique_ptr<Vae> make_vae_model(Config c);

}  // namespace loom::models
