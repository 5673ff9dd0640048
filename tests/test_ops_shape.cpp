// Shape ops (autograd/ops/shape.cpp): forward values worked out by hand,
// gradients by central differences (expect_gradients), and every error path.
#include <limits>

#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {

TensorOptions f64() { return TensorOptions{DType::Float64}; }
// 0, 1, 2, … in row-major order, so an element's value is its flat index.
Tensor seq(const Shape& s) { return reshape(arange(0, static_cast<double>(numel(s)), 1, f64()), s); }
Tensor idx(const std::vector<int64_t>& v, const Shape& s) { return from_vector(v, s, TensorOptions{DType::Int64}); }
Tensor idx(const std::vector<int64_t>& v) { return idx(v, {static_cast<int64_t>(v.size())}); }

}  // namespace

// ---- views: reshape, flatten, squeeze, unsqueeze ----------------------------------------

TEST(ShapeOps, ReshapeInfersAndSharesStorage) {
  Tensor x = seq({2, 3, 1, 2});
  Tensor y = reshape(x, {3, -1});
  EXPECT_EQ(y.shape(), (Shape{3, 4}));
  EXPECT_EQ(y.data_ptr(), x.data_ptr());
  expect_values(y, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  EXPECT_EQ(reshape(scalar(4), {1, 1, 1, 1}).shape(), (Shape{1, 1, 1, 1}));
  EXPECT_EQ(reshape(ones({1, 1, 1, 1}), {}).dim(), 0);
  EXPECT_EQ(reshape(zeros({0, 3}), {3, 0, 2}).shape(), (Shape{3, 0, 2}));
}

TEST(ShapeOps, ReshapeErrors) {
  expect_error([] { reshape(zeros({2, 3}), {4, -1}); }, {"reshape", "[2, 3]", "[4, -1]"});
  expect_error([] { reshape(zeros({2, 3}), {-1, -1}); }, {"reshape", "more than one -1"});
  expect_error([] { reshape(zeros({2, 3}), {7}); }, {"reshape", "[2, 3]", "[7]", "6 elements"});
  expect_error([] { reshape(zeros({2, 3}), {-2, -3}); }, {"reshape", "negative dimension"});
  // Any size fits a -1 beside a 0, so there is nothing to infer.
  expect_error([] { reshape(zeros({0, 3}), {5, 0, -1}); }, {"reshape", "cannot infer", "[0, 3]"});
}

TEST(ShapeOps, FlattenSqueezeUnsqueezeShapes) {
  Tensor x = seq({2, 3, 1, 5});
  EXPECT_EQ(flatten(x).shape(), (Shape{30}));
  EXPECT_EQ(flatten(x, 1).shape(), (Shape{2, 15}));
  EXPECT_EQ(flatten(x, -3, -2).shape(), (Shape{2, 3, 5}));
  EXPECT_EQ(flatten(x, 2, 2).shape(), x.shape());
  EXPECT_EQ(flatten(scalar(2)).shape(), (Shape{1}));
  expect_values(flatten(x, 1, 2), x.to_vector<double>());
  EXPECT_EQ(squeeze(x, 2).shape(), (Shape{2, 3, 5}));
  EXPECT_EQ(squeeze(x, -2).shape(), (Shape{2, 3, 5}));
  EXPECT_EQ(squeeze(scalar(2), 0).dim(), 0);
  EXPECT_EQ(unsqueeze(x, 0).shape(), (Shape{1, 2, 3, 1, 5}));
  EXPECT_EQ(unsqueeze(x, -1).shape(), (Shape{2, 3, 1, 5, 1}));
  EXPECT_EQ(unsqueeze(x, 4).shape(), (Shape{2, 3, 1, 5, 1}));
  EXPECT_EQ(unsqueeze(x, -5).shape(), (Shape{1, 2, 3, 1, 5}));
  EXPECT_EQ(unsqueeze(scalar(2), 0).shape(), (Shape{1}));
  EXPECT_EQ(unsqueeze(x, 1).data_ptr(), x.data_ptr());
}

TEST(ShapeOps, FlattenSqueezeUnsqueezeErrors) {
  expect_error([] { flatten(zeros({2, 3, 4}), 2, 1); }, {"flatten", "start axis 2", "end axis 1", "[2, 3, 4]"});
  expect_error([] { flatten(zeros({2, 3}), 0, 2); }, {"flatten", "axis 2", "rank 2"});
  expect_error([] { squeeze(zeros({2, 3}), 1); }, {"squeeze", "axis 1", "[2, 3]", "size 3"});
  expect_error([] { squeeze(zeros({2, 1}), 2); }, {"squeeze", "axis 2", "rank 2"});
  expect_error([] { unsqueeze(zeros({2, 3}), 3); }, {"unsqueeze", "axis 3", "rank 3"});
  expect_error([] { unsqueeze(zeros({2, 3}), -4); }, {"unsqueeze", "axis -4"});
}

TEST(ShapeOps, ViewGradients) {
  // Views pass the gradient through unchanged; a permute between them makes a
  // layout mistake visible under the random dot-product loss.
  expect_gradients([](const std::vector<Tensor>& in) { return reshape(in[0], {5, -1}); }, {rand64({2, 5, 1, 3})});
  expect_gradients([](const std::vector<Tensor>& in) { return transpose(reshape(in[0], {5, -1}), 0, 1); },
                   {rand64({2, 5, 1, 3})});
  expect_gradients([](const std::vector<Tensor>& in) { return permute(flatten(in[0], -3, -2), {2, 0, 1}); },
                   {rand64({2, 3, 1, 5})});
  expect_gradients([](const std::vector<Tensor>& in) { return transpose(squeeze(in[0], -2), -1, 0); },
                   {rand64({3, 1, 5})});
  expect_gradients([](const std::vector<Tensor>& in) { return squeeze(transpose(unsqueeze(in[0], 1), 1, 2), -1) * in[0]; },
                   {rand64({3, 5})});
  expect_gradients([](const std::vector<Tensor>& in) { return unsqueeze(flatten(in[0]), -1); }, {rand64({})});
  expect_gradients([](const std::vector<Tensor>& in) { return squeeze(in[0], 0) * 3.0; }, {rand64({})});
}

// ---- permute, transpose, expand --------------------------------------------------------

TEST(ShapeOps, PermuteAndTransposeValues) {
  // x[b][c][a] = 6b + 2c + a; y = permute(x, {2, 0, 1}) has y[a][b][c] = x[b][c][a].
  Tensor y = permute(seq({2, 3, 2}), {2, 0, 1});
  EXPECT_EQ(y.shape(), (Shape{2, 2, 3}));
  expect_values(y, {0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11});
  expect_values(permute(seq({2, 3, 2}), {-1, -3, -2}), {0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11});
  Tensor t = transpose(seq({2, 3}), 0, -1);
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  expect_values(t, {0, 3, 1, 4, 2, 5});
  expect_values(transpose(seq({2, 3}), 1, 1), {0, 1, 2, 3, 4, 5});
  EXPECT_NE(permute(seq({3}), {0}).data_ptr(), seq({3}).data_ptr());
  expect_values(permute(scalar(7), {}), {7});
  expect_values(transpose(scalar(7), 0, 0), {7});
  EXPECT_EQ(transpose(zeros({0, 3}), 0, 1).shape(), (Shape{3, 0}));
}

TEST(ShapeOps, PermuteRank4OddSizes) {
  // [2, 3, 1, 5] → perm {3, 0, 2, 1} → [5, 2, 1, 3]: y[i][j][0][l] = x[j][l][0][i].
  Tensor y = permute(seq({2, 3, 1, 5}), {3, -4, 2, 1});
  EXPECT_EQ(y.shape(), (Shape{5, 2, 1, 3}));
  std::vector<double> expected;
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 2; ++j)
      for (int l = 0; l < 3; ++l) expected.push_back(j * 15 + l * 5 + i);
  expect_values(y, expected);
  expect_gradients([](const std::vector<Tensor>& in) { return permute(in[0], {3, -4, 2, 1}); },
                   {rand64({2, 3, 1, 5})});
  expect_gradients([](const std::vector<Tensor>& in) { return transpose(in[0], -1, 1); }, {rand64({3, 2, 5, 1})});
  expect_gradients([](const std::vector<Tensor>& in) { return transpose(in[0], 0, 0); }, {rand64({})});
}

