#include "models/diffusion/diffusion.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace loom::models::diffusion {

BetaSchedule beta_schedule(const std::string& name) {
  if (name == "linear") return BetaSchedule::Linear;
  if (name == "cosine") return BetaSchedule::Cosine;
  throw Error(str("diffusion: the beta schedule must be linear or cosine, got '", name, "'"));
}

ReverseVariance reverse_variance(const std::string& name) {
  if (name == "posterior") return ReverseVariance::Posterior;
  if (name == "beta") return ReverseVariance::Beta;
  throw Error(str("diffusion: the reverse variance must be posterior or beta, got '", name, "'"));
}

Schedule make_schedule(BetaSchedule kind, int64_t steps, double beta_1, double beta_T) {
  LOOM_CHECK(steps >= 1 && steps <= 100000, "diffusion: the number of steps T must be in [1, 100000], got ", steps);
  Schedule s;
  s.steps = steps;
  const auto n = static_cast<size_t>(steps) + 1;
  s.beta.assign(n, 0.0);
  const double T = static_cast<double>(steps);
  if (kind == BetaSchedule::Linear) {
    LOOM_CHECK(beta_1 > 0 && beta_1 <= beta_T && beta_T < 1, "diffusion: a linear schedule needs 0 < beta_1 <= beta_T < 1, got ",
               beta_1, " and ", beta_T);
    for (int64_t t = 1; t <= steps; ++t)
      s.beta[t] = steps == 1 ? beta_1 : beta_1 + (beta_T - beta_1) * static_cast<double>(t - 1) / (T - 1);
  } else {
    constexpr double kOffset = 0.008, kMaxBeta = 0.999;  // Nichol & Dhariwal §3.2
    auto f = [&](double t) {
      const double c = std::cos((t / T + kOffset) / (1 + kOffset) * std::numbers::pi / 2);
      return c * c;
    };
    for (int64_t t = 1; t <= steps; ++t)
      s.beta[t] = std::min(kMaxBeta, 1 - f(static_cast<double>(t)) / f(static_cast<double>(t - 1)));
  }
  s.alpha_bar.assign(n, 1.0);
  s.posterior_variance.assign(n, 0.0);
  s.posterior_coef_x0.assign(n, 0.0);
  s.posterior_coef_xt.assign(n, 0.0);
  for (size_t t = 1; t < n; ++t) {
    s.alpha_bar[t] = s.alpha_bar[t - 1] * (1 - s.beta[t]);
    const double prev = s.alpha_bar[t - 1], one_minus = 1 - s.alpha_bar[t];
    s.posterior_variance[t] = (1 - prev) / one_minus * s.beta[t];
    s.posterior_coef_x0[t] = std::sqrt(prev) * s.beta[t] / one_minus;
    s.posterior_coef_xt[t] = std::sqrt(1 - s.beta[t]) * (1 - prev) / one_minus;
  }
  return s;
}

std::vector<double> Schedule::log_variance(ReverseVariance v) const {
  std::vector<double> out(static_cast<size_t>(steps) + 1, 0.0);
  for (int64_t t = 1; t <= steps; ++t)
    out[t] = std::log(v == ReverseVariance::Beta ? beta[t] : posterior_variance[t]);
  // t = 1: β̃_2 under both (the header says why); a one-step schedule keeps β_1.
  out[1] = std::log(steps >= 2 ? posterior_variance[2] : beta[1]);
  return out;
}

namespace {
// t must be int64 [B]: the Error names diffusion.
void check_timestep_tensor(const Tensor& t) {
  LOOM_CHECK(t.dim() == 1 && t.dtype() == DType::Int64, "diffusion: time steps must be int64 [B], got ", t.dtype(), " ",
             t.shape());
}
// Each time step of t (int64 [B], any device) in 0..T, read on the host.
void check_timesteps(const Tensor& t, int64_t T) {
  check_timestep_tensor(t);
  for (int64_t v : t.to(Device::cpu()).to_vector<int64_t>())
    LOOM_CHECK(v >= 0 && v <= T, "diffusion: a time step must be in [0, ", T, "], got ", v);
}
}  // namespace

Tensor at(const Tensor& table, const Tensor& t, const Tensor& like) {
  check_timestep_tensor(t);
  LOOM_CHECK(like.dim() >= 1 && like.size(0) == t.size(0), "diffusion: ", t.size(0), " time steps for a batch of shape ",
             like.shape());
  LOOM_CHECK(table.dim() == 1 && table.dtype() == like.dtype() && table.device() == like.device() &&
                 t.device() == like.device(),
             "diffusion: expected a table [T + 1] of ", like.dtype(), " and time steps on ", like.device(),
             " (the batch's), got a table ", table.dtype(), " ", table.shape(), " on ", table.device(),
             " and time steps on ", t.device());
  Shape shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = t.size(0);
  return reshape(index_select(table, 0, t), shape);
}

Tensor at(const std::vector<double>& table, const Tensor& t, const Tensor& like) {
  const int64_t T = static_cast<int64_t>(table.size()) - 1;
  check_timesteps(t, T);
  return at(from_vector(table, {T + 1}, TensorOptions{like.dtype(), like.device()}), t.to(like.device()), like);
}

