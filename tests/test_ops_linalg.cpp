// matmul (autograd/ops/linalg.cpp): every operand rank combination, broadcast
// batches, awkward sizes, gradients, and errors. Batched results are checked
// against an independent reference built from broadcasting mul and sum:
//   (A @ B)[..., i, j] = Σ_p A[..., i, p, ·] · B[..., ·, p, j]
#include "kernels/gemm.h"
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {

const TensorOptions kF64{DType::Float64};

Tensor t64(const std::vector<double>& v, const Shape& s) { return from_vector(v, s, kF64); }

// A [..., m, k] and B [..., k, n] (both at least 2-D): [..., m, k, 1] * [..., 1, k, n] summed over k.
Tensor reference_matmul(const Tensor& a, const Tensor& b) { return sum(unsqueeze(a, -1) * unsqueeze(b, -3), {-2}); }

struct MatmulCase {
  Shape a, b, out;
};
// Batched and broadcast shapes; 1-D operands are covered by their own tests below.
const MatmulCase kBatchedCases[] = {
    {{3, 5}, {5, 7}, {3, 7}},                    // odd, non-square
    {{1, 1}, {1, 1}, {1, 1}},                    // all sizes 1
    {{4, 1}, {1, 3}, {4, 3}},                    // outer product, k = 1
    {{2, 3, 4}, {2, 4, 5}, {2, 3, 5}},           // batched 3-D
    {{1, 3, 4}, {1, 4, 2}, {1, 3, 2}},           // batch 1
    {{2, 1, 3, 4}, {5, 4, 2}, {2, 5, 3, 2}},     // broadcast both ways
    {{3, 4}, {2, 4, 5}, {2, 3, 5}},              // shared A
    {{2, 3, 4}, {4, 5}, {2, 3, 5}},              // shared B (a linear layer)
    {{2, 3, 3, 4}, {1, 1, 4, 2}, {2, 3, 3, 2}},  // shared B with size-1 batch dims
    {{1, 3, 4}, {2, 4, 5}, {2, 3, 5}},           // A broadcast through a size-1 batch
    {{2, 1, 3, 4}, {2, 5, 4, 2}, {2, 5, 3, 2}},  // A partly broadcast: [2, 1] against [2, 5]
    {{3, 2, 1, 4}, {1, 4, 3}, {3, 2, 1, 3}},     // m = 1, B broadcast over [3, 2]
};

}  // namespace

TEST(OpsMatmul, VectorAndMatrixOperands) {
  Tensor v = t64({1, 2, 3}, {3}), w = t64({4, 5, 6}, {3});
  Tensor dot = matmul(v, w);
  EXPECT_EQ(dot.dim(), 0);
  expect_values(dot, {32}, 0);
  Tensor m = t64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor vm = matmul(t64({1, 2}, {2}), m);  // [2] @ [2, 3] → [3]
  EXPECT_EQ(vm.shape(), (Shape{3}));
  expect_values(vm, {9, 12, 15}, 0);
  Tensor mv = matmul(m, t64({1, 0, -1}, {3}));  // [2, 3] @ [3] → [2]
  EXPECT_EQ(mv.shape(), (Shape{2}));
  expect_values(mv, {-2, -2}, 0);
  Tensor mm = matmul(m, t64({1, 2, 3, 4, 5, 6}, {3, 2}));  // [2, 3] @ [3, 2]
  EXPECT_EQ(mm.shape(), (Shape{2, 2}));
  expect_values(mm, {22, 28, 49, 64}, 0);
  // A vector against a batch: [3] @ [2, 3, 2] → [2, 2], and [2, 2, 3] @ [3] → [2, 2].
  Tensor batch = reshape(arange(0, 12, 1, kF64), {2, 3, 2});
  Tensor vb = matmul(v, batch);
  EXPECT_EQ(vb.shape(), (Shape{2, 2}));
  expect_values(vb, {16, 22, 52, 58}, 0);
  Tensor bv = matmul(reshape(arange(0, 12, 1, kF64), {2, 2, 3}), v);
  EXPECT_EQ(bv.shape(), (Shape{2, 2}));
  expect_values(bv, {8, 26, 44, 62}, 0);
  // float32 runs in float32.
  Tensor f = matmul(m.to(DType::Float32), t64({1, 2, 3, 4, 5, 6}, {3, 2}).to(DType::Float32));
  EXPECT_EQ(f.dtype(), DType::Float32);
  expect_values(f, {22, 28, 49, 64}, 0);
}

