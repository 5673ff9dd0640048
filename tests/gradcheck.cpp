#include "tests/gradcheck.h"

#include <cmath>

namespace loom::testing {

namespace {
double dot(const Tensor& y, const Tensor& r) {
  std::vector<double> a = y.to_vector<double>(), b = r.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
}  // namespace

Tensor rand64(const Shape& shape, double lo, double hi, uint64_t seed) {
  Generator g(seed);
  return uniform(shape, lo, hi, TensorOptions{DType::Float64}, &g);
}

void expect_gradients(const Fn& f, const std::vector<Tensor>& inputs_in, GradCheckOptions o) {
  std::vector<Tensor> inputs;
  for (const Tensor& t : inputs_in) {
    Tensor c = t.detach().clone();
    if (c.dtype() == DType::Float64) c.requires_grad_();
    inputs.push_back(c);
  }
  Tensor y = f(inputs);
  ASSERT_EQ(y.dtype(), DType::Float64) << "gradient checks run in float64";
  Generator g(o.seed);
  Tensor r = randn(y.shape(), TensorOptions{DType::Float64}, &g);
  backward(sum(y * r));
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    if (x.dtype() != DType::Float64) continue;
    ASSERT_TRUE(x.grad().defined()) << "input " << i << " received no gradient";
    std::vector<double> analytic = x.grad().to_vector<double>();
    double* p = x.data<double>();
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double saved = p[j];
      double lp, lm;
      {
        NoGrad ng;
        p[j] = saved + o.eps;
        lp = dot(f(inputs), r);
        p[j] = saved - o.eps;
        lm = dot(f(inputs), r);
        p[j] = saved;
      }
      const double numeric = (lp - lm) / (2 * o.eps);
      EXPECT_NEAR(analytic[j], numeric, o.atol + o.rtol * std::abs(numeric))
          << "d loss / d input" << i << "[" << j << "] of shape " << str(x.shape());
    }
  }
}

void expect_second_gradients(const Fn& f, const std::vector<Tensor>& inputs_in, GradCheckOptions o) {
  const TensorOptions f64{DType::Float64};
  std::vector<Tensor> inputs, vars;
  for (const Tensor& t : inputs_in) {
    Tensor c = t.detach().clone();
    if (c.dtype() == DType::Float64) {
      c.requires_grad_();
      vars.push_back(c);
    }
    inputs.push_back(c);
  }
  const size_t n_inputs = vars.size();
  Generator g(o.seed);
  Tensor y0 = f(inputs);
  ASSERT_EQ(y0.dtype(), DType::Float64) << "gradient checks run in float64";
  Tensor r = randn(y0.shape(), f64, &g).requires_grad_();
  std::vector<Tensor> s;
  for (const Tensor& v : vars) s.push_back(randn(v.shape(), f64, &g));
  vars.push_back(r);
  // F(x, R) = Σ_i ⟨∂⟨f(x), R⟩/∂x_i, S_i⟩; recorded when `create`.
  auto F = [&](bool create) {
    Tensor y = f(inputs);
    std::vector<Tensor> first(vars.begin(), vars.begin() + static_cast<std::ptrdiff_t>(n_inputs));
    std::vector<Tensor> gs = grad({sum(y * r)}, first, {}, {.create_graph = create, .allow_unused = true});
    Tensor total = zeros({}, f64);
    for (size_t i = 0; i < n_inputs; ++i)
      if (gs[i].defined()) total = total + sum(gs[i] * s[i]);
    return total;
  };
  Tensor value = F(true);
  std::vector<Tensor> analytic(vars.size());
  if (value.requires_grad()) analytic = grad({value}, vars, {}, {.allow_unused = true});
  for (size_t i = 0; i < vars.size(); ++i) {
    Tensor& x = vars[i];
    std::vector<double> a = analytic[i].defined() ? analytic[i].to_vector<double>()
                                                  : std::vector<double>(static_cast<size_t>(x.numel()), 0.0);
    double* p = x.data<double>();
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double saved = p[j];
      p[j] = saved + o.eps;
      const double lp = F(false).item();
      p[j] = saved - o.eps;
      const double lm = F(false).item();
      p[j] = saved;
      const double numeric = (lp - lm) / (2 * o.eps);
      EXPECT_NEAR(a[j], numeric, o.atol + o.rtol * std::abs(numeric))
          << "d F / d " << (i < n_inputs ? str("input", i) : std::string("grad_output")) << "[" << j
          << "] of shape " << str(x.shape());
    }
  }
}

void expect_values(const Tensor& actual, const std::vector<double>& expected, double atol, double rtol) {
  ASSERT_EQ(actual.numel(), static_cast<int64_t>(expected.size())) << "shape " << str(actual.shape());
  std::vector<double> a = actual.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(expected[i])) {
      EXPECT_TRUE(std::isnan(a[i])) << "element " << i;
      continue;
    }
    if (std::isinf(expected[i])) {
      EXPECT_EQ(a[i], expected[i]) << "element " << i;
      continue;
    }
    EXPECT_NEAR(a[i], expected[i], atol + rtol * std::abs(expected[i])) << "element " << i;
  }
}

void expect_tensors_near(const Tensor& actual, const Tensor& expected, double atol, double rtol) {
  ASSERT_EQ(actual.shape(), expected.shape());
  expect_values(actual, expected.to_vector<double>(), atol, rtol);
}

void expect_error(const std::function<void()>& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const std::string& f : fragments)
      EXPECT_NE(msg.find(f), std::string::npos) << "message \"" << msg << "\" lacks \"" << f << "\"";
    return;
  }
  ADD_FAILURE() << "expected a loom::Error";
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "not one line: " << m;
    return m;
  }
  ADD_FAILURE() << "no loom::Error";
  return "";
}

}  // namespace loom::testing
