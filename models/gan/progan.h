// Progressive GAN (Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of
// GANs for Improved Quality, Stability, and Variation"): a generator and a
// discriminator that start at 4×4 and grow a block of layers at a time, each
// new block fading in while the old output path (toRGB / fromRGB) fades out
// (§3, Fig. 2). models/gan/progan.cpp has the model and its training step; this
// header is what its tests reach: the growth schedule and the two networks.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "models/model.h"

namespace loom::models {

// How training grows (§3; the paper shows 800k images per phase). Level l has
// resolution 4·2^l. Level 0 trains for stable_images images; every later level
// first fades in for fade_images images (α rising linearly from 0 to 1), then
// trains stable for stable_images; the last level trains stable for ever.
struct GrowthSchedule {
  int64_t levels = 1;         // ≥ 1: resolutions 4, 8, ..., 4·2^(levels − 1)
  int64_t fade_images = 1;    // ≥ 1
  int64_t stable_images = 1;  // ≥ 1
};
// Where training stands: the newest level and the weight α of its block.
struct Growth {
  int64_t level = 0;
  double alpha = 1;  // in [0, 1]; 1 outside a fade
  // α as a float32 0-d tensor on the networks' device, or undefined. When defined, the
  // blends of a fade read it (and compute 1 − α there) instead of `alpha`, whose value
  // still decides whether they blend at all: how a training step captured as a CUDA
  // graph fades with the α written into this tensor before each replay.
  Tensor alpha_tensor = {};
  int64_t resolution() const { return int64_t{4} << level; }
};
// The growth after `images` training images (≥ 0): with t = images − stable_images
// and p = fade_images + stable_images, level 0 (α = 1) while t < 0, else level
// 1 + ⌊t / p⌋ with α = (t mod p) / fade_images while t mod p < fade_images and 1
// after; from level levels − 1 on it stays there, at α = 1 once faded in. A pure
// function, so a run resumed mid-fade continues at the same α. An Error for
// images < 0 or a schedule with a field below 1.
Growth growth_at(int64_t images, const GrowthSchedule& s);

// The feature maps of level l (Table 2, scaled): `features` channels up to
// 32×32, halved at each level after (the paper's 512 up to 32×32, 256 at 64×64,
// 128 at 128×128), at least 1.
int64_t progan_width(int64_t level, int64_t features);

// The generator (Table 2; the reference code's G_paper): z [B, latent_dim] is
// pixel-normalized (§4.2), mapped by an equalized dense layer to a 4×4 map of
// width(0) channels, then a 3×3 convolution; each level l ≥ 1 upsamples ×2 (nearest)
// and applies two 3×3 convolutions to width(l) channels. Every convolution is
// equalized (§4.1) and followed by LeakyReLU(0.2) and pixel_norm. Level l's image is
// toRGB_l, a 1×1 equalized convolution to `channels` with gain 1 and no activation.
class ProGenerator : public nn::Module {
 public:
  // latent_dim, channels, features ≥ 1 and levels in 1..10; an Error otherwise.
  ProGenerator(int64_t latent_dim, int64_t channels, int64_t levels, int64_t features);
  // z float32 [B, latent_dim] → images [B, channels, r, r], r = 4·2^level (level in
  // [0, levels), α in [0, 1]; an Error otherwise). At a fade (level ≥ 1, α < 1) the
  // image is (1 − α)·up(toRGB_{level−1}(h)) + α·toRGB_level(block_level(h)), h the
  // features of level − 1 and up nearest upsampling ×2: exactly the old network's
  // image (upsampled) at α = 0 and the new block's at α = 1 (§3, Fig. 2).
  Tensor forward(const Tensor& z, int64_t level, double alpha);
  // The same at growth g (its α tensor when defined).
  Tensor forward(const Tensor& z, const Growth& g);
  std::string name() const override { return "ProGenerator"; }
  int64_t levels() const { return static_cast<int64_t>(to_rgb_.size()); }

 private:
  Tensor block(int64_t level, const Tensor& h);
  std::shared_ptr<nn::EqualizedLinear> dense_;
  std::vector<std::shared_ptr<nn::EqualizedConv2d>> convs_, to_rgb_;  // convs_: 1 for level 0, 2 for each other
  int64_t width0_;
};

// The discriminator (the critic of WGAN-GP), the generator's mirror: fromRGB_l, a
// 1×1 equalized convolution from `channels` to width(l) and LeakyReLU(0.2); each
// level l ≥ 1 two 3×3 convolutions (width(l) → width(l) → width(l − 1)) with
// LeakyReLU(0.2) and 2×2 average pooling; at 4×4 the minibatch standard deviation
// (§3, groups of up to 4 samples: the largest size ≤ 4 dividing the batch), a 3×3
// convolution, an equalized dense layer from the 4×4 map to width(0) and one to the
// score (gain 1, no activation). No normalization (§4.1: the penalty does the work).
class ProDiscriminator : public nn::Module {
 public:
  ProDiscriminator(int64_t channels, int64_t levels, int64_t features);
  // images [B, channels, r, r], r = 4·2^level → scores float32 [B]. At a fade the
  // features entering level − 1 are (1 − α)·fromRGB_{level−1}(pool(x)) +
  // α·block_level(fromRGB_level(x)), pool 2×2 averaging: at α = 0 exactly the old
  // network's scores of pool(x). Errors as ProGenerator::forward, and for images
  // of another size or channel count.
  Tensor forward(const Tensor& x, int64_t level, double alpha);
  Tensor forward(const Tensor& x, const Growth& g);
  std::string name() const override { return "ProDiscriminator"; }

 private:
  Tensor block(int64_t level, const Tensor& h);
  std::vector<std::shared_ptr<nn::EqualizedConv2d>> from_rgb_, convs_;  // convs_: 2 per level, level 0's last
  std::shared_ptr<nn::EqualizedLinear> dense_, score_;
  int64_t channels_;
};

// Real images as the networks see them at growth g (the reference code's
// process_reals): x [B, C, S, S] (S = 4·2^k ≥ g.resolution(), k ≥ g.level)
// average-pooled to g.resolution(), and during a fade blended as the generator's
// images are: (1 − α)·up(pool₂(x_r)) + α·x_r. An Error for other sizes.
Tensor progan_reals(const Tensor& x, const Growth& g);

}  // namespace loom::models
