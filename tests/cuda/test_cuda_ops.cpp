// CUDA against the CPU reference, op by op: every op with CUDA kernels runs on
// both devices with the same inputs (awkward sizes 1, 3, 31, 33, 255, 257,
// batch 1, non-square), forward values and backward gradients compared, the
// loss a random dot product. Every allocation is poisoned (filled with NaN /
// -1 bytes) while these tests run, so an output element a kernel forgets to
// write fails the comparison. Without a CUDA device every test is skipped.
#include <cmath>
#include <functional>
#include <limits>

#include "kernels/gemm.h"
#include "kernels/memory.h"
#include "kernels/shape.h"
#include "tests/cuda/cuda_test.h"
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {

const Device kCuda = Device::cuda(0);
const std::vector<int64_t> kSizes = {1, 3, 31, 33, 255, 257};
const std::vector<DType> kFloatTypes = {DType::Float32, DType::Float64};
const double kNan = std::numeric_limits<double>::quiet_NaN(), kInf = std::numeric_limits<double>::infinity();

class CudaOps : public CudaTest {};

Tensor uniform_cpu(const Shape& s, double lo, double hi, DType dt, uint64_t seed) {
  Generator g(seed);
  return uniform(s, lo, hi, TensorOptions{dt}, &g);
}

std::string name_of(DType dt) { return dtype_name(dt); }

// A view of x's storage from element `offset` on, with `shape`: pointers that
// are not 16-byte aligned, for the kernels' unaligned paths.
Tensor offset_view(const Tensor& x, int64_t offset, const Shape& shape) {
  Tensor v = x.detach();
  v.impl().offset = offset;
  v.impl().shape = shape;
  return v;
}

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> f;
  bool positive;  // domain needs x > 0
  bool differentiable;
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, false, true},
      {"exp", [](const Tensor& x) { return exp(x); }, false, true},
      {"log", [](const Tensor& x) { return log(x); }, true, true},
      {"log1p", [](const Tensor& x) { return log1p(x); }, true, true},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, true, true},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, true, true},
      {"tanh", [](const Tensor& x) { return tanh(x); }, false, true},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, false, true},
      {"relu", [](const Tensor& x) { return relu(x); }, false, true},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.1); }, false, true},
      {"elu", [](const Tensor& x) { return elu(x, 0.7); }, false, true},
      {"silu", [](const Tensor& x) { return silu(x); }, false, true},
      {"softplus", [](const Tensor& x) { return softplus(x); }, false, true},
      {"abs", [](const Tensor& x) { return abs(x); }, false, true},
      {"square", [](const Tensor& x) { return square(x); }, false, true},
      {"pow 2.5", [](const Tensor& x) { return pow(x, 2.5); }, true, true},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); }, false, true},
      {"pow 0", [](const Tensor& x) { return pow(x, 0.0); }, false, true},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.8); }, false, true},
      {"sign", [](const Tensor& x) { return sign(x); }, false, false},
  };
}

// ---- elementwise ---------------------------------------------------------------------------------

TEST_F(CudaOps, UnaryMatchesCpu) {
  for (DType dt : kFloatTypes)
    for (int64_t n : {1, 3, 31, 33, 255, 257, 4099})
      for (const UnaryCase& c : unary_cases()) {
        SCOPED_TRACE(str(c.name, " ", name_of(dt), " n=", n));
        Tensor x = c.positive ? uniform_cpu({n}, 0.1, 3, dt, n) : uniform_cpu({n}, -3, 3, dt, n);
        expect_cuda_matches_cpu([&](const std::vector<Tensor>& in) { return c.f(in[0]); }, {x}, tol(dt),
                                 c.differentiable);
      }
}

TEST_F(CudaOps, UnarySpecialValuesMatchCpu) {
  const std::vector<double> v = {kNan, kInf, -kInf, 0.0, -0.0, 0.5, -2, 30, -30, 1e-7, -1e-7};
  for (DType dt : kFloatTypes)
    for (const UnaryCase& c : unary_cases()) {
      SCOPED_TRACE(str(c.name, " ", name_of(dt)));
      Tensor x = from_vector(v, {static_cast<int64_t>(v.size())}, TensorOptions{dt});
      expect_cuda_matches_cpu([&](const std::vector<Tensor>& in) { return c.f(in[0]); }, {x}, tol(dt),
                              c.differentiable);
    }
}

TEST_F(CudaOps, UnalignedOperandsTakeTheScalarPath) {
  for (DType dt : kFloatTypes)
    for (int64_t n : {1, 3, 31, 33, 257}) {
      SCOPED_TRACE(str(name_of(dt), " n=", n));
      Tensor base = uniform_cpu({n + 1}, -2, 2, dt, 3), other = uniform_cpu({n}, -2, 2, dt, 4);
      Tensor gbase = base.to(kCuda), gother = other.to(kCuda);
      // Unaligned input (element 1 of the buffer), aligned output.
      expect_tensors_near(tanh(offset_view(gbase, 1, {n})), tanh(offset_view(base, 1, {n})), tol(dt).atol,
                          tol(dt).rtol);
      // Unaligned in-place destination: add_ writes through the view.
      offset_view(base, 1, {n}).add_(other);
      offset_view(gbase, 1, {n}).add_(gother);
      expect_tensors_near(gbase, base, tol(dt).atol, tol(dt).rtol);
    }
}

