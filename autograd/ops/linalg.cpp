// matmul: C = A @ B, batched over broadcast leading dims.
//   ∂L/∂A = G @ Bᵀ,  ∂L/∂B = Aᵀ @ G  (summed over broadcast batch dims)
// 1-D operands are promoted as in NumPy (a vector is [1, k] on the left,
// [k, 1] on the right) and the added axis is removed from the result.
#include "autograd/ops/common.h"
#include "kernels/gemm.h"

namespace loom {
using namespace detail;

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
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
  Shape a_batch(a.shape().begin(), a.shape().end() - 2), b_batch(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes("matmul", a_batch, b_batch);
  // Materialize broadcast batches (a no-op when they already match).
  Shape a_full = batch, b_full = batch;
  a_full.insert(a_full.end(), {m, k});
  b_full.insert(b_full.end(), {k, n});
  Tensor ae = a_batch == batch ? a : expand(a, a_full);
  Tensor be = b_batch == batch ? b : expand(b, b_full);
  // A single [m, k] matrix against a batch: broadcast through stride 0, no copy.
  const int64_t nb = numel(batch);
  const bool a_shared = a_batch.empty() || numel(a_batch) == 1, b_shared = b_batch.empty() || numel(b_batch) == 1;
  if (a_shared) ae = a;
  if (b_shared) be = b;
  Shape out = batch;
  out.insert(out.end(), {m, n});
  Tensor c = empty(out, a.options());
  KernelCtx kc = kernel_ctx(a.device());
  LOOM_DISPATCH(kc, LOOM_CUDA_GEMM, gemm, kc, a.dtype(), false, false, m, n, k, 1.0, ae.data_ptr(), k,
                a_shared ? 0 : m * k, be.data_ptr(), n, b_shared ? 0 : k * n, 0.0, c.data_ptr(), n, m * n, nb);
  Tensor result = c;
  if (needs_grad({&a, &b})) {
    Shape as = a.shape(), bs = b.shape();
    record(OpId::Matmul, {a, b}, {c}, {a, b}, [as, bs](BackwardCtx& ctx) {
      const Tensor &a = ctx.saved[0], &b = ctx.saved[1], &g = ctx.grad_out[0];
      Tensor ga = ctx.needs[0] ? sum_to(matmul(g, transpose(b, -1, -2)), as) : Tensor();
      Tensor gb = ctx.needs[1] ? sum_to(matmul(transpose(a, -1, -2), g), bs) : Tensor();
      return std::vector<Tensor>{ga, gb};
    });
  }
  if (a_vec) result = squeeze(result, -2);
  if (b_vec) result = squeeze(result, -1);
  return result;
}

}  // namespace loom
