// Sample-quality metrics. The Fréchet distance between two sets of features
// (Heusel et al. 2017, "FID" when the features are Inception's; loom uses its
// own Fashion-MNIST classifier's penultimate layer, since no pretrained
// Inception weights can be downloaded):
//   d² = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2})
// which is the 2-Wasserstein distance between N(μ_a, Σ_a) and N(μ_b, Σ_b).
#pragma once

#include <vector>

#include "autograd/loom.h"
#include "models/data/data.h"

namespace loom::models {

// features_a [N, D], features_b [M, D] (any float dtype/device); N, M ≥ 2.
double frechet_distance(const Tensor& features_a, const Tensor& features_b);

// The same from moments: means of length D, covariances D×D row-major.
double frechet_distance(const std::vector<double>& mu_a, const std::vector<double>& cov_a,
                        const std::vector<double>& mu_b, const std::vector<double>& cov_b);

// Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and
// Recall Metric for Assessing Generative Models", §2, eqs. 1-2): each set's
// manifold is the union of balls around its points whose radius is the distance to
// the point's k-th nearest neighbour in its own set. Precision: the fraction of
// fake points inside the real manifold (quality); recall: the fraction of real
// points inside the fake manifold (coverage). Both in [0, 1].
struct PrecisionRecall {
  double precision = 0, recall = 0;
};
// real [N, D], fake [M, D] features (any float dtype/device); N, M > k ≥ 1. The paper uses k = 3.
PrecisionRecall precision_recall(const Tensor& real, const Tensor& fake, int64_t k = 3);

// The accuracy of `predicted` (values in [0, classes)) against `truth` under the
// best one-to-one relabelling of the predicted values (the assignment problem the
// Hungarian method solves; here exactly, by dynamic programming over subsets).
// How InfoGAN's unsupervised categorical code is scored against the classes
// (Chen et al. 2016, §5.1). classes ≤ 20; equal lengths ≥ 1.
double matched_accuracy(const std::vector<int64_t>& predicted, const std::vector<int64_t>& truth, int64_t classes);

// How well samples [N, 2] (any float dtype/device; N ≥ 1) cover the modes of a 2-D
// Gaussian mixture (data::toy_2d_modes: 8 or 25 Gaussians) (Metz et al. 2017,
// "Unrolled GANs", §3.1; Srivastava et al. 2017, VEEGAN, §5.1): a sample is of high
// quality when it lies within 3σ of its nearest mode; a mode is covered when at
// least 1% of the samples are high-quality samples of it. An Error for a set that
// is not a mixture (swiss roll, moons) or samples of another shape.
struct ModeCoverage {
  double modes_covered = 0;  // out of the mixture's modes: a whole number
  double high_quality = 0;   // fraction of the samples, in [0, 1]
};
ModeCoverage mode_coverage(const Tensor& samples, data::Toy2d kind);

// Eigen-decomposition of a symmetric D×D matrix (cyclic Jacobi, double):
// eigenvalues ascending, eigenvectors as the columns of `vectors` (row-major).
void symmetric_eigen(const std::vector<double>& a, int64_t d, std::vector<double>& values, std::vector<double>& vectors);

}  // namespace loom::models