TEST(ShapeOps, PermuteAndTransposeErrors) {
  expect_error([] { permute(zeros({2, 3, 4}), {0, 2, 0}); }, {"permute", "axis 0 repeated", "[2, 3, 4]"});
  expect_error([] { permute(zeros({2, 3, 4}), {0, -1, 2}); }, {"permute", "axis 2 repeated"});
  expect_error([] { permute(zeros({2, 3}), {1, 0, 2}); }, {"permute", "3 axes", "[2, 3]"});
  expect_error([] { permute(zeros({2, 3}), {0, 2}); }, {"permute", "axis 2", "rank 2"});
  expect_error([] { transpose(zeros({2, 3}), 0, 2); }, {"transpose", "axis 2", "rank 2"});
}

TEST(ShapeOps, ExpandValues) {
  // Size-1 axis broadcast and a new leading axis.
  Tensor y = expand(from_vector(std::vector<double>{1, 2, 3}, {3, 1}, f64()), {2, 3, 4});
  EXPECT_EQ(y.shape(), (Shape{2, 3, 4}));
  std::vector<double> block = {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, expected = block;
  expected.insert(expected.end(), block.begin(), block.end());
  expect_values(y, expected);
  expect_values(expand(scalar(5), {2, 3}), {5, 5, 5, 5, 5, 5});
  expect_values(expand(from_vector(std::vector<double>{1, 2}, {2}), {2, 2}), {1, 2, 1, 2});
  EXPECT_EQ(expand(zeros({1, 3}), {0, 3}).shape(), (Shape{0, 3}));
  Tensor same = seq({2, 3});
  EXPECT_EQ(expand(same, {2, 3}).data_ptr(), same.data_ptr()) << "expanding to its own shape is a no-op";
}

TEST(ShapeOps, ExpandGradients) {
  expect_gradients([](const std::vector<Tensor>& in) { return expand(in[0], {2, 3, 4}); }, {rand64({3, 1})});
  expect_gradients([](const std::vector<Tensor>& in) { return expand(in[0], {4, 2, 5, 3}); }, {rand64({2, 1, 3})});
  expect_gradients([](const std::vector<Tensor>& in) { return expand(in[0], {3, 1, 5}); }, {rand64({1, 1, 1})});
  expect_gradients([](const std::vector<Tensor>& in) { return expand(in[0], {2, 3}); }, {rand64({})});
}

TEST(ShapeOps, ExpandErrors) {
  expect_error([] { expand(zeros({3}), {4}); }, {"expand", "[3]", "[4]"});
  expect_error([] { expand(zeros({2, 3}), {3}); }, {"expand", "[2, 3]", "[3]"});
  expect_error([] { expand(zeros({3, 1}), {3, -1}); }, {"expand", "negative size", "[3, -1]"});
}

// ---- concat and stack ---------------------------------------------------------------------

TEST(ShapeOps, ConcatValuesAlongEachAxis) {
  Tensor a = from_vector(std::vector<double>{10, 11, 12}, {1, 3}, f64());
  Tensor y0 = concat({a, seq({2, 3})}, 0);
  EXPECT_EQ(y0.shape(), (Shape{3, 3}));
  expect_values(y0, {10, 11, 12, 0, 1, 2, 3, 4, 5});
  Tensor b = from_vector(std::vector<double>{10, 11}, {2, 1}, f64());
  Tensor y1 = concat({b, seq({2, 3}), b}, -1);
  EXPECT_EQ(y1.shape(), (Shape{2, 5}));
  expect_values(y1, {10, 0, 1, 2, 10, 11, 3, 4, 5, 11});
  // Rank 3, middle axis: [2,1,2] ++ [2,2,2] → [2,3,2].
  Tensor c = from_vector(std::vector<double>{-1, -2, -3, -4}, {2, 1, 2}, f64());
  expect_values(concat({c, seq({2, 2, 2})}, 1), {-1, -2, 0, 1, 2, 3, -3, -4, 4, 5, 6, 7});
  // Integer tensors concatenate too.
  Tensor ints = concat({idx({1, 2}), idx({3})}, 0);
  EXPECT_EQ(ints.dtype(), DType::Int64);
  EXPECT_EQ(ints.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3}));
}

