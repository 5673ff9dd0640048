#include "models/diffusion/unet.h"

#include <algorithm>

namespace loom::models::diffusion {
namespace {

const nn::ConvOptions kSame{.params = {.padding = {1, 1}}};
const nn::ConvOptions kDown{.params = {.stride = {2, 2}, .padding = {1, 1}}};

void zero_init(nn::Conv2d& c) {
  nn::init::zeros_(c.weight);
  nn::init::zeros_(c.bias);
}

}  // namespace

ResBlock::ResBlock(int64_t in, int64_t out, int64_t emb_dim, int64_t groups, double dropout) : dropout_(dropout) {
  norm1_ = register_module("norm1", std::make_shared<nn::GroupNorm>(groups, in));
  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(in, out, 3, kSame));
  emb_proj_ = register_module("emb_proj", std::make_shared<nn::Linear>(emb_dim, out));
  norm2_ = register_module("norm2", std::make_shared<nn::GroupNorm>(groups, out));
  conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(out, out, 3, kSame));
  zero_init(*conv2_);
  if (in != out) skip_ = register_module("skip", std::make_shared<nn::Conv2d>(in, out, 1));
}

Tensor ResBlock::forward(const Tensor& x, const Tensor& emb) {
  Tensor h = conv1_->forward(silu(norm1_->forward(x)));
  h = h + unsqueeze(unsqueeze(emb_proj_->forward(silu(emb)), 2), 3);
  h = conv2_->forward(dropout(silu(norm2_->forward(h)), dropout_, is_training()));
  return (skip_ ? skip_->forward(x) : x) + h;
}

UNet::UNet(UNetOptions o) : o_(std::move(o)) {
  const int64_t levels = static_cast<int64_t>(o_.mult.size());
  LOOM_CHECK(o_.channels >= 1 && o_.base >= 1 && levels >= 1 && o_.blocks >= 1 && o_.heads >= 1 && o_.groups >= 1 &&
                 o_.dropout >= 0 && o_.dropout < 1,
             "UNet: need channels, base, blocks, heads, groups >= 1, at least one level and dropout in [0, 1)");
  auto attends = [&](int64_t level) {
    return std::find(o_.attention_levels.begin(), o_.attention_levels.end(), level) != o_.attention_levels.end();
  };
  for (int64_t level : o_.attention_levels)
    LOOM_CHECK(level >= 0 && level < levels, "UNet: attention level ", level, " is not one of the ", levels, " levels");
  for (int64_t m : o_.mult) {
    LOOM_CHECK(m >= 1, "UNet: channel multipliers must be >= 1");
    LOOM_CHECK((o_.base * m) % o_.groups == 0 && o_.base % o_.groups == 0, "UNet: ", o_.groups,
               " GroupNorm groups do not divide the width ", o_.base * m);
  }
  const int64_t emb = embedding_dim();
  time1_ = register_module("time1", std::make_shared<nn::Linear>(o_.base, emb));
  time2_ = register_module("time2", std::make_shared<nn::Linear>(emb, emb));
  input_ = register_module("input", std::make_shared<nn::Conv2d>(o_.channels, o_.base, 3, kSame));
  auto block = [&](const std::string& name, int64_t in, int64_t out) {
    return register_module(name, std::make_shared<ResBlock>(in, out, emb, o_.groups, o_.dropout));
  };
  auto attention = [&](const std::string& name, int64_t width) {
    return register_module(name, std::make_shared<nn::SelfAttention2d>(width, o_.heads, o_.groups));
  };
  std::vector<int64_t> skips{o_.base};  // the widths of what the way down hands to the way up
  int64_t width = o_.base;
  for (int64_t l = 0; l < levels; ++l) {
    Stage s;
    const int64_t out = o_.base * o_.mult[static_cast<size_t>(l)];
    for (int64_t b = 0; b < o_.blocks; ++b) {
      const std::string at = str("down", l, ".", b);
      s.blocks.push_back(block(at, width, out));
      width = out;
      if (attends(l)) s.attention.push_back(attention(at + ".attention", width));
      skips.push_back(width);
    }
    if (l + 1 < levels) {
      s.resample = register_module(str("down", l, ".downsample"), std::make_shared<nn::Conv2d>(width, width, 3, kDown));
      skips.push_back(width);
    }
    down_.push_back(std::move(s));
  }
  mid1_ = block("mid1", width, width);
  mid_attention_ = attention("mid.attention", width);
  mid2_ = block("mid2", width, width);
  for (int64_t l = levels - 1; l >= 0; --l) {
    Stage s;
    const int64_t out = o_.base * o_.mult[static_cast<size_t>(l)];
    for (int64_t b = 0; b <= o_.blocks; ++b) {
      const std::string at = str("up", l, ".", b);
      s.blocks.push_back(block(at, width + skips.back(), out));
      skips.pop_back();
      width = out;
      if (attends(l)) s.attention.push_back(attention(at + ".attention", width));
    }
    if (l > 0) s.resample = register_module(str("up", l, ".upsample"), std::make_shared<nn::Conv2d>(width, width, 3, kSame));
    up_.push_back(std::move(s));
  }
  out_norm_ = register_module("out_norm", std::make_shared<nn::GroupNorm>(o_.groups, width));
  output_ = register_module("output", std::make_shared<nn::Conv2d>(width, o_.channels, 3, kSame));
  zero_init(*output_);  // ε_θ starts at 0, as in the DDPM code
}

Tensor UNet::forward(const Tensor& x, const Tensor& t, const Tensor& cond) {
  const int64_t levels = static_cast<int64_t>(o_.mult.size()), factor = int64_t(1) << (levels - 1);
  LOOM_CHECK(x.dim() == 4 && x.size(1) == o_.channels && x.size(2) % factor == 0 && x.size(3) % factor == 0,
             "UNet: expected images [B, ", o_.channels, ", H, W] with H and W divisible by ", factor, ", got ", x.shape());
  LOOM_CHECK(t.dim() == 1 && t.size(0) == x.size(0), "UNet: expected ", x.size(0), " time steps, got ", t.shape());
  Tensor emb = time2_->forward(silu(time1_->forward(nn::sinusoidal_embedding(t, o_.base, x.dtype()).to(x.device()))));
  if (cond.defined()) {
    LOOM_CHECK(cond.shape() == emb.shape(), "UNet: the condition embedding must be ", emb.shape(), ", got ",
               cond.shape());
    emb = emb + cond;
  }
  std::vector<Tensor> skips{input_->forward(x)};
  Tensor h = skips.back();
  for (Stage& s : down_) {
    for (size_t b = 0; b < s.blocks.size(); ++b) {
      h = s.blocks[b]->forward(h, emb);
      if (!s.attention.empty()) h = s.attention[b]->forward(h);
      skips.push_back(h);
    }
    if (s.resample) {
      h = s.resample->forward(h);
      skips.push_back(h);
    }
  }
  h = mid2_->forward(mid_attention_->forward(mid1_->forward(h, emb)), emb);
  for (Stage& s : up_) {
    for (size_t b = 0; b < s.blocks.size(); ++b) {
      h = s.blocks[b]->forward(concat({h, skips.back()}, 1), emb);
      skips.pop_back();
      if (!s.attention.empty()) h = s.attention[b]->forward(h);
    }
    if (s.resample) h = s.resample->forward(upsample_nearest2d(h, 2));
  }
  return output_->forward(silu(out_norm_->forward(h)));
}

}  // namespace loom::models::diffusion
