// Sample-quality metrics. The Fréchet distance between two sets of features
// (Heusel et al. 2017, "FID" when the features are Inception's; loom uses its
// own Fashion-MNIST classifier's penultimate layer, since no pretrained
// Inception weights can be downloaded):
//   d² = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2})
// which is the 2-Wasserstein distance between N(μ_a, Σ_a) and N(μ_b, Σ_b).
#pragma once

#include <vector>

#include "autograd/loom.h"

namespace loom::models {

// features_a [N, D], features_b [M, D] (any float dtype/device); N, M ≥ 2.
double frechet_distance(const Tensor& features_a, const Tensor& features_b);

// The same from moments: means of length D, covariances D×D row-major.
double frechet_distance(const std::vector<double>& mu_a, const std::vector<double>& cov_a,
                        const std::vector<double>& mu_b, const std::vector<double>& cov_b);

// Eigen-decomposition of a symmetric D×D matrix (cyclic Jacobi, double):
// eigenvalues ascending, eigenvectors as the columns of `vectors` (row-major).
void symmetric_eigen(const std::vector<double>& a, int64_t d, std::vector<double>& values, std::vector<double>& vectors);

}  // namespace loom::models