TEST(OpsMatmul, BatchedAndBroadcastMatchTheReference) {
  uint64_t seed = 100;
  for (const MatmulCase& c : kBatchedCases) {
    SCOPED_TRACE(::testing::Message() << str(c.a) << " @ " << str(c.b));
    Tensor a = rand64(c.a, -1, 1, seed++), b = rand64(c.b, -1, 1, seed++);
    Tensor y = matmul(a, b);
    EXPECT_EQ(y.shape(), c.out);
    expect_tensors_near(y, reference_matmul(a, b), 1e-14, 1e-14);
    expect_tensors_near(matmul(a.to(DType::Float32), b.to(DType::Float32)), reference_matmul(a, b), 1e-6, 1e-6);
  }
}

TEST(OpsMatmul, GradientsForEveryOperandShape) {
  uint64_t seed = 200;
  auto check = [&](const Shape& sa, const Shape& sb) {
    SCOPED_TRACE(::testing::Message() << str(sa) << " @ " << str(sb));
    expect_gradients([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                     {rand64(sa, -1, 1, seed), rand64(sb, -1, 1, seed + 1)});
    seed += 2;
  };
  check({3}, {3});
  check({1}, {1});
  check({4}, {4, 3});
  check({3, 5}, {5});
  check({2}, {3, 2, 4});
  check({2, 3, 4}, {4});
  for (const MatmulCase& c : kBatchedCases) check(c.a, c.b);
}

TEST(OpsMatmul, GradientOfOneOperandOnly) {
  // W [3, 2] shared by a batch x [2, 4, 3]: ∂/∂W Σ (x W) ⊙ G = Σ_batch xᵀ G; x needs none.
  Tensor x = rand64({2, 4, 3}, -1, 1, 300), w = rand64({3, 2}, -1, 1, 301), g = rand64({2, 4, 2}, -1, 1, 302);
  w.requires_grad_();
  backward(matmul(x, w), g);
  EXPECT_FALSE(x.grad().defined());
  expect_tensors_near(w.grad(), sum(matmul(transpose(x, -1, -2), g), {0}), 1e-14, 1e-14);
  // And the other side: ∂/∂x = G Wᵀ.
  Tensor x2 = x.clone();
  x2.requires_grad_();
  backward(matmul(x2, w.detach()), g);
  expect_tensors_near(x2.grad(), matmul(g, transpose(w.detach(), 0, 1)), 1e-14, 1e-14);
}

TEST(OpsMatmul, EmptyDimensions) {
  // k = 0: an empty sum, all zeros; m = 0 or n = 0: an empty result.
  Tensor z = matmul(zeros({2, 0}, kF64), zeros({0, 3}, kF64));
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  expect_values(z, std::vector<double>(6, 0), 0);
  EXPECT_EQ(matmul(zeros({0, 4}, kF64), ones({4, 3}, kF64)).shape(), (Shape{0, 3}));
  EXPECT_EQ(matmul(ones({2, 4}, kF64), ones({4, 0}, kF64)).shape(), (Shape{2, 0}));
  EXPECT_EQ(matmul(zeros({0, 2, 4}, kF64), ones({4, 3}, kF64)).shape(), (Shape{0, 2, 3}));
  expect_values(matmul(zeros({0}, kF64), zeros({0}, kF64)), {0}, 0);
  expect_gradients([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                   {rand64({0, 3}), rand64({3, 2})});
  expect_gradients([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                   {rand64({2, 0, 3}), rand64({3, 2})});
}

TEST(OpsMatmul, Errors) {
  expect_error([] { matmul(ones({2, 3}), ones({4, 5})); },
               {"matmul", "inner dimensions", "[2, 3]", "[4, 5]", "3 vs 4"});
  expect_error([] { matmul(ones({3}), ones({4})); }, {"matmul", "[3]", "[4]"});
  expect_error([] { matmul(ones({2, 3}), ones({2})); }, {"matmul", "[2, 3]", "[2]"});
  expect_error([] { matmul(scalar(2), ones({2})); }, {"matmul", "at least one dimension", "[]", "[2]"});
  expect_error([] { matmul(ones({2, 2}), scalar(2)); }, {"matmul", "at least one dimension", "[2, 2]", "[]"});
  expect_error([] { matmul(ones({2, 3, 4}), ones({3, 4, 5})); },
               {"matmul", "[2, 3, 4]", "[3, 4, 5]", "batch", "cannot be broadcast"});
  expect_error([] { matmul(ones({2, 2}), ones({2, 2}, kF64)); }, {"matmul", "float32", "float64"});
  expect_error([] { matmul(Tensor(), ones({2, 2})); }, {"matmul", "undefined"});
  Tensor ints = from_vector(std::vector<int64_t>{1, 2, 3, 4}, {2, 2}, TensorOptions{DType::Int64});
  expect_error([&] { matmul(ints, ints); }, {"matmul", "int64"});
}

// linear(x, W, b) = x Wᵀ + b, against the reference product and hand-computed values.
TEST(OpsLinear, MatchesTheProductWithTheTransposedWeightPlusTheBias) {
  const Tensor w = t64({1, 2, 3, 4, 5, 6}, {2, 3}), b = t64({10, -10}, {2});
  expect_values(linear(t64({1, 0, -1}, {3}), w, b), {1 - 3 + 10, 4 - 6 - 10}, 0);
  expect_values(linear(t64({1, 1, 1, 2, 0, 0}, {2, 3}), w), {6, 15, 2, 8}, 0);
  uint64_t seed = 400;
  for (const Shape& xs : {Shape{5, 7}, Shape{2, 3, 7}, Shape{1, 7}, Shape{7}}) {
    SCOPED_TRACE(str(xs));
    const Tensor x = rand64(xs, -1, 1, seed++), w2 = rand64({3, 7}, -1, 1, seed++), b2 = rand64({3}, -1, 1, seed++);
    Shape ys = xs;
    ys.back() = 3;
    const Tensor want = reshape(reference_matmul(reshape(x, {-1, 7}), transpose(w2, 0, 1)), ys) + b2;
    expect_tensors_near(linear(x, w2, b2), want, 1e-14, 1e-14);
    expect_tensors_near(linear(x.to(DType::Float32), w2.to(DType::Float32), b2.to(DType::Float32)), linear(x, w2, b2),
                        1e-6, 1e-6);
  }
}

TEST(OpsLinear, EmptySizesAndErrors) {
  // in = 0: the empty sum, so y is the bias; no rows: an empty result whose weight gradient is zero.
  expect_values(linear(zeros({2, 0}, kF64), zeros({3, 0}, kF64), t64({1, 2, 3}, {3})), {1, 2, 3, 1, 2, 3}, 0);
  EXPECT_EQ(linear(zeros({0, 4}, kF64), ones({3, 4}, kF64)).shape(), (Shape{0, 3}));
  expect_gradients([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
                   {rand64({0, 3}), rand64({2, 3}), rand64({2})});
  expect_error([] { linear(ones({2, 3}), ones({4, 5})); }, {"linear", "[2, 3]", "3", "features", "[4, 5]"});
  expect_error([] { linear(ones({2, 3}), ones({3})); }, {"linear", "weight", "2-D", "[3]"});
  expect_error([] { linear(ones({2, 3}), ones({4, 3}), ones({3})); }, {"linear", "bias", "[4]", "[3]"});
  expect_error([] { linear(ones({2, 3}), ones({4, 3}, kF64)); }, {"linear", "float32", "float64"});
  Tensor ints = from_vector(std::vector<int64_t>{1, 2, 3, 4}, {2, 2}, TensorOptions{DType::Int64});
  expect_error([&] { linear(ints, ints); }, {"linear", "int64"});
}

// The test binary's main (tests/main.cpp) restarts itself when OpenBLAS picked its
// generic kernels on a CPU that has better ones: by now nothing is left to fix.
TEST(Gemm, RunsOnTheOpenBlasKernelsTheCpuSupports) {
  EXPECT_EQ(kernels::openblas_coretype_for_this_cpu(), nullptr);
}
