// `loom derive params`: how many numbers it takes to describe a distribution over
// n binary pixels.
//
// By the chain rule p(x1, …, xn) = Π_i p(x_i | x_<i), and a binary conditional is one
// number per value of what it is conditioned on (its context). So a model is fixed by
// the contexts it allows each pixel:
//   full joint     x_i | x_<i      2^(i−1) contexts   Σ_i 2^(i−1) = 2^n − 1
//   independent    x_i             1 context          n
//   Markov chain   x_i | x_(i−1)   2 contexts (i > 1) 1 + 2(n − 1) = 2n − 1
// Each model is built here with the engine as one table of logits per pixel, looked up
// through a one-hot context matrix (a matmul), and checked by enumerating all 2^n
// images: the probabilities sum to one, the tables hold the expected number of
// parameters, and all of them are free: the Jacobian of log p over every image with
// respect to the parameters has full column rank (no parameter is redundant).
#include <cmath>
#include <functional>

#include "models/derive/derive.h"
#include "models/derive/derive_training.h"

namespace loom::derive {
namespace {
using training::f64;

// The context of pixel i (0-based) in image b, where pixel i is bit n−1−i of b
// (pixel 0 the most significant, so x_<i is the top i bits).
using ContextFn = std::function<int64_t(int64_t b, int64_t i)>;

struct BinaryImageModel {
  std::string name;
  std::function<int64_t(int64_t n)> expected;  // the lecture's count
  std::function<int64_t(int64_t i)> contexts;   // number of contexts of pixel i
  ContextFn context;
};

std::vector<BinaryImageModel> models(int64_t n) {
  auto bit = [n](int64_t b, int64_t i) { return (b >> (n - 1 - i)) & 1; };
  return {
      {"full joint", [](int64_t m) { return (int64_t{1} << m) - 1; }, [](int64_t i) { return int64_t{1} << i; },
       [n](int64_t b, int64_t i) { return b >> (n - i); }},  // the top i bits: x_<i as an integer
      {"independent", [](int64_t m) { return m; }, [](int64_t) { return int64_t{1}; },
       [](int64_t, int64_t) { return int64_t{0}; }},
      {"Markov chain", [](int64_t m) { return 2 * m - 1; }, [](int64_t i) { return i == 0 ? int64_t{1} : int64_t{2}; },
       [bit](int64_t b, int64_t i) { return i == 0 ? 0 : bit(b, i - 1); }},
  };
}

// Rank of a rows × cols row-major matrix by Gaussian elimination with partial pivoting.
int64_t matrix_rank(std::vector<double> a, int64_t rows, int64_t cols) {
  double scale = 0;
  for (double v : a) scale = std::max(scale, std::abs(v));
  const double tol = 1e-10 * std::max(scale, 1.0);
  int64_t rank = 0;
  for (int64_t c = 0; c < cols && rank < rows; ++c) {
    int64_t pivot = rank;
    for (int64_t r = rank + 1; r < rows; ++r)
      if (std::abs(a[r * cols + c]) > std::abs(a[pivot * cols + c])) pivot = r;
    if (std::abs(a[pivot * cols + c]) <= tol) continue;
    for (int64_t j = 0; j < cols; ++j) std::swap(a[rank * cols + j], a[pivot * cols + j]);
    for (int64_t r = rank + 1; r < rows; ++r) {
      const double f = a[r * cols + c] / a[rank * cols + c];
      if (f != 0)
        for (int64_t j = c; j < cols; ++j) a[r * cols + j] -= f * a[rank * cols + j];
    }
    ++rank;
  }
  return rank;
}

ParamCheckRow check(const BinaryImageModel& model, int64_t n, Generator& g) {
  const int64_t images = int64_t{1} << n;
  // Per pixel: its logit table θ_i (the parameters), a one-hot [images, contexts] matrix
  // picking each image's entry, and the sign s = 2x_i − 1 of the pixel in each image.
  std::vector<Tensor> tables, lookups, signs;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = model.contexts(i);
    std::vector<double> onehot(images * c, 0.0), sign(images);
    for (int64_t b = 0; b < images; ++b) {
      onehot[b * c + model.context(b, i)] = 1;
      sign[b] = ((b >> (n - 1 - i)) & 1) ? 1 : -1;
    }
    tables.push_back(randn({c, 1}, f64(), &g).requires_grad_());
    lookups.push_back(from_vector(onehot, {images, c}, f64()));
    signs.push_back(from_vector(sign, {images, 1}, f64()));
  }
  // log p(image) = Σ_i log σ(s_i · θ_i[context_i]): p(x_i = 1 | ctx) = σ(θ), p(0 | ctx) = σ(−θ).
  auto log_prob = [&] {
    Tensor lp = zeros({images, 1}, f64());
    for (int64_t i = 0; i < n; ++i) lp = lp - softplus(-(signs[i] * matmul(lookups[i], tables[i])));
    return reshape(lp, {images});
  };
  ParamCheckRow row{n, model.name, model.expected(n), 0, 0, 0, false};
  for (const Tensor& t : tables) row.parameters += t.numel();
  {
    NoGrad ng;
    row.sum_p = sum(exp(log_prob())).item();
  }
  // One reverse sweep per image gives one row of the Jacobian ∂ log p(image) / ∂θ.
  std::vector<double> jacobian;
  jacobian.reserve(images * row.parameters);
  for (int64_t b = 0; b < images; ++b) {
    std::vector<double> e(images, 0.0);
    e[b] = 1;
    backward(log_prob(), from_vector(e, {images}, f64()));
    for (Tensor& t : tables) {
      for (double v : t.grad().to_vector<double>()) jacobian.push_back(v);
      t.zero_grad();
    }
  }
  row.jacobian_rank = matrix_rank(std::move(jacobian), images, row.parameters);
  row.ok = row.parameters == row.expected && row.jacobian_rank == row.expected && std::abs(row.sum_p - 1) <= 1e-12;
  return row;
}

// 2^n − 1 in decimal while it fits in 64 bits, as a power of two beyond.
std::string full_joint_count(int64_t n) {
  if (n <= 64) return std::to_string(n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1);
  return "2^" + std::to_string(n) + " - 1";
}

}  // namespace

