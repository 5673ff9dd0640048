// `loom derive elbo`: the evidence lower bound on a model where everything is exact.
//
// Linear-Gaussian latent model (probabilistic PCA):
//   p(z) = N(0, I_dz),  p(x|z) = N(Wz + b, σ² I_dx)
//   ⇒ p(x) = N(b, C), C = W Wᵀ + σ² I;   p(z|x) = N(μ, Λ⁻¹), Λ = I + WᵀW/σ², μ = Λ⁻¹ Wᵀ(x − b)/σ².
// For any q(z|x), since p(x) = p(x, z) / p(z|x) for every z:
//   log p(x) = E_q[log p(x, z)/q(z|x)] + E_q[log q(z|x)/p(z|x)] = ELBO(q) + KL(q ‖ p(z|x)).
// The three terms are computed by independent routes: log p(x) from C on the host
// (Cholesky, float64), the ELBO and the KL from q's parameters with the engine (so
// they can be differentiated), the KL through the posterior precision Λ.
#include <algorithm>
#include <cmath>

#include "models/derive/derive.h"
#include "models/derive/derive_training.h"

namespace loom::derive {
namespace {
using training::f64;

const double kLog2Pi = std::log(2 * M_PI);

// ---- small dense float64 linear algebra on the host, for the closed forms ----------------
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<double> a;  // row-major
  Matrix(int64_t r, int64_t c) : rows(r), cols(c), a(r * c, 0.0) {}
  double& operator()(int64_t i, int64_t j) { return a[i * cols + j]; }
  double operator()(int64_t i, int64_t j) const { return a[i * cols + j]; }
};

Matrix identity(int64_t n) {
  Matrix m(n, n);
  for (int64_t i = 0; i < n; ++i) m(i, i) = 1;
  return m;
}

// Aᵀ·B when transpose_a, else A·B.
Matrix matmul(const Matrix& a, const Matrix& b, bool transpose_a = false) {
  const int64_t n = transpose_a ? a.cols : a.rows, k = transpose_a ? a.rows : a.cols;
  Matrix c(n, b.cols);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t l = 0; l < k; ++l) {
      const double ail = transpose_a ? a(l, i) : a(i, l);
      for (int64_t j = 0; j < b.cols; ++j) c(i, j) += ail * b(l, j);
    }
  return c;
}

// A = L Lᵀ for symmetric positive definite A.
Matrix cholesky(const Matrix& a) {
  const int64_t n = a.rows;
  Matrix l(n, n);
  for (int64_t j = 0; j < n; ++j) {
    double d = a(j, j);
    for (int64_t k = 0; k < j; ++k) d -= l(j, k) * l(j, k);
    LOOM_CHECK(d > 0, "derive elbo: cholesky of a matrix that is not positive definite (pivot ", j, " = ", d, ")");
    l(j, j) = std::sqrt(d);
    for (int64_t i = j + 1; i < n; ++i) {
      double s = a(i, j);
      for (int64_t k = 0; k < j; ++k) s -= l(i, k) * l(j, k);
      l(i, j) = s / l(j, j);
    }
  }
  return l;
}

double log_det_from_cholesky(const Matrix& l) {
  double s = 0;
  for (int64_t i = 0; i < l.rows; ++i) s += 2 * std::log(l(i, i));
  return s;
}

// Solves (L Lᵀ) x = b by a forward then a backward substitution.
std::vector<double> cholesky_solve(const Matrix& l, std::vector<double> b) {
  const int64_t n = l.rows;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < i; ++k) b[i] -= l(i, k) * b[k];
    b[i] /= l(i, i);
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    for (int64_t k = i + 1; k < n; ++k) b[i] -= l(k, i) * b[k];
    b[i] /= l(i, i);
  }
  return b;
}

Tensor to_tensor(const Matrix& m) { return from_vector(m.a, {m.rows, m.cols}, f64()); }
Tensor to_tensor(const std::vector<double>& v) { return from_vector(v, {static_cast<int64_t>(v.size())}, f64()); }
std::vector<double> host(const Tensor& t) { return t.to_vector<double>(); }