TEST_F(CudaOps, BinaryBroadcastMatchesCpu) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{31, 33}, {31, 33}}, {{33}, {31, 33}},    {{31, 1}, {1, 33}},         {{}, {257}},        {{257}, {}},
      {{3, 1, 5}, {1, 4, 1}}, {{1, 255}, {1, 255}}, {{2, 1, 3, 1}, {1, 5, 1, 7}}, {{1}, {1}}, {{4099}, {4099}}};
  using BinFn = std::function<Tensor(const Tensor&, const Tensor&)>;
  const std::vector<std::pair<const char*, BinFn>> ops = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }},
  };
  for (DType dt : kFloatTypes)
    for (const auto& [sa, sb] : shapes)
      for (const auto& [name, f] : ops) {
        SCOPED_TRACE(str(name, " ", name_of(dt), " ", sa, " with ", sb));
        // Positive operands keep pow real and div away from 0.
        Tensor a = uniform_cpu(sa, 0.5, 2, dt, 1), b = uniform_cpu(sb, 0.5, 2, dt, 2);
        // The gradient of a broadcast operand sums up to 31·33 elements.
        // Here and below, f is init-captured: clang 14 cannot capture a structured binding itself.
        expect_cuda_matches_cpu([&f = f](const std::vector<Tensor>& in) { return f(in[0], in[1]); }, {a, b},
                                tol(dt, 31 * 33));
      }
}

TEST_F(CudaOps, ComparisonsAndExtremaFollowTheCpuNanRules) {
  const std::vector<double> a = {1, 2, kNan, 3, -0.0, kInf, kNan, -kInf};
  const std::vector<double> b = {1, 3, 1, kNan, 0.0, kInf, kNan, 5};
  using BinFn = std::function<Tensor(const Tensor&, const Tensor&)>;
  const std::vector<BinFn> ops = {
      [](const Tensor& x, const Tensor& y) { return eq(x, y); },
      [](const Tensor& x, const Tensor& y) { return ne(x, y); },
      [](const Tensor& x, const Tensor& y) { return lt(x, y); },
      [](const Tensor& x, const Tensor& y) { return le(x, y); },
      [](const Tensor& x, const Tensor& y) { return gt(x, y); },
      [](const Tensor& x, const Tensor& y) { return ge(x, y); },
      [](const Tensor& x, const Tensor& y) { return maximum(x, y); },
      [](const Tensor& x, const Tensor& y) { return minimum(x, y); },
  };
  for (DType dt : kFloatTypes)
    for (size_t i = 0; i < ops.size(); ++i) {
      SCOPED_TRACE(str("op ", i, " ", name_of(dt)));
      Tensor ta = from_vector(a, {8}, TensorOptions{dt}), tb = from_vector(b, {8}, TensorOptions{dt});
      expect_cuda_matches_cpu([&](const std::vector<Tensor>& in) { return ops[i](in[0], in[1]); }, {ta, tb},
                              {0, 0}, false);
    }
}

TEST_F(CudaOps, IntegerBinaryOpsMatchCpu) {
  // a in [-3, 3], b in [-2, 5]: pow with negative exponents, division without 0.
  std::vector<int64_t> av, bv;
  for (int64_t i = 0; i < 7 * 8; ++i) {
    av.push_back(i / 8 - 3);
    const int64_t b = i % 8 - 2;
    bv.push_back(b == 0 ? 7 : b);
  }
  using BinFn = std::function<Tensor(const Tensor&, const Tensor&)>;
  const std::vector<BinFn> ops = {
      [](const Tensor& x, const Tensor& y) { return add(x, y); },
      [](const Tensor& x, const Tensor& y) { return sub(x, y); },
      [](const Tensor& x, const Tensor& y) { return mul(x, y); },
      [](const Tensor& x, const Tensor& y) { return div(x, y); },
      [](const Tensor& x, const Tensor& y) { return pow(x, y); },
      [](const Tensor& x, const Tensor& y) { return maximum(x, y); },
      [](const Tensor& x, const Tensor& y) { return lt(x, y); },
      [](const Tensor& x, const Tensor& y) { return eq(x, y); },
  };
  for (DType dt : {DType::Int32, DType::Int64})
    for (size_t i = 0; i < ops.size(); ++i) {
      SCOPED_TRACE(str("op ", i, " ", name_of(dt)));
      Tensor ta = from_vector(av, {7, 8}, TensorOptions{dt}), tb = from_vector(bv, {7, 8}, TensorOptions{dt});
      expect_cuda_matches_cpu([&](const std::vector<Tensor>& in) { return ops[i](in[0], in[1]); }, {ta, tb},
                              {0, 0}, false);
      // Broadcast: a column against a row.
      Tensor col = from_vector(std::vector<int64_t>{-3, 0, 2}, {3, 1}, TensorOptions{dt});
      Tensor row = from_vector(std::vector<int64_t>{1, -2, 3, 4}, {1, 4}, TensorOptions{dt});
      expect_cuda_matches_cpu([&](const std::vector<Tensor>& in) { return ops[i](in[0], in[1]); }, {col, row},
                              {0, 0}, false);
    }
}

