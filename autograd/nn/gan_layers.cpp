// Normalization and GAN layers (declared in nn.h): InstanceNorm2d, ProGAN's
// pixel_norm, minibatch_stddev and equalized-learning-rate layers, PixelCNN's
// masked convolution. All are compositions of recorded ops.
#include <cmath>

#include "autograd/nn.h"

namespace loom::nn {

InstanceNorm2d::InstanceNorm2d(int64_t channels, bool affine, bool track_running_stats, double momentum, double eps,
                               TensorOptions o)
    : channels_(channels), momentum_(momentum), eps_(eps) {
  LOOM_CHECK(channels > 0, "InstanceNorm2d: channels must be positive, got ", channels);
  o.requires_grad = false;
  if (affine) {
    register_parameter("weight", &weight, ones({channels}, o));
    register_parameter("bias", &bias, zeros({channels}, o));
  }
  if (track_running_stats) {
    register_buffer("running_mean", &running_mean, zeros({channels}, o));
    register_buffer("running_var", &running_var, ones({channels}, o));
  }
}

Tensor InstanceNorm2d::forward(const Tensor& x) {
  LOOM_CHECK(x.dim() == 4 && x.size(1) == channels_, "InstanceNorm2d: expected [N, ", channels_,
             ", H, W], got ", x.shape());
  const bool input_stats = is_training() || !running_mean.defined();
  return instance_norm(x, weight, bias, running_mean, running_var, input_stats, momentum_, eps_);
}

Tensor pixel_norm(const Tensor& x, double eps) {
  LOOM_CHECK(x.defined() && x.dim() >= 2, "pixel_norm: input must be [N, C, ...], got ", x.shape());
  return x * rsqrt(mean(square(x), {1}, true) + eps);
}

Tensor minibatch_stddev(const Tensor& x, int64_t group_size) {
  LOOM_CHECK(x.defined() && x.dim() == 4, "minibatch_stddev: input must be [N, C, H, W], got ", x.shape());
  LOOM_CHECK(group_size >= 1, "minibatch_stddev: group size ", group_size, " must be positive (input ", x.shape(),
             ")");
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t g = std::min(group_size, n);
  LOOM_CHECK(n % g == 0, "minibatch_stddev: batch ", n, " is not a multiple of the group size ", g, " (input ",
             x.shape(), ")");
  const int64_t m = n / g;
  Tensor y = reshape(x, {g, m, c, h, w});
  Tensor centered = y - mean(y, {0}, true);
  Tensor sd = sqrt(mean(square(centered), {0}) + 1e-8);  // [M, C, H, W]
  Tensor s = mean(sd, {1, 2, 3}, true);                  // [M, 1, 1, 1]
  Tensor channel = reshape(expand(reshape(s, {1, m, 1, 1, 1}), {g, m, 1, h, w}), {n, 1, h, w});
  return concat({x, channel}, 1);
}

EqualizedConv2d::EqualizedConv2d(int64_t in, int64_t out, int64_t k, ConvParams p, bool with_bias, double gain,
                                 TensorOptions o)
    : params(p) {
  LOOM_CHECK(in > 0 && out > 0 && k > 0 && p.groups > 0 && in % p.groups == 0 && out % p.groups == 0,
             "EqualizedConv2d: bad sizes in=", in, " out=", out, " kernel=", k, " groups=", p.groups);
  o.requires_grad = false;
  register_parameter("weight", &weight, empty({out, in / p.groups, k, k}, o));
  init::normal_(weight, 0, 1);
  if (with_bias) register_parameter("bias", &bias, zeros({out}, o));
  scale = gain / std::sqrt(static_cast<double>(in / p.groups * k * k));
}

Tensor EqualizedConv2d::forward(const Tensor& x) { return conv2d(x, weight * scale, bias, params); }

EqualizedLinear::EqualizedLinear(int64_t in, int64_t out, bool with_bias, double gain, TensorOptions o) {
  LOOM_CHECK(in > 0 && out > 0, "EqualizedLinear: sizes must be positive, got in=", in, " out=", out);
  o.requires_grad = false;
  register_parameter("weight", &weight, empty({out, in}, o));
  init::normal_(weight, 0, 1);
  if (with_bias) register_parameter("bias", &bias, zeros({out}, o));
  scale = gain / std::sqrt(static_cast<double>(in));
}

Tensor EqualizedLinear::forward(const Tensor& x) {
  LOOM_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "EqualizedLinear: input ", x.shape(),
             " does not end in ", weight.size(1), " features (weight ", weight.shape(), ")");
  return linear(x, weight * scale, bias);
}

MaskedConv2d::MaskedConv2d(int64_t in, int64_t out, int64_t k, char mask_type, int64_t color_groups, bool with_bias,
                           TensorOptions o) {
  LOOM_CHECK(mask_type == 'A' || mask_type == 'B', "MaskedConv2d: mask type must be 'A' or 'B', got '", mask_type,
             "'");
  LOOM_CHECK(in > 0 && out > 0 && k > 0 && k % 2 == 1, "MaskedConv2d: bad sizes in=", in, " out=", out,
             " kernel=", k, " (the kernel must be odd)");
  LOOM_CHECK(color_groups >= 1 && in % color_groups == 0 && out % color_groups == 0, "MaskedConv2d: ",
             color_groups, " color groups do not divide in=", in, " and out=", out);
  o.requires_grad = false;
  register_parameter("weight", &weight, empty({out, in, k, k}, o));
  if (with_bias) register_parameter("bias", &bias, empty({out}, o));
  // PyTorch's Conv2d default init (U(±1/√fan_in)).
  const double bound = 1.0 / std::sqrt(static_cast<double>(in * k * k));
  init::uniform_(weight, -bound, bound);
  if (bias.defined()) init::uniform_(bias, -bound, bound);
  // The mask: rows above the centre, and the centre row left of the centre, are
  // open; the centre by the channel-group rule; the rest is closed.
  std::vector<double> m(static_cast<size_t>(out * in * k * k), 0.0);
  const int64_t c = k / 2, in_g = in / color_groups, out_g = out / color_groups;
  for (int64_t oc = 0; oc < out; ++oc)
    for (int64_t ic = 0; ic < in; ++ic)
      for (int64_t r = 0; r < k; ++r)
        for (int64_t s = 0; s < k; ++s) {
          bool open = r < c || (r == c && s < c);
          if (r == c && s == c) {
            const int64_t go = oc / out_g, gi = ic / in_g;
            open = mask_type == 'A' ? gi < go : gi <= go;
          }
          m[static_cast<size_t>(((oc * in + ic) * k + r) * k + s)] = open ? 1.0 : 0.0;
        }
  register_buffer("mask", &mask, from_vector(m, {out, in, k, k}, TensorOptions{o.dtype, o.device}));
}

Tensor MaskedConv2d::forward(const Tensor& x) {
  ConvParams p;
  p.padding = {weight.size(2) / 2, weight.size(3) / 2};
  return conv2d(x, weight * mask, bias, p);
}

}  // namespace loom::nn