TEST(ShapeOps, ConcatSingleInputAndEmptyPieces) {
  Tensor x = seq({2, 3});
  Tensor y = concat({x}, 1);
  expect_values(y, {0, 1, 2, 3, 4, 5});
  EXPECT_NE(y.data_ptr(), x.data_ptr()) << "concat always returns a new tensor";
  Tensor y2 = concat({zeros({2, 0}, f64()), x, zeros({2, 0}, f64())}, 1);
  EXPECT_EQ(y2.shape(), (Shape{2, 3}));
  expect_values(y2, {0, 1, 2, 3, 4, 5});
  EXPECT_EQ(concat({zeros({0, 3}), zeros({0, 3})}, 0).shape(), (Shape{0, 3}));
}

TEST(ShapeOps, ConcatGradientsAlongEveryAxis) {
  for (int64_t axis = -3; axis < 3; ++axis) {
    const int64_t a = axis < 0 ? axis + 3 : axis;
    std::vector<Tensor> xs;
    for (int64_t n : {1, 3, 2}) {
      Shape s = {2, 3, 2};
      s[a] = n;
      xs.push_back(rand64(s, -1, 1, 10 + n));
    }
    SCOPED_TRACE(str("axis ", axis));
    expect_gradients([axis](const std::vector<Tensor>& in) { return concat(in, axis); }, xs);
  }
  expect_gradients([](const std::vector<Tensor>& in) { return concat(in, 0); }, {rand64({3, 2})});
  expect_gradients([](const std::vector<Tensor>& in) { return concat(in, 1); },
                   {rand64({2, 0}), rand64({2, 3}, -1, 1, 2), rand64({2, 0}, -1, 1, 3), rand64({2, 1}, -1, 1, 4)});
  // The same tensor twice receives both slices' gradients.
  expect_gradients([](const std::vector<Tensor>& in) { return concat({in[0], in[0]}, 0); }, {rand64({2, 3})});
  // Only the inputs that need a gradient get one.
  Tensor w = rand64({2, 2});
  w.requires_grad_();
  backward(sum(concat({ones({2, 2}, f64()), w}, 0)));
  expect_values(w.grad(), {1, 1, 1, 1});
}