ParamsResult derive_params(const Options& o) {
  ParamsResult r;
  for (int64_t n = 1; n <= 784; ++n) {
    // log10(2^n − 1) = n log10 2 + log10(1 − 2^−n)
    const double log10_full = static_cast<double>(n) * std::log10(2.0) + std::log10(-std::expm1(-n * std::log(2.0)));
    r.counts.push_back({n, full_joint_count(n), log10_full, n, 2 * n - 1});
  }
  Generator g = training::stream(o.seed, 0);
  const int64_t max_n = o.quick ? 6 : 9;
  bool all_ok = true;
  for (int64_t n = 1; n <= max_n; ++n) {
    for (const BinaryImageModel& m : models(n)) {
      r.checks.push_back(check(m, n, g));
      all_ok = all_ok && r.checks.back().ok;
    }
    if (all_ok) r.checked_up_to_n = n;
  }

  Figure fig{"params_counts", "Free parameters of a distribution over n binary pixels", "n (pixels)",
             "parameters", false, true, {}};
  Curve full{"full joint 2^n - 1", {}, {}}, markov{"Markov chain 2n - 1", {}, {}}, indep{"independent n", {}, {}};
  for (const ParamCountRow& c : r.counts) {
    const double x = static_cast<double>(c.n);
    full.x.push_back(x), full.y.push_back(std::pow(10.0, c.log10_full_joint));
    markov.x.push_back(x), markov.y.push_back(static_cast<double>(c.markov));
    indep.x.push_back(x), indep.y.push_back(static_cast<double>(c.independent));
  }
  fig.curves = {full, markov, indep};
  r.figures.push_back(fig);
  return r;
}

}  // namespace loom::derive
