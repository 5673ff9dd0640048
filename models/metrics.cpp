#include "models/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace loom::models {

void symmetric_eigen(const std::vector<double>& a_in, int64_t d, std::vector<double>& values,
                     std::vector<double>& vectors) {
  LOOM_CHECK(static_cast<int64_t>(a_in.size()) == d * d, "symmetric_eigen: ", a_in.size(), " entries for a ", d, "x", d,
             " matrix");
  std::vector<double> a = a_in;
  vectors.assign(d * d, 0);
  for (int64_t i = 0; i < d; ++i) vectors[i * d + i] = 1;
  // Cyclic Jacobi: each rotation zeroes a(p,q); sweeps until the off-diagonal
  // mass is negligible. Quadratically convergent, exact to rounding.
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (int64_t p = 0; p < d; ++p) {
      diag += a[p * d + p] * a[p * d + p];
      for (int64_t q = p + 1; q < d; ++q) off += a[p * d + q] * a[p * d + q];
    }
    if (off <= 1e-30 * std::max(diag, 1e-300)) break;
    for (int64_t p = 0; p < d; ++p)
      for (int64_t q = p + 1; q < d; ++q) {
        const double apq = a[p * d + q];
        if (apq == 0) continue;
        const double theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < d; ++k) {  // A ← A J (columns p, q)
          const double akp = a[k * d + p], akq = a[k * d + q];
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < d; ++k) {  // A ← Jᵀ A (rows p, q)
          const double apk = a[p * d + k], aqk = a[q * d + k];
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < d; ++k) {  // V ← V J
          const double vkp = vectors[k * d + p], vkq = vectors[k * d + q];
          vectors[k * d + p] = c * vkp - s * vkq;
          vectors[k * d + q] = s * vkp + c * vkq;
        }
      }
  }
  std::vector<int64_t> order(d);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return a[i * d + i] < a[j * d + j]; });
  values.resize(d);
  std::vector<double> sorted(d * d);
  for (int64_t j = 0; j < d; ++j) {
    values[j] = a[order[j] * d + order[j]];
    for (int64_t k = 0; k < d; ++k) sorted[k * d + j] = vectors[k * d + order[j]];
  }
  vectors = std::move(sorted);
}

namespace {
// S^{1/2} of a symmetric positive semi-definite matrix (negative rounding noise clipped).
std::vector<double> sqrtm_psd(const std::vector<double>& s, int64_t d) {
  std::vector<double> w, v;
  symmetric_eigen(s, d, w, v);
  std::vector<double> out(d * d, 0);
  for (int64_t k = 0; k < d; ++k) {
    const double r = std::sqrt(std::max(w[k], 0.0));
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < d; ++j) out[i * d + j] += r * v[i * d + k] * v[j * d + k];
  }
  return out;
}

std::vector<double> matmul_sq(const std::vector<double>& a, const std::vector<double>& b, int64_t d) {
  std::vector<double> c(d * d, 0);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t k = 0; k < d; ++k)
      for (int64_t j = 0; j < d; ++j) c[i * d + j] += a[i * d + k] * b[k * d + j];
  return c;
}

void moments(const Tensor& f, std::vector<double>& mu, std::vector<double>& cov) {
  LOOM_CHECK(f.dim() == 2 && f.size(0) >= 2, "frechet_distance: features must be [N, D] with N >= 2, got ", f.shape());
  const int64_t n = f.size(0), d = f.size(1);
  std::vector<double> x = f.to_vector<double>();
  mu.assign(d, 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) mu[j] += x[i * d + j] / n;
  cov.assign(d * d, 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      const double dj = x[i * d + j] - mu[j];
      for (int64_t k = j; k < d; ++k) cov[j * d + k] += dj * (x[i * d + k] - mu[k]) / (n - 1);
    }
  for (int64_t j = 0; j < d; ++j)
    for (int64_t k = 0; k < j; ++k) cov[j * d + k] = cov[k * d + j];
}
}  // namespace

