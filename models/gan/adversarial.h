// What the adversarial family shares: the GAN losses on discriminator logits, the
// models' common frame (AdversarialModel: G, D, their optimizers and options), the
// DCGAN weight initialization, and spherical interpolation for walks through a
// latent space.
//
// The value function (Goodfellow et al. 2014, "Generative Adversarial Nets", eq. 1):
//   min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 − D(G(z)))],  D = σ(logit).
// Losses are written on logits l, with log σ(l) = −softplus(−l) and
// log(1 − σ(l)) = −softplus(l), so they stay finite where D saturates.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "models/model.h"

namespace loom::models::gan {

enum class GeneratorLoss {
  Minimax,        // minimize log(1 − D(G(z))) = −softplus(l): eq. 1 as written, which saturates early in training
  NonSaturating,  // minimize −log D(G(z)) = softplus(−l): the paper's §3 fix, same fixed point, strong early gradients
};
GeneratorLoss parse_generator_loss(const std::string& name);  // "minimax" | "nonsaturating"

// The discriminator's loss, −(1/B) Σ [log D(x) + log(1 − D(G(z)))]: real and fake
// logits, float [B] or [B, 1]; a scalar.
Tensor discriminator_loss(const Tensor& real_logits, const Tensor& fake_logits);
// The generator's loss on the logits D gives its samples; a scalar.
Tensor generator_loss(const Tensor& fake_logits, GeneratorLoss kind);

// The least-squares GAN losses (Mao et al. 2017, "Least Squares Generative Adversarial
// Networks", eq. 2 with the targets a = 0 for fakes, b = c = 1 for reals), on the
// discriminator's raw outputs (no sigmoid), float of any shape, each a scalar; the
// form CycleGAN trains with (Zhu et al. 2017, §4: more stable than the log loss).
// The discriminator's: ½ [mean((D(x) − 1)²) + mean(D(G(z))²)] (halved, as the
// authors' code does, "to slow down the rate at which D learns relative to G").
Tensor least_squares_discriminator_loss(const Tensor& real_outputs, const Tensor& fake_outputs);
// The generator's: mean((D(G(z)) − 1)²).
Tensor least_squares_generator_loss(const Tensor& fake_outputs);

// One update of opt on loss (a scalar): zero its gradients, backpropagate, step. The
// backward pass also fills gradients of parameters opt does not hold (D's, on G's
// loss); each optimizer clears its own before it steps.
void descend(optim::Optimizer& opt, const Tensor& loss);
// What every GAN logs each step: d_loss, g_loss (scalars), and the mean D(x) and D(G(z))
// of the discriminator's update (σ of its real and fake logits), which both approach 1/2
// at the equilibrium p_G = p_data (Goodfellow et al. 2014, Prop. 1); then a model's `more`
// scalars (0-d tensors), all through one step_losses.
Losses adversarial_losses(const Tensor& d_loss, const Tensor& g_loss, const Tensor& real_logits,
                          const Tensor& fake_logits, std::vector<std::pair<std::string, Tensor>> more = {});

// The learning-rate schedule option of the adversarial models: `--lr-schedule
// constant|linear|cosine`, the factor on each optimizer's lr going from 1 at the
// first step to 0 at the last (optim::LRSchedule). A linear decay is how
// CycleGAN trains (Zhu et al. 2017, §4: its second half), and what lets a GAN on
// the 2-D mixtures settle its modes to their width once it has found them.
OptionSpec lr_schedule_option();
// The schedule --lr-schedule names ("constant", "linear", "cosine"); an Error naming the flag otherwise.
optim::LRSchedule::Kind parse_lr_schedule(const std::string& name);
// What the GANs with one generator loss share: Adam (lr 2e-4, β₁ 0.5, β₂ 0.999: Radford
// et al. 2016, §4, and the PyTorch examples), --latent-dim (default `latent_dim`),
// --loss nonsaturating|minimax (parse_generator_loss) and --lr-schedule.
std::vector<OptionSpec> adversarial_options(int64_t latent_dim);

// What every GAN of the family holds (gan, dcgan, cgan, infogan, text2image, cyclegan):
// a generator G and a discriminator D on one device (CycleGAN's pairs of them as one
// module each), each with its own Adam, checkpointed as the modules and the optimizers
// "generator" and "discriminator"; noise z ~ N(0, I) of --latent-dim dimensions (0
// for a model without that option); the generator loss (--loss where the model
// takes it, else non-saturating) and the learning-rate schedule (--lr-schedule where
// the model takes it, else constant), both parsed once, here. A model builds its
// networks in its own constructor (their initialization draws from the default
// generator in the order it builds them) and hands them over with adopt().
class AdversarialModel : public Model {
 public:
  ModelKind kind() const override { return ModelKind::Sampler; }
  // "generator" and "discriminator" (after any module add_module() named first).
  std::vector<std::pair<std::string, nn::Module*>> modules() override { return modules_; }
  // "generator" and "discriminator": the Adams of adopt().
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() override {
    return {{"generator", g_opt_.get()}, {"discriminator", d_opt_.get()}};
  }

