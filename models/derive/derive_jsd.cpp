// `loom derive jsd`: the GAN objective and the Jensen–Shannon divergence.
//
// For a fixed generator, V(G, D) = E_data[log D] + E_G[log(1 − D)] is maximised
// pointwise by D*(x) = p_data(x) / (p_data(x) + p_G(x)) (the maximiser of
// a·log y + b·log(1 − y) is y = a / (a + b)). Plugging D* in, each denominator
// p_data + p_G = 2m gives up a log 2, with m = (p_data + p_G) / 2:
//   V(G, D*) = KL(p_data ‖ m) + KL(p_G ‖ m) − log 4 = 2·JSD(p_data ‖ p_G) − log 4.
// Both sides are computed here by different routes:
// V through the discriminator's logit a = log p_data − log p_G (log D* = −softplus(−a),
// log(1 − D*) = −softplus(a), exact for any a), the JSD through the mixture m.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "models/derive/derive.h"
#include "models/derive/derive_training.h"

namespace loom::derive {
namespace {
using training::f64;

const double kLog4 = std::log(4.0);

// Elementwise a·log b with 0·log b = 0 (the convention every KL and JSD needs).
Tensor xlogy(const Tensor& a, const Tensor& b) {
  Tensor pos = gt(a, zeros_like(a));
  return where(pos, a * log(where(pos, b, ones_like(b))), zeros_like(a));
}

// JSD(p ‖ q) = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q)/2: in [0, log 2].
double jsd(const Tensor& p, const Tensor& q) {
  Tensor m = (p + q) * 0.5;
  return (sum(xlogy(p, p / m)) * 0.5 + sum(xlogy(q, q / m)) * 0.5).item();
}

// log σ(a) = −softplus(−a) and log(1 − σ(a)) = log σ(−a) = −softplus(a), exact for any a.
Tensor log_sigmoid(const Tensor& a) { return -softplus(-a); }

// V(G, D) for a discriminator given by its logits on a discrete space (or a
// quadrature grid): Σ p log σ(a) + Σ q log(1 − σ(a)).
double gan_value(const Tensor& p, const Tensor& q, const Tensor& logits) {
  return (sum(p * log_sigmoid(logits)) + sum(q * log_sigmoid(-logits))).item();
}

// A 1-D Gaussian mixture: the data (and the fixed generator) of the continuous experiments.
struct Mixture {
  std::vector<double> weight, mean, sd;

  double pdf(double x) const {
    double s = 0;
    for (size_t i = 0; i < weight.size(); ++i) {
      const double u = (x - mean[i]) / sd[i];
      s += weight[i] * std::exp(-0.5 * u * u) / (sd[i] * std::sqrt(2 * M_PI));
    }
    return s;
  }
  double cdf(double x) const {
    double s = 0;
    for (size_t i = 0; i < weight.size(); ++i) s += weight[i] * 0.5 * std::erfc(-(x - mean[i]) / (sd[i] * M_SQRT2));
    return s;
  }
  // "0.5 N(-1.5, 0.6^2) + 0.5 N(1.5, 0.6^2)"
  std::string describe() const {
    std::string out;
    for (size_t i = 0; i < weight.size(); ++i) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s%.3g N(%.3g, %.3g^2)", i ? " + " : "", weight[i], mean[i], sd[i]);
      out += weight.size() == 1 ? std::string(buf).substr(2) : buf;  // drop a lone weight "1 "
    }
    return out;
  }
  // n samples as an [n, 1] float64 tensor: pick a component by inverse CDF of the weights.
  Tensor sample(int64_t n, Generator& g) const {
    std::vector<double> u = rand({n}, f64(), &g).to_vector<double>();
    std::vector<double> e = randn({n}, f64(), &g).to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      size_t c = 0;
      double acc = weight[0];
      while (u[i] > acc && c + 1 < weight.size()) acc += weight[++c];
      e[i] = mean[c] + sd[c] * e[i];
    }
    return from_vector(e, {n, 1}, f64());
  }
};

