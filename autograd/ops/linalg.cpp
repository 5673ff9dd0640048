// matmul: C = A @ B, batched over broadcast leading dims; linear: y = x Wᵀ + b.
//   ∂L/∂A = G @ Bᵀ,  ∂L/∂B = Aᵀ @ G  (summed over broadcast batch dims)
// Forward and backward are each one gemm call per product: the transposes are
// the kernel's trans_a/trans_b flags, never copies, and an operand shared by every
// batch item is read through batch stride 0.
// 1-D operands are promoted as in NumPy (a vector is [1, k] on the left,
// [k, 1] on the right) and the added axis is removed from the result.
#include "autograd/ops/common.h"
#include "kernels/gemm.h"

namespace loom {
using namespace detail;

namespace {

// A [..., rows, cols] operand as the batched gemm reads it.
struct BatchedOperand {
  Tensor t;
  int64_t stride;  // elements between consecutive batch items; 0 = one matrix shared by all
};

// x [..., rows, cols] whose batch dims x_batch broadcast to `batch`, readable as
// numel(batch) matrices. Only a partial broadcast ([2, 1] against [2, 3]) copies.
BatchedOperand batch_view(const Tensor& x, const Shape& x_batch, const Shape& batch) {
  const int64_t rows = x.size(-2), cols = x.size(-1);
  if (numel(x_batch) == 1) return {x, 0};
  // Same count: x_batch differs from batch only by size-1 dims, so the items line up.
  if (numel(x_batch) == numel(batch)) return {x, rows * cols};
  Shape full = batch;
  full.insert(full.end(), {rows, cols});
  return {expand(x.detach(), full), rows * cols};
}

// out[i] = op(a[i]) @ op(b[i]) for i < numel(batch): one gemm call. op transposes
// where trans_* is set; `inner` is the contracted length.
Tensor batched_gemm(bool trans_a, bool trans_b, const BatchedOperand& a, const BatchedOperand& b, Shape batch,
                    int64_t rows, int64_t cols, int64_t inner) {
  const int64_t nb = numel(batch);
  Shape out = std::move(batch);
  out.insert(out.end(), {rows, cols});
  Tensor c = empty(out, a.t.options());
  // Row-major leading dimensions are the stored row lengths: A is [rows, inner] or,
  // transposed, [inner, rows]; B is [inner, cols] or [cols, inner].
  const int64_t lda = trans_a ? rows : inner, ldb = trans_b ? inner : cols;
  KernelCtx k = kernel_ctx(c.device());
  LOOM_DISPATCH(k, LOOM_CUDA_GEMM, gemm, k, c.dtype(), trans_a, trans_b, rows, cols, inner, 1.0, a.t.data_ptr(), lda,
                a.stride, b.t.data_ptr(), ldb, b.stride, 0.0, c.data_ptr(), cols, rows * cols, nb);
  return c;
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  const OpRange range(OpId::Matmul);
  check_compatible("matmul", {&a_in, &b_in});
  check_floating("matmul", a_in);
  LOOM_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul: operands must have at least one dimension, got ",
             a_in.shape(), " and ", b_in.shape());
  const bool a_vec = a_in.dim() == 1, b_vec = b_in.dim() == 1;
  Tensor a = a_vec ? unsqueeze(a_in, 0) : a_in;
  Tensor b = b_vec ? unsqueeze(b_in, 1) : b_in;
  const int64_t m = a.size(-2), k = a.size(-1), k2 = b.size(-2), n = b.size(-1);
  LOOM_CHECK(k == k2, "matmul: inner dimensions differ, ", a_in.shape(), " @ ", b_in.shape(), " (", k, " vs ", k2,
             ")");
  const Shape a_batch(a.shape().begin(), a.shape().end() - 2), b_batch(b.shape().begin(), b.shape().end() - 2);
  Shape batch;
  try {
    batch = broadcast_shapes("matmul", a_batch, b_batch);
  } catch (const Error& e) {  // name the operands, not just their batch dims (costs nothing unless it fails)
    throw Error(str(e.what(), "; batch dims of ", a_in.shape(), " @ ", b_in.shape()));
  }
  Tensor c = batched_gemm(false, false, batch_view(a, a_batch, batch), batch_view(b, b_batch, batch), batch, m, n, k);
  if (needs_grad({&a, &b})) {
    record(OpId::Matmul, {a, b}, {c}, {a, b}, [a_batch, b_batch, batch, m, k, n](BackwardCtx& ctx) {
      const Tensor &a = ctx.saved[0], &b = ctx.saved[1], &g = ctx.grad_out[0];
      if (differentiable({&a, &b, &g})) {  // the same products through recorded ops
        Tensor ga = ctx.needs[0] ? sum_to(matmul(g, transpose(b, -1, -2)), a.shape()) : Tensor();
        Tensor gb = ctx.needs[1] ? sum_to(matmul(transpose(a, -1, -2), g), b.shape()) : Tensor();
        return std::vector<Tensor>{ga, gb};
      }
      const BatchedOperand gv{g, m * n};
      Tensor ga, gb;
      if (ctx.needs[0])  // ∂L/∂A[i] = G[i] @ B[i]ᵀ
        ga = sum_to(batched_gemm(false, true, gv, batch_view(b, b_batch, batch), batch, m, k, n), a.shape());
      if (ctx.needs[1]) {  // ∂L/∂B[i] = A[i]ᵀ @ G[i]
        BatchedOperand av = batch_view(a, a_batch, batch);
        if (numel(b_batch) == 1 && av.stride != 0) {
          // B shared by a batch of A (a linear layer on [..., m, k]): Σ_i A[i]ᵀ G[i] = Aᵀ G with
          // the batch items stacked as rows, A [nb·m, k] and G [nb·m, n]: one product, no sum.
          gb = reshape(batched_gemm(true, false, {av.t, 0}, {g, 0}, {}, k, n, numel(batch) * m), b.shape());
        } else {
          gb = sum_to(batched_gemm(true, false, av, gv, batch, k, n, m), b.shape());
        }
      }
      return std::vector<Tensor>{ga, gb};
    });
  }
  if (a_vec) c = squeeze(c, -2);
  if (b_vec) c = squeeze(c, -1);
  return c;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const OpRange range(OpId::Linear);
  check_compatible("linear", {&x, &weight});
  if (bias.defined()) check_compatible("linear", {&x, &bias});
  check_floating("linear", x);
  LOOM_CHECK(weight.dim() == 2, "linear: weight must be 2-D [out, in], got ", weight.shape());
  const int64_t out = weight.size(0), in = weight.size(1);
  LOOM_CHECK(x.dim() >= 1 && x.size(-1) == in, "linear: input ", x.shape(), " does not end in ", in,
             " features (weight ", weight.shape(), ")");
  LOOM_CHECK(!bias.defined() || bias.shape() == Shape{out}, "linear: bias must be [", out, "] for weight ",
             weight.shape(), ", got ", bias.shape());
  const int64_t rows = prod(x.shape(), 0, x.dim() - 1);
  Shape y_shape = x.shape();
  y_shape.back() = out;
  // y = 1·x Wᵀ + β·y with y starting as the bias rows (β = 1), or uninitialized (β = 0).
  Tensor y = bias.defined() ? reshape(expand(bias.detach(), {rows, out}), y_shape) : empty(y_shape, x.options());
  KernelCtx k = kernel_ctx(y.device());
  LOOM_DISPATCH(k, LOOM_CUDA_GEMM, gemm, k, y.dtype(), false, true, rows, out, in, 1.0, x.data_ptr(), in, 0,
                weight.data_ptr(), in, 0, bias.defined() ? 1.0 : 0.0, y.data_ptr(), out, 0, 1);
  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  if (needs_grad(inputs)) {
    // ∂x needs W and ∂W needs x: save only what a gradient will read, so that a weight converted or
    // updated between forward and backward is refused only where its value matters.
    std::vector<Tensor> saved{weight.requires_grad() ? x : Tensor(), x.requires_grad() ? weight : Tensor()};
    record(OpId::Linear, inputs, {y}, std::move(saved), [x_shape = x.shape(), rows, in, out](BackwardCtx& ctx) {
      const Tensor &x = ctx.saved[0], &w = ctx.saved[1], &g = ctx.grad_out[0];
      const bool with_bias = ctx.needs.size() == 3;
      std::vector<Tensor> grads(ctx.needs.size());
      if (differentiable({&x, &w, &g})) {  // the same products through recorded ops
        const Tensor g2 = reshape(g, {rows, out});
        if (ctx.needs[0]) grads[0] = matmul(g, w);
        if (ctx.needs[1]) grads[1] = matmul(transpose(g2, 0, 1), reshape(x, {rows, in}));
        if (with_bias && ctx.needs[2]) grads[2] = sum(g2, {0});
        return grads;
      }
      KernelCtx k = kernel_ctx(g.device());
      if (ctx.needs[0]) {  // ∂L/∂x = G W: [rows, out] @ [out, in]
        grads[0] = empty(x_shape, g.options());
        LOOM_DISPATCH(k, LOOM_CUDA_GEMM, gemm, k, g.dtype(), false, false, rows, in, out, 1.0, g.data_ptr(), out, 0,
                      w.data_ptr(), in, 0, 0.0, grads[0].data_ptr(), in, 0, 1);
      }
      if (ctx.needs[1]) {  // ∂L/∂W = Gᵀ x: [out, rows] @ [rows, in], G read transposed
        grads[1] = empty({out, in}, g.options());
        LOOM_DISPATCH(k, LOOM_CUDA_GEMM, gemm, k, g.dtype(), true, false, out, in, rows, 1.0, g.data_ptr(), out, 0,
                      x.data_ptr(), in, 0, 0.0, grads[1].data_ptr(), in, 0, 1);
      }
      if (with_bias && ctx.needs[2]) grads[2] = sum(reshape(g, {rows, out}), {0});
      return grads;
    });
  }
  return y;
}

}  // namespace loom