 protected:
  // c holds the model's resolved options (resolve_config); an Error for an unknown
  // --loss or --lr-schedule.
  explicit AdversarialModel(const Config& c);
  // Moves G and D to the device and gives each its Adam: G's with g_adam over G's
  // parameters, D's with d_adam over D's parameters followed by `with_d` (parameters
  // that D's loss trains too, already on the device: text2image's text encoder).
  void adopt(nn::Module& generator, nn::Module& discriminator, const optim::AdamOptions& g_adam,
             const optim::AdamOptions& d_adam, const std::vector<Tensor>& with_d = {});
  // A checkpointed module besides G and D (text2image's text encoder), listed before them.
  void add_module(const std::string& name, nn::Module& m) { modules_.insert(modules_.begin(), {name, &m}); }
  // Sets both optimizers' lr for this step: the initial lr × the schedule's factor at
  // step.index of step.total (nothing for a constant lr). Called first in train_step,
  // and before each replay of a captured step.
  void schedule_lr(const Step& step);
  void before_replay(const Step& step) override { schedule_lr(step); }
  // z ~ N(0, I): float32 [n, latent_dim] on the device, drawn from g (nullptr: the default generator).
  Tensor noise(int64_t n, Generator* g) const {
    return randn({n, latent_}, TensorOptions{DType::Float32, device_}, g);
  }

  Device device_;
  int64_t latent_;
  GeneratorLoss loss_;
  std::unique_ptr<optim::Adam> g_opt_, d_opt_;

