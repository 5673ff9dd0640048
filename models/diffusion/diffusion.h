// The mathematics of denoising diffusion, written once for the `ddpm` model
// (models/diffusion/ddpm.cpp) and its tests:
//   Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic Models" (DDPM);
//   Nichol & Dhariwal 2021, "Improved Denoising Diffusion Probabilistic Models"
//     (the cosine schedule, eq. 17);
//   Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models" (DDIM, eq. 12);
//   Ho & Salimans 2022, "Classifier-Free Diffusion Guidance" (eq. 6).
//
// The forward process q(x_t | x_{t−1}) = N(√(1 − β_t) x_{t−1}, β_t I), t = 1..T,
// has the marginal q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I), ᾱ_t = Π_{s≤t}(1 − β_s)
// (DDPM eq. 4), and the posterior q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I) with
//   μ̃_t = √ᾱ_{t−1} β_t / (1 − ᾱ_t) · x_0 + √α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · x_t,
//   β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t                               (eq. 6-7).
// The network predicts the noise ε of x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε; its reverse
// step p_θ(x_{t−1} | x_t) = N(μ_θ, σ_t² I) has μ_θ = μ̃_t(x̂_0, x_t) with
// x̂_0 = (x_t − √(1 − ᾱ_t) ε_θ) / √ᾱ_t, which is eq. 11's
// (x_t − β_t / √(1 − ᾱ_t) ε_θ) / √α_t.
//
// Time steps t are int64 tensors [B] with values in 1..T; images are float
// tensors [B, C, H, W] in [−1, 1] (8-bit data: the 256 levels k/127.5 − 1).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autograd/loom.h"

