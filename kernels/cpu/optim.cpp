// CPU reference for the optim family (kernels/optim.h).
#include "kernels/optim.h"

#include <cmath>

#include "kernels/cpu/clones.h"

namespace loom::kernels::cpu {
namespace {

template <class T>
T* role(const TensorList& l, int r, int64_t i) {
  return static_cast<T*>(l.ptr[r][i]);
}

// One tensor's Adam update; `Decoupled` a template parameter so that each loop is branch-free. The four
// tensors are distinct, so `simd` may vectorize: IEEE division and square root give the same bits in
// vector lanes as in scalar ones (scalar, their latencies made this loop 40 % of a VAE step).
template <class T, bool Decoupled>
LOOM_CPU_CLONES void adam_tensor(T* p, const T* g, T* m, T* v, int64_t n, T b1, T b2, T lr, T wd, T eps, T c1, T sqrt_c2) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    T pi = p[i], gi = g[i];
    if constexpr (Decoupled) {
      pi -= lr * wd * pi;  // AdamW (Loshchilov & Hutter 2019, Algorithm 2 line 12)
    } else {
      gi += wd * pi;  // L2 regularization in the gradient (Adam with weight decay)
    }
    const T mi = b1 * m[i] + (T(1) - b1) * gi, vi = b2 * v[i] + (T(1) - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    // m̂ / (√v̂ + ε) with m̂ = m/c₁, √v̂ = √v/√c₂
    p[i] = pi - lr * (mi / c1) / (std::sqrt(vi) / sqrt_c2 + eps);
  }
}

template <class T>
void adam_impl(const TensorList& l, const AdamHyper& h) {
  const T b1 = T(h.beta1), b2 = T(h.beta2), lr = T(h.lr), wd = T(h.weight_decay), eps = T(h.eps);
  for (int64_t t = 0; t < l.count; ++t) {
    const AdamBiasCorrection bc = adam_bias_correction(h, l.step[t]);
    const T c1 = T(bc.c1), sqrt_c2 = T(bc.sqrt_c2);
    T *p = role<T>(l, 0, t), *g = role<T>(l, 1, t), *m = role<T>(l, 2, t), *v = role<T>(l, 3, t);
    (h.decoupled ? adam_tensor<T, true> : adam_tensor<T, false>)(p, g, m, v, l.numel[t], b1, b2, lr, wd, eps, c1,
                                                                 sqrt_c2);
  }
}

template <class T>
void sgd_impl(const TensorList& l, const SgdHyper& h) {
  const T mu = T(h.momentum), lr = T(h.lr), wd = T(h.weight_decay), damp = T(h.dampening);
  for (int64_t t = 0; t < l.count; ++t) {
    T *p = role<T>(l, 0, t), *g = role<T>(l, 1, t);
    T* b = h.momentum != 0 ? role<T>(l, 2, t) : nullptr;
    const bool first_step = l.step[t] == 1;
    const int64_t n = l.numel[t];
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      T gi = g[i] + wd * p[i];
      if (b) {
        b[i] = first_step ? gi : mu * b[i] + (T(1) - damp) * gi;
        gi = h.nesterov ? gi + mu * b[i] : b[i];
      }
      p[i] -= lr * gi;
    }
  }
}

template <class T>
double sum_squares_impl(const TensorList& l) {
  double total = 0;
  for (int64_t t = 0; t < l.count; ++t) {
    const T* x = role<T>(l, 0, t);
    const int64_t n = l.numel[t];
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
    total += s;
  }
  return total;
}

template <class T>
void scale_impl(const TensorList& l, double s) {
  if (s == 1) return;  // a clip that did not clip
  for (int64_t t = 0; t < l.count; ++t) {
    T* x = role<T>(l, 0, t);
    for (int64_t i = 0; i < l.numel[t]; ++i) x[i] *= T(s);
  }
}

template <class T>
void lerp_to_impl(const TensorList& l, double decay) {
  for (int64_t t = 0; t < l.count; ++t) {
    T* a = role<T>(l, 0, t);
    const T* x = role<T>(l, 1, t);
    for (int64_t i = 0; i < l.numel[t]; ++i) a[i] = T(decay) * a[i] + T(1 - decay) * x[i];
  }
}

}  // namespace

void adam_step(const KernelCtx&, DType dt, const TensorList& l, const AdamHyper& h) {
  LOOM_FLOAT_SWITCH(dt, T, adam_impl<T>(l, h));
}
void sgd_step(const KernelCtx&, DType dt, const TensorList& l, const SgdHyper& h) {
  LOOM_FLOAT_SWITCH(dt, T, sgd_impl<T>(l, h));
}
void sum_squares(const KernelCtx&, DType dt, const TensorList& l, double* out) {
  LOOM_FLOAT_SWITCH(dt, T, *out = sum_squares_impl<T>(l));
}
void scale(const KernelCtx&, DType dt, const TensorList& l, const double* factor) {
  LOOM_FLOAT_SWITCH(dt, T, scale_impl<T>(l, *factor));
}
void lerp_to(const KernelCtx&, DType dt, const TensorList& l, double decay) {
  LOOM_FLOAT_SWITCH(dt, T, lerp_to_impl<T>(l, decay));
}

}  // namespace loom::kernels::cpu
