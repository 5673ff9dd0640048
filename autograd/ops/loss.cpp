// Losses, Gaussian densities and dropout. The losses are compositions of
// differentiable ops, so the tape derives their backward; dropout is recorded
// as one op (OpId::Dropout) so that it saves only its mask (see dropout()).
#include <cmath>
#include <numbers>

#include "autograd/ops/common.h"

namespace loom {
using namespace detail;

namespace {

Tensor apply_reduction(const Tensor& loss, Reduction r) {
  switch (r) {
    case Reduction::None: return loss;
    case Reduction::Mean: return mean(loss);
    case Reduction::Sum: return sum(loss);
  }
  throw Error("loss: unknown reduction");
}

// Floating operands of one dtype and device with identical shapes (PyTorch
// refuses to broadcast a prediction against its target too: it hides bugs).
void check_pair(const char* op, const Tensor& input, const Tensor& target) {
  check_floating(op, input);
  check_compatible(op, {&input, &target});
  LOOM_CHECK(input.shape() == target.shape(), op, ": input ", input.shape(), " and target ", target.shape(),
             " differ in shape");
}

// Floating operands of one dtype and device whose shapes broadcast together.
void check_broadcastable(const char* op, std::initializer_list<const Tensor*> xs) {
  check_compatible(op, xs);
  check_floating(op, **xs.begin());
  Shape out;
  for (const Tensor* t : xs) out = broadcast_shapes(op, out, t->shape());
}

// a where w ≠ 0, else 0 (broadcasting): for a term w·f(a) that is 0 wherever its
// weight w is 0, even where a is infinite (a −∞ logit, a log-variance whose
// exponential overflows). Masking a itself, before the product or the exp, keeps
// IEEE's 0·∞ = NaN out of the value and out of every gradient: a mask applied
// to the product instead would still send 0·∞ back through its backward.
Tensor where_weight_nonzero(const Tensor& w, const Tensor& a) {
  Tensor zero = zeros({}, a.options());
  return where(ne(w, zero), a, zero);
}

}  // namespace

// ℓ(z, y) = max(z, 0) − z·y + log1p(e^{−|z|}), i.e. on each side of 0:
//   z ≥ 0:  z·(1 − y) + log1p(e^{−z})        z < 0:  −z·y + log1p(e^{z})
// Every exponent is ≤ 0, so nothing overflows and ℓ is exact for any finite |z|;
// at z = ±∞ the linear term is 0 where its weight (1 − y or y) is 0 (the limit:
// ℓ(+∞, 1) = ℓ(−∞, 0) = 0) and ±∞·w otherwise (ℓ(+∞, 0) = +∞), never ∞ − ∞.
// Both pieces are smooth and meet at 0 with equal value and slope, so taking
// both from one mask gives ∂ℓ/∂z = σ(z) − y everywhere; relu(z) and abs(z) would
// each contribute their subgradient 0 at z = 0 and yield −y there instead of ½ − y.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets, Reduction r) {
  check_pair("binary_cross_entropy_with_logits", logits, targets);
  const Tensor& z = logits;
  Tensor nonneg = ge(z, zeros({}, z.options()));
  Tensor not_target = 1.0 - targets;
  Tensor linear = where(nonneg, where_weight_nonzero(not_target, z) * not_target,  // z·(1 − y)
                        -(where_weight_nonzero(targets, z) * targets));             // −z·y
  Tensor neg_abs = where(nonneg, -z, z);                                            // −|z|
  return apply_reduction(linear + log1p(exp(neg_abs)), r);
}

