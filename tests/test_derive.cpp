// `loom derive`: every identity of models/derive/derive.h at its stated tolerance, with
// the quick sizes and seed 0. The training-based results (a discriminator, a GAN)
// are asserted at loose tolerances that hold across seeds, not just this one.
// One test per topic, since CTest runs each test in its own process and each
// topic is one computation; the checks inside are one function per claim.
#include <cmath>

#include "models/derive/derive.h"
#include "tests/gradcheck.h"

using namespace loom::derive;

namespace {

const Options kQuick{0, true};
const double kLog2 = std::log(2.0), kLog4 = std::log(4.0);

void optimal_discriminator_gives_two_jsd_minus_log4_on_every_pair(const JsdResult& r) {
  ASSERT_GE(r.pairs.size(), 20u);
  EXPECT_LE(r.identity_max_abs_err, 1e-12);
  for (const JsdPairRow& p : r.pairs) {
    EXPECT_GE(p.jsd, 0) << p.name;
    EXPECT_LE(p.jsd, kLog2 + 1e-15) << p.name;
    EXPECT_NEAR(p.v_optimal, 2 * p.jsd - kLog4, 1e-12) << p.name << " over " << p.outcomes;
    if (p.name.find("identical") != std::string::npos) {
      EXPECT_NEAR(p.jsd, 0, 1e-15);
      EXPECT_NEAR(p.v_optimal, -kLog4, 1e-15) << "D* = 1/2 everywhere";
    }
    if (p.name.find("near-disjoint") != std::string::npos) {
      EXPECT_NEAR(p.jsd, kLog2, 1e-12) << "supports that barely overlap: JSD at its maximum";
      EXPECT_NEAR(p.v_optimal, 0, 1e-12);
    }
  }
}

void trained_discriminator_approaches_the_optimum(const JsdResult& r) {
  ASSERT_GE(r.discriminator.size(), 10u);
  // D* maximises V pointwise, so every trained D stays below: the gap is never negative.
  for (const DiscriminatorRow& d : r.discriminator) EXPECT_GE(d.gap, -1e-12) << "step " << d.step;
  EXPECT_LT(r.discriminator.back().gap, r.discriminator.front().gap / 20);
  EXPECT_LE(r.trained_gap, 5e-3);
  EXPECT_LE(r.trained_d_max_err, 0.15);
}

void saturating_loss_loses_its_gradient_where_d_is_near_zero(const JsdResult& r) {
  EXPECT_NEAR(r.grad_ratio_at_0_01, 99, 1e-9) << "(1 − D)/D at D = 0.01";
  ASSERT_FALSE(r.generator_grads.empty());
  for (const GeneratorGradRow& g : r.generator_grads) {
    const double d = g.d;
    EXPECT_NEAR(g.saturating_dd, -1 / (1 - d), 1e-12 / (1 - d));
    EXPECT_NEAR(g.non_saturating_dd, -1 / d, 1e-12 / d);
    EXPECT_NEAR(g.saturating_dlogit, -d, 1e-12);
    EXPECT_NEAR(g.non_saturating_dlogit, -(1 - d), 1e-12);
    EXPECT_NEAR(g.ratio, (1 - d) / d, 1e-9 * (1 - d) / d);
  }
}

void gan_training_lowers_the_jsd(const JsdResult& r) {
  ASSERT_GE(r.gan.size(), 10u);
  EXPECT_GT(r.gan_jsd_start, 0.2) << "the initial generator is far from the data";
  EXPECT_LT(r.gan_jsd_end, 0.1);
  EXPECT_LT(r.gan_jsd_end, r.gan_jsd_start / 4);
  EXPECT_EQ(r.figures.size(), 5u);
}

void log_evidence_is_elbo_plus_kl_for_any_gaussian_q(const ElboResult& r) {
  EXPECT_GE(r.instances, 50);
  EXPECT_LE(r.decomposition_max_abs_err, 1e-9);
  ASSERT_FALSE(r.decomposition.empty());
  for (const DecompositionRow& d : r.decomposition) {
    EXPECT_GE(d.kl, 0);
    EXPECT_LE(d.elbo, d.log_px) << "the ELBO is a lower bound";
    EXPECT_NEAR(d.log_px, d.elbo + d.kl, 1e-9);
  }
}

void closed_form_monte_carlo_and_vae_form_agree(const ElboResult& r) {
  ASSERT_EQ(r.estimates.size(), 3u);
  EXPECT_LT(r.mc_z_score, 4);
  for (const ElboEstimateRow& e : r.estimates) EXPECT_LT(e.value, r.log_px);
}

void gradient_ascent_closes_the_gap(const ElboResult& r) {
  ASSERT_GE(r.optimization.size(), 2u);
  EXPECT_GT(r.optimization.front().gap, 1) << "q starts at the prior, far from the posterior";
  for (size_t i = 1; i < r.optimization.size(); ++i)
    EXPECT_LE(r.optimization[i].gap, r.optimization[i - 1].gap + 1e-12) << "ascent never loses ELBO";
  EXPECT_LE(std::abs(r.optimized_gap), 1e-9);
  EXPECT_LE(r.optimized_mean_err, 1e-6) << "q's mean is the posterior mean";
  EXPECT_LE(r.optimized_cov_err, 1e-6) << "q's covariance is the posterior covariance";
}

void importance_weighted_bound_rises_toward_log_evidence(const ElboResult& r) {
  ASSERT_EQ(r.iwae_k.front(), 1);
  ASSERT_EQ(r.iwae_k.back(), 5000);
  ASSERT_EQ(r.iwae_gap_by_k.size(), r.iwae_k.size());
  for (size_t i = 0; i < r.iwae_gap_by_k.size(); ++i) {
    EXPECT_GT(r.iwae_gap_by_k[i], 0) << "k = " << r.iwae_k[i];
    if (i > 0) {
      EXPECT_LT(r.iwae_gap_by_k[i], r.iwae_gap_by_k[i - 1]) << "k = " << r.iwae_k[i];
    }
  }
  EXPECT_LT(r.iwae_gap_by_k.back(), 1e-3);
  // At k = 1 the bound is the ELBO: its gap is KL(q ‖ p(z|x)) exactly.
  EXPECT_NEAR(r.iwae.front().gap, r.iwae_q_kl, 4 * r.iwae.front().gap_se);
}

void diagonal_gaussian_kl_matches_monte_carlo(const ElboResult& r) {
  ASSERT_EQ(r.kl.size(), 3u);
  for (const KlRow& k : r.kl) EXPECT_GT(k.closed_form, 0);
  EXPECT_LT(r.kl_mc_z_score, 4);
  EXPECT_EQ(r.figures.size(), 2u);
}

void counts_follow_the_lecture(const ParamsResult& r) {
  ASSERT_EQ(r.counts.size(), 784u);
  for (const ParamCountRow& c : r.counts) {
    EXPECT_EQ(c.independent, c.n);
    EXPECT_EQ(c.markov, 2 * c.n - 1);
    EXPECT_NEAR(c.log10_full_joint, std::log10(std::pow(2.0, static_cast<double>(c.n)) - 1), 1e-9 * c.n);
  }
  EXPECT_EQ(r.counts[0].full_joint, "1");
  EXPECT_EQ(r.counts[9].full_joint, "1023");
  EXPECT_EQ(r.counts[63].full_joint, "18446744073709551615");
  EXPECT_EQ(r.counts[64].full_joint, "2^65 - 1");
  EXPECT_EQ(r.counts[783].full_joint, "2^784 - 1");
  EXPECT_EQ(r.counts[783].markov, 1567);
}

void every_model_is_verified_by_enumerating_all_images(const ParamsResult& r) {
  EXPECT_EQ(r.checked_up_to_n, 6);
  ASSERT_EQ(r.checks.size(), 3u * 6u);
  for (const ParamCheckRow& c : r.checks) {
    EXPECT_TRUE(c.ok) << c.model << " n = " << c.n;
    EXPECT_NEAR(c.sum_p, 1, 1e-12);
    EXPECT_EQ(c.parameters, c.expected);
    EXPECT_EQ(c.jacobian_rank, c.expected) << "every parameter is free";
    const int64_t n = c.n;
    const int64_t lecture = c.model == "full joint" ? (int64_t{1} << n) - 1 : c.model == "independent" ? n : 2 * n - 1;
    EXPECT_EQ(c.expected, lecture) << c.model;
  }
}

}  // namespace