// ---- the model ---------------------------------------------------------------------------------
struct LinearGaussian {
  Matrix w;  // [dx, dz]
  std::vector<double> b;
  double sigma;
  int64_t dz() const { return w.cols; }
  int64_t dx() const { return w.rows; }
};

// log p(x) = log N(x; b, C) = −½ (dx log 2π + log det C + (x − b)ᵀ C⁻¹ (x − b)).
double log_marginal(const LinearGaussian& m, const std::vector<double>& x) {
  Matrix c(m.dx(), m.dx());
  for (int64_t i = 0; i < m.dx(); ++i)
    for (int64_t j = 0; j < m.dx(); ++j) {
      for (int64_t k = 0; k < m.dz(); ++k) c(i, j) += m.w(i, k) * m.w(j, k);
      if (i == j) c(i, j) += m.sigma * m.sigma;
    }
  Matrix l = cholesky(c);
  std::vector<double> r(m.dx());
  for (int64_t i = 0; i < m.dx(); ++i) r[i] = x[i] - m.b[i];
  std::vector<double> ci_r = cholesky_solve(l, r);
  double quad = 0;
  for (int64_t i = 0; i < m.dx(); ++i) quad += r[i] * ci_r[i];
  return -0.5 * (static_cast<double>(m.dx()) * kLog2Pi + log_det_from_cholesky(l) + quad);
}

struct Posterior {
  std::vector<double> mean;
  Matrix precision, cov;
  double log_det_cov;
};

// p(z|x) ∝ p(x|z) p(z): completing the square in z gives precision Λ = I + WᵀW/σ²
// and mean Λ⁻¹ Wᵀ(x − b)/σ².
Posterior posterior(const LinearGaussian& m, const std::vector<double>& x) {
  const double s2 = m.sigma * m.sigma;
  Matrix prec = matmul(m.w, m.w, true);
  for (double& v : prec.a) v /= s2;
  for (int64_t i = 0; i < m.dz(); ++i) prec(i, i) += 1;
  Matrix l = cholesky(prec);
  std::vector<double> wr(m.dz(), 0.0);
  for (int64_t k = 0; k < m.dz(); ++k)
    for (int64_t i = 0; i < m.dx(); ++i) wr[k] += m.w(i, k) * (x[i] - m.b[i]) / s2;
  Posterior p{cholesky_solve(l, wr), prec, Matrix(m.dz(), m.dz()), -log_det_from_cholesky(l)};
  for (int64_t j = 0; j < m.dz(); ++j) {
    std::vector<double> e(m.dz(), 0.0);
    e[j] = 1;
    std::vector<double> col = cholesky_solve(l, e);
    for (int64_t i = 0; i < m.dz(); ++i) p.cov(i, j) = col[i];
  }
  return p;
}

// A random instance: W entries N(0, scale²), b ~ N(0, I), σ ∈ [0.1, 2], x drawn from the model.
LinearGaussian random_model(int64_t dz, int64_t dx, double scale, Generator& g) {
  LinearGaussian m{Matrix(dx, dz), host(randn({dx}, f64(), &g)), uniform({}, 0.1, 2, f64(), &g).item()};
  m.w.a = host(normal({dx, dz}, 0, scale, f64(), &g));
  return m;
}
std::vector<double> sample_x(const LinearGaussian& m, Generator& g) {
  std::vector<double> z = host(randn({m.dz()}, f64(), &g)), e = host(randn({m.dx()}, f64(), &g)), x(m.dx());
  for (int64_t i = 0; i < m.dx(); ++i) {
    x[i] = m.b[i] + m.sigma * e[i];
    for (int64_t k = 0; k < m.dz(); ++k) x[i] += m.w(i, k) * z[k];
  }
  return x;
}

// ---- the engine side: q and the differentiable terms -------------------------------------------
// Elementwise log N(v; mean, exp(log_var)) = −½ (log 2π + log_var + (v − mean)² e^{−log_var}).
Tensor gaussian_log_density(const Tensor& v, const Tensor& mean, const Tensor& log_var) {
  return (kLog2Pi + log_var + square(v - mean) * exp(-log_var)) * -0.5;
}