TEST(ShapeOps, ConcatErrors) {
  expect_error([] { concat({zeros({2, 3}), zeros({2, 4})}, 0); }, {"concat", "tensor 1", "[2, 4]", "[2, 3]", "axis 0"});
  expect_error([] { concat({zeros({2, 3}), zeros({2, 3, 1})}, 1); }, {"concat", "[2, 3, 1]", "[2, 3]"});
  expect_error([] { concat({zeros({2, 3}), zeros({2, 3}, f64())}, 0); }, {"concat", "dtype", "float32", "float64"});
  expect_error([] { concat({}, 0); }, {"concat", "at least one"});
  expect_error([] { concat({scalar(1), scalar(2)}, 0); }, {"concat", "0-d"});
  expect_error([] { concat({zeros({2, 3})}, 2); }, {"concat", "axis 2", "rank 2"});
  expect_error([] { concat({zeros({2}), Tensor()}, 0); }, {"concat", "undefined"});
}

TEST(ShapeOps, StackValuesAlongEachAxis) {
  Tensor a = seq({2, 3}), b = seq({2, 3}) + 10.0;
  Tensor y0 = stack({a, b}, 0);
  EXPECT_EQ(y0.shape(), (Shape{2, 2, 3}));
  expect_values(y0, {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15});
  Tensor y1 = stack({a, b}, 1);
  EXPECT_EQ(y1.shape(), (Shape{2, 2, 3}));
  expect_values(y1, {0, 1, 2, 10, 11, 12, 3, 4, 5, 13, 14, 15});
  Tensor y2 = stack({a, b}, -1);
  EXPECT_EQ(y2.shape(), (Shape{2, 3, 2}));
  expect_values(y2, {0, 10, 1, 11, 2, 12, 3, 13, 4, 14, 5, 15});
  expect_values(stack({a, b}, 2), y2.to_vector<double>());
  expect_values(stack({a, b}, -3), y0.to_vector<double>());
  // Scalars stack into a vector; a single input gains a size-1 axis.
  Tensor v = stack({scalar(1, f64()), scalar(2, f64()), scalar(3, f64())}, 0);
  EXPECT_EQ(v.shape(), (Shape{3}));
  expect_values(v, {1, 2, 3});
  Tensor one = stack({a}, 1);
  EXPECT_EQ(one.shape(), (Shape{2, 1, 3}));
  expect_values(one, {0, 1, 2, 3, 4, 5});
  EXPECT_EQ(stack({zeros({2, 0}), zeros({2, 0})}, 1).shape(), (Shape{2, 2, 0}));
}

TEST(ShapeOps, StackGradientsAlongEveryAxis) {
  for (int64_t axis = -3; axis < 3; ++axis) {
    SCOPED_TRACE(str("axis ", axis));
    expect_gradients([axis](const std::vector<Tensor>& in) { return stack(in, axis); },
                     {rand64({2, 3}, -1, 1, 1), rand64({2, 3}, -1, 1, 2), rand64({2, 3}, -1, 1, 3)});
  }
  expect_gradients([](const std::vector<Tensor>& in) { return stack(in, 0); }, {rand64({}), rand64({}, -1, 1, 2)});
  expect_gradients([](const std::vector<Tensor>& in) { return stack(in, -1); }, {rand64({3, 1})});
  expect_gradients([](const std::vector<Tensor>& in) { return stack(in, 0); }, {rand64({0, 2}), rand64({0, 2})});
}

TEST(ShapeOps, StackErrors) {
  expect_error([] { stack({zeros({2, 3}), zeros({3, 2})}, 0); }, {"stack", "tensor 1", "[3, 2]", "[2, 3]"});
  expect_error([] { stack({zeros({2}), zeros({2}, f64())}, 0); }, {"stack", "dtype"});
  expect_error([] { stack({}, 0); }, {"stack", "at least one"});
  expect_error([] { stack({zeros({2, 3})}, 3); }, {"stack", "axis 3", "rank 3"});
}

// ---- split and chunk ------------------------------------------------------------------------

TEST(ShapeOps, SplitUnevenSizes) {
  std::vector<Tensor> p = split(seq({2, 5}), {1, 3, 1}, 1);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].shape(), (Shape{2, 1}));
  EXPECT_EQ(p[1].shape(), (Shape{2, 3}));
  EXPECT_EQ(p[2].shape(), (Shape{2, 1}));
  expect_values(p[0], {0, 5});
  expect_values(p[1], {1, 2, 3, 6, 7, 8});
  expect_values(p[2], {4, 9});
  std::vector<Tensor> q = split(seq({3, 2}), {0, 2, 1}, -2);
  EXPECT_EQ(q[0].shape(), (Shape{0, 2}));
  expect_values(q[1], {0, 1, 2, 3});
  expect_values(q[2], {4, 5});
  std::vector<Tensor> whole = split(seq({4}), {4}, 0);
  ASSERT_EQ(whole.size(), 1u);
  expect_values(whole[0], {0, 1, 2, 3});
}