TEST_F(CudaOps, WhereMatchesCpu) {
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(name_of(dt));
    // The condition is computed inside f (a comparison records nothing), so it
    // carries no gradient.
    const auto f = [](const std::vector<Tensor>& in) {
      return where(gt(in[0], zeros({}, in[0].options())), in[1], in[2]);
    };
    Tensor c = uniform_cpu({31, 1}, -1, 1, dt, 5), a = uniform_cpu({1, 33}, -1, 1, dt, 6);
    expect_cuda_matches_cpu(f, {c, a, uniform_cpu({31, 33}, -1, 1, dt, 7)}, tol(dt, 31));
    expect_cuda_matches_cpu(f, {uniform_cpu({257}, -1, 1, dt, 8), uniform_cpu({257}, -1, 1, dt, 9),
                                uniform_cpu({257}, -1, 1, dt, 10)},
                            tol(dt));
  }
  Tensor ci = from_vector(std::vector<int64_t>{1, 0, 0, 5}, {4}, TensorOptions{DType::Int64});
  Tensor ai = from_vector(std::vector<int64_t>{1, 2, 3, 4}, {4}, TensorOptions{DType::Int64});
  Tensor bi = from_vector(std::vector<int64_t>{-1}, {1}, TensorOptions{DType::Int64});
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return where(in[0], in[1], in[2]); }, {ci, ai, bi},
                          {0, 0}, false);
}

TEST_F(CudaOps, InPlaceOpsMatchCpu) {
  for (DType dt : {DType::Float32, DType::Float64, DType::Int32, DType::Int64}) {
    SCOPED_TRACE(name_of(dt));
    Tensor c = full({257}, 3, TensorOptions{dt}), g = full({257}, 3, TensorOptions{dt, kCuda});
    expect_tensors_near(g, c, 0, 0);
    Tensor inc = arange(0, 257, 1, TensorOptions{dt});
    c.add_(inc, 2).mul_(3);
    g.add_(inc.to(kCuda), 2).mul_(3);
    expect_tensors_near(g, c, 0, 0);
    g.zero_();
    expect_values(g, std::vector<double>(257, 0.0), 0, 0);
  }
}

// ---- creation, conversion, devices -------------------------------------------------------------

TEST_F(CudaOps, PoisonedAllocationsAreNan) {
  // The check every other test relies on: a fresh CUDA buffer holds NaN, not zeros.
  Tensor t = empty({33}, TensorOptions{DType::Float32, kCuda});
  for (float v : t.to_vector<float>()) EXPECT_TRUE(std::isnan(v));
  Tensor i = empty({3}, TensorOptions{DType::Int64, kCuda});
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{-1, -1, -1}));
}

TEST_F(CudaOps, FillCastArangeMatchCpu) {
  const std::vector<DType> all = {DType::Float32, DType::Float64, DType::Int32, DType::Int64};
  for (DType dt : all)
    for (int64_t n : kSizes) {
      SCOPED_TRACE(str(name_of(dt), " n=", n));
      expect_tensors_near(full({n}, -2.75, TensorOptions{dt, kCuda}), full({n}, -2.75, TensorOptions{dt}), 0, 0);
      expect_tensors_near(ones({n, 1}, TensorOptions{dt, kCuda}), ones({n, 1}, TensorOptions{dt}), 0, 0);
    }
  const std::vector<double> v = {-2.75, -1.5, -0.5, 0, 0.5, 1.5, 2.75, 1e6, -123456789};
  for (DType from : all)
    for (DType to : all) {
      SCOPED_TRACE(str(name_of(from), " -> ", name_of(to)));
      Tensor x = from_vector(v, {9}, TensorOptions{from});
      expect_tensors_near(x.to(kCuda).to(to), x.to(to), 0, 0);  // casts are exact conversions on both sides
    }
  // arange computes start + i·step in double without fused multiply-adds: bit for bit.
  for (DType dt : all) {
    SCOPED_TRACE(name_of(dt));
    expect_tensors_near(arange(0, 257, 1, TensorOptions{dt, kCuda}), arange(0, 257, 1, TensorOptions{dt}), 0, 0);
    expect_tensors_near(arange(5, -30, -3, TensorOptions{dt, kCuda}), arange(5, -30, -3, TensorOptions{dt}), 0, 0);
  }
  expect_tensors_near(arange(1, 2, 0.1, TensorOptions{DType::Float64, kCuda}),
                      arange(1, 2, 0.1, TensorOptions{DType::Float64}), 0, 0);
  expect_tensors_near(arange(-1, 7, 0.37, TensorOptions{DType::Float32, kCuda}),
                      arange(-1, 7, 0.37, TensorOptions{DType::Float32}), 0, 0);
}

TEST_F(CudaOps, DeviceRoundTrips) {
  const std::vector<double> v = {1.5, -2.25, 1e30, -0.0};
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor x = from_vector(v, {2, 2}, TensorOptions{dt});
    Tensor g = x.to(kCuda);
    EXPECT_EQ(g.device(), kCuda);
    EXPECT_EQ(g.to(kCuda).data_ptr(), g.data_ptr());  // same device: the same tensor
    expect_tensors_near(g.to(Device::cpu()), x, 0, 0);
    expect_tensors_near(g.clone(), x, 0, 0);
    EXPECT_NE(g.clone().data_ptr(), g.data_ptr());
  }
  const std::vector<int64_t> big = {(int64_t(1) << 53) + 1, -7, std::numeric_limits<int64_t>::max(), 0};
  Tensor xi = from_vector(big, {4}, TensorOptions{DType::Int64});
  EXPECT_EQ(xi.to(kCuda).to(Device::cpu()).to_vector<int64_t>(), big);
  EXPECT_EQ(from_vector(big, {4}, TensorOptions{DType::Int64, kCuda}).to_vector<int64_t>(), big);
  EXPECT_DOUBLE_EQ(scalar(3.5, TensorOptions{DType::Float64, kCuda}).item(), 3.5);
  // copy_ across devices and dtypes.
  Tensor dst = zeros({2, 2}, TensorOptions{DType::Float64, kCuda});
  dst.copy_(from_vector(v, {2, 2}, TensorOptions{DType::Float32}));
  expect_values(dst, {1.5, -2.25, static_cast<double>(1e30f), -0.0}, 0, 0);
  // Gradients flow back through to(device): d/dx Σ 2·x·r = 2r.
  Tensor x = uniform_cpu({3, 5}, -1, 1, DType::Float64, 11).requires_grad_();
  Tensor r = uniform_cpu({3, 5}, -1, 1, DType::Float64, 12);
  backward(sum((x.to(kCuda) * 2.0).to(Device::cpu()) * r));
  expect_tensors_near(x.grad(), r * 2.0, 0, 0);
}