std::vector<double> linspace(double lo, double hi, int64_t n) {
  std::vector<double> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(n - 1);
  return x;
}

// The mixture's probabilities on grid points, renormalised to sum to one.
Tensor discretize(const Mixture& m, const std::vector<double>& grid) {
  std::vector<double> p(grid.size());
  double total = 0;
  for (size_t i = 0; i < grid.size(); ++i) total += p[i] = m.pdf(grid[i]);
  for (double& v : p) v /= total;
  return from_vector(p, {static_cast<int64_t>(p.size())}, f64());
}

// ---- 1. the identity on discrete pairs --------------------------------------------------
JsdPairRow check_pair(std::string name, const Tensor& p, const Tensor& q) {
  const double v = gan_value(p, q, log(p) - log(q));  // D* = σ(log p − log q) = p / (p + q)
  const double j = jsd(p, q);
  return {std::move(name), p.numel(), j, v, std::abs(v - (2 * j - kLog4))};
}

void identity_on_pairs(JsdResult& r, Generator& g) {
  auto categorical = [&](int64_t k, double scale) { return softmax(randn({k}, f64(), &g) * scale); };
  for (int64_t k : {2, 3, 10, 100, 1000})
    for (double scale : {0.3, 1.0, 3.0})
      r.pairs.push_back(check_pair("categorical, logits ~ N(0, " + std::to_string(scale).substr(0, 3) + "²)",
                                   categorical(k, scale), categorical(k, scale)));
  // Near-disjoint: each puts all but ~e^-50 of its mass on its own half.
  for (int64_t k : {2, 10, 1000}) {
    std::vector<double> half(k);
    for (int64_t i = 0; i < k; ++i) half[i] = i < k / 2 ? 0 : -50;
    Tensor h = from_vector(half, {k}, f64());
    r.pairs.push_back(check_pair("near-disjoint supports (leak e^-50)", softmax(h + randn({k}, f64(), &g)),
                                 softmax(-50 - h + randn({k}, f64(), &g))));
  }
  Tensor same = categorical(100, 1.0);
  r.pairs.push_back(check_pair("identical (JSD = 0)", same, same));
  // Two 1-D Gaussian mixtures discretised on 1000 points of [−8, 8].
  const std::vector<double> grid = linspace(-8, 8, 1000);
  const Mixture bimodal{{0.5, 0.5}, {-2, 2}, {0.5, 0.5}};
  r.pairs.push_back(check_pair("mixtures on a grid: bimodal vs N(0, 1.5²)", discretize(bimodal, grid),
                               discretize(Mixture{{1}, {0}, {1.5}}, grid)));
  r.pairs.push_back(check_pair("mixtures on a grid: 3 vs 2 components",
                               discretize(Mixture{{0.2, 0.5, 0.3}, {-3, 0, 2.5}, {0.6, 0.8, 0.4}}, grid),
                               discretize(Mixture{{0.6, 0.4}, {-1, 3}, {1.2, 0.7}}, grid)));
  r.pairs.push_back(check_pair("mixtures on a grid: far apart", discretize(Mixture{{1}, {-4}, {0.7}}, grid),
                               discretize(Mixture{{1}, {4}, {0.7}}, grid)));
  for (const JsdPairRow& row : r.pairs) r.identity_max_abs_err = std::max(r.identity_max_abs_err, row.abs_err);
}