// The model and one observation as constant float64 tensors.
struct Observed {
  Tensor w, b, x, log_var;  // log_var = log σ² (0-d)
  int64_t dz, dx;
  double sigma;
  Observed(const LinearGaussian& m, const std::vector<double>& xv)
      : w(to_tensor(m.w)), b(to_tensor(m.b)), x(to_tensor(xv)), log_var(scalar(2 * std::log(m.sigma), f64())),
        dz(m.dz()), dx(m.dx()), sigma(m.sigma) {}
};

// q(z|x) = N(m, L Lᵀ) with L = strictly-lower(A) + diag(e^s): every full-covariance
// Gaussian, unconstrained in (m, A, s), with log det(L Lᵀ) = 2 Σ s.
struct GaussianQ {
  Tensor m, a, s;
  GaussianQ(std::vector<double> mean, const Matrix& a_host, std::vector<double> log_diag)
      : m(to_tensor(mean)), a(to_tensor(a_host)), s(to_tensor(log_diag)) {}
  int64_t dz() const { return m.numel(); }
  std::vector<Tensor> parameters() const { return {m, a, s}; }
  void requires_grad() {
    m.requires_grad_();
    a.requires_grad_();
    s.requires_grad_();
  }
  Tensor scale_tril() const {
    Matrix strict(dz(), dz());
    for (int64_t i = 0; i < dz(); ++i)
      for (int64_t j = 0; j < i; ++j) strict(i, j) = 1;
    return a * to_tensor(strict) + to_tensor(identity(dz())) * unsqueeze(exp(s), 0);  // eye ⊙ row = diag
  }
};

// ELBO(q) = E_q[log p(x|z)] + E_q[log p(z)] + H[q], each in closed form for z ~ N(m, S = L Lᵀ):
//   E_q[log p(x|z)] = −dx/2 log(2πσ²) − (‖x − b − W m‖² + tr(W S Wᵀ)) / (2σ²),  tr(W S Wᵀ) = ‖W L‖²_F
//   E_q[log p(z)]   = −dz/2 log 2π − (‖m‖² + tr S) / 2,                          tr S = ‖L‖²_F
//   H[q]            =  dz/2 (1 + log 2π) + ½ log det S.
Tensor elbo_closed_form(const Observed& o, const GaussianQ& q) {
  const Tensor l = q.scale_tril();
  const double dz = static_cast<double>(o.dz), dx = static_cast<double>(o.dx), s2 = o.sigma * o.sigma;
  Tensor resid = o.x - o.b - reshape(matmul(o.w, reshape(q.m, {-1, 1})), {-1});
  Tensor expected_log_lik = -0.5 * dx * (kLog2Pi + std::log(s2)) - (sum(square(resid)) + sum(square(matmul(o.w, l)))) / (2 * s2);
  Tensor expected_log_prior = -0.5 * dz * kLog2Pi - 0.5 * (sum(square(q.m)) + sum(square(l)));
  Tensor entropy = 0.5 * dz * (1 + kLog2Pi) + sum(q.s);
  return expected_log_lik + expected_log_prior + entropy;
}

// KL(N(m, S) ‖ N(μ, Λ⁻¹)) = ½ (tr(Λ S) + (μ − m)ᵀ Λ (μ − m) − dz + log det Λ⁻¹ − log det S),
// with tr(Λ S) = Σ (Λ L) ⊙ L.
Tensor kl_to_posterior(const Posterior& post, const GaussianQ& q) {
  const Tensor l = q.scale_tril(), prec = to_tensor(post.precision);
  Tensor d = reshape(to_tensor(post.mean) - q.m, {-1, 1});
  Tensor trace = sum(matmul(prec, l) * l), quad = sum(d * matmul(prec, d));
  return 0.5 * (trace + quad - static_cast<double>(q.dz()) + post.log_det_cov - 2 * sum(q.s));
}

// KL(N(m, S) ‖ N(0, I)) = ½ (tr S + ‖m‖² − dz − log det S): the VAE's prior-fitting term
// (for diagonal S it is the lecture's ½ Σ (σ² + μ² − log σ² − 1)).
Tensor kl_to_prior(const GaussianQ& q) {
  return 0.5 * (sum(square(q.scale_tril())) + sum(square(q.m)) - static_cast<double>(q.dz()) - 2 * sum(q.s));
}

