// The theory of generative models, reproduced numerically with the engine:
// `loom derive jsd|elbo|params` (docs/theory.md writes the derivations out).
//
//   jsd     the optimal discriminator D* = p_data / (p_data + p_G) and
//           V(G, D*) = 2·JSD(p_data ‖ p_G) − log 4; a trained discriminator
//           approaching D*; the saturating generator loss; a 1-D GAN.
//   elbo    log p(x) = ELBO(q) + KL(q(z|x) ‖ p(z|x)) on a linear-Gaussian model
//           where every term has a closed form; Monte Carlo and VAE forms of the
//           ELBO; closing the gap by gradient ascent; the importance-weighted bound.
//   params  parameter counts of binary-image models (full joint, independent,
//           Markov chain), verified by enumerating every image.
//
// Each derive_* returns a result struct with everything the command reports: the
// JSON fields, the rows of its tables and the figures to plot. tools/ prints them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace loom::derive {

struct Options {
  uint64_t seed = 0;
  bool quick = false;  // smaller sizes, for tests and CI
};

// A chart to draw: tools/plot turns it into a PNG named `name`.png.
struct Curve {
  std::string label;
  std::vector<double> x, y;
  bool histogram = false;  // y[i] is the height of the bin centred at x[i]
};
struct Figure {
  std::string name, title, xlabel, ylabel;
  bool log_x = false, log_y = false;
  std::vector<Curve> curves;
};

// ---- jsd ----------------------------------------------------------------------------
struct JsdPairRow {
  std::string name;   // how the pair was drawn
  int64_t outcomes;   // size of the discrete space
  double jsd;         // JSD(p_data ‖ p_G) in nats, through the mixture m = (p_data + p_G)/2
  double v_optimal;   // V(G, D*) = E_data[log D*] + E_G[log(1 − D*)]
  double abs_err;     // |V(G, D*) − (2·JSD − log 4)|
};
struct DiscriminatorRow {
  int64_t step;
  double v_trained;  // V(G, D_trained), by quadrature
  double gap;        // (2·JSD − log 4) − V(G, D_trained) ≥ 0
};
// Gradients of the two generator losses at a discriminator output D = σ(a).
struct GeneratorGradRow {
  double d;
  double saturating_dd, non_saturating_dd;        // ∂/∂D of log(1 − D) and of −log D
  double saturating_dlogit, non_saturating_dlogit;  // the same through the logit a
  double ratio;                                     // |non-saturating| / |saturating| (∂/∂D)
};
struct GanRow {
  int64_t step;
  double jsd;  // JSD(data bins ‖ generator histogram), nats
};
struct JsdResult {
  std::vector<JsdPairRow> pairs;
  double identity_max_abs_err = 0;

  std::string trained_setup;  // the fixed pair, in words
  std::vector<DiscriminatorRow> discriminator;
  double trained_target = 0;  // 2·JSD − log 4 of the fixed pair
  double trained_gap = 0;
  double trained_d_max_err = 0;  // max |D_trained − D*| where (p_data + p_G)/2 ≥ 0.01

  std::vector<GeneratorGradRow> generator_grads;
  double grad_ratio_at_0_01 = 0;  // JSON: grad_ratio_at_0.01

  std::string gan_setup;
  std::vector<GanRow> gan;
  double gan_jsd_start = 0, gan_jsd_end = 0;

  std::vector<Figure> figures;
};
JsdResult derive_jsd(const Options& o);

// ---- elbo ---------------------------------------------------------------------------
struct DecompositionRow {
  int64_t dz, dx;
  double sigma;
  double log_px, elbo, kl;  // log p(x), ELBO(q), KL(q ‖ p(z|x))
  double abs_err;           // |log p(x) − (ELBO + KL)|
};
struct ElboEstimateRow {
  std::string method;
  double value, std_err;  // std_err 0 for the closed form
  double z_score;         // |value − closed form| / std_err
};
struct OptimizeRow {
  int64_t step;
  double elbo, gap;  // gap = log p(x) − ELBO
};
struct IwaeRow {
  int64_t k;
  double bound, bound_se;  // mean of log (1/k) Σ w_i over repetitions and its standard error
  double gap, gap_se;      // log p(x) − E[bound], control-variate estimate (see derive_elbo.cpp)
};
struct KlRow {
  int64_t dim;
  double closed_form, monte_carlo, std_err, z_score;
};
struct ElboResult {
  int64_t instances = 0;             // random (model, x, q) triples checked
  std::vector<DecompositionRow> decomposition;  // a sample of them, for the table
  double decomposition_max_abs_err = 0;

  double log_px = 0;  // of the fixed instance used below
  std::vector<ElboEstimateRow> estimates;
  double mc_z_score = 0;

  std::vector<OptimizeRow> optimization;
  double optimized_gap = 0;
  double optimized_mean_err = 0, optimized_cov_err = 0;  // max |q − p(z|x)| of mean and covariance

  std::vector<IwaeRow> iwae;
  double iwae_q_kl = 0;  // KL(q ‖ p(z|x)) of the IWAE's q: the exact gap at k = 1
  std::vector<int64_t> iwae_k;
  std::vector<double> iwae_gap_by_k;

  std::vector<KlRow> kl;
  double kl_mc_z_score = 0;

  std::vector<Figure> figures;
};
ElboResult derive_elbo(const Options& o);

// ---- params -------------------------------------------------------------------------
// Free parameters of a distribution over n binary pixels.
struct ParamCountRow {
  int64_t n;
  std::string full_joint;  // 2^n − 1: exact decimal up to n = 64, "2^n - 1" beyond
  double log10_full_joint;
  int64_t independent;  // n
  int64_t markov;       // 2n − 1
};
// One model built with the engine and checked by enumerating all 2^n images.
struct ParamCheckRow {
  int64_t n;
  std::string model;
  int64_t expected;      // the formula
  int64_t parameters;    // elements of the model's parameter tensors
  int64_t jacobian_rank;  // rank of ∂ log p(x) / ∂θ over all images: the free directions
  double sum_p;          // Σ over all 2^n images
  bool ok;
};
struct ParamsResult {
  std::vector<ParamCountRow> counts;  // n = 1 … 784
  std::vector<ParamCheckRow> checks;
  int64_t checked_up_to_n = 0;  // every model verified for n = 1 … this
  std::vector<Figure> figures;
};
ParamsResult derive_params(const Options& o);

}  // namespace loom::derive