// ---- 2. a trained discriminator approaches D* ---------------------------------------------
void train_discriminator(JsdResult& r, Generator& g, bool quick) {
  const Mixture data{{0.5, 0.5}, {-1.5, 1.5}, {0.6, 0.6}};
  const Mixture gen{{1}, {0.3}, {1.4}};
  // V is measured by quadrature on a fine grid, so the only error left is D's.
  const std::vector<double> grid = linspace(-7, 7, 1401);
  const Tensor p = discretize(data, grid), q = discretize(gen, grid);
  const Tensor x_grid = from_vector(grid, {static_cast<int64_t>(grid.size()), 1}, f64());
  r.trained_target = 2 * jsd(p, q) - kLog4;
  const int64_t steps = quick ? 600 : 3000, batch = 256, every = steps / 50;
  r.trained_setup = "p_data = " + data.describe() + ", p_G = " + gen.describe() + "; D = MLP 1-32-32-1 (leaky ReLU), " +
                    std::to_string(steps) + " Adam steps on " + std::to_string(batch) + " + " + std::to_string(batch) +
                    " fresh samples each";
  // Piecewise-linear units extrapolate the logit log p_data − log p_G (quadratic
  // in the tails here) far better than saturating tanh units; x/2 keeps inputs O(1).
  auto net = nn::mlp({1, 32, 32, 1}, [](const Tensor& h) { return leaky_relu(h, 0.1); }, training::f64(), &g);
  auto d = [&](const Tensor& x) { return (*net)(x * 0.5); };
  const double lr = quick ? 3e-2 : 1e-2;
  optim::Adam adam(net->parameters(), {.lr = lr});
  auto evaluate = [&](int64_t step) {
    NoGrad ng;
    const double v = gan_value(p, q, reshape(d(x_grid), {-1}));
    r.discriminator.push_back({step, v, r.trained_target - v});
  };
  for (int64_t step = 0; step < steps; ++step) {
    if (step % every == 0) evaluate(step);
    // Maximise V on samples: minimise −[mean log σ(a(x_data)) + mean log(1 − σ(a(x_G)))].
    Tensor loss = -(mean(log_sigmoid(d(data.sample(batch, g)))) + mean(log_sigmoid(-d(gen.sample(batch, g)))));
    backward(loss);
    adam.set_lr(lr * std::pow(0.01, static_cast<double>(step) / static_cast<double>(steps)));  // anneal lr → lr/100
    adam.step();
    adam.zero_grad();
  }
  evaluate(steps);
  r.trained_gap = std::abs(r.discriminator.back().gap);

  // Compare D with D* where there is mass to learn from: (p_data + p_G)/2 ≥ 0.01.
  NoGrad ng;
  const std::vector<double> d_trained = sigmoid(d(x_grid)).to_vector<double>();
  Figure fig{"jsd_discriminator", "Trained discriminator vs D* = p_data / (p_data + p_G)", "x", "", false, false, {}};
  Curve c_star{"D*", grid, {}}, c_trained{"D trained", grid, d_trained}, c_data{"p_data", grid, {}},
      c_gen{"p_G", grid, {}};
  for (size_t i = 0; i < grid.size(); ++i) {
    const double pd = data.pdf(grid[i]), pg = gen.pdf(grid[i]);
    c_star.y.push_back(pd / (pd + pg));
    c_data.y.push_back(pd);
    c_gen.y.push_back(pg);
    if ((pd + pg) / 2 >= 0.01)
      r.trained_d_max_err = std::max(r.trained_d_max_err, std::abs(d_trained[i] - c_star.y.back()));
  }
  fig.curves = {c_star, c_trained, c_data, c_gen};
  r.figures.push_back(fig);

  Figure curve{"jsd_discriminator_training", "Training D: V(G, D) approaches max_D V = 2 JSD - log 4", "step",
               "2 JSD - log 4 - V(G, D)  (nats)", false, true, {}};
  Curve gap{"", {}, {}};
  for (const DiscriminatorRow& row : r.discriminator) {
    gap.x.push_back(static_cast<double>(row.step));
    gap.y.push_back(row.gap);
  }
  curve.curves = {gap};
  r.figures.push_back(curve);
}