// n reparameterised draws z = m + L ε, ε ~ N(0, I), with the per-draw terms.
struct Draws {
  Tensor log_lik, log_prior, log_q;  // [n] each: log p(x|z), log p(z), log q(z|x)
};
Draws draw(const Observed& o, const GaussianQ& q, int64_t n, Generator& g) {
  const Tensor eps = randn({n, q.dz()}, f64(), &g);
  const Tensor z = q.m + matmul(eps, transpose(q.scale_tril(), 0, 1));
  const Tensor zero = scalar(0, f64());
  Tensor mean_x = matmul(z, transpose(o.w, 0, 1)) + o.b;
  // log q(z) = log N(ε; 0, I) − log |det L| since z = m + L ε.
  return {sum(gaussian_log_density(o.x, mean_x, o.log_var), {1}), sum(gaussian_log_density(z, zero, zero), {1}),
          sum(gaussian_log_density(eps, zero, zero), {1}) - sum(q.s)};
}

struct MeanSe {
  double mean, se;
};
MeanSe mean_and_se(const Tensor& v) {
  const double n = static_cast<double>(v.numel());
  return {mean(v).item(), std::sqrt(var(v, {}, false, 1).item() / n)};
}

// A Gaussian q with random mean and random full covariance.
GaussianQ random_q(int64_t dz, Generator& g) {
  Matrix a(dz, dz);
  a.a = host(randn({dz, dz}, f64(), &g));
  return GaussianQ(host(normal({dz}, 0, 2, f64(), &g)), a, host(uniform({dz}, -2, 1, f64(), &g)));
}

// ---- 1. log p(x) = ELBO + KL ----------------------------------------------------------------------
void decomposition(ElboResult& r, Generator& g, bool quick) {
  const std::vector<int64_t> dzs{1, 2, 3, 5}, dxs{1, 2, 4, 8, 16};
  const std::vector<double> scales{0.3, 1, 3};
  r.instances = quick ? 60 : 300;
  NoGrad ng;
  for (int64_t i = 0; i < r.instances; ++i) {
    const int64_t dz = dzs[i % dzs.size()], dx = dxs[(i / dzs.size()) % dxs.size()];
    const LinearGaussian m = random_model(dz, dx, scales[i % scales.size()], g);
    const std::vector<double> x = sample_x(m, g);
    const GaussianQ q = random_q(dz, g);
    const double log_px = log_marginal(m, x);
    const double elbo = elbo_closed_form(Observed(m, x), q).item(), kl = kl_to_posterior(posterior(m, x), q).item();
    const double err = std::abs(log_px - (elbo + kl));
    r.decomposition_max_abs_err = std::max(r.decomposition_max_abs_err, err);
    if (i < 10) r.decomposition.push_back({dz, dx, m.sigma, log_px, elbo, kl, err});
  }
}

// ---- 2. three ways to the same ELBO -------------------------------------------------------------
void three_ways(ElboResult& r, const LinearGaussian& m, const std::vector<double>& x, const GaussianQ& q,
                Generator& g, bool quick) {
  NoGrad ng;
  const Observed obs(m, x);
  const double closed = elbo_closed_form(obs, q).item();
  const Draws d = draw(obs, q, quick ? 20000 : 200000, g);
  // Reparameterised Monte Carlo: mean of log p(x, z) − log q(z|x) over z = m + L ε.
  const MeanSe mc = mean_and_se(d.log_lik + d.log_prior - d.log_q);
  // The VAE's split: reconstruction by Monte Carlo, prior fitting in closed form.
  const MeanSe recon = mean_and_se(d.log_lik);
  const double vae = recon.mean - kl_to_prior(q).item();
  r.estimates = {{"closed form", closed, 0, 0},
                 {"Monte Carlo, reparameterised z = m + L eps", mc.mean, mc.se, std::abs(mc.mean - closed) / mc.se},
                 {"VAE form E_q[log p(x|z)] - KL(q || p(z))", vae, recon.se, std::abs(vae - closed) / recon.se}};
  r.mc_z_score = std::max(r.estimates[1].z_score, r.estimates[2].z_score);
}