TEST_F(CudaOps, MixedDevicesAreRefused) {
  Tensor a = zeros({3}), b = zeros({3}, TensorOptions{DType::Float32, kCuda});
  expect_error([&] { add(a, b); }, {"add", "device mismatch", "cpu", "cuda:0"});
  expect_error([&] { matmul(zeros({2, 2}), zeros({2, 2}, TensorOptions{DType::Float32, kCuda})); },
               {"matmul", "device mismatch"});
}

TEST_F(CudaOps, BadDeviceIndexIsAClearError) {
  const int n = cuda_device_count();
  expect_error([&] { zeros({2}, TensorOptions{DType::Float32, Device::cuda(n)}); },
               {str("cuda:", n), "CUDA device", "exist"});
}

// ---- random ---------------------------------------------------------------------------------------

TEST_F(CudaOps, RandomMatchesCpu) {
  for (DType dt : kFloatTypes)
    for (int64_t n : {1, 3, 31, 33, 255, 257, 4097}) {
      SCOPED_TRACE(str(name_of(dt), " n=", n));
      Generator gc(42), gg(42);
      for (int draw = 0; draw < 2; ++draw) {  // the second draw starts at a nonzero offset
        Tensor uc = uniform({n}, -2, 3, TensorOptions{dt}, &gc);
        Tensor ug = uniform({n}, -2, 3, TensorOptions{dt, kCuda}, &gg);
        EXPECT_EQ(ug.to_vector<double>(), uc.to_vector<double>());  // bit for bit
        Tensor rc = rand({n}, TensorOptions{dt}, &gc), rg = rand({n}, TensorOptions{dt, kCuda}, &gg);
        EXPECT_EQ(rg.to_vector<double>(), rc.to_vector<double>());
        // Box-Muller goes through log, sin, cos: CUDA's and libm's may differ in the last bits.
        Tensor nc = normal({n}, 0.5, 2, TensorOptions{dt}, &gc);
        Tensor ng = normal({n}, 0.5, 2, TensorOptions{dt, kCuda}, &gg);
        const double t = dt == DType::Float32 ? 4e-6 : 1e-13;
        expect_tensors_near(ng, nc, t, t);
        Tensor p = uniform_cpu({n}, 0, 1, dt, 77);
        Tensor bc = bernoulli(p, &gc), bg = bernoulli(p.to(kCuda), &gg);
        EXPECT_EQ(bg.to_vector<double>(), bc.to_vector<double>());
        EXPECT_EQ(gg.offset(), gc.offset());
      }
    }
}

// ---- reductions ----------------------------------------------------------------------------------

struct ReduceCase {
  Shape shape;
  std::vector<int64_t> axes;
};
const std::vector<ReduceCase> kReduceCases = {
    {{257}, {}},          {{31, 33}, {0}},       {{31, 33}, {1}},        {{31, 33}, {}},
    {{3, 255, 5}, {1}},   {{2, 3, 4, 5}, {0, 2}}, {{1, 257}, {1}},        {{257, 1}, {0}},
    {{1}, {0}},           {{5, 2000}, {1}},      {{33, 1025, 3}, {1}},   {{1, 100003}, {1}},
    {{70001, 3}, {0}},    {{4, 3}, {-1}},
};

int64_t reduced_count(const ReduceCase& c) {
  if (c.axes.empty()) return numel(c.shape);
  int64_t n = 1;
  for (int64_t a : c.axes) n *= c.shape[a < 0 ? a + c.shape.size() : a];
  return n;
}

TEST_F(CudaOps, ReductionsMatchCpu) {
  using RFn = std::function<Tensor(const Tensor&, const std::vector<int64_t>&, bool)>;
  const std::vector<std::pair<const char*, RFn>> ops = {
      {"sum", [](const Tensor& x, const std::vector<int64_t>& a, bool k) { return sum(x, a, k); }},
      {"mean", [](const Tensor& x, const std::vector<int64_t>& a, bool k) { return mean(x, a, k); }},
      {"max", [](const Tensor& x, const std::vector<int64_t>& a, bool k) { return max(x, a, k); }},
      {"min", [](const Tensor& x, const std::vector<int64_t>& a, bool k) { return min(x, a, k); }},
      {"logsumexp", [](const Tensor& x, const std::vector<int64_t>& a, bool k) { return logsumexp(x, a, k); }},
      {"var", [](const Tensor& x, const std::vector<int64_t>& a, bool k) { return var(x, a, k, 1); }},
  };
  for (DType dt : kFloatTypes)
    for (const ReduceCase& c : kReduceCases)
      for (const auto& [name, f] : ops)
        for (bool keepdim : {false, true}) {
          if (std::string(name) == "var" && reduced_count(c) < 2) continue;  // correction 1 needs two elements
          SCOPED_TRACE(str(name, " ", name_of(dt), " ", c.shape, " axes ", Shape(c.axes), keepdim ? " keepdim" : ""));
          Tensor x = uniform_cpu(c.shape, -2, 2, dt, 21);
          const std::vector<int64_t> axes = c.axes;
          expect_cuda_matches_cpu(
              [&f = f, axes, keepdim](const std::vector<Tensor>& in) { return f(in[0], axes, keepdim); }, {x},
              tol(dt, reduced_count(c)));
        }
}

