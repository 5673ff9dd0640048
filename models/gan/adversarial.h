// What the adversarial family shares: the GAN losses on discriminator logits, the
// DCGAN weight initialization, and the mode metrics of the 2-D mixtures.
//
// The value function (Goodfellow et al. 2014, "Generative Adversarial Nets", eq. 1):
//   min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 − D(G(z)))],  D = σ(logit).
// Losses are written on logits l, with log σ(l) = −softplus(−l) and
// log(1 − σ(l)) = −softplus(l), so they stay finite where D saturates.
#pragma once

#include <string>

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

// The matching-aware discriminator's loss of GAN-CLS (Reed et al. 2016, "Generative
// Adversarial Text to Image Synthesis", Algorithm 1): D(x, φ(t)) scores an image
// with a text, and D ascends
//   log D(x, h) + (log(1 − D(x, ĥ)) + log(1 − D(x̂, h))) / 2
// where (x, h) is a real image with its own text, (x, ĥ) the same image with a
// mismatched text and (x̂, h) a generated image with the right text. Logits of
// each pair, float [B] or [B, 1]; returns the batch mean of the negated sum, a scalar.
Tensor matching_aware_discriminator_loss(const Tensor& real_right, const Tensor& real_wrong, const Tensor& fake_right);

// DCGAN's initialization (Radford et al. 2016, §4): every conv and linear weight
// ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), biases 0.
void dcgan_init(nn::Module& m);

// How well samples [N, 2] cover a Gaussian mixture's modes (Metz et al. 2017,
// "Unrolled GANs", §3.1; Srivastava et al. 2017, VEEGAN, §5.1): a sample is of
// high quality when it lies within 3σ of its nearest mode; a mode is covered when
// at least 1% of the samples are high-quality samples of it.
struct ModeCoverage {
  double modes_covered = 0;  // out of the mixture's modes
  double high_quality = 0;   // fraction of the samples, in [0, 1]
};
ModeCoverage mode_coverage(const Tensor& samples, data::Toy2d kind);

}  // namespace loom::models::gan