TEST(ShapeOps, SplitIsOneTapeEntryAndItsGradientsFlow) {
  Tensor x = rand64({2, 5});
  x.requires_grad_();
  const size_t before = tape_size();
  std::vector<Tensor> p = split(x, {1, 3, 1}, 1);
  EXPECT_EQ(tape_size(), before + 1) << "all pieces come from one tape entry";
  EXPECT_TRUE(p[0].requires_grad() && p[1].requires_grad() && p[2].requires_grad());
  // Every piece used, in another order.
  expect_gradients([](const std::vector<Tensor>& in) {
    std::vector<Tensor> p = split(in[0], {1, 3, 1}, 1);
    return concat({p[2], p[0] * p[0], p[1]}, 1);
  }, {rand64({2, 5})});
  // Pieces alive but unused get zeros.
  expect_gradients([](const std::vector<Tensor>& in) {
    std::vector<Tensor> p = split(in[0], {2, 1, 2}, 0);
    return p[1] * 2.0;
  }, {rand64({5, 3})});
  // Pieces that died before backward (only one element of the returned vector survives).
  expect_gradients([](const std::vector<Tensor>& in) { return split(in[0], {1, 2, 0}, -1)[1]; }, {rand64({2, 2, 3})});
  expect_gradients([](const std::vector<Tensor>& in) { return chunk(in[0], 2, -1)[0]; }, {rand64({3, 5})});
}

TEST(ShapeOps, ChunkSizes) {
  auto sizes = [](const std::vector<Tensor>& ps) {
    std::vector<int64_t> s;
    for (const Tensor& p : ps) s.push_back(p.size(0));
    return s;
  };
  std::vector<Tensor> c = chunk(seq({5}), 3, 0);
  EXPECT_EQ(sizes(c), (std::vector<int64_t>{2, 2, 1}));
  expect_values(c[0], {0, 1});
  expect_values(c[1], {2, 3});
  expect_values(c[2], {4});
  EXPECT_EQ(sizes(chunk(seq({6}), 4, 0)), (std::vector<int64_t>{2, 2, 2})) << "as torch.chunk: fewer pieces";
  EXPECT_EQ(sizes(chunk(seq({2}), 5, -1)), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(sizes(chunk(seq({6}), 1, 0)), (std::vector<int64_t>{6}));
  EXPECT_EQ(sizes(chunk(zeros({0}), 3, 0)), (std::vector<int64_t>{0, 0, 0}));
  std::vector<Tensor> rows = chunk(seq({3, 2}), 3, 0);
  ASSERT_EQ(rows.size(), 3u);
  expect_values(rows[1], {2, 3});
  expect_gradients([](const std::vector<Tensor>& in) {
    std::vector<Tensor> c = chunk(in[0], 3, 1);
    return c[0] * c[1] + c[2];
  }, {rand64({2, 6})});
}

TEST(ShapeOps, SplitAndChunkErrors) {
  expect_error([] { split(zeros({2, 5}), {2, 2}, 1); }, {"split", "[2, 2]", "sum to 4", "axis 1", "[2, 5]", "size 5"});
  expect_error([] { split(zeros({2, 5}), {6, -1}, 1); }, {"split", "negative size -1"});
  expect_error([] { split(zeros({2, 5}), {}, 1); }, {"split", "no sizes", "[2, 5]"});
  expect_error([] { split(zeros({2, 5}), {2}, 2); }, {"split", "axis 2", "rank 2"});
  expect_error([] { split(scalar(1), {1}, 0); }, {"split", "0-d"});
  expect_error([] { chunk(zeros({4}), 0, 0); }, {"chunk", "positive", "got 0"});
  expect_error([] { chunk(zeros({4}), 2, 1); }, {"chunk", "axis 1", "rank 1"});
}

// ---- slice and pad ------------------------------------------------------------------------

TEST(ShapeOps, SliceLikePython) {
  Tensor x = seq({7});
  const int64_t big = std::numeric_limits<int64_t>::max(), small = std::numeric_limits<int64_t>::min();
  expect_values(slice(x, 0, 1, 6, 2), {1, 3, 5});          // x[1:6:2]
  expect_values(slice(x, 0, -5, -1, 2), {2, 4});           // x[-5:-1:2]
  expect_values(slice(x, 0, 0, 7, 3), {0, 3, 6});          // x[::3]
  expect_values(slice(x, 0, -1, big), {6});                // x[-1:]
  expect_values(slice(x, 0, -100, 100), {0, 1, 2, 3, 4, 5, 6});
  expect_values(slice(x, 0, small, 2), {0, 1});            // x[:2]
  expect_values(slice(x, 0, 4, 5, 10), {4});
  EXPECT_EQ(slice(x, 0, 5, 2).shape(), (Shape{0}));        // x[5:2] is empty
  EXPECT_EQ(slice(x, 0, 9, 12).shape(), (Shape{0}));
  Tensor m = seq({3, 4});
  Tensor cols = slice(m, -1, 0, 4, 2);
  EXPECT_EQ(cols.shape(), (Shape{3, 2}));
  expect_values(cols, {0, 2, 4, 6, 8, 10});
  expect_values(slice(m, 0, -2, big), {4, 5, 6, 7, 8, 9, 10, 11});
  expect_values(slice(seq({2, 3, 4}), 1, 1, 3), {4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23});
}

TEST(ShapeOps, SliceGradients) {
  expect_gradients([](const std::vector<Tensor>& in) { return slice(in[0], 1, 0, 5, 2); }, {rand64({3, 5})});
  expect_gradients([](const std::vector<Tensor>& in) { return slice(in[0], 0, -4, -1, 3); }, {rand64({5, 3})});
  expect_gradients([](const std::vector<Tensor>& in) { return slice(in[0], -2, 1, 100); }, {rand64({2, 3, 3, 2})});
  expect_gradients([](const std::vector<Tensor>& in) { return concat({slice(in[0], 0, 3, 1), in[0]}, 0); },
                   {rand64({3})});
  // Overlapping slices of one tensor add up.
  expect_gradients([](const std::vector<Tensor>& in) { return slice(in[0], 0, 0, 4) * slice(in[0], 0, 1, 5); },
                   {rand64({5})});
}

TEST(ShapeOps, SliceErrors) {
  expect_error([] { slice(zeros({4}), 0, 0, 4, 0); }, {"slice", "step must be positive", "got 0", "[4]"});
  expect_error([] { slice(zeros({4}), 0, 4, 0, -1); }, {"slice", "got -1"});
  expect_error([] { slice(zeros({4}), 1, 0, 1); }, {"slice", "axis 1", "rank 1"});
  expect_error([] { slice(scalar(1), 0, 0, 1); }, {"slice", "0-d"});
}

TEST(ShapeOps, PadPositive) {
  Tensor x = from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2}, f64());
  Tensor y = pad(x, {1, 2});
  EXPECT_EQ(y.shape(), (Shape{2, 5}));
  expect_values(y, {0, 1, 2, 0, 0, 0, 3, 4, 0, 0});
  Tensor z = pad(x, {0, 1, 1, 0}, 7);  // last axis (0, 1), axis 0 (1, 0)
  EXPECT_EQ(z.shape(), (Shape{3, 3}));
  expect_values(z, {7, 7, 7, 1, 2, 7, 3, 4, 7});
  expect_values(pad(x, {}), {1, 2, 3, 4});
  expect_values(pad(scalar(3), {}), {3});
  Tensor ints = pad(idx({5, 6}), {1, 1}, -1);
  EXPECT_EQ(ints.dtype(), DType::Int64);
  EXPECT_EQ(ints.to_vector<int64_t>(), (std::vector<int64_t>{-1, 5, 6, -1}));
  expect_values(pad(zeros({0}), {1, 1}, 2), {2, 2});
}

