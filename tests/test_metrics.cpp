// The sample metrics: the Fréchet distance against closed forms on Gaussians,
// precision and recall against their definition point by point, the matched
// accuracy against every permutation.
#include <algorithm>
#include <cmath>
#include <random>

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

namespace {
// Precision (eq. 1 of Kynkäänniemi et al. 2019) written out point by point: the
// fraction of q within the k-NN radius (in its own set, itself excluded) of some point of p.
double coverage_by_brute_force(const std::vector<std::vector<double>>& q, const std::vector<std::vector<double>>& p, int k) {
  auto d2 = [](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
  };
  std::vector<double> radius;
  for (size_t j = 0; j < p.size(); ++j) {
    std::vector<double> d;
    for (size_t l = 0; l < p.size(); ++l)
      if (l != j) d.push_back(d2(p[j], p[l]));
    std::sort(d.begin(), d.end());
    radius.push_back(d[k - 1]);
  }
  int inside = 0;
  for (const auto& x : q)
    for (size_t j = 0; j < p.size(); ++j)
      if (d2(x, p[j]) <= radius[j]) {
        ++inside;
        break;
      }
  return static_cast<double>(inside) / static_cast<double>(q.size());
}
}  // namespace

TEST(Metrics, PrecisionAndRecallAgreeWithTheDefinitionPointByPoint) {
  // Awkward sizes over the 512-row blocks: 600 real points, 531 fake ones shifted and narrower.
  Generator g(5);
  const Tensor real = randn({600, 3}, {DType::Float64}, &g);
  const Tensor fake = randn({531, 3}, {DType::Float64}, &g) * 0.5 + 0.7;
  auto rows = [](const Tensor& t) {
    std::vector<double> v = t.to_vector<double>();
    std::vector<std::vector<double>> out;
    for (int64_t i = 0; i < t.size(0); ++i) out.emplace_back(v.begin() + i * t.size(1), v.begin() + (i + 1) * t.size(1));
    return out;
  };
  const models::PrecisionRecall pr = models::precision_recall(real, fake, 3);
  EXPECT_DOUBLE_EQ(pr.precision, coverage_by_brute_force(rows(fake), rows(real), 3));
  EXPECT_DOUBLE_EQ(pr.recall, coverage_by_brute_force(rows(real), rows(fake), 3));
  // The narrow shifted set is mostly inside the real manifold but covers little of it.
  EXPECT_GT(pr.precision, 0.8);
  EXPECT_LT(pr.recall, 0.6);
  // A set against itself: everything inside; against a far-away copy: nothing.
  const models::PrecisionRecall same = models::precision_recall(real, real);
  EXPECT_EQ(same.precision, 1.0);
  EXPECT_EQ(same.recall, 1.0);
  const models::PrecisionRecall far = models::precision_recall(real, real + 100.0);
  EXPECT_EQ(far.precision, 0.0);
  EXPECT_EQ(far.recall, 0.0);
  expect_error([&] { models::precision_recall(real, zeros({3, 3}, {DType::Float64})); }, {"precision_recall", "k = 3"});
}

TEST(Metrics, MatchedAccuracyIsTheBestOneToOneRelabelling) {
  // Against every permutation of 6 values, on random predictions with a planted relabelling.
  std::mt19937 rng(3);
  std::vector<int64_t> truth(300), predicted(300);
  const std::vector<int64_t> planted{3, 0, 5, 1, 4, 2};
  for (size_t i = 0; i < truth.size(); ++i) {
    truth[i] = rng() % 6;
    predicted[i] = rng() % 3 == 0 ? static_cast<int64_t>(rng() % 6) : planted[truth[i]];
  }
  std::vector<int64_t> perm{0, 1, 2, 3, 4, 5};
  int64_t best = 0;
  do {
    int64_t right = 0;
    for (size_t i = 0; i < truth.size(); ++i) right += perm[predicted[i]] == truth[i];
    best = std::max(best, right);
  } while (std::next_permutation(perm.begin(), perm.end()));
  EXPECT_DOUBLE_EQ(models::matched_accuracy(predicted, truth, 6), static_cast<double>(best) / 300.0);
  EXPECT_GT(models::matched_accuracy(predicted, truth, 6), 0.6);  // about 2/3 + 1/18 planted
  // A code that puts everything in one class matches one class only.
  EXPECT_DOUBLE_EQ(models::matched_accuracy({0, 0, 0, 0}, {0, 1, 2, 3}, 4), 0.25);
  expect_error([&] { models::matched_accuracy({0, 7}, {0, 1}, 4); }, {"matched_accuracy", "[0, 4)"});
}