// batch_norm's kernels (a block per channel, blocks striding over channels): more channels than the
// emulator's grid (4 SMs × 8 blocks), channels of more values than a block has threads, and [N, C]
// inputs whose channel is a column; the output, ∂x, ∂γ, ∂β and the running statistics.
TEST_F(CudaOps, BatchNormMatchesCpu) {
  for (DType dt : kFloatTypes)
    for (const Shape& shape : {Shape{3, 40, 11, 9}, Shape{33, 70}, Shape{2, 1, 300}}) {
      SCOPED_TRACE(str(name_of(dt), " ", shape));
      const int64_t c = shape[1];
      Tensor x = uniform_cpu(shape, -2, 3, dt, 61), w = uniform_cpu({c}, 0.5, 2, dt, 62), b = uniform_cpu({c}, -1, 1, dt, 63);
      const int64_t count = x.numel() / c;
      expect_cuda_matches_cpu(
          [](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], {}, {}, true); }, {x, w, b},
          tol(dt, count));
      Tensor rm = zeros({c}, TensorOptions{dt}), rv = ones({c}, TensorOptions{dt});
      Tensor rm_gpu = rm.to(kCuda), rv_gpu = rv.to(kCuda);
      batch_norm(x, w, b, rm, rv, true, 0.1);
      batch_norm(x.to(kCuda), w.to(kCuda), b.to(kCuda), rm_gpu, rv_gpu, true, 0.1);
      expect_tensors_near(rm_gpu, rm, tol(dt, count).atol, tol(dt, count).rtol);
      expect_tensors_near(rv_gpu, rv, tol(dt, count).atol, tol(dt, count).rtol);
    }
}

// group_norm's kernels (standardize's, with γ and β by channel): rows a warp holds (r ≤ 1024) and rows a block
// holds; channel runs of 99 values (a lane's walk crosses into the next channel mid-stride), 1 200, 7 (instance
// norm, fewer values than lanes) and 1 ([N, C]: a lane steps 32 channels at a time); 40 channels, more than the
// emulator's grid, for γ's and β's gradients; with and without the affine.
TEST_F(CudaOps, GroupNormMatchesCpu) {
  struct Case {
    Shape shape;
    int64_t groups;
  };
  for (DType dt : kFloatTypes)
    for (const Case& k : {Case{{3, 40, 11, 9}, 8}, Case{{2, 12, 40, 30}, 3}, Case{{5, 6, 7}, 6}, Case{{33, 70}, 2}}) {
      SCOPED_TRACE(str(name_of(dt), " ", k.shape, " groups ", k.groups));
      const int64_t c = k.shape[1], groups = k.groups;
      Tensor x = uniform_cpu(k.shape, -2, 3, dt, 64), w = uniform_cpu({c}, 0.5, 2, dt, 65), b = uniform_cpu({c}, -1, 1, dt, 66);
      const int64_t count = x.numel() / (k.shape[0] * groups);  // values per group
      expect_cuda_matches_cpu([groups](const std::vector<Tensor>& in) { return group_norm(in[0], groups, in[1], in[2]); },
                              {x, w, b}, tol(dt, count));
      expect_cuda_matches_cpu([groups](const std::vector<Tensor>& in) { return group_norm(in[0], groups); }, {x},
                              tol(dt, count));
    }
}

TEST_F(CudaOps, ExtremaAndLogSumExpFollowTheCpuNanAndTieRules) {
  // Rows: a tie for the max (the first wins), a NaN in the middle (the first NaN
  // wins and sticks), all NaN, all −inf, +inf with a NaN, -0 against +0.
  const std::vector<double> rows = {
      1, 5, 2, 5, 0,  //
      1, kNan, 7, kNan, 9,  //
      kNan, kNan, kNan, kNan, kNan,  //
      -kInf, -kInf, -kInf, -kInf, -kInf,  //
      kInf, 0, kNan, 1, kInf,  //
      -0.0, 0.0, -0.0, 0.0, -1,
  };
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(name_of(dt));
    Tensor x = from_vector(rows, {6, 5}, TensorOptions{dt});
    for (int64_t axis : {1, 0}) {
      SCOPED_TRACE(str("axis ", axis));
      const Tensor xs = axis == 1 ? x : transpose(x, 0, 1).detach();  // axis 0 of the transpose: the strided layout
      const int64_t ax = axis == 1 ? 1 : 0;
      for (auto f : {+[](const Tensor& t, int64_t a) { return max(t, {a}); },
                     +[](const Tensor& t, int64_t a) { return min(t, {a}); },
                     +[](const Tensor& t, int64_t a) { return logsumexp(t, {a}); },
                     +[](const Tensor& t, int64_t a) { return argmax(t, a); }})
        expect_cuda_matches_cpu([&](const std::vector<Tensor>& in) { return f(in[0], ax); }, {xs}, tol(dt), false);
    }
  }
  // The same rules across the split path: one long row, ties and a late NaN.
  for (DType dt : kFloatTypes) {
    Tensor x = uniform_cpu({1, 100003}, -1, 1, dt, 31);
    std::vector<double> v = x.to_vector<double>();
    v[500] = v[90000] = 3;  // a tie across splits: index 500 wins
    Tensor tied = from_vector(v, {1, 100003}, TensorOptions{dt});
    v[70001] = v[99999] = kNan;
    Tensor nan = from_vector(v, {1, 100003}, TensorOptions{dt});
    for (const Tensor& t : {tied, nan}) {
      EXPECT_EQ(argmax(t.to(kCuda), 1).to_vector<int64_t>(), argmax(t, 1).to_vector<int64_t>());
      expect_tensors_near(max(t.to(kCuda), {1}), max(t, {1}), 0, 0);
      expect_tensors_near(logsumexp(t.to(kCuda), {1}), logsumexp(t, {1}), tol(dt, 100003).atol,
                          tol(dt, 100003).rtol);
    }
  }
}

