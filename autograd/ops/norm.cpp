// Normalization layers:
//
//   x̂ = (x − μ) · 1/√(σ² + ε),   μ = mean(x),  σ² = mean((x − μ)²)  (biased)
//   y = x̂ · γ + β                  (γ, β optional)
//
// The layers differ only in the set of elements each (μ, σ²) is taken over:
//   batch_norm: per channel, over N and the spatial dims (every axis but 1)
//   group_norm: per sample and group of C/G channels, over those channels and the spatial dims
//   layer_norm: per leading index, over the trailing `normalized_shape` dims
//   instance_norm: per sample and channel, over the spatial dims (group_norm with G = C)
// Where that set is the trailing axes of a view (group, instance and layer norm), x̂ is one kernel each
// way, the op `standardize` (layer norm, whose γ and β are a multiply and an add) or `group_norm` (group
// and instance norm, γ and β per channel fused into it): composed of mean, sub, square, rsqrt and mul it
// took nine passes over x forward and as many backward, and kept several tensors of x's size for it (a
// DDPM step is a tenth faster with the op). Batch norm's set is not contiguous (N and the spatial dims of
// a channel): its training forward is the op `batch_norm`, one kernel each way with γ and β fused. Each
// backward recomputes x̂ from x, μ and s, as PyTorch's kernels do, so that nothing of x's size is kept
// but x itself; batch norm's eval mode is an affine map of x.
#include <cmath>

#include "autograd/ops/common.h"
#include "kernels/reduce.h"

