// Fused optimizer updates over a list of tensors: one call updates every
// parameter of a dtype (one kernel launch on CUDA, not a chain of elementwise
// ops per parameter).
//
// Adam (Kingma & Ba 2015, Alg. 1; PyTorch's conventions):
//   g ← ∇ + λp (L2)  or  p ← p − ηλp (AdamW, decoupled)
//   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²
//   p ← p − η · (m / c₁) / (√(v / c₂) + ε),  c_i = 1 − β_iᵗ
// SGD with momentum μ, dampening d, Nesterov (PyTorch's conventions):
//   g ← ∇ + λp;  b ← g (first step) or μb + (1−d)g;  g ← g + μb (Nesterov) or b;  p ← p − ηg
#pragma once

#include "kernels/dispatch.h"

namespace loom {

// count tensors; role r's pointers in ptr[r] (host arrays), element counts in numel.
struct TensorList {
  int64_t count = 0;
  const int64_t* numel = nullptr;
  void* const* ptr[4] = {};
};

struct AdamHyper {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
  double bias_correction1, bias_correction2;
};

struct SgdHyper {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, first_step;
};

}  // namespace loom

#define LOOM_OPTIM_API                                                                             \
  /* roles: 0 param, 1 grad, 2 m, 3 v */                                                           \
  void adam_step(const KernelCtx& k, DType dt, const TensorList& l, const AdamHyper& h);          \
  /* roles: 0 param, 1 grad, 2 momentum buffer (unused when momentum = 0) */                       \
  void sgd_step(const KernelCtx& k, DType dt, const TensorList& l, const SgdHyper& h);            \
  /* *out (host) = Σ over role 0 of x², accumulated in double */                                   \
  void sum_squares(const KernelCtx& k, DType dt, const TensorList& l, double* out);               \
  /* role 0 ← role 0 · s */                                                                        \
  void scale(const KernelCtx& k, DType dt, const TensorList& l, double s);                        \
  /* role 0 ← decay · role 0 + (1 − decay) · role 1 (weight averaging) */                          \
  void lerp_to(const KernelCtx& k, DType dt, const TensorList& l, double decay);

LOOM_DECLARE_KERNELS(LOOM_CUDA_OPTIM, LOOM_OPTIM_API)

#if LOOM_CUDA_OPTIM
namespace loom::kernels::cuda {
// Kernels the CUDA optim family has launched in this process: a test hook, so
// tests/cuda can check that a fused step costs a constant number of launches.
uint64_t optim_launch_count();
}  // namespace loom::kernels::cuda
#endif