namespace loom::models::diffusion {

enum class BetaSchedule {
  Linear,  // β_t linear from β_1 to β_T (DDPM §4: 1e-4 to 0.02, T = 1000)
  Cosine,  // ᾱ_t = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s) · π/2), s = 0.008; β_t ≤ 0.999 (Nichol & Dhariwal eq. 17)
};
// "linear" or "cosine"; an Error naming the value otherwise.
BetaSchedule beta_schedule(const std::string& name);

// Which fixed variance σ_t² the reverse step uses (DDPM §3.2: both gave similar samples).
enum class ReverseVariance {
  Posterior,  // σ_t² = β̃_t, optimal for x_0 deterministic ("fixedsmall" in the DDPM code)
  Beta,       // σ_t² = β_t, optimal for x_0 ~ N(0, I) ("fixedlarge")
};
ReverseVariance reverse_variance(const std::string& name);  // "posterior" or "beta"

// A T-step schedule, float64. Every table has T + 1 entries indexed by t = 0..T,
// so that a tensor of time steps indexes it directly; entry 0 is the identity
// (β_0 = 0, ᾱ_0 = 1).
struct Schedule {
  int64_t steps = 0;              // T
  std::vector<double> beta;       // β_t
  std::vector<double> alpha_bar;  // ᾱ_t
  std::vector<double> posterior_variance;  // β̃_t (β̃_1 = 0: x_0 is known given x_1 and x_0)
  std::vector<double> posterior_coef_x0;   // √ᾱ_{t−1} β_t / (1 − ᾱ_t)
  std::vector<double> posterior_coef_xt;   // √α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)
  // log σ_t² of the reverse step. log β̃_1 = −∞, so t = 1 takes β̃_2 under both
  // variances, as the DDPM code does ("posterior_log_variance_clipped"; its
  // "fixedlarge" replaces β_1 by β̃_2 as well): the decoder L_0 needs a finite scale.
  std::vector<double> log_variance(ReverseVariance v) const;
};

// T ≥ 1 steps; for Linear, 0 < β_1 ≤ β_T < 1. Errors name what is out of range.
Schedule make_schedule(BetaSchedule kind, int64_t steps, double beta_1 = 1e-4, double beta_T = 0.02);

// table[t] per sample, shaped [B, 1, …, 1] to broadcast against like ([B, …]), in
// like's dtype and on its device; t int64 [B] in 0..T (an Error otherwise).
Tensor at(const std::vector<double>& table, const Tensor& t, const Tensor& like);
// The same from a table already on the device, [T + 1] in like's dtype: nothing is read
// or copied on the host (a step captured as a CUDA graph may not); t on that device, a
// step outside 0..T is index_select's Error, checked there. Errors (naming diffusion): t
// not int64 [B], a table of another dtype, shape or device than like's, t on another device.
Tensor at(const Tensor& table, const Tensor& t, const Tensor& like);

// The tables of q(x_t | x_0) made once as tensors [T + 1] with dtype and device o:
// what a training step's q_sample reads.
struct MarginalTables {
  Tensor sqrt_alpha_bar;            // √ᾱ_t
  Tensor sqrt_one_minus_alpha_bar;  // √(1 − ᾱ_t)
};
MarginalTables marginal_tables(const Schedule& s, TensorOptions o);

// x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε: a draw of q(x_t | x_0) (DDPM eq. 4) given ε ~ N(0, I).
Tensor q_sample(const Schedule& s, const Tensor& x0, const Tensor& t, const Tensor& eps);
// The same over tables of x_0's dtype on its device (t there too), the same bits.
Tensor q_sample(const MarginalTables& m, const Tensor& x0, const Tensor& t, const Tensor& eps);
// x̂_0 = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t: the x_0 that noise ε would have come from.
Tensor predict_x0(const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& eps);
// μ̃_t(x_0, x_t), the posterior mean (eq. 7).
Tensor posterior_mean(const Schedule& s, const Tensor& x0, const Tensor& xt, const Tensor& t);

// One ancestral step x_t → x_{t−1} ~ p_θ(x_{t−1} | x_t) = N(μ̃_t(x̂_0, x_t), σ_t² I)
// (DDPM Algorithm 2), given the predicted noise eps and z ~ N(0, I); at t = 1 the
// mean alone (Algorithm 2 draws no noise for the last step). x̂_0 is clipped to
// [−1, 1] when clip_x0 (the DDPM code's clip_denoised: the data's range).
Tensor ancestral_step(const Schedule& s, ReverseVariance v, const Tensor& xt, const Tensor& t, const Tensor& eps,
                      const Tensor& z, bool clip_x0);
// One DDIM step x_t → x_{t_prev} (Song et al. eq. 12), t_prev < t (0: the end):
//   x_{t_prev} = √ᾱ_{t_prev} x̂_0 + √(1 − ᾱ_{t_prev} − σ²) ε + σ z,
//   σ = η √((1 − ᾱ_{t_prev}) / (1 − ᾱ_t)) √(1 − ᾱ_t / ᾱ_{t_prev})        (eq. 16).
// η = 0 is deterministic (z unused, may be undefined); η = 1 with t_prev = t − 1 is
// DDPM's ancestral step with σ_t² = β̃_t. x̂_0 clipped as in ancestral_step, and ε then
// recomputed from the clipped x̂_0 so that the two stay consistent.
Tensor ddim_step(const Schedule& s, const Tensor& xt, int64_t t, int64_t t_prev, const Tensor& eps, const Tensor& z,
                 double eta, bool clip_x0);
// The S time steps a sampler visits, from T down to 1, evenly spaced (Song et al.
// §4.2's "linear" sub-sequence, rounded): S = T gives T, T − 1, …, 1. 1 ≤ S ≤ T.
std::vector<int64_t> sampling_steps(int64_t steps, int64_t sample_steps);

// Classifier-free guidance (Ho & Salimans eq. 6): ε̃ = (1 + w) ε_θ(x, c) − w ε_θ(x, ∅).
Tensor guided_eps(const Tensor& eps_conditional, const Tensor& eps_unconditional, double w);

// ---- the variational bound (DDPM eq. 5; §3.3 for the decoder) ---------------------------
// L = L_T + Σ_{t=2}^{T} L_{t−1} + L_0, in nats, each per image [B] (float64):
//   L_T     = KL(q(x_T | x_0) ‖ N(0, I));
//   L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t)), t ≥ 2;
//   L_0     = −log p_θ(x_0 | x_1), the discretized Gaussian decoder.

// L_T per image (no network): KL of N(√ᾱ_T x_0, (1 − ᾱ_T) I) to N(0, I).
Tensor prior_kl(const Schedule& s, const Tensor& x0);
// L_{t−1} per image for t ≥ 2 (every t > 1, an Error otherwise), given x_t and the
// predicted noise eps at (x_t, t).
Tensor step_kl(const Schedule& s, ReverseVariance v, const Tensor& x0, const Tensor& xt, const Tensor& t,
               const Tensor& eps);
// L_0 per image: −Σ_pixels log P(x_0 | x_1) under the decoder N(μ_θ(x_1, 1), σ_1²)
// integrated over each pixel's bin of width 2/255 (the end bins reach ±∞), given
// x_1 and the predicted noise eps at (x_1, 1). Computed in float64 on the host with
// erfc (probabilities floored at 1e-12, as the DDPM code floors them).
Tensor decoder_nll(const Schedule& s, ReverseVariance v, const Tensor& x0, const Tensor& x1, const Tensor& eps);
// log P(bin of x | N(mean, e^{2 log_scale})) elementwise, float64 host vectors of one
// size: the decoder's probabilities, exposed so that a test can sum them over the 256
// levels. x must lie on the levels k/127.5 − 1.
std::vector<double> discretized_gaussian_log_prob(const std::vector<double>& x, const std::vector<double>& mean,
                                                  const std::vector<double>& log_scale);

}  // namespace loom::models::diffusion