namespace loom {
using namespace detail;

namespace {

// An optional per-feature parameter (γ, β, running statistics): undefined, or
// `expected` shaped with x's dtype and device.
void check_param(const char* op, const char* name, const Tensor& t, const Shape& expected, const Tensor& x,
                 const char* what) {
  if (!t.defined()) return;
  check_compatible(op, {&x, &t});
  LOOM_CHECK(t.shape() == expected, op, ": ", name, " has shape ", t.shape(), ", expected ", expected, " (", what,
             " of x ", x.shape(), ")");
}

// y · γ + β with γ, β reshaped to broadcast against y; either may be undefined.
Tensor affine(Tensor y, const Tensor& weight, const Tensor& bias, const Shape& param_shape) {
  if (weight.defined()) y = y * reshape(weight, param_shape);
  if (bias.defined()) y = y + reshape(bias, param_shape);
  return y;
}

// An op's inputs x, γ, β with the optional two left out, and where γ and β sit among them (−1: absent).
struct AffineInputs {
  std::vector<Tensor> tensors;
  int64_t weight = -1, bias = -1;
};
AffineInputs affine_inputs(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  AffineInputs a{{x}};
  if (weight.defined()) a.weight = static_cast<int64_t>(a.tensors.size()), a.tensors.push_back(weight);
  if (bias.defined()) a.bias = static_cast<int64_t>(a.tensors.size()), a.tensors.push_back(bias);
  return a;
}

// A kernel's pointer to an optional tensor: null when it is undefined (γ, β, a gradient not wanted).
void* data_or_null(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

// [1, C, 1, ...]: a per-channel vector broadcast against x [N, C, ...].
Shape channel_shape(const Tensor& x) {
  Shape s(x.dim(), 1);
  s[1] = x.size(1);
  return s;
}

// The op standardize and group_norm are: x viewed [n, groups, cpg, inner], each (sample, group) row of
// r = cpg·inner values standardized, then y = x̂·γ + β per channel (γ, β [groups·cpg], optional), one kernel
// each way; the backward recomputes x̂ from x, μ and s (nothing of x's size kept but x).
Tensor standardize_rows(OpId id, const char* op, const Tensor& x, int64_t n, int64_t groups, int64_t cpg,
                        int64_t inner, const Tensor& weight, const Tensor& bias, double eps) {
  const OpRange range(id);
  LOOM_CHECK(std::isfinite(eps) && eps >= 0, op, ": eps must be finite and >= 0, got ", eps);
  const int64_t rows = n * groups;
  const TensorOptions o = x.options();
  Tensor y = empty(x.shape(), o), mu = empty({rows}, o), rstd = empty({rows}, o);
  KernelCtx k = kernel_ctx(x.device());
  if (x.numel() > 0)
    LOOM_DISPATCH(k, LOOM_CUDA_REDUCE, standardize, k, x.dtype(), x.data_ptr(), data_or_null(weight),
                  data_or_null(bias), y.data_ptr(), mu.data_ptr(), rstd.data_ptr(), rows, groups, cpg, inner, eps);
  const AffineInputs in = affine_inputs(x, weight, bias);
  if (!needs_grad(in.tensors)) return y;
  // γ is read by ∂x only: saved only then.
  std::vector<Tensor> saved{x, x.requires_grad() ? weight : Tensor(), mu, rstd};
  const int64_t wi = in.weight, bi = in.bias;
  record(id, in.tensors, {y}, std::move(saved), [n, groups, cpg, inner, eps, wi, bi](BackwardCtx& c) {
    const Tensor &x = c.saved[0], &w = c.saved[1], &mu = c.saved[2], &rstd = c.saved[3], &gy = c.grad_out[0];
    const int64_t channels = groups * cpg;
    std::vector<Tensor> grads(c.needs.size());
    if (differentiable({&x, &w, &gy})) {
      // The same formulas through recorded ops (x̂ recomputed from x), for a create_graph sweep: per row,
      // ∂x = s·(g' − mean(g') − x̂·mean(g'·x̂)) with g' = gy·γ; ∂γ = Σ gy·x̂, ∂β = Σ gy over samples and `inner`.
      const Shape by_row = {n, groups, cpg * inner}, by_channel = {n, channels, inner};
      const Tensor xr = reshape(x, by_row), xc = xr - mean(xr, {2}, true);
      const Tensor s = rsqrt(mean(square(xc), {2}, true) + eps), xhat = xc * s;
      if (c.needs[0]) {
        const Tensor g = reshape(w.defined() ? reshape(gy, by_channel) * reshape(w, {1, channels, 1}) : gy, by_row);
        grads[0] = reshape(s * (g - mean(g, {2}, true) - xhat * mean(g * xhat, {2}, true)), x.shape());
      }
      const Tensor g3 = reshape(gy, by_channel);
      if (wi >= 0 && c.needs[wi]) grads[wi] = sum(g3 * reshape(xhat, by_channel), {0, 2});
      if (bi >= 0 && c.needs[bi]) grads[bi] = sum(g3, {0, 2});
      return grads;
    }
    if (c.needs[0]) grads[0] = empty(x.shape(), x.options());
    // An empty batch: γ's and β's gradients are sums of nothing, which the kernels do not write.
    const auto param = [&] { return x.numel() > 0 ? empty({channels}, x.options()) : zeros({channels}, x.options()); };
    if (wi >= 0 && c.needs[wi]) grads[wi] = param();
    if (bi >= 0 && c.needs[bi]) grads[bi] = param();
    const auto out = [&](int64_t i) { return i >= 0 ? data_or_null(grads[i]) : nullptr; };
    KernelCtx k = kernel_ctx(x.device());
    if (x.numel() > 0)
      LOOM_DISPATCH(k, LOOM_CUDA_REDUCE, standardize_backward, k, x.dtype(), x.data_ptr(), data_or_null(w),
                    mu.data_ptr(), rstd.data_ptr(), gy.data_ptr(), out(0), out(wi), out(bi), n * groups, groups, cpg,
                    inner);
    return grads;
  });
  return y;
}

}  // namespace

Tensor standardize(const Tensor& x, int64_t axis, double eps) {
  check_floating("standardize", x);
  const int64_t ax = wrap_axis("standardize", axis, x.dim());
  const int64_t outer = prod(x.shape(), 0, ax), r = prod(x.shape(), ax, x.dim());
  LOOM_CHECK(r > 0 || outer == 0, "standardize: the slices from axis ", ax, " of x ", x.shape(), " have no elements");
  return standardize_rows(OpId::Standardize, "standardize", x, outer, 1, 1, r, {}, {}, eps);
}

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  check_floating("batch_norm", x);
  LOOM_CHECK(x.dim() >= 2, "batch_norm: input must be [N, C, ...], got ", x.shape());
  const int64_t channels = x.size(1);
  check_param("batch_norm", "weight", weight, {channels}, x, "one per channel");
  check_param("batch_norm", "bias", bias, {channels}, x, "one per channel");
  check_param("batch_norm", "running_mean", running_mean, {channels}, x, "one per channel");
  check_param("batch_norm", "running_var", running_var, {channels}, x, "one per channel");
  LOOM_CHECK(running_mean.defined() == running_var.defined(),
             "batch_norm: running_mean and running_var must be given together (input ", x.shape(), ")");
  const Shape param_shape = channel_shape(x);
  if (!training) {
    LOOM_CHECK(running_mean.defined(), "batch_norm: eval mode normalizes by the running statistics, but "
                                       "running_mean and running_var are undefined (input ", x.shape(), ")");
    return affine((x - reshape(running_mean, param_shape)) * rsqrt(reshape(running_var, param_shape) + eps), weight,
                  bias, param_shape);
  }
  LOOM_CHECK(channels > 0, "batch_norm: input ", x.shape(), " has no channels");
  const int64_t count = x.numel() / channels;
  LOOM_CHECK(count > 1, "batch_norm: training needs more than one value per channel, got input ", x.shape());
  LOOM_CHECK(std::isfinite(eps) && eps >= 0, "batch_norm: eps must be finite and >= 0, got ", eps);
  const OpRange range(OpId::BatchNorm);
  const int64_t n = x.size(0), inner = prod(x.shape(), 2, x.dim());
  const TensorOptions o = x.options();
  Tensor y = empty(x.shape(), o), mu = empty({channels}, o), rstd = empty({channels}, o);
  Tensor var = running_var.defined() ? empty({channels}, o) : Tensor();  // the biased σ², for the running statistics
  KernelCtx k = kernel_ctx(x.device());
  LOOM_DISPATCH(k, LOOM_CUDA_REDUCE, batch_norm, k, x.dtype(), x.data_ptr(), data_or_null(weight), data_or_null(bias),
                y.data_ptr(), mu.data_ptr(), data_or_null(var), rstd.data_ptr(), n, channels, inner,
                eps);  // count > 1: x is not empty
  if (running_mean.defined()) {
    // PyTorch's update, r ← (1 − m)·r + m·s, where the running variance takes the unbiased batch
    // variance σ²·n/(n − 1) while x̂ used the biased one. The handles are const, the storage they
    // share with the caller is not.
    NoGrad no_grad;
    Tensor rm = running_mean, rv = running_var;
    rm.mul_(1 - momentum).add_(mu, momentum);
    rv.mul_(1 - momentum).add_(var, momentum * static_cast<double>(count) / static_cast<double>(count - 1));
  }
  const AffineInputs in = affine_inputs(x, weight, bias);
  if (!needs_grad(in.tensors)) return y;
  // γ is read by ∂x only: saved only then (a weight updated before the backward matters only there).
  std::vector<Tensor> saved{x, x.requires_grad() ? weight : Tensor(), mu, rstd};
  const int64_t wi = in.weight, bi = in.bias;
  record(OpId::BatchNorm, in.tensors, {y}, std::move(saved), [n, channels, inner, eps, wi, bi](BackwardCtx& c) {
    const Tensor &x = c.saved[0], &w = c.saved[1], &mu = c.saved[2], &rstd = c.saved[3], &gy = c.grad_out[0];
    std::vector<Tensor> grads(c.needs.size());
    if (differentiable({&x, &w, &gy})) {
      // The same formulas through recorded ops (x̂ recomputed from x), for a create_graph sweep:
      // ∂x = γ·s·(g − mean(g) − x̂·mean(g·x̂)), ∂γ = Σ g·x̂, ∂β = Σ g over N and the spatial dims.
      std::vector<int64_t> axes = {0};
      for (int64_t a = 2; a < x.dim(); ++a) axes.push_back(a);
      const Tensor xc = x - mean(x, axes, true), s = rsqrt(mean(square(xc), axes, true) + eps), xhat = xc * s;
      if (c.needs[0]) {
        const Tensor g = w.defined() ? gy * reshape(w, channel_shape(x)) : gy;
        grads[0] = s * (g - mean(g, axes, true) - xhat * mean(g * xhat, axes, true));
      }
      if (wi >= 0 && c.needs[wi]) grads[wi] = reshape(sum(gy * xhat, axes), {channels});
      if (bi >= 0 && c.needs[bi]) grads[bi] = reshape(sum(gy, axes), {channels});
      return grads;
    }
    if (c.needs[0]) grads[0] = empty(x.shape(), x.options());
    if (wi >= 0 && c.needs[wi]) grads[wi] = empty({channels}, x.options());
    if (bi >= 0 && c.needs[bi]) grads[bi] = empty({channels}, x.options());
    const auto out = [&](int64_t i) { return i >= 0 ? data_or_null(grads[i]) : nullptr; };
    KernelCtx k = kernel_ctx(x.device());
    LOOM_DISPATCH(k, LOOM_CUDA_REDUCE, batch_norm_backward, k, x.dtype(), x.data_ptr(), data_or_null(w), mu.data_ptr(),
                  rstd.data_ptr(), gy.data_ptr(), out(0), out(wi), out(bi), n, channels, inner);
    return grads;
  });
  return y;
}

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps) {
  check_floating("group_norm", x);
  LOOM_CHECK(x.dim() >= 2, "group_norm: input must be [N, C, ...], got ", x.shape());
  const int64_t channels = x.size(1);
  LOOM_CHECK(groups > 0 && channels % groups == 0, "group_norm: ", groups, " groups do not divide the ", channels,
             " channels of x ", x.shape());
  check_param("group_norm", "weight", weight, {channels}, x, "one per channel");
  check_param("group_norm", "bias", bias, {channels}, x, "one per channel");
  LOOM_CHECK(prod(x.shape(), 1, x.dim()) > 0 || x.size(0) == 0, "group_norm: the groups of x ", x.shape(),
             " have no elements");
  // [N, C, ...] as [N, G, C/G, spatial]: each group's elements are contiguous, its channels' runs in them.
  return standardize_rows(OpId::GroupNorm, "group_norm", x, x.size(0), groups, channels / groups,
                          prod(x.shape(), 2, x.dim()), weight, bias, eps);
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  check_floating("layer_norm", x);
  const int64_t k = static_cast<int64_t>(normalized_shape.size()), lead = x.dim() - k;
  LOOM_CHECK(k >= 1 && lead >= 0 && Shape(x.shape().begin() + lead, x.shape().end()) == normalized_shape,
             "layer_norm: normalized_shape ", normalized_shape, " does not match the trailing dims of x ", x.shape());
  check_param("layer_norm", "weight", weight, normalized_shape, x, "normalized_shape");
  check_param("layer_norm", "bias", bias, normalized_shape, x, "normalized_shape");
  // γ and β are shaped like the trailing dims, so they broadcast as they are.
  return affine(standardize(x, lead, eps), weight, bias, normalized_shape);
}