// ---- 3. the generator's gradient where D(G(z)) ≈ 0 -------------------------------------------
// Both losses and both parametrisations go through the tape; elementwise, so
// one backward per loss gives the gradient at every D at once.
struct LossGrads {
  std::vector<double> saturating_dd, non_saturating_dd, saturating_dlogit, non_saturating_dlogit;
};
LossGrads generator_gradients(const std::vector<double>& ds) {
  const int64_t n = static_cast<int64_t>(ds.size());
  auto grad_of = [&](bool through_logit, bool saturating) {
    std::vector<double> at = ds;
    if (through_logit)
      for (double& v : at) v = std::log(v / (1 - v));  // a with σ(a) = D
    Tensor leaf = from_vector(at, {n}, f64()).requires_grad_();
    Tensor loss = through_logit ? (saturating ? log_sigmoid(-leaf) : -log_sigmoid(leaf))
                                : (saturating ? log(1 - leaf) : -log(leaf));
    backward(sum(loss));
    return leaf.grad().to_vector<double>();
  };
  return {grad_of(false, true), grad_of(false, false), grad_of(true, true), grad_of(true, false)};
}

void generator_gradient(JsdResult& r) {
  const std::vector<double> ds{0.5, 0.1, 0.01, 0.001, 1e-4};
  const LossGrads g = generator_gradients(ds);
  for (size_t i = 0; i < ds.size(); ++i) {
    const double ratio = std::abs(g.non_saturating_dd[i]) / std::abs(g.saturating_dd[i]);
    r.generator_grads.push_back(
        {ds[i], g.saturating_dd[i], g.non_saturating_dd[i], g.saturating_dlogit[i], g.non_saturating_dlogit[i], ratio});
    if (ds[i] == 0.01) r.grad_ratio_at_0_01 = ratio;
  }
  std::vector<double> curve_d;
  for (int i = 0; i <= 160; ++i) curve_d.push_back(std::pow(10.0, -4 + (4 + std::log10(0.9)) * i / 160.0));  // 1e-4 … 0.9
  const LossGrads c = generator_gradients(curve_d);
  Figure fig{"jsd_generator_gradient", "Generator gradient through the logit of D(G(z))", "D(G(z))",
             "|d loss / d logit|", true, true, {}};
  Curve sat{"log(1 - D)  (saturating)", curve_d, {}}, nonsat{"-log D  (non-saturating)", curve_d, {}};
  for (size_t i = 0; i < curve_d.size(); ++i) {
    sat.y.push_back(std::abs(c.saturating_dlogit[i]));
    nonsat.y.push_back(std::abs(c.non_saturating_dlogit[i]));
  }
  fig.curves = {sat, nonsat};
  r.figures.push_back(fig);
}