// ---- 3. maximising the ELBO over q closes the gap ------------------------------------------------
// Plain gradient ascent θ ← θ + η ∇_θ ELBO on q's parameters (m, A, s), the gradient from the
// tape. The ELBO is concave in m with Hessian −Λ, so η = 1 / tr Λ ≤ 1 / λ_max(Λ) is a safe step.
void optimize(ElboResult& r, const LinearGaussian& m, const std::vector<double>& x, const Posterior& post,
              bool quick) {
  const Observed obs(m, x);
  const int64_t dz = m.dz(), steps = quick ? 800 : 1500;
  GaussianQ q(std::vector<double>(dz, 0.0), Matrix(dz, dz), std::vector<double>(dz, 0.0));  // start at the prior
  q.requires_grad();
  double trace = 0;
  for (int64_t i = 0; i < dz; ++i) trace += post.precision(i, i);
  const double lr = 1 / trace;
  for (int64_t step = 0; step <= steps; ++step) {
    Tensor elbo = elbo_closed_form(obs, q);
    const double gap = r.log_px - elbo.item();
    if (step % 10 == 0 || step == steps) r.optimization.push_back({step, elbo.item(), gap});
    if (step == steps) break;
    backward(elbo);
    NoGrad ng;
    for (Tensor& p : q.parameters()) {
      p.add_(p.grad(), lr);
      p.zero_grad();
    }
  }
  r.optimized_gap = r.optimization.back().gap;
  NoGrad ng;
  const std::vector<double> mean = host(q.m), l = host(q.scale_tril());
  for (int64_t i = 0; i < dz; ++i) {
    r.optimized_mean_err = std::max(r.optimized_mean_err, std::abs(mean[i] - post.mean[i]));
    for (int64_t j = 0; j < dz; ++j) {
      double s = 0;  // (L Lᵀ)_ij
      for (int64_t k = 0; k < dz; ++k) s += l[i * dz + k] * l[j * dz + k];
      r.optimized_cov_err = std::max(r.optimized_cov_err, std::abs(s - post.cov(i, j)));
    }
  }
}

// ---- 4. the importance-weighted bound rises toward log p(x) ---------------------------------------
// L_k = log (1/k) Σ_i w_i, w_i = p(x, z_i)/q(z_i|x), z_i ~ q. E[L_k] increases with k to log p(x).
// The gap log p(x) − E[L_k] is estimated with a control variate that the known log p(x)
// makes available: with u = p̂_k/p(x) − 1 (E[u] = 0 since p̂_k = e^{L_k} is unbiased),
//   log p(x) − E[L_k] = E[−log(1 + u)] = E[u − log(1 + u)],
// an average of non-negative terms whose spread shrinks with the gap itself (≈ u²/2),
// where the plain average of L_k would drown a 1e-4 gap in noise of order √(2·gap/R).
void importance_weighted(ElboResult& r, const LinearGaussian& m, const std::vector<double>& x, const GaussianQ& q,
                         Generator& g, bool quick) {
  NoGrad ng;
  const Observed obs(m, x);
  const int64_t reps = quick ? 100 : 400, max_draws_at_once = 1 << 18;
  r.iwae_k = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
  for (int64_t k : r.iwae_k) {
    std::vector<double> bounds;
    for (int64_t done = 0; done < reps;) {
      const int64_t chunk = std::min(reps - done, std::max<int64_t>(1, max_draws_at_once / k));
      const Draws d = draw(obs, q, chunk * k, g);
      Tensor log_w = reshape(d.log_lik + d.log_prior - d.log_q, {chunk, k});
      for (double b : host(logsumexp(log_w, {1}) - std::log(static_cast<double>(k)))) bounds.push_back(b);
      done += chunk;
    }
    const Tensor bound = to_tensor(bounds);
    const Tensor u = exp(bound - r.log_px) - 1;
    const MeanSe plain = mean_and_se(bound), gap = mean_and_se(u - log1p(u));
    r.iwae.push_back({k, plain.mean, plain.se, gap.mean, gap.se});
    r.iwae_gap_by_k.push_back(gap.mean);
  }
}