TEST_F(CudaOps, ArgmaxMatchesCpu) {
  for (DType dt : kFloatTypes)
    for (const auto& [shape, axis] : std::vector<std::pair<Shape, int64_t>>{
             {{257}, 0}, {{31, 33}, 0}, {{31, 33}, 1}, {{3, 255, 5}, 1}, {{1, 1}, 1}, {{5, 2000}, -1}}) {
      SCOPED_TRACE(str(name_of(dt), " ", shape, " axis ", axis));
      Tensor x = uniform_cpu(shape, -1, 1, dt, 41);
      for (bool keepdim : {false, true})
        EXPECT_EQ(argmax(x.to(kCuda), axis, keepdim).to_vector<int64_t>(),
                  argmax(x, axis, keepdim).to_vector<int64_t>());
    }
}

TEST_F(CudaOps, ReductionsAreDeterministic) {
  Tensor x = uniform_cpu({1, 1000003}, -1, 1, DType::Float32, 51).to(kCuda);
  EXPECT_EQ(sum(x).to_vector<float>(), sum(x).to_vector<float>());
  Tensor y = uniform_cpu({100003, 3}, -1, 1, DType::Float64, 52).to(kCuda);
  EXPECT_EQ(sum(y, {0}).to_vector<double>(), sum(y, {0}).to_vector<double>());
  EXPECT_EQ(logsumexp(y, {0}).to_vector<double>(), logsumexp(y, {0}).to_vector<double>());
}

TEST_F(CudaOps, SoftmaxMatchesCpu) {
  struct Case {
    Shape shape;
    int64_t axis;
  };
  std::vector<Case> cases;
  for (int64_t r : {1, 3, 31, 33, 255, 257, 1025, 5000}) cases.push_back({{3, r}, -1});  // rows: warp or block
  cases.push_back({{1, 33}, -1});
  cases.push_back({{3, 31, 5}, 1});    // strided
  cases.push_back({{257, 3}, 0});      // strided, long
  cases.push_back({{2, 3, 33, 2}, 2});  // strided, inner 2
  for (DType dt : kFloatTypes)
    for (const Case& c : cases)
      for (bool log_space : {false, true}) {
        SCOPED_TRACE(str(log_space ? "log_softmax " : "softmax ", name_of(dt), " ", c.shape, " axis ", c.axis));
        Tensor x = uniform_cpu(c.shape, -4, 4, dt, 61);
        const int64_t axis = c.axis;
        expect_cuda_matches_cpu(
            [&](const std::vector<Tensor>& in) { return log_space ? log_softmax(in[0], axis) : softmax(in[0], axis); },
            {x}, tol(dt));  // accumulated in double on both sides; outputs shrink like 1/r, so no √r slack
      }
}

TEST_F(CudaOps, SoftmaxOfMaskedRowsMatchesCpu) {
  // −inf entries get probability 0; an all −inf row is NaN on both devices.
  const std::vector<double> v = {0.5, -kInf, 1, -kInf, -kInf, -kInf, -kInf, -kInf, 2, kNan, 0, 1};
  for (DType dt : kFloatTypes)
    for (bool log_space : {false, true}) {
      Tensor x = from_vector(v, {3, 4}, TensorOptions{dt});
      expect_cuda_matches_cpu(
          [&](const std::vector<Tensor>& in) { return log_space ? log_softmax(in[0], 1) : softmax(in[0], 1); }, {x},
          tol(dt), false);
      expect_cuda_matches_cpu(
          [&](const std::vector<Tensor>& in) { return log_space ? log_softmax(in[0], 0) : softmax(in[0], 0); },
          {transpose(x, 0, 1).detach()}, tol(dt), false);
    }
}

TEST_F(CudaOps, CumsumMatchesCpu) {
  // Both devices scan each line in order in double, so values and gradients agree bit for bit.
  struct Case {
    Shape shape;
    int64_t axis;
  };
  std::vector<Case> cases;
  for (int64_t r : kSizes) {
    cases.push_back({{3, r}, -1});    // rows: inner 1
    cases.push_back({{r, 33}, 0});    // columns: outer 1
    cases.push_back({{2, r, 5}, 1});  // both
  }
  cases.push_back({{7}, 0});
  cases.push_back({{2, 0, 3}, 1});  // empty
  for (DType dt : kFloatTypes)
    for (const Case& c : cases)
      for (bool reverse : {false, true}) {
        SCOPED_TRACE(str("cumsum ", name_of(dt), " ", c.shape, " axis ", c.axis, reverse ? " reverse" : ""));
        Tensor x = uniform_cpu(c.shape, -2, 2, dt, 63);
        const int64_t axis = c.axis;
        expect_cuda_matches_cpu([&](const std::vector<Tensor>& in) { return cumsum(in[0], axis, reverse); }, {x},
                                {0, 0});
      }
}

// ---- matmul ----------------------------------------------------------------------------------------