// ---- 4. a 1-D GAN lowers the JSD ---------------------------------------------------------------
void train_gan(JsdResult& r, Generator& g, bool quick) {
  const Mixture data{{0.5, 0.5}, {-1.5, 1.5}, {0.5, 0.5}};
  // Bins of width 0.1 on [−4, 4] plus one open bin at each end, so both sides sum to one.
  const double lo = -4, hi = 4;
  const int64_t inner = 80, bins = inner + 2, eval_samples = quick ? 10000 : 40000;
  const double width = (hi - lo) / inner;
  std::vector<double> data_bins(bins), centers(inner);
  for (int64_t b = 0; b < bins; ++b) {
    const double a = b == 0 ? -INFINITY : lo + (b - 1) * width, z = b == bins - 1 ? INFINITY : lo + b * width;
    data_bins[b] = (std::isinf(z) ? 1.0 : data.cdf(z)) - (std::isinf(a) ? 0.0 : data.cdf(a));
  }
  for (int64_t b = 0; b < inner; ++b) centers[b] = lo + (b + 0.5) * width;
  const Tensor p = from_vector(data_bins, {bins}, f64());

  const int64_t latent = 4, batch = quick ? 64 : 128, steps = quick ? 800 : 4000, every = steps / 20;
  r.gan_setup = "p_data = " + data.describe() + "; G: z ~ N(0, I_4) -> MLP 4-32-32-1, D: MLP 1-32-32-1, " +
                "non-saturating loss, " + std::to_string(steps) + " steps of batch " + std::to_string(batch) +
                "; JSD over " + std::to_string(bins) + " bins (width 0.1 on [-4, 4] + two tails)";
  // Both learning rates anneal from lr to lr·final_decay: a GAN at a fixed rate keeps oscillating.
  const double lr = 2e-3, final_decay = quick ? 0.1 : 0.05;
  auto act = [](const Tensor& h) { return leaky_relu(h, 0.2); };
  auto gen_net = nn::mlp({latent, 32, 32, 1}, act, training::f64(), &g),
       disc_net = nn::mlp({1, 32, 32, 1}, act, training::f64(), &g);
  auto gen = [&](const Tensor& z) { return (*gen_net)(z); };
  auto disc = [&](const Tensor& x) { return (*disc_net)(x); };
  optim::Adam opt_g(gen_net->parameters(), {.lr = lr, .beta1 = 0.5}), opt_d(disc_net->parameters(), {.lr = lr, .beta1 = 0.5});

  std::vector<double> final_hist;
  auto evaluate = [&](int64_t step) {
    NoGrad ng;
    std::vector<double> xs = gen(randn({eval_samples, latent}, f64(), &g)).to_vector<double>();
    std::vector<double> h(bins, 0);
    for (double x : xs) {
      const int64_t b = x < lo ? 0 : x >= hi ? bins - 1 : 1 + std::min<int64_t>(inner - 1, (x - lo) / width);
      h[b] += 1.0 / static_cast<double>(eval_samples);
    }
    r.gan.push_back({step, jsd(p, from_vector(h, {bins}, f64()))});
    final_hist = h;
  };
  for (int64_t step = 0; step < steps; ++step) {
    if (step % every == 0) evaluate(step);
    // D step: ascend V on real and (detached) fake samples. The previous G step
    // left gradients in D's parameters: discard them first.
    opt_d.zero_grad();
    Tensor fake = gen(randn({batch, latent}, f64(), &g));
    backward(-(mean(log_sigmoid(disc(data.sample(batch, g)))) + mean(log_sigmoid(-disc(fake.detach())))));
    opt_d.step();
    opt_d.zero_grad();
    // G step, non-saturating: minimise −log D(G(z)), through D's current weights.
    backward(-mean(log_sigmoid(disc(fake))));
    opt_g.step();
    opt_g.zero_grad();
    const double decayed = lr * std::pow(final_decay, static_cast<double>(step + 1) / static_cast<double>(steps));
    opt_g.set_lr(decayed);
    opt_d.set_lr(decayed);
  }
  evaluate(steps);
  r.gan_jsd_start = r.gan.front().jsd;
  r.gan_jsd_end = r.gan.back().jsd;

  Figure jsd_curve{"gan_jsd", "1-D GAN: JSD(data || generator histogram)", "step", "JSD (nats)", false, false, {}};
  Curve c{"JSD", {}, {}};
  for (const GanRow& row : r.gan) {
    c.x.push_back(static_cast<double>(row.step));
    c.y.push_back(row.jsd);
  }
  jsd_curve.curves = {c};
  r.figures.push_back(jsd_curve);

  Figure hist{"gan_histogram", "1-D GAN after training: generator histogram vs data density", "x", "density",
              false, false, {}};
  Curve gen_hist{"generator", centers, {}, true}, density{"p_data", linspace(lo, hi, 400), {}};
  for (int64_t b = 0; b < inner; ++b) gen_hist.y.push_back(final_hist[b + 1] / width);
  for (double x : density.x) density.y.push_back(data.pdf(x));
  hist.curves = {gen_hist, density};
  r.figures.push_back(hist);
}

}  // namespace

JsdResult derive_jsd(const Options& o) {
  JsdResult r;
  Generator pairs = training::stream(o.seed, 0), discriminator = training::stream(o.seed, 1),
            gan = training::stream(o.seed, 2);
  identity_on_pairs(r, pairs);
  train_discriminator(r, discriminator, o.quick);
  generator_gradient(r);
  train_gan(r, gan, o.quick);
  return r;
}

}  // namespace loom::derive
