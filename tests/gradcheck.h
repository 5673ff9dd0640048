// Shared test helpers: the one gradient checker every op test uses.
#pragma once

#include <functional>
#include <vector>

#include <gtest/gtest.h>

#include "autograd/loom.h"

namespace loom::testing {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradCheckOptions {
  double eps = 1e-6;   // central-difference step
  double atol = 1e-7;  // |analytic − numeric| ≤ atol + rtol·|numeric|
  double rtol = 1e-5;
  uint64_t seed = 1234;
};

// Checks the tape's gradients of f against central finite differences in
// float64 on the CPU. The loss is a random dot product Σ f(x) ⊙ R (not .sum():
// an all-ones upstream gradient hides permutation and layout bugs). Inputs
// that are not float64 (indices) are passed through without being checked.
void expect_gradients(const Fn& f, const std::vector<Tensor>& inputs, GradCheckOptions o = {});

// Checks second derivatives (gradgradcheck): the first derivative
// F(x, R) = Σ_i ⟨∂⟨f(x), R⟩/∂x_i, S_i⟩, computed by grad() with create_graph, is
// differentiated by a second sweep with respect to every float64 input and to the
// output gradient R (a backward must be differentiable in both), and compared with
// central finite differences of F. R and S_i are random.
void expect_second_gradients(const Fn& f, const std::vector<Tensor>& inputs, GradCheckOptions o = {});

// Random float64 CPU tensor with values in [lo, hi).
Tensor rand64(const Shape& shape, double lo = -1, double hi = 1, uint64_t seed = 7);

// Elementwise |actual − expected| ≤ atol + rtol·|expected|, with shapes equal.
void expect_values(const Tensor& actual, const std::vector<double>& expected, double atol = 1e-6,
                   double rtol = 1e-6);
void expect_tensors_near(const Tensor& actual, const Tensor& expected, double atol = 1e-6, double rtol = 1e-6);

// Runs fn and expects a loom::Error whose message contains every fragment.
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& fragments);
// The message of the loom::Error fn throws, checked to be one line ("" and a
// failure when fn throws none).
std::string error_of(const std::function<void()>& fn);

}  // namespace loom::testing