 private:
  optim::LRSchedule::Kind schedule_;
  std::vector<std::pair<std::string, nn::Module*>> modules_;
};

// ---- InfoGAN's mutual-information bound (Chen et al. 2016, "InfoGAN", eq. 4-6) -----------
// For a latent code c drawn from its prior and x = G(z, c), an auxiliary
// distribution Q(c|x) bounds the mutual information from below:
//   I(c; G(z, c)) ≥ L_I(G, Q) = E_{c~P(c), x~G(z,c)}[log Q(c|x)] + H(c)      (eq. 4-5)
// and InfoGAN solves min_{G,Q} max_D V(D, G) − λ L_I(G, Q) (eq. 6). These are the
// batch means of L_I for the two kinds of code; both are maximized (the losses
// subtract λ times them).

// L_I of a uniform categorical code with K values: log K − (1/B) Σ CE(logits_b, c_b),
// Q(c|x) = softmax(logits); logits float [B, K], codes int64 [B] in [0, K); a
// scalar ≤ log K = H(c), reaching it as Q puts all its mass on the true code.
Tensor categorical_information(const Tensor& logits, const Tensor& codes);
// L_I of continuous codes c ~ U(−1, 1)^d under a factored Gaussian
// Q(c|x) = Π_j N(c_j; μ_j, exp(log_var_j)) (μ = mu): (1/B) Σ_b Σ_j log N(c_bj; μ_bj, e^{log_var_bj}) + d·log 2,
// d log 2 being H(U(−1, 1)^d) (the bound is on a density, so it may exceed that
// entropy). codes, mu float [B, d], log_var float [B, d] (log_var broadcasts: [1] for a
// fixed σ); a scalar.
Tensor gaussian_information(const Tensor& codes, const Tensor& mu, const Tensor& log_var);

// The matching-aware discriminator's loss of GAN-CLS (Reed et al. 2016, "Generative
// Adversarial Text to Image Synthesis", Algorithm 1): D(x, φ(t)) scores an image
// with a text, and D ascends
//   log D(x, h) + (log(1 − D(x, ĥ)) + log(1 − D(x̂, h))) / 2
// where (x, h) is a real image with its own text, (x, ĥ) the same image with a
// mismatched text and (x̂, h) a generated image with the right text. Logits of
// each pair, float [B] or [B, 1]; returns the batch mean of the negated sum, a scalar.
Tensor matching_aware_discriminator_loss(const Tensor& real_right, const Tensor& real_wrong, const Tensor& fake_right);

// ---- WGAN-GP (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs") -------------
// The critic D minimizes E[D(x̃)] − E[D(x)] + λ·E_x̂[(‖∇_x̂ D(x̂)‖₂ − 1)²] (eq. 3),
// x̂ drawn uniformly on lines between real and generated samples (Algorithm 1).

// The penalty's expectation without λ: (1/N) Σ_n (‖g_n‖₂ − 1)², g = ∇_x̂ Σ_n D(x̂)_n
// taken with create_graph (the loss's gradient reaches D's parameters through it,
// a second derivative), g_n sample n's slice, its norm over all its elements.
// The tape records even when called under NoGrad. x_hat float [N, ...] (N ≥ 1),
// critic maps it to scores [N] or [N, 1]; a scalar. Where D couples samples
// (minibatch statistics) g_n holds those cross terms too, as the ProGAN reference
// code's gradient of the summed scores does.
Tensor gradient_penalty(const std::function<Tensor(const Tensor&)>& critic, const Tensor& x_hat);
// x̂ = ε·real + (1 − ε)·fake with ε ~ U(0, 1] per sample, drawn from g (nullptr: the
// default generator) (Algorithm 1, line 6); real and fake float [N, ...] of one shape
// and device, both detached; an Error otherwise.
Tensor penalty_points(const Tensor& real, const Tensor& fake, Generator* g);

// DCGAN's initialization (Radford et al. 2016, §4): every conv and linear weight
// ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), biases 0.
void dcgan_init(nn::Module& m);

// DCGAN's networks (Radford et al. 2016, §3 and Fig. 1; models/gan/dcgan.cpp says more), dcgan_init
// applied, f = features, no biases, every resampling layer a 4×4 kernel with stride 2 and padding 1:
//   image_size 28: G: in × 1 × 1 → 2f × 7 × 7 → f × 14 × 14 → out × 28 × 28;
//                  D: in × 28 × 28 → f × 14 × 14 → 2f × 7 × 7 → 1 × 1 × 1 (a logit);
//   image_size 64: G: in × 1 × 1 → 8f × 4 × 4 → 4f → 2f → f → out × 64 × 64; D mirrored.
// G: transposed convs, batch norm and ReLU, tanh on the output (in [−1, 1]); D: strided convs,
// LeakyReLU(0.2), batch norm except on the input layer. `in` is the latent size for G (the noise and
// any condition stacked as channels of a 1 × 1 map) and the image's channels (plus any tiled condition)
// for D. An Error for another image_size.
std::shared_ptr<nn::Sequential> dcgan_generator(int64_t in, int64_t out, int64_t image_size, int64_t features);
std::shared_ptr<nn::Sequential> dcgan_discriminator(int64_t in, int64_t image_size, int64_t features);

// A condition as extra input planes of an image network: labels float [B, K] (a
// one-hot class or domain, or binary attributes) → float [B, K, height, width] with
// plane k of sample b filled with labels[b, k], to be concatenated after the image's
// channels. StarGAN's generator takes its target domain so (Choi et al. 2018, §3.1,
// "we spatially replicate the target domain label"), cgan's convolutional
// discriminator its label. Errors: labels not [B, K], or a side < 1.
Tensor tile_labels(const Tensor& labels, int64_t height, int64_t width);

// Spherical linear interpolation (Shoemake 1985; White 2016, "Sampling Generative
// Networks", §2.1) between the rows of a and b (float [..., D], one shape and
// device) at t: with cos Ω = ⟨a, b⟩ / (‖a‖ ‖b‖) per row,
//   slerp(a, b, t) = sin((1 − t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b,
// exactly a at t = 0 and b at t = 1. Between unit vectors the path is the great
// circle and every point has norm 1 (a straight line's midpoint between
// orthogonal unit vectors has norm 1/√2: in many dimensions a point the Gaussian
// prior almost never draws, which is why the DCGAN paper's latent walks are
// better taken this way); between vectors of equal norm r the norm stays r.
// Where sin Ω < 1e-6 (a and b parallel or antiparallel, or one of them zero)
// no unique great circle exists and it falls back to linear interpolation
// (1 − t) a + t b, as White's code does: the limit of slerp as Ω → 0, and for
// antiparallel vectors a straight walk through the origin. The coefficients are
// computed on the host in double precision (not differentiable). Errors: shapes
// that differ, a scalar, or t not finite.
Tensor slerp(const Tensor& a, const Tensor& b, double t);

// Walks through a latent space N(0, I) for `loom sample --interpolate`: `rows`
// pairs of end points z₀, z₁ float32 [rows, latent_dim] drawn from g (all of z₀
// first, then z₁, each as randn would), and `columns` ≥ 2 points
// slerp(z₀, z₁, j / (columns − 1)) of each walk: float32 [rows · columns,
// latent_dim] on device, walk r's point j at row r · columns + j.
Tensor latent_walks(int64_t rows, int64_t columns, int64_t latent_dim, Device device, Generator& g);

}  // namespace loom::models::gan