TEST_F(CudaOps, MatmulMatchesCpu) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{1, 1}, {1, 1}},       {{3, 31}, {31, 33}},     {{257, 1}, {1, 255}},  {{33, 257}, {257, 31}},
      {{2, 3, 4}, {2, 4, 5}}, {{1, 3, 4}, {5, 4, 2}},  {{5, 3, 4}, {4, 2}},   {{3, 4}, {6, 4, 2}},
      {{4}, {4}},             {{4}, {4, 3}},           {{3, 4}, {4}},         {{1, 255}, {255, 1}},
  };
  for (DType dt : kFloatTypes)
    for (const auto& [sa, sb] : cases) {
      SCOPED_TRACE(str(name_of(dt), " ", sa, " @ ", sb));
      Tensor a = uniform_cpu(sa, -1, 1, dt, 71), b = uniform_cpu(sb, -1, 1, dt, 72);
      // Backward sums over up to max(k, m, n, batch) products.
      expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b},
                              tol(dt, 257));
    }
}

TEST_F(CudaOps, MatmulWithEmptyInnerDimensionIsZero) {
  Tensor a = zeros({3, 0}, TensorOptions{DType::Float32, kCuda});
  Tensor b = zeros({0, 2}, TensorOptions{DType::Float32, kCuda});
  expect_values(matmul(a, b), std::vector<double>(6, 0.0), 0, 0);  // poisoned output: every element written
}

TEST_F(CudaOps, Tf32IsOffByDefaultAndOptIn) {
  ASSERT_FALSE(kernels::gemm_allow_tf32());
  // With TF32 the inputs lose 13 mantissa bits: errors near 1e-3 relative, far
  // outside the FP32 tolerance MatmulMatchesCpu holds the default to.
  Tensor a = uniform_cpu({64, 512}, -1, 1, DType::Float32, 81), b = uniform_cpu({512, 48}, -1, 1, DType::Float32, 82);
  Tensor exact = matmul(a, b);
  expect_tensors_near(matmul(a.to(kCuda), b.to(kCuda)), exact, tol(DType::Float32, 512).atol,
                      tol(DType::Float32, 512).rtol);
  kernels::set_gemm_allow_tf32(true);
  Tensor fast = matmul(a.to(kCuda), b.to(kCuda));
  kernels::set_gemm_allow_tf32(false);
  expect_tensors_near(fast, exact, 5e-2, 1e-2);
}

// ---- shape -------------------------------------------------------------------------------------------

TEST_F(CudaOps, ShapeOpsMatchCpu) {
  using SFn = std::function<Tensor(const Tensor&)>;
  const std::vector<std::tuple<const char*, Shape, SFn>> cases = {
      {"permute 2,0,1", {3, 31, 33}, [](const Tensor& x) { return permute(x, {2, 0, 1}); }},
      {"permute 1,2,0", {3, 31, 33}, [](const Tensor& x) { return permute(x, {1, 2, 0}); }},
      {"permute 0,2,1", {1, 255, 3}, [](const Tensor& x) { return permute(x, {0, 2, 1}); }},
      {"transpose", {257, 33}, [](const Tensor& x) { return transpose(x, 0, 1); }},
      {"transpose 4-d", {2, 3, 4, 5}, [](const Tensor& x) { return transpose(x, 1, 3); }},
      {"expand row", {1, 33}, [](const Tensor& x) { return expand(x, {31, 33}); }},
      {"expand middle", {3, 1, 5}, [](const Tensor& x) { return expand(x, {3, 4, 5}); }},
      {"expand scalar", {}, [](const Tensor& x) { return expand(x, {257}); }},
      {"expand new axes", {3}, [](const Tensor& x) { return expand(x, {2, 5, 3}); }},
      {"reshape", {31, 33}, [](const Tensor& x) { return reshape(x, {33, -1}) * 1.0; }},
      {"flatten", {3, 5, 7}, [](const Tensor& x) { return flatten(x, 1) * 1.0; }},
      {"squeeze unsqueeze", {3, 1, 5}, [](const Tensor& x) { return unsqueeze(squeeze(x, 1), 0) * 1.0; }},
  };
  for (DType dt : kFloatTypes)
    for (const auto& [name, shape, f] : cases) {
      SCOPED_TRACE(str(name, " ", name_of(dt), " ", shape));
      expect_cuda_matches_cpu([&f = f](const std::vector<Tensor>& in) { return f(in[0]); },
                              {uniform_cpu(shape, -1, 1, dt, 91)}, tol(dt, 31 * 5));
    }
  for (DType dt : {DType::Int32, DType::Int64}) {  // pure data movement is dtype-blind apart from the size
    Tensor x = arange(0, 3 * 31 * 33, 1, TensorOptions{dt}).detach();
    Tensor x3 = reshape(x, {3, 31, 33});
    EXPECT_EQ(permute(x3.to(kCuda), {2, 0, 1}).to_vector<int64_t>(), permute(x3, {2, 0, 1}).to_vector<int64_t>());
  }
  Tensor g = zeros({31, 33}, TensorOptions{DType::Float32, kCuda});
  EXPECT_EQ(reshape(g, {33, 31}).data_ptr(), g.data_ptr());  // views share storage on CUDA too
}

// The index kernels have no op on the engine yet; run them through the dispatch
// as the ops will and compare with the CPU kernels.
template <class Launch>
void expect_index_kernel_matches_cpu(const Tensor& x, const Tensor& idx, const Tensor& out_init, Launch launch,
                                     Tol t) {
  Tensor out_c = out_init.clone(), out_g = out_init.to(kCuda);
  Tensor xg = x.to(kCuda), idx_g = idx.to(kCuda);
  launch(kernel_ctx(Device::cpu()), x, idx, out_c);
  launch(kernel_ctx(kCuda), xg, idx_g, out_g);
  expect_tensors_near(out_g, out_c, t.atol, t.rtol);
}