TEST(ShapeOps, PadNegativeCrops) {
  Tensor x = seq({3, 4});
  Tensor y = pad(x, {-1, -1});
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  expect_values(y, {1, 2, 5, 6, 9, 10});
  // Last axis: pad 1 before, crop 2 after; axis 0: crop 1 before.
  Tensor z = pad(x, {1, -2, -1, 0});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  expect_values(z, {0, 4, 5, 0, 8, 9});
  // Crop 3 of 4 before, pad 2 after.
  expect_values(pad(x, {-3, 2}, 9), {3, 9, 9, 7, 9, 9, 11, 9, 9});
  // The crop swallows the whole axis; only padding remains.
  expect_values(pad(seq({4}), {-5, 3}, 1), {1, 1});
  EXPECT_EQ(pad(x, {-4, 0}).shape(), (Shape{3, 0}));
}

TEST(ShapeOps, PadGradients) {
  expect_gradients([](const std::vector<Tensor>& in) { return pad(in[0], {1, 2}, 3); }, {rand64({2, 3})});
  expect_gradients([](const std::vector<Tensor>& in) { return pad(in[0], {-1, -1}); }, {rand64({2, 4})});
  expect_gradients([](const std::vector<Tensor>& in) { return pad(in[0], {1, -2, -1, 2, 2, 0}); },
                   {rand64({2, 3, 4})});
  expect_gradients([](const std::vector<Tensor>& in) { return pad(in[0], {-5, 3}); }, {rand64({4})});
  expect_gradients([](const std::vector<Tensor>& in) { return pad(in[0], {0, 0, 1, 1}); }, {rand64({1, 3, 1, 2})});
}

TEST(ShapeOps, PadErrors) {
  expect_error([] { pad(zeros({2, 3}), {1}); }, {"pad", "[1]", "odd"});
  expect_error([] { pad(zeros({3}), {1, 1, 1, 1}); }, {"pad", "2 (before, after) pairs", "[3]"});
  expect_error([] { pad(zeros({2, 4}), {-3, -2}); }, {"pad", "(-3, -2)", "axis 1", "size 4", "-1", "[2, 4]"});
  expect_error([] { pad(Tensor(), {1, 1}); }, {"pad", "undefined"});
}

// ---- index ops ----------------------------------------------------------------------------

