// The noise-prediction network of DDPM (Ho et al. 2020, Appendix B; their
// reference code's model, after PixelCNN++'s U-Net): residual blocks with group
// normalization, SiLU and the time step's embedding added inside each block,
// self-attention at chosen resolutions, strided-conv downsampling, nearest
// upsampling + conv, and skip connections from every block of the way down to the
// way up.
#pragma once

#include <memory>
#include <vector>

#include "autograd/loom.h"

namespace loom::models::diffusion {

struct UNetOptions {
  int64_t channels = 1;          // image channels in and out
  int64_t base = 32;             // feature maps at full resolution (DDPM: 128)
  std::vector<int64_t> mult{1, 2, 2};  // feature maps per level as multiples of base; one downsampling between levels
  int64_t blocks = 1;            // residual blocks per level (DDPM: 2)
  std::vector<int64_t> attention_levels{2};  // levels (0 = full resolution) with self-attention after each block
  int64_t heads = 1;             // attention heads (DDPM: 1)
  int64_t groups = 8;            // GroupNorm groups (DDPM: 32); must divide every level's width
  double dropout = 0;            // inside each residual block (DDPM: 0.1 on CIFAR10, 0 on its other data sets)
};

// A residual block (DDPM's ResnetBlock): h = conv(SiLU(GN(x))) + W·SiLU(emb) per channel,
// then conv(dropout(SiLU(GN(h)))), the second conv zero-initialized so that the
// block starts as its skip path; the skip is a 1×1 conv where the width changes.
class ResBlock : public nn::Module {
 public:
  ResBlock(int64_t in, int64_t out, int64_t emb_dim, int64_t groups, double dropout);
  using nn::Module::forward;  // the one-input form stays visible (and refuses: a block needs its embedding)
  Tensor forward(const Tensor& x, const Tensor& emb);
  std::string name() const override { return "ResBlock"; }

 private:
  std::shared_ptr<nn::GroupNorm> norm1_, norm2_;
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, skip_;
  std::shared_ptr<nn::Linear> emb_proj_;
  double dropout_;
};

// ε_θ(x_t, t, c): x [B, C, H, W] (H and W divisible by 2^(levels − 1)), t int64 [B]
// (the time step, embedded by nn::sinusoidal_embedding and a two-layer MLP to
// 4·base), and an optional condition embedding cond [B, 4·base] added to the time
// embedding (undefined: none) → [B, C, H, W]. Errors name the UNet and the shapes.
class UNet : public nn::Module {
 public:
  explicit UNet(UNetOptions o);
  using nn::Module::forward;
  Tensor forward(const Tensor& x, const Tensor& t, const Tensor& cond = {});
  std::string name() const override { return "UNet"; }
  int64_t embedding_dim() const { return 4 * o_.base; }

 private:
  struct Stage {  // the blocks of one level, with attention after each when the level has it
    std::vector<std::shared_ptr<ResBlock>> blocks;
    std::vector<std::shared_ptr<nn::SelfAttention2d>> attention;
    std::shared_ptr<nn::Conv2d> resample;  // down: stride-2 conv; up: conv after nearest ×2; none at the end
  };
  UNetOptions o_;
  std::shared_ptr<nn::Linear> time1_, time2_;
  std::shared_ptr<nn::Conv2d> input_, output_;
  std::shared_ptr<nn::GroupNorm> out_norm_;
  std::vector<Stage> down_, up_;
  std::shared_ptr<ResBlock> mid1_, mid2_;
  std::shared_ptr<nn::SelfAttention2d> mid_attention_;
};

}  // namespace loom::models::diffusion