double frechet_distance(const std::vector<double>& mu_a, const std::vector<double>& cov_a,
                        const std::vector<double>& mu_b, const std::vector<double>& cov_b) {
  const int64_t d = static_cast<int64_t>(mu_a.size());
  LOOM_CHECK(static_cast<int64_t>(mu_b.size()) == d && static_cast<int64_t>(cov_a.size()) == d * d &&
                 static_cast<int64_t>(cov_b.size()) == d * d,
             "frechet_distance: moments of mismatched dimensions (", mu_a.size(), " vs ", mu_b.size(), ")");
  double mean_term = 0, trace = 0;
  for (int64_t i = 0; i < d; ++i) {
    mean_term += (mu_a[i] - mu_b[i]) * (mu_a[i] - mu_b[i]);
    trace += cov_a[i * d + i] + cov_b[i * d + i];
  }
  // Tr((Σa Σb)^{1/2}) = Tr((Σa^{1/2} Σb Σa^{1/2})^{1/2}): the inner matrix is
  // symmetric PSD, so a symmetric eigen-solve suffices (no general sqrtm).
  std::vector<double> ra = sqrtm_psd(cov_a, d);
  std::vector<double> inner = matmul_sq(matmul_sq(ra, cov_b, d), ra, d);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < i; ++j) inner[i * d + j] = inner[j * d + i] = 0.5 * (inner[i * d + j] + inner[j * d + i]);
  std::vector<double> w, v;
  symmetric_eigen(inner, d, w, v);
  double cross = 0;
  for (double e : w) cross += std::sqrt(std::max(e, 0.0));
  return std::max(0.0, mean_term + trace - 2 * cross);
}

double frechet_distance(const Tensor& features_a, const Tensor& features_b) {
  LOOM_CHECK(features_a.dim() == 2 && features_b.dim() == 2 && features_a.size(1) == features_b.size(1),
             "frechet_distance: features ", features_a.shape(), " and ", features_b.shape(),
             " must both be [N, D] with the same D");
  std::vector<double> ma, ca, mb, cb;
  moments(features_a, ma, ca);
  moments(features_b, mb, cb);
  return frechet_distance(ma, ca, mb, cb);
}

namespace {

// For each row of a [n, d] (float64, CPU), the squared distance to its nearest
// points of b [m, d]: the k-th smallest over b's rows, skipping index i of b when
// `self` (a and b are the same set). Distances by ‖a‖² + ‖b‖² − 2a·b, in blocks.
std::vector<double> kth_nearest(const Tensor& a, const Tensor& b, int64_t k, bool self) {
  const int64_t n = a.size(0), m = b.size(0), block = 512;
  const std::vector<double> na = sum(a * a, {1}).to_vector<double>(), nb = sum(b * b, {1}).to_vector<double>();
  const Tensor bt = transpose(b, 0, 1);
  std::vector<double> out(n);
  std::vector<double> row;
  for (int64_t i0 = 0; i0 < n; i0 += block) {
    const int64_t i1 = std::min(n, i0 + block);
    const std::vector<double> dot = matmul(slice(a, 0, i0, i1), bt).to_vector<double>();
    for (int64_t i = i0; i < i1; ++i) {
      row.clear();
      for (int64_t j = 0; j < m; ++j)
        if (!self || j != i) row.push_back(std::max(0.0, na[i] + nb[j] - 2 * dot[(i - i0) * m + j]));
      std::nth_element(row.begin(), row.begin() + (k - 1), row.end());
      out[i] = row[k - 1];
    }
  }
  return out;
}

// The fraction of rows of q inside the union of balls of squared radius r2[j] around the rows of p.
double inside_manifold(const Tensor& q, const Tensor& p, const std::vector<double>& r2) {
  const int64_t n = q.size(0), m = p.size(0), block = 512;
  const std::vector<double> nq = sum(q * q, {1}).to_vector<double>(), np = sum(p * p, {1}).to_vector<double>();
  const Tensor pt = transpose(p, 0, 1);
  int64_t inside = 0;
  for (int64_t i0 = 0; i0 < n; i0 += block) {
    const int64_t i1 = std::min(n, i0 + block);
    const std::vector<double> dot = matmul(slice(q, 0, i0, i1), pt).to_vector<double>();
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = 0; j < m; ++j)
        if (nq[i] + np[j] - 2 * dot[(i - i0) * m + j] <= r2[j]) {
          ++inside;
          break;
        }
  }
  return static_cast<double>(inside) / static_cast<double>(n);
}

}  // namespace