// ℓ_n = −log softmax(z_n)[y_n] = −Σ_c log_softmax(z_n)_c · 1[c = y_n]; the
// one-hot mask compares the class indices arange(C) with the labels column
// (not differentiable, so ∂ℓ_n/∂z_n = softmax(z_n) − onehot(y_n) comes from
// log_softmax alone). Classes off the label contribute 0 even when their logit
// is −∞ (log_softmax −∞, weight 0).
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction r) {
  check_floating("cross_entropy", logits);
  LOOM_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, C], got ", logits.shape());
  const int64_t n = logits.size(0), classes = logits.size(1);
  LOOM_CHECK(labels.defined(), "cross_entropy: labels are an undefined tensor (logits ", logits.shape(), ")");
  LOOM_CHECK(labels.dtype() == DType::Int64 && labels.shape() == Shape{n}, "cross_entropy: labels must be int64 [",
             n, "] for logits ", logits.shape(), ", got ", labels.dtype(), " ", labels.shape());
  LOOM_CHECK(labels.device() == logits.device(), "cross_entropy: labels on ", labels.device(), " but logits ",
             logits.shape(), " on ", logits.device());
  check_indices("cross_entropy", labels, classes, str("[0, ", classes, ") (the classes of logits ", logits.shape(), ")"),
                     "label");
  Tensor class_index = arange(0, static_cast<double>(classes), 1, logits.options());  // [C]
  Tensor mask = eq(class_index, reshape(labels.to(logits.dtype()), {n, 1}));          // [N, C]
  return apply_reduction(-sum(where_weight_nonzero(mask, log_softmax(logits, 1)), {1}), r);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction r) {
  check_pair("mse_loss", input, target);
  return apply_reduction(square(input - target), r);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction r) {
  check_pair("l1_loss", input, target);
  return apply_reduction(abs(input - target), r);
}

// log N(x; μ, σ²) = −½ (log 2π + log σ² + (x − μ)² · e^{−log σ²}). Where x = μ the
// last term is 0 however small σ² is (e^{−log σ²} overflows to ∞ for log σ² < −88
// in float32): its exponent is masked where (x − μ)² = 0, so ∂/∂x = 0 and
// ∂/∂log σ² = −½ there instead of NaN.
Tensor gaussian_log_prob(const Tensor& x, const Tensor& mean, const Tensor& log_var) {
  check_broadcastable("gaussian_log_prob", {&x, &mean, &log_var});
  const double log_2pi = std::log(2 * std::numbers::pi);
  Tensor sq = square(x - mean);
  return -0.5 * ((log_var + log_2pi) + sq * exp(-where_weight_nonzero(sq, log_var)));
}

// KL(q ‖ p) = ½ (lv_p − lv_q + (e^{lv_q} + (μ_q − μ_p)²) / e^{lv_p} − 1), with the
// variance ratio taken as e^{lv_q − lv_p} so that large or small log-variances on
// both sides cancel before the exponential instead of overflowing it, and the
// exponent of (μ_q − μ_p)² · e^{−lv_p} masked where μ_q = μ_p, so that a tiny
// σ_p² (e^{−lv_p} = ∞) gives 0 there, not 0·∞ = NaN.
Tensor kl_diag_gaussians(const Tensor& mu_q, const Tensor& log_var_q, const Tensor& mu_p, const Tensor& log_var_p) {
  check_broadcastable("kl_diag_gaussians", {&mu_q, &log_var_q, &mu_p, &log_var_p});
  Tensor log_ratio = log_var_p - log_var_q;
  Tensor sq = square(mu_q - mu_p);
  return 0.5 * (log_ratio + exp(-log_ratio) + sq * exp(-where_weight_nonzero(sq, log_var_p)) - 1.0);
}

// y = x · m / (1 − p), m ~ Bernoulli(1 − p), so E[y] = x; ∂L/∂x = ∂L/∂y · m / (1 − p).
// p = 1 drops everything: y = 0 and ∂L/∂x = 0 (PyTorch's convention), with no draw.
// Recorded as its own op rather than composed from mul: mul would save both of
// its operands, keeping the activation x alive until backward although the rule
// only reads the scaled mask.
Tensor dropout(const Tensor& x, double p, bool training, Generator* g) {
  const OpRange range(OpId::Dropout);
  check_floating("dropout", x);
  LOOM_CHECK(p >= 0 && p <= 1, "dropout: probability ", p, " is outside [0, 1] (input ", x.shape(), ")");
  if (!training || p == 0) return x;
  Tensor scaled_mask = zeros(x.shape(), x.options());
  if (p < 1) scaled_mask = bernoulli(full(x.shape(), 1 - p, x.options()), g).mul_(1 / (1 - p));
  Tensor y;
  {
    NoGrad no_grad;
    y = x * scaled_mask;
  }
  record(OpId::Dropout, {x}, {y}, {scaled_mask}, [](BackwardCtx& c) {
    return std::vector<Tensor>{c.grad_out[0] * c.saved[0]};
  });
  return y;
}

}  // namespace loom
