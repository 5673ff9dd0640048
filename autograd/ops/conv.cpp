// conv2d and conv_transpose2d: checks, then the three conv kernels (kernels/conv.h).
//
// conv2d is a linear map y = A_w x (+ b). Its gradients:
//   ∂L/∂x = A_wᵀ gy                        (backward_data)
//   ∂L/∂w = Σ_n gy[n] ⋆ x[n]               (backward_weight)
//   ∂L/∂b = Σ_{n,i,j} gy[n, :, i, j]
// conv_transpose2d is y = A_wᵀ x (+ b) for the conv2d A_w that maps y's shape to x's, so forward and
// backward-data trade places and the weight gradient is backward_weight with the conv2d "input" being
// our output gradient and the conv2d "output gradient" being our input x.
#include "autograd/ops/common.h"
#include "kernels/conv.h"

namespace loom {
using namespace detail;

namespace {

Shape as_shape(const Pair& p) { return {p[0], p[1]}; }

// What both ops check: dtypes and devices agree, x and weight are 4-D and non-empty, the parameters are in
// range and groups divide x's channels.
void check_common(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p) {
  if (bias.defined()) {
    check_compatible(op, {&x, &w, &bias});
  } else {
    check_compatible(op, {&x, &w});
  }
  check_floating(op, x);
  LOOM_CHECK(x.dim() == 4, op, ": input must be 4-D [N, C, H, W], got ", x.shape());
  LOOM_CHECK(w.dim() == 4, op, ": weight must be 4-D, got ", w.shape());
  LOOM_CHECK(x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0, op, ": input ", x.shape(),
             " has an empty channel or spatial dimension");
  LOOM_CHECK(w.numel() > 0, op, ": weight ", w.shape(), " is empty");
  for (int i = 0; i < 2; ++i)
    LOOM_CHECK(p.stride[i] >= 1 && p.dilation[i] >= 1 && p.padding[i] >= 0, op,
               ": stride and dilation must be positive and padding non-negative, got stride ", as_shape(p.stride),
               ", padding ", as_shape(p.padding), ", dilation ", as_shape(p.dilation));
  LOOM_CHECK(p.groups >= 1, op, ": groups must be positive, got ", p.groups);
  LOOM_CHECK(x.size(1) % p.groups == 0, op, ": groups = ", p.groups, " does not divide the ", x.size(1),
             " channels of input ", x.shape());
}

void check_bias(const char* op, const Tensor& bias, int64_t channels, const Tensor& w) {
  LOOM_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == channels), op, ": bias must be [", channels,
             "] (the output channels of weight ", w.shape(), "), got ", bias.defined() ? bias.shape() : Shape{});
}

