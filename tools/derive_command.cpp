// `loom derive jsd|elbo|params`: runs models/derive/derive_*.cpp and reports the result
// as tables (default) or one JSON object (--json), with PNG figures (--plots DIR).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>

#include "models/derive/derive.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/plot.h"

namespace loom::cli {
namespace {

using namespace loom::derive;

const std::vector<FlagSpec> kFlags = {
    {"--json", "", "print one JSON object with the results instead of tables"},
    {"--plots", "DIR", "write the figures as PNG files into DIR (created if missing)"},
    {"--seed", "N", "seed of every random draw (default 0)"},
    {"--quick", "", "smaller sizes and shorter training, for tests and CI"},
    {"--help", "", "show this help"},
};

// What a topic hands back for printing: the text tables, the JSON fields, the figures.
struct Report {
  std::string text;
  JsonObject json;
  std::vector<Figure> figures;
};

// At most `max` rows, evenly spaced, always keeping the first and the last.
template <class Row>
std::vector<Row> spread(const std::vector<Row>& rows, size_t max) {
  if (rows.size() <= max) return rows;
  std::vector<Row> out;
  for (size_t i = 0; i < max; ++i) out.push_back(rows[i * (rows.size() - 1) / (max - 1)]);
  return out;
}

std::string e(double v) { return fmt(v, "%.2e"); }
std::string f(double v) { return fmt(v, "%.6f"); }
std::string i(int64_t v) { return std::to_string(v); }

Report jsd_report(const Options& o) {
  const JsdResult r = derive_jsd(o);
  std::ostringstream t;
  t << "1. The optimal discriminator D*(x) = p_data(x) / (p_data(x) + p_G(x)) turns the GAN value into a divergence:\n"
       "   V(G, D*) = E_data[log D*] + E_G[log(1 − D*)] = 2·JSD(p_data ‖ p_G) − log 4\n\n";
  TextTable pairs({"pair", "outcomes", "JSD (nats)", "V(G, D*)", "2·JSD − log 4", "|difference|"});
  for (const JsdPairRow& p : r.pairs)
    pairs.add({p.name, i(p.outcomes), f(p.jsd), f(p.v_optimal), f(2 * p.jsd - std::log(4.0)), e(p.abs_err)});
  pairs.print(t);
  t << "\n  identity_max_abs_err = " << e(r.identity_max_abs_err) << "   (over " << r.pairs.size()
    << " pairs; expected ≤ 1e-12)\n\n";

  t << "2. A discriminator trained on samples approaches D*, and V(G, D) approaches 2·JSD − log 4 = "
    << f(r.trained_target) << " from below\n   " << r.trained_setup << "; V by quadrature\n\n";
  TextTable disc({"step", "V(G, D)", "2·JSD − log 4 − V"});
  for (const DiscriminatorRow& d : spread(r.discriminator, 11)) disc.add({i(d.step), f(d.v_trained), e(d.gap)});
  disc.print(t);
  t << "\n  trained_gap = " << e(r.trained_gap) << "   trained_d_max_err = " << fmt(r.trained_d_max_err, "%.4f")
    << "   (max |D − D*| where (p_data + p_G)/2 ≥ 0.01)\n\n";

  t << "3. The generator's gradient where the discriminator rejects its samples, D(G(z)) ≈ 0 (from the tape)\n\n";
  TextTable grads({"D", "∂log(1−D)/∂D", "∂(−log D)/∂D", "∂log(1−D)/∂a", "∂(−log D)/∂a", "ratio"});
  for (const GeneratorGradRow& g : r.generator_grads)
    grads.add({fmt(g.d, "%g"), fmt(g.saturating_dd, "%.6g"), fmt(g.non_saturating_dd, "%.6g"),
               fmt(g.saturating_dlogit, "%.6g"), fmt(g.non_saturating_dlogit, "%.6g"), fmt(g.ratio, "%.6g")});
  grads.print(t);
  t << "\n  (a is the logit, D = σ(a).) log(1 − D) saturates: through the logit its gradient is −D → 0, while\n"
       "  −log D keeps −(1 − D) → −1. grad_ratio_at_0.01 = "
    << fmt(r.grad_ratio_at_0_01, "%.10g") << "   (= (1 − D)/D)\n\n";

  t << "4. A 1-D GAN trained with the engine lowers JSD(data ‖ generator)\n   " << r.gan_setup << "\n\n";
  TextTable gan({"step", "JSD (nats)"});
  for (const GanRow& g : spread(r.gan, 11)) gan.add({i(g.step), fmt(g.jsd, "%.4f")});
  gan.print(t);
  t << "\n  gan_jsd_start = " << fmt(r.gan_jsd_start, "%.4f") << "   gan_jsd_end = " << fmt(r.gan_jsd_end, "%.4f")
    << "   (log 2 = 0.6931 is the maximum)\n";

  Report rep{t.str(), {}, r.figures};
  rep.json.add("identity_max_abs_err", r.identity_max_abs_err)
      .add("trained_target", r.trained_target)
      .add("trained_gap", r.trained_gap)
      .add("trained_d_max_err", r.trained_d_max_err)
      .add("grad_ratio_at_0.01", r.grad_ratio_at_0_01)
      .add("gan_jsd_start", r.gan_jsd_start)
      .add("gan_jsd_end", r.gan_jsd_end);
  return rep;
}

Report elbo_report(const Options& o) {
  const ElboResult r = derive_elbo(o);
  std::ostringstream t;
  t << "Linear-Gaussian model p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I): log p(x) and p(z|x) in closed form.\n\n"
       "1. For any Gaussian q(z|x): log p(x) = ELBO(q) + KL(q(z|x) ‖ p(z|x))   ("
    << r.instances << " random W, b, σ, x, q; the first " << r.decomposition.size() << " shown)\n\n";
  TextTable dec({"dz", "dx", "σ", "log p(x)", "ELBO", "KL", "|log p(x) − ELBO − KL|"});
  for (const DecompositionRow& d : r.decomposition)
    dec.add({i(d.dz), i(d.dx), fmt(d.sigma, "%.3f"), f(d.log_px), f(d.elbo), f(d.kl), e(d.abs_err)});
  dec.print(t);
  t << "\n  decomposition_max_abs_err = " << e(r.decomposition_max_abs_err) << "   (expected ≤ 1e-9)\n\n";

  t << "2. One ELBO three ways (dz = 3, dx = 6; log p(x) = " << f(r.log_px) << ")\n\n";
  TextTable est({"method", "ELBO", "std. error", "|z| vs closed form"});
  for (const ElboEstimateRow& row : r.estimates)
    est.add({row.method, f(row.value), row.std_err > 0 ? e(row.std_err) : "-",
             row.std_err > 0 ? fmt(row.z_score, "%.2f") : "-"});
  est.print(t);
  t << "\n  mc_z_score = " << fmt(r.mc_z_score, "%.2f") << "   (agreement within Monte Carlo error: |z| ≲ 3)\n\n";

  t << "3. Plain gradient ascent on the closed-form ELBO over q = N(m, L Lᵀ), gradients from the tape, closes the gap\n\n";
  TextTable opt({"step", "ELBO", "log p(x) − ELBO"});
  for (const OptimizeRow& row : spread(r.optimization, 9)) opt.add({i(row.step), f(row.elbo), e(row.gap)});
  opt.print(t);
  t << "\n  optimized_gap = " << e(r.optimized_gap) << "   max |m − μ_post| = " << e(r.optimized_mean_err)
    << "   max |LLᵀ − Σ_post| = " << e(r.optimized_cov_err) << "\n\n";

  t << "4. The importance-weighted bound L_k = log (1/k) Σ p(x, z_i)/q(z_i|x) rises toward log p(x)\n"
       "   (q: the posterior's marginals, shifted and widened, without its correlations; gap at k = 1 is\n"
       "   KL(q ‖ p(z|x)) = "
    << f(r.iwae_q_kl) << " exactly)\n\n";
  TextTable iw({"k", "E[L_k]", "± s.e.", "log p(x) − E[L_k]", "± s.e."});
  for (const IwaeRow& row : r.iwae) iw.add({i(row.k), f(row.bound), e(row.bound_se), e(row.gap), e(row.gap_se)});
  iw.print(t);
  const bool monotone = std::is_sorted(r.iwae_gap_by_k.rbegin(), r.iwae_gap_by_k.rend());
  t << "\n  iwae_gap_by_k " << (monotone ? "decreases" : "does NOT decrease") << " monotonically with k, to "
    << e(r.iwae_gap_by_k.back()) << " at k = " << r.iwae_k.back() << "\n\n";

  t << "5. KL between diagonal Gaussians: closed form ½ Σ (log σp²/σq² + (σq² + (μq − μp)²)/σp² − 1) vs Monte Carlo\n\n";
  TextTable kl({"dim", "closed form", "Monte Carlo", "std. error", "|z|"});
  for (const KlRow& row : r.kl)
    kl.add({i(row.dim), f(row.closed_form), f(row.monte_carlo), e(row.std_err), fmt(row.z_score, "%.2f")});
  kl.print(t);
  t << "\n  kl_mc_z_score = " << fmt(r.kl_mc_z_score, "%.2f") << "\n";

  Report rep{t.str(), {}, r.figures};
  rep.json.add("decomposition_max_abs_err", r.decomposition_max_abs_err)
      .add("instances", r.instances)
      .add("log_px", r.log_px)
      .add("mc_z_score", r.mc_z_score)
      .add("optimized_gap", r.optimized_gap)
      .add("iwae_k", r.iwae_k)
      .add("iwae_gap_by_k", r.iwae_gap_by_k)
      .add("iwae_q_kl", r.iwae_q_kl)
      .add("kl_mc_z_score", r.kl_mc_z_score);
  return rep;
}

Report params_report(const Options& o) {
  const ParamsResult r = derive_params(o);
  std::ostringstream t;
  t << "Free parameters of a distribution over n binary pixels (n = 28·28 = 784 for a binarised MNIST digit)\n\n";
  TextTable counts({"n", "full joint 2^n − 1", "independent n", "Markov chain 2n − 1"});
  for (const ParamCountRow& c : r.counts)
    if (c.n <= 16 || c.n == 32 || c.n == 63 || c.n == 64 || c.n == 65 || c.n == 100 || c.n == 256 || c.n == 784) {
      // Past 64 bits the exact count is a power of two; add its size in decimal.
      const double exponent = std::floor(c.log10_full_joint), mantissa = std::pow(10.0, c.log10_full_joint - exponent);
      const std::string approx = c.n > 64 ? " ≈ " + fmt(mantissa, "%.2f") + "e" + i(static_cast<int64_t>(exponent)) : "";
      counts.add({i(c.n), c.full_joint + approx, i(c.independent), i(c.markov)});
    }
  counts.print(t);
  t << "\n  (n = 1 … 784 are all computed; --json lists every row)\n\n"
       "Each model built with the engine as one logit table per pixel, checked over all 2^n images:\n"
       "Σ p = 1, the tables hold the stated number of parameters, and ∂ log p / ∂θ has that rank (none redundant)\n\n";
  TextTable checks({"n", "model", "formula", "parameters", "Jacobian rank", "Σ p(x)", "ok"});
  for (const ParamCheckRow& c : r.checks)
    checks.add({i(c.n), c.model, i(c.expected), i(c.parameters), i(c.jacobian_rank), fmt(c.sum_p, "%.15f"),
                c.ok ? "yes" : "NO"});
  checks.print(t);
  t << "\n  checked_up_to_n = " << r.checked_up_to_n << "\n";

  std::vector<JsonObject> rows;
  for (const ParamCountRow& c : r.counts)
    rows.push_back(JsonObject()
                       .add("n", c.n)
                       .add("full_joint", c.full_joint)
                       .add("log10_full_joint", c.log10_full_joint)
                       .add("independent", c.independent)
                       .add("markov", c.markov));
  Report rep{t.str(), {}, r.figures};
  rep.json.add("checked_up_to_n", r.checked_up_to_n).add("counts", rows);
  return rep;
}

struct Topic {
  std::string name, summary;
  std::function<Report(const Options&)> run;
};
const std::vector<Topic> kTopics = {
    {"jsd", "optimal discriminator, V(G, D*) = 2 JSD − log 4, saturating gradients, a 1-D GAN", jsd_report},
    {"elbo", "log p(x) = ELBO + KL on a linear-Gaussian model, reparameterisation, IWAE, Gaussian KL", elbo_report},
    {"params", "parameter counts of binary-image models, verified by enumerating every image", params_report},
};

std::string usage() {
  std::string s = "usage: loom derive <topic> [--json] [--plots DIR] [--seed N] [--quick]\n\n"
                  "The theory of generative models (GANs, VAEs, autoregressive models), reproduced numerically\n"
                  "with the loom engine; docs/theory.md writes the derivations out.\n\ntopics:\n";
  for (const Topic& t : kTopics) s += "  " + t.name + std::string(8 - t.name.size(), ' ') + t.summary + "\n";
  return s + "\nflags:\n" + describe(kFlags);
}

plot::Chart to_chart(const Figure& fig) {
  plot::Chart c{fig.title, fig.xlabel, fig.ylabel, {}, fig.log_x, fig.log_y};
  for (const Curve& cv : fig.curves) c.series.push_back({cv.label, cv.x, cv.y, cv.histogram});
  return c;
}

}  // namespace

int derive_command(const std::vector<std::string>& args) {
  const Args a = parse("derive", args, kFlags);
  if (a.has("--help")) {
    std::cout << usage();
    return 0;
  }
  std::vector<std::string> names;
  for (const Topic& t : kTopics) names.push_back(t.name);
  if (a.positional.empty()) throw UsageError("derive: missing topic: jsd, elbo or params");
  if (a.positional.size() > 1) throw UsageError("derive: one topic at a time, got '" + a.positional[1] + "' too");
  auto topic = std::find_if(kTopics.begin(), kTopics.end(), [&](const Topic& t) { return t.name == a.positional[0]; });
  if (topic == kTopics.end())
    throw UsageError("derive: unknown topic '" + a.positional[0] + "'" + suggestion(a.positional[0], names));
  if (a.has("--plots") && a.value("--plots").empty()) throw UsageError("derive: --plots needs a directory");

  const Options o{a.unsigned_value("--seed", 0), a.has("--quick")};
  Report rep = topic->run(o);

  std::vector<std::string> written;
  if (a.has("--plots")) {
    const std::filesystem::path dir = a.value("--plots");
    std::filesystem::create_directories(dir);
    for (const Figure& fig : rep.figures) {
      const std::string path = (dir / (fig.name + ".png")).string();
      plot::write_png(to_chart(fig), path);
      written.push_back(path);
    }
  }
  if (a.has("--json")) {
    JsonObject out;
    out.add("command", "derive " + topic->name).add("seed", static_cast<int64_t>(o.seed)).add("quick", o.quick);
    out.extend(rep.json);
    if (a.has("--plots")) out.add("plots", written);
    std::cout << out.str() << "\n";
  } else {
    std::cout << "loom derive " << topic->name << "   (seed " << o.seed << (o.quick ? ", quick" : "") << ")\n\n"
              << rep.text;
    for (const std::string& p : written) std::cout << (p == written.front() ? "\nwrote " : "      ") << p << "\n";
  }
  return 0;
}

}  // namespace loom::cli
