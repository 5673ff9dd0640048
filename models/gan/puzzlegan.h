// Puzzle-GAN (Lee, Yun, Choi, Yoo, Yang & Oh 2018, "Unsupervised Holistic Image
// Generation from Key Local Patches", ECCV): what its tests and `loom eval` reach
// of models/gan/puzzlegan.cpp, which has the networks and the training step.
#pragma once

#include <cstdint>

#include "models/model.h"

namespace loom::models::puzzlegan {

// K square pieces cut from each image, and where they were.
struct Puzzle {
  Tensor pieces;  // float [B, K, C, P, P]: piece k of image b is images[b, :, r, c] for r, c in its square
  Tensor mask;    // float32 [B, 1, H, W]: 1 on the union of the image's K squares, 0 elsewhere
};

// Cuts `pieces` (K ≥ 1) squares of side `side` from each of images [B, C, H, W]
// (on any device; H, W ≥ side ≥ 1), each square's top-left corner drawn
// uniformly from g (nullptr: the default generator) on the images' device: row
// ⌊u · (H − side + 1)⌋, then column likewise, for piece 0 of image 0, piece 1 of
// image 0, … (u ~ U(0, 1), u = 1 taken as the last position). Squares may
// overlap. The pieces and the mask are on the images' device; nothing is read
// back to the host (a CUDA step can be captured as a graph). Errors: images not [B, C, H, W],
// K < 1, or a side outside [1, min(H, W)].
Puzzle cut_pieces(const Tensor& images, int64_t pieces, int64_t side, Generator* g);

// The spatial loss as this implementation takes it: the binary
// cross-entropy of the predicted mask M̂ = σ(logits) against the true mask M,
// averaged over every pixel, −mean [M log M̂ + (1 − M) log(1 − M̂)], in nats (the
// authors' code takes mean |M̂ − M|; models/gan/puzzlegan.cpp says why not here);
// logits and M float of one shape; a scalar. Errors: shapes that differ.
Tensor mask_loss(const Tensor& logits, const Tensor& truth);

// The appearance loss (the authors' code: L1 between the generated image's
// predicted parts and the real image's true parts): mean |ŷ ⊙ M̂ − y ⊙ M| with
// generated ŷ, images y float [B, C, H, W] and masks M̂, M float [B, 1, H, W]
// (broadcast over the channels); a scalar. Errors: shapes that do not match.
Tensor appearance_loss(const Tensor& generated, const Tensor& predicted_mask, const Tensor& images,
                       const Tensor& mask);

// The discriminator's loss (the authors' code; the log loss of Goodfellow et al.
// 2014 on logits): real images y are real; generated images ŷ are fake, and so
// are the two composites of y with another image y' of the batch, y' ⊙ M + y ⊙ (1
// − M) (another image's parts in y's background) and y ⊙ M + y' ⊙ (1 − M) (y's
// parts in another background), which teach D how parts and the whole fit:
//   −mean log σ(l_y) − mean log(1 − σ(l_ŷ)) − mean log(1 − σ(l_parts)) − mean log(1 − σ(l_background)).
// Logits float [B] or [B, 1] each; a scalar.
Tensor discriminator_loss(const Tensor& real, const Tensor& fake, const Tensor& swapped_parts,
                          const Tensor& swapped_background);

}  // namespace loom::models::puzzlegan