const void* ptr_or_null(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

// The kernel calls, each allocating the tensor it writes.
Tensor conv_forward(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias) {
  Tensor y = empty({g.batch, g.out_channels, g.out_h, g.out_w}, x.options());
  KernelCtx k = kernel_ctx(x.device());
  LOOM_DISPATCH(k, LOOM_CUDA_CONV, conv2d_forward, k, x.dtype(), g, x.data_ptr(), w.data_ptr(), ptr_or_null(bias),
                y.data_ptr());
  return y;
}
Tensor conv_backward_data(const ConvGeometry& g, const Tensor& gy, const Tensor& w, const Tensor& bias) {
  Tensor gx = empty({g.batch, g.in_channels, g.in_h, g.in_w}, gy.options());
  KernelCtx k = kernel_ctx(gy.device());
  LOOM_DISPATCH(k, LOOM_CUDA_CONV, conv2d_backward_data, k, gy.dtype(), g, gy.data_ptr(), w.data_ptr(),
                ptr_or_null(bias), gx.data_ptr());
  return gx;
}
Tensor conv_backward_weight(const ConvGeometry& g, const Tensor& x, const Tensor& gy) {
  Tensor gw = empty({g.out_channels, g.in_channels / g.groups, g.kernel_h, g.kernel_w}, x.options());
  KernelCtx k = kernel_ctx(x.device());
  LOOM_DISPATCH(k, LOOM_CUDA_CONV, conv2d_backward_weight, k, x.dtype(), g, x.data_ptr(), gy.data_ptr(),
                gw.data_ptr());
  return gw;
}

// Σ over batch and space: the gradient of a per-channel bias.
Tensor bias_grad(const Tensor& gy) { return sum(gy, {0, 2, 3}); }

// The three kernels as recorded ops on one geometry. Each one's backward is made
// of the other two (the fast path calls the raw kernels instead), so every
// derivative of a conv is again a conv: higher-order gradients to any order.
// `transposed`: conv_transpose2d, whose x lives in the output space of the conv2d
// geometry g and whose y lives in its input space.
Tensor conv_recorded(bool transposed, const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias);

// gw = ∂⟨gy, conv(x, W)⟩/∂W, bilinear in (x, gy). Since ⟨gw, G⟩ = ⟨gy, conv(x, G)⟩
// for any G, its gradients are ∂x = conv2d's backward-data of gy with weight G and
// ∂gy = conv(x, G).
Tensor conv2d_backward_weight_recorded(const ConvGeometry& g, const Tensor& x, const Tensor& gy) {
  const OpRange range(OpId::Conv2dBackwardWeight);
  Tensor gw = conv_backward_weight(g, x, gy);
  if (needs_grad({&x, &gy}))
    record(OpId::Conv2dBackwardWeight, {x, gy}, {gw}, {x, gy}, [g](BackwardCtx& c) {
      const Tensor &x = c.saved[0], &gy = c.saved[1], &G = c.grad_out[0];
      const bool rec = differentiable({&x, &gy, &G});
      Tensor gx, ggy;
      if (c.needs[0]) gx = rec ? conv_recorded(true, g, gy, G, {}) : conv_backward_data(g, gy, G, {});
      if (c.needs[1]) ggy = rec ? conv_recorded(false, g, x, G, {}) : conv_forward(g, x, G, {});
      return std::vector<Tensor>{gx, ggy};
    });
  return gw;
}

Tensor conv_recorded(bool transposed, const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias) {
  Tensor y = transposed ? conv_backward_data(g, x, w, bias) : conv_forward(g, x, w, bias);
  if (needs_grad({&x, &w, &bias})) {
    // The input gradient reads only w, the weight gradient only x: save what the needed gradients read.
    std::vector<Tensor> saved = {needs_grad({&w}) ? x : Tensor(), needs_grad({&x}) ? w : Tensor()};
    record(transposed ? OpId::ConvTranspose2d : OpId::Conv2d, {x, w, bias}, {y}, std::move(saved),
           [g, transposed](BackwardCtx& c) {
             const Tensor &x = c.saved[0], &w = c.saved[1], &gy = c.grad_out[0];
             const bool rec = differentiable({&x, &w, &gy});
             Tensor gx, gw;
             // ∂x runs the other direction; ∂w is backward_weight of conv2d's (input, output gradient),
             // which for conv_transpose2d are (gy, x).
             if (c.needs[0])
               gx = rec ? conv_recorded(!transposed, g, gy, w, {})
                        : (transposed ? conv_forward(g, gy, w, {}) : conv_backward_data(g, gy, w, {}));
             if (c.needs[1]) {
               const Tensor &in = transposed ? gy : x, &out = transposed ? x : gy;
               gw = rec ? conv2d_backward_weight_recorded(g, in, out) : conv_backward_weight(g, in, out);
             }
             Tensor gb = c.needs[2] ? bias_grad(gy) : Tensor();
             return std::vector<Tensor>{gx, gw, gb};
           });
  }
  return y;
}

// The conv2d geometry from its input shape [N, C, H, W] to its output shape [N, O, OH, OW].
ConvGeometry geometry(const Shape& in, const Shape& out, const Tensor& w, const ConvParams& p) {
  return ConvGeometry{.batch = in[0], .in_channels = in[1], .in_h = in[2], .in_w = in[3],
                      .out_channels = out[1], .out_h = out[2], .out_w = out[3],
                      .kernel_h = w.size(2), .kernel_w = w.size(3),
                      .stride_h = p.stride[0], .stride_w = p.stride[1], .pad_h = p.padding[0], .pad_w = p.padding[1],
                      .dilation_h = p.dilation[0], .dilation_w = p.dilation[1], .groups = p.groups};
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvParams& p) {
  const OpRange range(OpId::Conv2d);
  const char* op = "conv2d";
  check_common(op, x, weight, bias, p);
  LOOM_CHECK(p.output_padding[0] == 0 && p.output_padding[1] == 0, op, ": output_padding is for conv_transpose2d only, got ",
             as_shape(p.output_padding));
  const int64_t out_c = weight.size(0);
  LOOM_CHECK(weight.size(1) * p.groups == x.size(1), op, ": input ", x.shape(), " has ", x.size(1),
             " channels but weight ", weight.shape(), " with groups = ", p.groups, " expects ",
             weight.size(1) * p.groups);
  LOOM_CHECK(out_c % p.groups == 0, op, ": groups = ", p.groups, " does not divide the ", out_c,
             " output channels of weight ", weight.shape());
  check_bias(op, bias, out_c, weight);
  // OH = ⌊(H + 2p − d·(k − 1) − 1) / s⌋ + 1, needing the dilated kernel to fit the padded input.
  Shape out = {x.size(0), out_c, 0, 0};
  for (int i = 0; i < 2; ++i) {
    // The terms are non-negative: only the sum and the products can overflow.
    const int64_t span = checked_add(op, x.shape(), x.size(2 + i), checked_mul(op, x.shape(), 2, p.padding[i])) -
                         checked_mul(op, x.shape(), p.dilation[i], weight.size(2 + i) - 1) - 1;
    LOOM_CHECK(span >= 0, op, ": non-positive output size: the kernel of weight ", weight.shape(), " dilated by ",
               as_shape(p.dilation), " is larger than input ", x.shape(), " padded by ", as_shape(p.padding));
    out[2 + i] = span / p.stride[i] + 1;
  }
  return conv_recorded(false, geometry(x.shape(), out, weight, p), x, weight, bias);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvParams& p) {
  const OpRange range(OpId::ConvTranspose2d);
  const char* op = "conv_transpose2d";
  check_common(op, x, weight, bias, p);
  LOOM_CHECK(weight.size(0) == x.size(1), op, ": input ", x.shape(), " has ", x.size(1), " channels but weight ",
             weight.shape(), " expects ", weight.size(0), " (weight is [C_in, C_out/groups, kh, kw])");
  const int64_t out_c = weight.size(1) * p.groups;
  check_bias(op, bias, out_c, weight);
  // OH = (H − 1)·s − 2p + d·(k − 1) + output_padding + 1. output_padding picks one of the s input
  // sizes that conv2d maps onto H, so it must stay below the stride (or the dilation, PyTorch's rule).
  Shape out = {x.size(0), out_c, 0, 0};
  for (int i = 0; i < 2; ++i) {
    const int64_t op_i = p.output_padding[i];
    LOOM_CHECK(op_i >= 0 && (op_i < p.stride[i] || op_i < p.dilation[i]), op, ": output_padding ",
               as_shape(p.output_padding), " must be non-negative and smaller than stride ", as_shape(p.stride),
               " or dilation ", as_shape(p.dilation));
    const Shape& xs = x.shape();
    out[2 + i] = checked_add(op, xs,
                             checked_mul(op, xs, x.size(2 + i) - 1, p.stride[i]) - checked_mul(op, xs, 2, p.padding[i]),
                             checked_add(op, xs, checked_mul(op, xs, p.dilation[i], weight.size(2 + i) - 1), op_i + 1));
    LOOM_CHECK(out[2 + i] >= 1, op, ": non-positive output size ", out[2 + i], " for input ", x.shape(),
               ", weight ", weight.shape(), ", stride ", as_shape(p.stride), ", padding ", as_shape(p.padding),
               ", dilation ", as_shape(p.dilation));
  }
  // The conv2d whose adjoint this is maps the output's shape [N, C_out, OH, OW] to x's [N, C_in, H, W].
  return conv_recorded(true, geometry(out, x.shape(), weight, p), x, weight, bias);
}

}  // namespace loom