TEST_F(CudaOps, IndexKernelsMatchCpu) {
  const int64_t outer = 3, n = 7, inner = 5;
  const std::vector<int64_t> rows = {6, 0, 3, 3, 1, 6, 6, 2};  // repeated rows: the adds accumulate
  const int64_t m = static_cast<int64_t>(rows.size());
  std::vector<int64_t> per_elem;
  for (int64_t t = 0; t < outer * m * inner; ++t) per_elem.push_back((t * 5 + t / 7) % n);
  Tensor idx_rows = from_vector(rows, {m}, TensorOptions{DType::Int64});
  Tensor idx_elems = from_vector(per_elem, {outer, m, inner}, TensorOptions{DType::Int64});
  for (DType dt : {DType::Float32, DType::Float64, DType::Int32, DType::Int64}) {
    SCOPED_TRACE(name_of(dt));
    Tensor src = uniform_cpu({outer, n, inner}, -4, 4, DType::Float64, 101).to(dt);
    Tensor g = uniform_cpu({outer, m, inner}, -4, 4, DType::Float64, 102).to(dt);
    Tensor poison_out = empty({outer, m, inner}, TensorOptions{dt});  // poisoned: every element must be written
    const Tol t = is_floating(dt) ? tol(dt, m) : Tol{0, 0};  // atomics add in any order
    expect_index_kernel_matches_cpu(src, idx_rows, poison_out, [&](KernelCtx k, const Tensor& x, const Tensor& i,
                                                                  Tensor& out) {
      LOOM_DISPATCH(k, LOOM_CUDA_SHAPE, index_select, k, dt, x.data_ptr(), i.data<int64_t>(), out.data_ptr(), outer,
                    n, m, inner);
    }, t);
    expect_index_kernel_matches_cpu(src, idx_elems, poison_out, [&](KernelCtx k, const Tensor& x, const Tensor& i,
                                                                   Tensor& out) {
      LOOM_DISPATCH(k, LOOM_CUDA_SHAPE, gather, k, dt, x.data_ptr(), i.data<int64_t>(), out.data_ptr(), outer, n, m,
                    inner);
    }, t);
    expect_index_kernel_matches_cpu(g, idx_rows, src, [&](KernelCtx k, const Tensor& x, const Tensor& i, Tensor& out) {
      LOOM_DISPATCH(k, LOOM_CUDA_SHAPE, index_add, k, dt, x.data_ptr(), i.data<int64_t>(), out.data_ptr(), outer, n,
                    m, inner);
    }, t);
    expect_index_kernel_matches_cpu(g, idx_elems, src, [&](KernelCtx k, const Tensor& x, const Tensor& i,
                                                          Tensor& out) {
      LOOM_DISPATCH(k, LOOM_CUDA_SHAPE, scatter_add, k, dt, x.data_ptr(), i.data<int64_t>(), out.data_ptr(), outer,
                    n, m, inner);
    }, t);
  }
}

// ---- memory ----------------------------------------------------------------------------------------

TEST_F(CudaOps, SteadyStateMakesNoCudaMalloc) {
  Tensor x = uniform_cpu({33, 31}, -1, 1, DType::Float32, 111).to(kCuda);
  Tensor w = uniform_cpu({31, 257}, -1, 1, DType::Float32, 112).to(kCuda).requires_grad_();
  Tensor labels_mask = gt(uniform_cpu({33, 257}, -1, 1, DType::Float32, 113), zeros({})).to(kCuda);
  auto step = [&] {
    Tensor logits = matmul(x, w);
    Tensor loss = -mean(sum(log_softmax(logits, -1) * labels_mask, {1})) + mean(square(w)) * 0.01;
    backward(loss);
    NoGrad ng;
    w.add_(w.grad(), -0.1);
  };
  step();  // warm-up: fills the cache's bins
  kernels::synchronize(kCuda);
  const kernels::MemoryStats before = kernels::memory_stats(kCuda);
  for (int i = 0; i < 20; ++i) step();
  kernels::synchronize(kCuda);
  const kernels::MemoryStats after = kernels::memory_stats(kCuda);
  EXPECT_EQ(after.device_allocs, before.device_allocs) << "cudaMalloc in steady state";
  EXPECT_EQ(after.allocated_bytes, before.allocated_bytes) << "the loop leaks device memory";
  EXPECT_GE(after.reserved_bytes, after.allocated_bytes);
  EXPECT_GE(after.peak_allocated_bytes, after.allocated_bytes);
  EXPECT_GT(after.peak_allocated_bytes, 0u);
  // empty_cache gives the free blocks back: reserved drops to what is live.
  kernels::empty_cache(kCuda);
  const kernels::MemoryStats emptied = kernels::memory_stats(kCuda);
  EXPECT_EQ(emptied.reserved_bytes, emptied.allocated_bytes);
  EXPECT_GT(emptied.device_frees, after.device_frees);
}

TEST_F(CudaOps, OutOfMemoryIsAClearErrorAndRecoverable) {
  expect_error([] { empty({int64_t(1) << 48}, TensorOptions{DType::Float32, kCuda}); },
               {"CUDA out of memory", "cuda:0", "asked for", "free of"});
  // The failed cudaMalloc leaves no error behind for the next launch to trip on.
  expect_values(exp(zeros({3}, TensorOptions{DType::Float32, kCuda})), {1, 1, 1});
}

}  // namespace
