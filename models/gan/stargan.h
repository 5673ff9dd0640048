// StarGAN (Choi, Choi, Kim, Ha, Kim & Choo 2018, "StarGAN: Unified Generative
// Adversarial Networks for Multi-Domain Image-to-Image Translation"): what its
// tests reach of models/gan/stargan.cpp, which has the networks and the training step.
#pragma once

#include <cstdint>

#include "models/model.h"

namespace loom::models::stargan {

// The critic's side of the WGAN-GP adversarial loss without its penalty (eq. 1 in
// the Wasserstein form of §4, "Improved GAN Training"): mean D_src(x̃) − mean D_src(x),
// each mean over every sample and every patch; real and fake scores float of any
// shape (PatchGAN: [B, 1, h, w]); a scalar. The generator minimizes −mean D_src(G(x, c)).
Tensor critic_loss(const Tensor& real_scores, const Tensor& fake_scores);

// The domain classification loss (eq. 2 on real images for D, eq. 3 on translations
// for G): the cross-entropy −log D_cls(c | x) of each image's domain, averaged over the
// batch; logits float [B, K], domains int64 [B] in [0, K); a scalar, in nats.
Tensor domain_classification_loss(const Tensor& logits, const Tensor& domains);

// The same for binary attributes (§3.3 and the authors' code for CelebA): the
// binary cross-entropy of each attribute, summed over the A attributes and averaged
// over the batch, Σ_a −[y log σ(l) + (1 − y) log(1 − σ(l))] / B; logits float
// [B, A], attributes float [B, A] in {0, 1}; a scalar, in nats.
Tensor attribute_classification_loss(const Tensor& logits, const Tensor& attributes);

// The stable ascending order of u (float [n], any device): int64 [n] on u's device, order[k] the index of the
// k-th smallest value, ties by index (std::stable_sort's order). Computed on the device (n² comparisons; n is
// a batch), so that a step drawing a random order, sort_order(u) of u ~ U(0, 1], can be captured as a CUDA
// graph. u must hold no NaN (rand draws none): a NaN compares false both ways, and the result is then not a
// permutation. Errors: u not 1-D floating point.
Tensor sort_order(const Tensor& u);

}  // namespace loom::models::stargan
