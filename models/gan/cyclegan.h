// CycleGAN (Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation
// using Cycle-Consistent Adversarial Networks"): what its tests reach of
// models/gan/cyclegan.cpp, which has the networks and the training step.
#pragma once

#include <cstdint>

#include "models/model.h"

namespace loom::models::cyclegan {

// The cycle-consistency loss of one domain (Zhu et al. 2017, eq. 2):
// ‖F(G(x)) − x‖₁ averaged over the elements of x and its reconstruction F(G(x))
// (one shape, [B, C, H, W]); a scalar, in the images' units. The identity loss
// (§5.2, "Photo generation from paintings") is the same distance between G(y) and y.
Tensor cycle_consistency_loss(const Tensor& x, const Tensor& reconstruction);

// The history of generated images the discriminators also see (Zhu et al. 2017,
// §4, after Shrivastava et al. 2017): a buffer of up to `capacity` images [C, H, W].
// query(images) passes a batch through it image by image, as the authors' ImagePool
// does: while the buffer is not full, the image is stored and returned; once it is,
// with probability 1/2 a stored image, chosen uniformly, is returned and the new
// one takes its place, else the new image is returned and the buffer unchanged.
// The draws are two uniforms u₁, u₂ ∈ (0, 1] per image, taken as one
// rand([B, 2], float64) from the default generator of the batch's device on every
// query (the buffer full or not, so the stream advances alike): u₁ > 1/2 returns a
// stored image, the one at slot min(capacity − 1, ⌊u₂ · capacity⌋). The whole rule is
// a fixed set of tensor ops on that device (nothing read back: a step that queries
// the pool can be captured as a CUDA graph). The buffer and its fill are buffers of the module
// ("images" [capacity, C, H, W] float32, "count" int64 scalar), so a checkpoint
// holds them and a resumed run continues exactly. Capacity 0: query returns
// its input. Errors: a batch of another image shape.
class ImagePool : public nn::Module {
 public:
  ImagePool(int64_t capacity, int64_t channels, int64_t size);
  // images float32 [B, C, size, size] (detached) → float32 [B, C, size, size] on their device.
  Tensor query(const Tensor& images);
  std::string name() const override { return "ImagePool"; }
  Tensor images, count;

 private:
  int64_t capacity_;
};

// CycleGAN's learning-rate factor at step (0-based, of total): 1 for the first
// decay_start · total steps, then falling linearly, by 1/(total − D) a step, to
// 1/(total − D) at the last step (0 at step total, which is never taken)
// (Zhu et al. 2017, §4: "keep the same learning rate for the first 100 epochs
// and linearly decay the rate to zero over the next 100 epochs": decay_start 1/2).
// With D = ⌊decay_start · total⌋: min(1, (total − step) / (total − D)); 1 when D = total.
double lr_factor(int64_t step, int64_t total, double decay_start);

}  // namespace loom::models::cyclegan