PrecisionRecall precision_recall(const Tensor& real_in, const Tensor& fake_in, int64_t k) {
  LOOM_CHECK(real_in.dim() == 2 && fake_in.dim() == 2 && real_in.size(1) == fake_in.size(1),
             "precision_recall: expected features [N, D] and [M, D], got ", real_in.shape(), " and ", fake_in.shape());
  LOOM_CHECK(k >= 1 && real_in.size(0) > k && fake_in.size(0) > k, "precision_recall: needs more than k = ", k,
             " points in each set, got ", real_in.size(0), " and ", fake_in.size(0));
  NoGrad ng;
  const Tensor real = real_in.detach().to(Device::cpu()).to(DType::Float64);
  const Tensor fake = fake_in.detach().to(Device::cpu()).to(DType::Float64);
  PrecisionRecall pr;
  pr.precision = inside_manifold(fake, real, kth_nearest(real, real, k, true));
  pr.recall = inside_manifold(real, fake, kth_nearest(fake, fake, k, true));
  return pr;
}

double matched_accuracy(const std::vector<int64_t>& predicted, const std::vector<int64_t>& truth, int64_t classes) {
  LOOM_CHECK(classes >= 1 && classes <= 20, "matched_accuracy: classes must lie in [1, 20], got ", classes);
  LOOM_CHECK(!predicted.empty() && predicted.size() == truth.size(), "matched_accuracy: ", predicted.size(),
             " predictions for ", truth.size(), " labels");
  std::vector<int64_t> count(classes * classes, 0);  // count[p * classes + t]
  for (size_t i = 0; i < predicted.size(); ++i) {
    LOOM_CHECK(predicted[i] >= 0 && predicted[i] < classes && truth[i] >= 0 && truth[i] < classes,
               "matched_accuracy: value outside [0, ", classes, ") at ", i);
    ++count[predicted[i] * classes + truth[i]];
  }
  // best[mask]: the most agreements when predicted values 0..popcount(mask)−1 are
  // mapped one-to-one onto the classes in mask.
  std::vector<int64_t> best(size_t{1} << classes, -1);
  best[0] = 0;
  for (uint32_t mask = 0; mask < best.size(); ++mask) {
    if (best[mask] < 0) continue;
    const int p = __builtin_popcount(mask);
    if (p == classes) continue;
    for (int t = 0; t < classes; ++t)
      if (!(mask & (1u << t)))
        best[mask | (1u << t)] = std::max(best[mask | (1u << t)], best[mask] + count[p * classes + t]);
  }
  return static_cast<double>(best.back()) / static_cast<double>(predicted.size());
}

ModeCoverage mode_coverage(const Tensor& samples, data::Toy2d kind) {
  const data::ToyModes modes = data::toy_2d_modes(kind);
  LOOM_CHECK(!modes.centres.empty(), "mode_coverage: this 2-D set is not a Gaussian mixture");
  LOOM_CHECK(samples.dim() == 2 && samples.size(1) == 2 && samples.size(0) >= 1,
             "mode_coverage: expected samples [N, 2], got ", samples.shape());
  const std::vector<double> xy = samples.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  const int64_t n = samples.size(0);
  std::vector<int64_t> per_mode(modes.centres.size(), 0);
  int64_t good = 0;
  for (int64_t i = 0; i < n; ++i) {
    size_t best = 0;
    double best_d2 = INFINITY;
    for (size_t k = 0; k < modes.centres.size(); ++k) {
      const double dx = xy[2 * i] - modes.centres[k][0], dy = xy[2 * i + 1] - modes.centres[k][1];
      if (dx * dx + dy * dy < best_d2) best_d2 = dx * dx + dy * dy, best = k;
    }
    if (std::sqrt(best_d2) <= 3 * modes.sigma) ++good, ++per_mode[best];
  }
  ModeCoverage c;
  for (int64_t count : per_mode) c.modes_covered += count >= 0.01 * static_cast<double>(n) ? 1 : 0;
  c.high_quality = static_cast<double>(good) / static_cast<double>(n);
  return c;
}

}  // namespace loom::models