namespace {

std::vector<double> map(const std::vector<double>& v, double (*f)(double)) {
  std::vector<double> out(v.size());
  std::transform(v.begin(), v.end(), out.begin(), f);
  return out;
}
double sqrt_of(double x) { return std::sqrt(x); }
double sqrt_one_minus(double x) { return std::sqrt(1 - x); }
double recip_sqrt(double x) { return 1 / std::sqrt(x); }

Tensor clip(const Tensor& x0, bool on) { return on ? clamp(x0, -1.0, 1.0) : x0; }

}  // namespace

MarginalTables marginal_tables(const Schedule& s, TensorOptions o) {
  const Shape shape{s.steps + 1};
  return {from_vector(map(s.alpha_bar, sqrt_of), shape, o), from_vector(map(s.alpha_bar, sqrt_one_minus), shape, o)};
}

Tensor q_sample(const Schedule& s, const Tensor& x0, const Tensor& t, const Tensor& eps) {
  check_timesteps(t, s.steps);
  return q_sample(marginal_tables(s, TensorOptions{x0.dtype(), x0.device()}), x0, t.to(x0.device()), eps);
}

Tensor q_sample(const MarginalTables& m, const Tensor& x0, const Tensor& t, const Tensor& eps) {
  LOOM_CHECK(eps.shape() == x0.shape(), "q_sample: noise ", eps.shape(), " for images ", x0.shape());
  return at(m.sqrt_alpha_bar, t, x0) * x0 + at(m.sqrt_one_minus_alpha_bar, t, x0) * eps;
}

Tensor predict_x0(const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& eps) {
  LOOM_CHECK(eps.shape() == xt.shape(), "predict_x0: noise ", eps.shape(), " for images ", xt.shape());
  return (xt - at(map(s.alpha_bar, sqrt_one_minus), t, xt) * eps) * at(map(s.alpha_bar, recip_sqrt), t, xt);
}

Tensor posterior_mean(const Schedule& s, const Tensor& x0, const Tensor& xt, const Tensor& t) {
  return at(s.posterior_coef_x0, t, xt) * x0 + at(s.posterior_coef_xt, t, xt) * xt;
}

Tensor ancestral_step(const Schedule& s, ReverseVariance v, const Tensor& xt, const Tensor& t, const Tensor& eps,
                      const Tensor& z, bool clip_x0) {
  const Tensor mean = posterior_mean(s, clip(predict_x0(s, xt, t, eps), clip_x0), xt, t);
  // No noise where t = 1 (Algorithm 2, line 3: z = 0 at the last step).
  std::vector<double> sigma = map(s.log_variance(v), [](double lv) { return std::exp(0.5 * lv); });
  sigma[1] = 0;
  LOOM_CHECK(z.shape() == xt.shape(), "ancestral_step: noise ", z.shape(), " for images ", xt.shape());
  return mean + at(sigma, t, xt) * z;
}

Tensor ddim_step(const Schedule& s, const Tensor& xt, int64_t t, int64_t t_prev, const Tensor& eps, const Tensor& z,
                 double eta, bool clip_x0) {
  LOOM_CHECK(t >= 1 && t <= s.steps && t_prev >= 0 && t_prev < t, "ddim_step: need 0 <= t_prev < t <= ", s.steps,
             ", got t = ", t, ", t_prev = ", t_prev);
  LOOM_CHECK(eta >= 0, "ddim_step: eta must be >= 0, got ", eta);
  LOOM_CHECK(eps.shape() == xt.shape(), "ddim_step: noise ", eps.shape(), " for images ", xt.shape());
  const double a = s.alpha_bar[t], a_prev = s.alpha_bar[t_prev];
  Tensor x0 = (xt - std::sqrt(1 - a) * eps) * (1 / std::sqrt(a));
  Tensor e = eps;
  if (clip_x0) {
    x0 = clamp(x0, -1.0, 1.0);
    e = (xt - std::sqrt(a) * x0) * (1 / std::sqrt(1 - a));
  }
  const double sigma = eta * std::sqrt((1 - a_prev) / (1 - a)) * std::sqrt(1 - a / a_prev);
  Tensor out = std::sqrt(a_prev) * x0 + std::sqrt(std::max(0.0, 1 - a_prev - sigma * sigma)) * e;
  if (sigma > 0) {
    LOOM_CHECK(z.defined() && z.shape() == xt.shape(), "ddim_step: eta > 0 needs noise of shape ", xt.shape());
    out = out + sigma * z;
  }
  return out;
}

std::vector<int64_t> sampling_steps(int64_t steps, int64_t sample_steps) {
  LOOM_CHECK(sample_steps >= 1 && sample_steps <= steps, "diffusion: sampling steps must be in [1, T = ", steps,
             "], got ", sample_steps);
  // t_i = round(1 + i (T − 1)/(S − 1)), i = S − 1 … 0: distinct because the spacing is ≥ 1.
  std::vector<int64_t> out;
  for (int64_t i = sample_steps - 1; i >= 0; --i)
    out.push_back(sample_steps == 1 ? steps
                                    : 1 + static_cast<int64_t>(std::llround(static_cast<double>(i) *
                                                                            static_cast<double>(steps - 1) /
                                                                            static_cast<double>(sample_steps - 1))));
  return out;
}