// ---- 5. closed-form KL between diagonal Gaussians against Monte Carlo -----------------------------
// KL(N(μq, e^{lq}) ‖ N(μp, e^{lp})) = ½ Σ (lp − lq + (e^{lq} + (μq − μp)²) e^{−lp} − 1).
void kl_diagonal(ElboResult& r, Generator& g, bool quick) {
  NoGrad ng;
  const int64_t n = quick ? 20000 : 200000;
  for (int64_t dim : {1, 4, 16}) {
    const Tensor mu_q = randn({dim}, f64(), &g), mu_p = randn({dim}, f64(), &g);
    const Tensor lv_q = uniform({dim}, -1, 1, f64(), &g), lv_p = uniform({dim}, -1, 1, f64(), &g);
    const double closed = (0.5 * sum(lv_p - lv_q + (exp(lv_q) + square(mu_q - mu_p)) * exp(-lv_p) - 1)).item();
    const Tensor z = mu_q + exp(lv_q * 0.5) * randn({n, dim}, f64(), &g);
    const MeanSe mc = mean_and_se(sum(gaussian_log_density(z, mu_q, lv_q) - gaussian_log_density(z, mu_p, lv_p), {1}));
    r.kl.push_back({dim, closed, mc.mean, mc.se, std::abs(mc.mean - closed) / mc.se});
    r.kl_mc_z_score = std::max(r.kl_mc_z_score, r.kl.back().z_score);
  }
}

void add_figures(ElboResult& r) {
  Figure opt{"elbo_optimization", "Gradient ascent on the ELBO: log p(x) - ELBO(q) -> 0", "step",
             "log p(x) - ELBO = KL(q || p(z|x))", false, true, {}};
  Curve gap{"gap", {}, {}};
  for (const OptimizeRow& row : r.optimization) {
    gap.x.push_back(static_cast<double>(row.step));
    gap.y.push_back(std::max(row.gap, 1e-16));  // the log axis needs a positive floor at convergence
  }
  opt.curves = {gap};
  Figure iw{"iwae_gap", "Importance-weighted bound: log p(x) - E[L_k]", "k (samples)", "gap (nats)", true, true, {}};
  Curve c{"log p(x) - E[L_k]", {}, {}};
  for (const IwaeRow& row : r.iwae) {
    c.x.push_back(static_cast<double>(row.k));
    c.y.push_back(row.gap);
  }
  iw.curves = {c};
  r.figures = {opt, iw};
}

}  // namespace

ElboResult derive_elbo(const Options& o) {
  ElboResult r;
  Generator g = training::stream(o.seed, 0);
  decomposition(r, g, o.quick);
  g = training::stream(o.seed, 1);

  // One fixed instance for the rest: dz = 3 latent, dx = 6 observed, σ = 0.5 (a posterior
  // neither flat nor needle-thin, so that plain gradient ascent converges in a few hundred steps).
  LinearGaussian m = random_model(3, 6, 1.0, g);
  m.sigma = 0.5;
  const std::vector<double> x = sample_x(m, g);
  const Posterior post = posterior(m, x);
  r.log_px = log_marginal(m, x);
  three_ways(r, m, x, random_q(3, g), g, o.quick);
  optimize(r, m, x, post, o.quick);
  // A deliberately imperfect q for the IWAE: the posterior's marginals, shifted by half
  // a standard deviation, 1.5× wider, and blind to the posterior's correlations.
  std::vector<double> mean = post.mean, log_sd(3);
  for (int64_t i = 0; i < 3; ++i) {
    const double sd = std::sqrt(post.cov(i, i));
    mean[i] += (i % 2 ? -0.5 : 0.5) * sd;
    log_sd[i] = std::log(1.5 * sd);
  }
  const GaussianQ iwae_q(mean, Matrix(3, 3), log_sd);
  r.iwae_q_kl = kl_to_posterior(post, iwae_q).item();
  Generator iwae = training::stream(o.seed, 2), kl = training::stream(o.seed, 3);
  importance_weighted(r, m, x, iwae_q, iwae, o.quick);
  kl_diagonal(r, kl, o.quick);
  add_figures(r);
  return r;
}

}  // namespace loom::derive
