// The Fréchet distance against closed forms on Gaussians.
#include <cmath>

#include "models/metrics.h"
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

TEST(Metrics, SymmetricEigenReconstructsTheMatrix) {
  const int64_t d = 5;
  std::vector<double> r = rand64({d, d}, -1, 1, 3).to_vector<double>(), a(d * d, 0);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j)
      for (int64_t k = 0; k < d; ++k) a[i * d + j] += r[i * d + k] * r[j * d + k];
  std::vector<double> w, v;
  models::symmetric_eigen(a, d, w, v);
  for (int64_t i = 0; i + 1 < d; ++i) EXPECT_LE(w[i], w[i + 1]);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j) {
      double rec = 0;
      for (int64_t k = 0; k < d; ++k) rec += v[i * d + k] * w[k] * v[j * d + k];
      EXPECT_NEAR(rec, a[i * d + j], 1e-12);
    }
}

TEST(Metrics, FrechetDistanceClosedForms) {
  // Diagonal covariances commute: d² = ‖Δμ‖² + Σ (σ_a − σ_b)².
  std::vector<double> mu_a{0, 1, 2}, mu_b{1, 1, 0};
  std::vector<double> ca{4, 0, 0, 0, 1, 0, 0, 0, 9}, cb{1, 0, 0, 0, 1, 0, 0, 0, 16};
  EXPECT_NEAR(models::frechet_distance(mu_a, ca, mu_b, cb), 1 + 4 + (1 + 0 + 1), 1e-10);
  EXPECT_NEAR(models::frechet_distance(mu_a, ca, mu_a, ca), 0, 1e-10);
  // A rotated pair: Σ_b = R Σ_a Rᵀ with the same spectrum; Tr term computed by
  // the 2-D formula Tr √M = √(tr M + 2√det M) for M = Σ_a Σ_b.
  const double c = std::cos(0.7), s = std::sin(0.7);
  std::vector<double> a2{3, 0, 0, 1};
  std::vector<double> b2{3 * c * c + s * s, (3 - 1) * c * s, (3 - 1) * c * s, 3 * s * s + c * c};
  double m00 = a2[0] * b2[0], m11 = a2[3] * b2[3];
  double det_m = (a2[0] * a2[3]) * (b2[0] * b2[3] - b2[1] * b2[2]);
  double tr_sqrt = std::sqrt(m00 + m11 + 2 * std::sqrt(det_m));
  EXPECT_NEAR(models::frechet_distance({0, 0}, a2, {0, 0}, b2), 4 + 4 - 2 * tr_sqrt, 1e-10);
}

TEST(Metrics, FrechetDistanceFromSamplesApproachesTheTruth) {
  // Samples of N(0, I) and N(m, 4I) in 4-D: d² = ‖m‖² + 4·(2 − 1)² = 4 + 4.
  Generator g(11);
  Tensor a = randn({20000, 4}, TensorOptions{DType::Float64}, &g);
  Tensor b = randn({20000, 4}, TensorOptions{DType::Float64}, &g) * 2.0 + 1.0;
  EXPECT_NEAR(models::frechet_distance(a, b), 8.0, 0.25);
  expect_error([&] { models::frechet_distance(a, zeros({3, 5})); }, {"frechet_distance", "[3, 5]"});
}