TEST(ShapeOps, IndexSelectValues) {
  Tensor x = seq({3, 4});
  Tensor rows = index_select(x, 0, idx({2, 0, 2}));
  EXPECT_EQ(rows.shape(), (Shape{3, 4}));
  expect_values(rows, {8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
  Tensor cols = index_select(x, -1, idx({3, 3, 1}));
  expect_values(cols, {3, 3, 1, 7, 7, 5, 11, 11, 9});
  // Middle axis of [2, 3, 2]: x[a][b][c] = 6a + 2b + c.
  expect_values(index_select(seq({2, 3, 2}), 1, idx({1})), {2, 3, 8, 9});
  EXPECT_EQ(index_select(x, 0, idx({})).shape(), (Shape{0, 4}));
  EXPECT_EQ(index_select(idx({4, 5, 6}), 0, idx({2, 2})).to_vector<int64_t>(), (std::vector<int64_t>{6, 6}));
}

TEST(ShapeOps, IndexSelectGradients) {
  // A row picked twice receives the sum of both gradients.
  Tensor i = idx({2, 0, 2, 2});
  expect_gradients([i](const std::vector<Tensor>& in) { return index_select(in[0], 1, i); }, {rand64({2, 3, 2})});
  expect_gradients([i](const std::vector<Tensor>& in) { return index_select(in[0], -1, i); }, {rand64({3})});
  Tensor w = zeros({3}, f64());
  w.requires_grad_();
  backward(sum(index_select(w, 0, i)));
  expect_values(w.grad(), {1, 0, 3});
}

TEST(ShapeOps, IndexSelectErrors) {
  Tensor x = zeros({3, 4});
  expect_error([&] { index_select(x, 0, idx({0, 3})); }, {"index_select", "index 3", "axis 0 of size 3", "[3, 4]"});
  expect_error([&] { index_select(x, 1, idx({-1})); }, {"index_select", "index -1", "axis 1 of size 4"});
  expect_error([&] { index_select(x, 0, idx({0}).to(DType::Int32)); }, {"index_select", "int64", "int32"});
  expect_error([&] { index_select(x, 0, from_vector(std::vector<double>{0}, {1})); },
               {"index_select", "int64", "float32"});
  expect_error([&] { index_select(x, 0, idx({0, 1}, {1, 2})); }, {"index_select", "1-D", "[1, 2]"});
  expect_error([&] { index_select(x, 2, idx({0})); }, {"index_select", "axis 2", "rank 2"});
  expect_error([&] { index_select(scalar(1), 0, idx({0})); }, {"index_select", "0-d"});
  expect_error([&] { index_select(x, 0, Tensor()); }, {"index_select", "undefined"});
}

TEST(ShapeOps, GatherValues) {
  Tensor x = seq({2, 3});
  // Axis 1: y[r][j] = x[r][index[r][j]].
  Tensor y1 = gather(x, 1, idx({2, 2, 0, 1, 0, 0, 0, 2}, {2, 4}));
  EXPECT_EQ(y1.shape(), (Shape{2, 4}));
  expect_values(y1, {2, 2, 0, 1, 3, 3, 3, 5});
  // Axis 0: y[j][c] = x[index[j][c]][c].
  Tensor y0 = gather(x, -2, idx({1, 0, 1, 0, 0, 0, 1, 1, 1}, {3, 3}));
  expect_values(y0, {3, 1, 5, 0, 1, 2, 3, 4, 5});
  EXPECT_EQ(gather(x, 1, idx({}, {2, 0})).shape(), (Shape{2, 0}));
}

TEST(ShapeOps, GatherGradients) {
  Tensor i1 = idx({2, 2, 0, 1, 0, 0, 0, 2}, {2, 4});
  expect_gradients([i1](const std::vector<Tensor>& in) { return gather(in[0], 1, i1); }, {rand64({2, 3})});
  Tensor i0 = idx({1, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 1}, {3, 2, 2});
  expect_gradients([i0](const std::vector<Tensor>& in) { return gather(in[0], 0, i0); }, {rand64({2, 2, 2})});
  Tensor w = zeros({2, 3}, f64());
  w.requires_grad_();
  backward(sum(gather(w, 1, i1)));
  expect_values(w.grad(), {1, 1, 2, 3, 0, 1});
}

TEST(ShapeOps, GatherErrors) {
  Tensor x = zeros({2, 3});
  expect_error([&] { gather(x, 1, idx({0, 3}, {2, 1})); }, {"gather", "index 3", "axis 1 of size 3", "[2, 3]"});
  expect_error([&] { gather(x, 0, idx({-1, 0, 0}, {1, 3})); }, {"gather", "index -1", "axis 0 of size 2"});
  expect_error([&] { gather(x, 1, idx({0, 0, 0}, {3, 1})); }, {"gather", "[3, 1]", "[2, 3]", "every axis but 1"});
  expect_error([&] { gather(x, 1, idx({0, 0}, {2})); }, {"gather", "[2]", "[2, 3]"});
  expect_error([&] { gather(x, 1, idx({0, 0}, {2, 1}).to(DType::Int32)); }, {"gather", "int64", "int32"});
  expect_error([&] { gather(x, 2, idx({0, 0}, {2, 1})); }, {"gather", "axis 2", "rank 2"});
}

TEST(ShapeOps, ScatterAddSumsDuplicates) {
  Tensor x = ones({3}, f64());
  Tensor y = scatter_add(x, 0, idx({0, 2, 0, 0}), from_vector(std::vector<double>{1, 2, 3, 4}, {4}, f64()));
  expect_values(y, {1 + 1 + 3 + 4, 1, 1 + 2});
  expect_values(x, {1, 1, 1});  // x itself is left alone
  // Axis 1 of [2, 3]: row 0 gets 10 and 20 at column 0; row 1 gets 40 at column 1, 30 at column 2.
  Tensor z = scatter_add(seq({2, 3}), 1, idx({0, 0, 2, 1}, {2, 2}),
                         from_vector(std::vector<double>{10, 20, 30, 40}, {2, 2}, f64()));
  expect_values(z, {30, 1, 2, 3, 44, 35});
  // Axis 0 of [3, 2], src [[1, 2], [3, 4], [5, 6], [7, 8]] at rows [[2, 0], [2, 0], [0, 1], [1, 1]].
  Tensor w = scatter_add(zeros({3, 2}, f64()), 0, idx({2, 0, 2, 0, 0, 1, 1, 1}, {4, 2}), seq({4, 2}) + 1.0);
  expect_values(w, {5, 2 + 4, 7, 6 + 8, 1 + 3, 0});
  EXPECT_EQ(scatter_add(idx({0, 0}), 0, idx({1, 1}), idx({2, 3})).to_vector<int64_t>(),
            (std::vector<int64_t>{0, 5}));
}

TEST(ShapeOps, ScatterAddGradients) {
  Tensor i = idx({0, 0, 2, 1, 1, 1}, {2, 3});
  expect_gradients([i](const std::vector<Tensor>& in) { return scatter_add(in[0], 1, i, in[1]); },
                   {rand64({2, 4}), rand64({2, 3}, -1, 1, 9)});
  Tensor j = idx({1, 1, 1, 0, 1, 1, 1, 1}, {4, 1, 2});
  expect_gradients([j](const std::vector<Tensor>& in) { return scatter_add(in[0], 0, j, in[1]); },
                   {rand64({2, 1, 2}), rand64({4, 1, 2}, -1, 1, 9)});
  // Only src requires grad: x's slot stays undefined.
  expect_gradients([i](const std::vector<Tensor>& in) { return scatter_add(zeros({2, 4}, f64()), 1, i, in[0]); },
                   {rand64({2, 3})});
}

TEST(ShapeOps, ScatterAddErrors) {
  Tensor x = zeros({2, 3}), src = ones({2, 2});
  expect_error([&] { scatter_add(x, 1, idx({0, 3, 1, 1}, {2, 2}), src); },
               {"scatter_add", "index 3", "axis 1 of size 3", "[2, 3]"});
  expect_error([&] { scatter_add(x, 1, idx({0, 1}, {2, 1}), src); }, {"scatter_add", "[2, 1]", "[2, 2]", "equal"});
  expect_error([&] { scatter_add(x, 1, idx({0, 1, 0, 1, 0, 1}, {3, 2}), ones({3, 2})); },
               {"scatter_add", "[3, 2]", "[2, 3]", "every axis but 1"});
  expect_error([&] { scatter_add(x, 1, idx({0, 1, 0, 1}, {2, 2}), ones({2, 2}, f64())); },
               {"scatter_add", "dtype", "float32", "float64"});
  expect_error([&] { scatter_add(x, 1, from_vector(std::vector<double>{0, 1, 0, 1}, {2, 2}), src); },
               {"scatter_add", "int64", "float32"});
}

TEST(ShapeOps, OneHot) {
  Tensor y = one_hot(idx({2, 0, 1, 2}), 3);
  EXPECT_EQ(y.shape(), (Shape{4, 3}));
  EXPECT_EQ(y.dtype(), DType::Float32);
  expect_values(y, {0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1});
  Tensor z = one_hot(idx({1, 0}, {2, 1}), 2, DType::Int64);
  EXPECT_EQ(z.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(z.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 1, 0}));
  Tensor s = one_hot(reshape(idx({3}), {}), 5, DType::Float64);
  EXPECT_EQ(s.shape(), (Shape{5}));
  expect_values(s, {0, 0, 0, 1, 0});
  EXPECT_EQ(one_hot(idx({}), 4).shape(), (Shape{0, 4}));
  EXPECT_FALSE(y.requires_grad());
}

TEST(ShapeOps, OneHotErrors) {
  expect_error([] { one_hot(idx({0, 3}), 3); }, {"one_hot", "index 3", "3 classes"});
  expect_error([] { one_hot(idx({-1}), 3); }, {"one_hot", "index -1"});
  // The check itself, public for a model's own indices: the first bad value at its flat position.
  check_indices("mine", reshape(idx({0, 2, 1, 2}), {2, 2}), 3, "three rows");
  expect_error([] { check_indices("mine", reshape(idx({0, 2, 5, -1}), {2, 2}), 3, "three rows", "row"); },
               {"mine: row 5 at position 2 is out of range for three rows"});
  expect_error([] { check_indices("mine", zeros({2}), 3, "three rows"); }, {"mine", "int64", "float32"});
  expect_error([] { one_hot(from_vector(std::vector<double>{0, 1}, {2}), 3); }, {"one_hot", "int64", "float32"});
  expect_error([] { one_hot(idx({0}), 0); }, {"one_hot", "positive", "got 0"});
}
