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
// The step t (Adam) and "first step" (SGD) are each parameter's own, as in
// PyTorch: a parameter whose first gradient arrives late starts with t = 1.
#pragma once

#include <cmath>

#include "kernels/dispatch.h"

namespace loom {

// count tensors; role r's pointers in ptr[r] (host arrays), element counts in numel.
struct TensorList {
  int64_t count = 0;
  const int64_t* numel = nullptr;
  void* const* ptr[4] = {};
  // Per tensor, for adam_step and sgd_step: the parameter's own step t that this
  // update completes (1 on its first update). Null for the other entry points.
  const int64_t* step = nullptr;
};

struct AdamHyper {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
};

// Adam's bias corrections at step t: c₁ = 1 − β₁ᵗ and √c₂ = √(1 − β₂ᵗ), in
// double on the host for both backends, so that they agree bit for bit.
struct AdamBiasCorrection {
  double c1, sqrt_c2;
};
inline AdamBiasCorrection adam_bias_correction(const AdamHyper& h, int64_t t) {
  return {1 - std::pow(h.beta1, double(t)), std::sqrt(1 - std::pow(h.beta2, double(t)))};
}

struct SgdHyper {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
};

}  // namespace loom

#define LOOM_OPTIM_API                                                                             \
  /* roles: 0 param, 1 grad, 2 m, 3 v; l.step required */                                                           \
  void adam_step(const KernelCtx& k, DType dt, const TensorList& l, const AdamHyper& h);          \
  /* roles: 0 param, 1 grad, 2 momentum buffer (unused when momentum = 0); l.step required */                       \
  void sgd_step(const KernelCtx& k, DType dt, const TensorList& l, const SgdHyper& h);            \
  /* *out = Σ over role 0 of x², accumulated in double; out: one double in k's device memory */  \
  void sum_squares(const KernelCtx& k, DType dt, const TensorList& l, double* out);               \
  /* role 0 ← role 0 · *factor; factor: one double in k's device memory (1: nothing changes) */    \
  void scale(const KernelCtx& k, DType dt, const TensorList& l, const double* factor);            \
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