Tensor guided_eps(const Tensor& eps_conditional, const Tensor& eps_unconditional, double w) {
  return (1 + w) * eps_conditional - w * eps_unconditional;
}

namespace {

// Σ over every axis but the first, in float64: [B].
Tensor per_image(const Tensor& x) {
  std::vector<int64_t> axes;
  for (int64_t a = 1; a < x.dim(); ++a) axes.push_back(a);
  return sum(x.to(DType::Float64), axes);
}

}  // namespace

Tensor prior_kl(const Schedule& s, const Tensor& x0) {
  const double a = s.alpha_bar[s.steps];
  const Tensor mean = std::sqrt(a) * x0.to(DType::Float64);
  return per_image(kl_diag_gaussians(mean, full(mean.shape(), std::log(1 - a), mean.options()), zeros_like(mean),
                                     zeros_like(mean)));
}

Tensor step_kl(const Schedule& s, ReverseVariance v, const Tensor& x0, const Tensor& xt, const Tensor& t,
               const Tensor& eps) {
  for (int64_t step : t.to(Device::cpu()).to_vector<int64_t>())
    LOOM_CHECK(step >= 2 && step <= s.steps, "step_kl: L_{t-1} needs t in [2, ", s.steps, "], got ", step);
  const Tensor x0d = x0.to(DType::Float64), xtd = xt.to(DType::Float64), epsd = eps.to(DType::Float64);
  const Tensor true_mean = posterior_mean(s, x0d, xtd, t);
  const Tensor model_mean = posterior_mean(s, predict_x0(s, xtd, t, epsd), xtd, t);
  std::vector<double> log_posterior(s.posterior_variance.size(), 0.0);
  for (size_t i = 2; i < log_posterior.size(); ++i) log_posterior[i] = std::log(s.posterior_variance[i]);
  const Tensor lq = expand(at(log_posterior, t, xtd), xtd.shape());
  const Tensor lp = expand(at(s.log_variance(v), t, xtd), xtd.shape());
  return per_image(kl_diag_gaussians(true_mean, lq, model_mean, lp));
}

std::vector<double> discretized_gaussian_log_prob(const std::vector<double>& x, const std::vector<double>& mean,
                                                  const std::vector<double>& log_scale) {
  LOOM_CHECK(x.size() == mean.size() && x.size() == log_scale.size(),
             "discretized_gaussian_log_prob: sizes differ: ", x.size(), ", ", mean.size(), ", ", log_scale.size());
  constexpr double kHalfBin = 1.0 / 255.0, kFloor = 1e-12;
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double inv = std::exp(-log_scale[i]);
    const double lo = (x[i] - kHalfBin - mean[i]) * inv, hi = (x[i] + kHalfBin - mean[i]) * inv;
    // P(lo < Z < hi) for Z ~ N(0, 1), each end bin open to ±∞; from the tail it lies in,
    // so that 1 − Φ does not round away a small probability.
    const bool first = x[i] < -0.999, last = x[i] > 0.999;
    const double r = std::numbers::sqrt2;
    double p;
    if (first)
      p = 0.5 * std::erfc(-hi / r);
    else if (last)
      p = 0.5 * std::erfc(lo / r);
    else if (lo > 0)
      p = 0.5 * (std::erfc(lo / r) - std::erfc(hi / r));
    else
      p = 0.5 * (std::erfc(-hi / r) - std::erfc(-lo / r));
    out[i] = std::log(std::max(p, kFloor));
  }
  return out;
}

Tensor decoder_nll(const Schedule& s, ReverseVariance v, const Tensor& x0, const Tensor& x1, const Tensor& eps) {
  LOOM_CHECK(x0.shape() == x1.shape() && eps.shape() == x1.shape(), "decoder_nll: x_0 ", x0.shape(), ", x_1 ",
             x1.shape(), " and noise ", eps.shape(), " must have one shape");
  const int64_t b = x0.size(0);
  const Tensor one = full({b}, 1.0, TensorOptions{DType::Int64, x1.device()});
  const Tensor x1d = x1.to(DType::Float64);
  const Tensor mean = posterior_mean(s, predict_x0(s, x1d, one, eps.to(DType::Float64)), x1d, one);
  const std::vector<double> xs = x0.to(Device::cpu()).to(DType::Float64).to_vector<double>(),
                            ms = mean.to(Device::cpu()).to_vector<double>();
  const std::vector<double> lp =
      discretized_gaussian_log_prob(xs, ms, std::vector<double>(xs.size(), 0.5 * s.log_variance(v)[1]));
  const size_t per = xs.size() / static_cast<size_t>(std::max<int64_t>(1, b));
  std::vector<double> nll(static_cast<size_t>(b), 0.0);
  for (size_t i = 0; i < lp.size(); ++i) nll[i / per] -= lp[i];
  return from_vector(nll, {b}, TensorOptions{DType::Float64, x0.device()});
}

}  // namespace loom::models::diffusion