// Ulyanov et al. 2016; CycleGAN, StarGAN (declared in ops.h).
Tensor instance_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                     const Tensor& running_var, bool use_input_stats, double momentum, double eps) {
  check_floating("instance_norm", x);
  LOOM_CHECK(x.dim() >= 3, "instance_norm: input must be [N, C, spatial...], got ", x.shape());
  const int64_t channels = x.size(1);
  for (auto [name, t] : {std::pair{"weight", &weight}, {"bias", &bias}, {"running_mean", &running_mean},
                         {"running_var", &running_var}})
    check_param("instance_norm", name, *t, {channels}, x, "one per channel");
  LOOM_CHECK(running_mean.defined() == running_var.defined(),
             "instance_norm: running_mean and running_var must be given together (input ", x.shape(), ")");
  const Shape param_shape = channel_shape(x);
  Tensor y;
  if (use_input_stats) {
    const int64_t count = prod(x.shape(), 2, x.dim());
    LOOM_CHECK(count > 1, "instance_norm: needs more than one spatial element per channel, got input ", x.shape());
    y = group_norm(x, channels, weight, bias, eps);  // γ and β applied in group_norm's kernel
    if (running_mean.defined()) {
      NoGrad no_grad;
      std::vector<int64_t> spatial;
      for (int64_t a = 2; a < x.dim(); ++a) spatial.push_back(a);
      Tensor xd = x.detach();
      Tensor rm = running_mean, rv = running_var;  // the storage is the caller's
      rm.mul_(1 - momentum).add_(mean(mean(xd, spatial), {0}), momentum);
      rv.mul_(1 - momentum).add_(mean(var(xd, spatial, false, 1), {0}), momentum);
    }
  } else {
    LOOM_CHECK(running_mean.defined(), "instance_norm: normalizing by running statistics, but running_mean and "
                                       "running_var are undefined (input ", x.shape(), ")");
    y = affine((x - reshape(running_mean, param_shape)) * rsqrt(reshape(running_var, param_shape) + eps), weight,
               bias, param_shape);
  }
  return y;
}

}  // namespace loom