TEST(DeriveJsd, EveryClaimAtItsTolerance) {
  const JsdResult r = derive_jsd(kQuick);
  {
    SCOPED_TRACE("optimal discriminator gives two jsd minus log4 on every pair");
    optimal_discriminator_gives_two_jsd_minus_log4_on_every_pair(r);
  }
  {
    SCOPED_TRACE("trained discriminator approaches the optimum");
    trained_discriminator_approaches_the_optimum(r);
  }
  {
    SCOPED_TRACE("saturating loss loses its gradient where d is near zero");
    saturating_loss_loses_its_gradient_where_d_is_near_zero(r);
  }
  {
    SCOPED_TRACE("gan training lowers the jsd");
    gan_training_lowers_the_jsd(r);
  }
}

TEST(DeriveElbo, EveryClaimAtItsTolerance) {
  const ElboResult r = derive_elbo(kQuick);
  {
    SCOPED_TRACE("log evidence is elbo plus kl for any gaussian q");
    log_evidence_is_elbo_plus_kl_for_any_gaussian_q(r);
  }
  {
    SCOPED_TRACE("closed form monte carlo and vae form agree");
    closed_form_monte_carlo_and_vae_form_agree(r);
  }
  {
    SCOPED_TRACE("gradient ascent closes the gap");
    gradient_ascent_closes_the_gap(r);
  }
  {
    SCOPED_TRACE("importance weighted bound rises toward log evidence");
    importance_weighted_bound_rises_toward_log_evidence(r);
  }
  {
    SCOPED_TRACE("diagonal gaussian kl matches monte carlo");
    diagonal_gaussian_kl_matches_monte_carlo(r);
  }
}

TEST(DeriveParams, EveryClaimAtItsTolerance) {
  const ParamsResult r = derive_params(kQuick);
  {
    SCOPED_TRACE("counts follow the lecture");
    counts_follow_the_lecture(r);
  }
  {
    SCOPED_TRACE("every model is verified by enumerating all images");
    every_model_is_verified_by_enumerating_all_images(r);
  }
}
