#include "tests/backend_ops.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>

namespace loom::testing {

namespace {

const TensorOptions kF64{DType::Float64};

// Inputs: uniform values, values bounded away from 0 (for kinks at 0), positive ones.
Tensor uni(const Shape& s, uint64_t seed, double lo = -1, double hi = 1) { return rand64(s, lo, hi, seed); }
Tensor away(const Shape& s, uint64_t seed) {
  NoGrad no_grad;
  return rand64(s, 0.2, 1.0, seed) * sign(rand64(s, -1, 1, seed + 1000));
}
Tensor pos(const Shape& s, uint64_t seed) { return rand64(s, 0.5, 2.0, seed); }
Tensor idx(const std::vector<int64_t>& v, const Shape& s) { return from_vector(v, s); }

// A constant of x's dtype and device.
Tensor like(const Tensor& x, const std::vector<double>& v, const Shape& s) { return from_vector(v, s, x.options()); }

// ∂⟨op(…, w, …), gy⟩/∂w with create_graph: the backward kernel a create_graph
// sweep records as an op (conv2d_backward_weight, avg_pool2d_backward), as a
// function of the values it reads, so the table can check it like any op.
Tensor recorded_gradient(const std::function<Tensor(const Tensor&)>& forward, const Tensor& wrt, const Tensor& gy) {
  const EnableGrad enable;  // the checks call f under NoGrad for their finite differences
  Tensor w = wrt.detach().requires_grad_();
  return grad({forward(w)}, {w}, {gy}, {.create_graph = true})[0];
}

#define F(body) [=](const std::vector<Tensor>& in) -> Tensor { body; }

std::vector<OpCase> make_cases() {
  std::vector<OpCase> c;
  auto add = [&](std::optional<OpId> op, std::string name, Fn f, std::vector<Tensor> inputs) -> OpCase& {
    c.push_back({op, std::move(name), std::move(f), std::move(inputs)});
    return c.back();
  };
  const Shape u = {3, 5};
  // ---- unary
  add(OpId::Neg, "neg", F(return neg(in[0])), {uni(u, 1)});
  add(OpId::Exp, "exp", F(return exp(in[0])), {uni(u, 2)});
  add(OpId::Log, "log", F(return log(in[0])), {pos(u, 3)});
  add(OpId::Log1p, "log1p", F(return log1p(in[0])), {uni(u, 4, -0.5, 2)});
  add(OpId::Sqrt, "sqrt", F(return sqrt(in[0])), {pos(u, 5)});
  add(OpId::Rsqrt, "rsqrt", F(return rsqrt(in[0])), {pos(u, 6)});
  add(OpId::Tanh, "tanh", F(return tanh(in[0])), {uni(u, 7, -2, 2)});
  add(OpId::Sigmoid, "sigmoid", F(return sigmoid(in[0])), {uni(u, 8, -3, 3)});
  add(OpId::Relu, "relu", F(return relu(in[0])), {away(u, 9)});
  add(OpId::LeakyRelu, "leaky_relu", F(return leaky_relu(in[0], 0.2)), {away(u, 10)});
  add(OpId::Elu, "elu", F(return elu(in[0], 1.3)), {away(u, 11)});
  add(OpId::Silu, "silu", F(return silu(in[0])), {uni(u, 12, -3, 3)});
  add(OpId::Softplus, "softplus", F(return softplus(in[0])), {uni(u, 13, -3, 3)});
  add(OpId::Abs, "abs", F(return abs(in[0])), {away(u, 14)});
  add(OpId::Square, "square", F(return square(in[0])), {uni(u, 15)});
  add(OpId::PowScalar, "pow_scalar 2.5", F(return pow(in[0], 2.5)), {pos(u, 16)});
  add(OpId::Sin, "sin", F(return sin(in[0])), {uni(u, 40, -7, 7)});
  add(OpId::Cos, "cos", F(return cos(in[0])), {uni(u, 41, -7, 7)});
  add(OpId::PowScalar, "pow_scalar 3", F(return pow(in[0], 3.0)), {uni(u, 17)});
  add(OpId::Clamp, "clamp", F(return clamp(in[0], -0.5, 0.7)), {away(u, 18)});
  // ---- binary, broadcasting [3, 1, 4] against [2, 4]
  const Shape ba = {3, 1, 4}, bb = {2, 4};
  add(OpId::Add, "add", F(return in[0] + in[1]), {uni(ba, 20), uni(bb, 21)});
  add(OpId::Sub, "sub", F(return in[0] - in[1]), {uni(ba, 22), uni(bb, 23)});
  add(OpId::Mul, "mul", F(return in[0] * in[1]), {uni(ba, 24), uni(bb, 25)});
  add(OpId::Div, "div", F(return in[0] / in[1]), {uni(ba, 26), pos(bb, 27)});
  add(OpId::Pow, "pow", F(return pow(in[0], in[1])), {pos(ba, 28), uni(bb, 29, -2, 2)});
  add(OpId::Maximum, "maximum", F(return maximum(in[0], in[1])), {uni(ba, 30), uni(bb, 31)});
  add(OpId::Minimum, "minimum", F(return minimum(in[0], in[1])), {uni(ba, 32), uni(bb, 33)});
  add(OpId::Where, "where", F(Tensor cond = like(in[0], {1, 0, 0, 1, 1, 0, 1, 0}, bb);
                               return where(cond, in[0], in[1])),
      {uni(ba, 34), uni(bb, 35)});
  // ---- reductions over [3, 4, 5]
  const Shape r = {3, 4, 5};
  add(OpId::Sum, "sum axes {0, 2}", F(return sum(in[0], {0, 2})), {uni(r, 40)});
  add(OpId::Sum, "sum all", F(return sum(in[0])), {uni(r, 41)});
  add(OpId::Mean, "mean axis 1 keepdim", F(return mean(in[0], {1}, true)), {uni(r, 42)});
  add(OpId::Max, "max axis 1", F(return max(in[0], {1})), {uni(r, 43)});
  add(OpId::Min, "min axes {0, 2}", F(return min(in[0], {0, 2})), {uni(r, 44)});
  add(OpId::LogSumExp, "logsumexp axes {0, 2}", F(return logsumexp(in[0], {0, 2})), {uni(r, 45, -2, 2)});
  add(OpId::Softmax, "softmax axis 1", F(return softmax(in[0], 1)), {uni(r, 46, -2, 2)});
  add(OpId::LogSoftmax, "log_softmax axis -1", F(return log_softmax(in[0], -1)), {uni(r, 47, -2, 2)});
  add(OpId::Cumsum, "cumsum axis 1", F(return cumsum(in[0], 1)), {uni(r, 52)});
  add(OpId::Cumsum, "cumsum axis -1 reverse, squared", F(return square(cumsum(in[0], -1, true))), {uni(r, 53)});
  add(OpId::Norm, "norm p=2 axis 1", F(return norm(in[0], 2, {1})), {uni(u, 48)});
  add(OpId::Norm, "norm p=1 all", F(return norm(in[0], 1)), {away(u, 49)});
  add(OpId::Norm, "norm p=3 axes {0, 1} keepdim", F(return norm(in[0], 3, {0, 1}, true)), {away(u, 50)});
  add(OpId::Norm, "norm p=inf axis 0", F(return norm(in[0], std::numeric_limits<double>::infinity(), {0})), {uni(u, 51)});
  // ---- linear algebra
  add(OpId::Matmul, "matmul batched, broadcast [2,1,3,4] @ [5,4,2]", F(return matmul(in[0], in[1])),
      {uni({2, 1, 3, 4}, 60), uni({5, 4, 2}, 61)});
  add(OpId::Matmul, "matmul vector @ matrix", F(return matmul(in[0], in[1])), {uni({4}, 62), uni({4, 3}, 63)});
  add(OpId::Matmul, "matmul matrix @ vector", F(return matmul(in[0], in[1])), {uni({3, 4}, 64), uni({4}, 65)});
  add(OpId::Linear, "linear [2,3,4] W [5,4] + b [5]", F(return linear(in[0], in[1], in[2])),
      {uni({2, 3, 4}, 66), uni({5, 4}, 67), uni({5}, 68)});
  add(OpId::Linear, "linear [7,3] W [2,3], no bias", F(return linear(in[0], in[1])), {uni({7, 3}, 69), uni({2, 3}, 59)});
  add(OpId::Linear, "linear vector [4] W [3,4] + b", F(return linear(in[0], in[1], in[2])),
      {uni({4}, 57), uni({3, 4}, 58), uni({3}, 56)});
  // ---- shape
  add(OpId::Reshape, "reshape", F(return reshape(in[0], {5, 12})), {uni(r, 70)});
  add(OpId::Permute, "permute {2, 0, 1}", F(return permute(in[0], {2, 0, 1})), {uni(r, 71)});
  add(OpId::Expand, "expand [3,1,4] -> [2,3,5,4]", F(return expand(in[0], {2, 3, 5, 4})), {uni({3, 1, 4}, 72)});
  add(OpId::Concat, "concat axis 1", F(return concat({in[0], in[1], in[2]}, 1)),
      {uni({2, 1, 3}, 73), uni({2, 4, 3}, 74), uni({2, 2, 3}, 75)});
  add(OpId::Split, "split {2, 3, 1} axis 1, one piece unused", F(auto p = split(in[0], {2, 3, 1}, 1);
                                                                  return concat({square(p[2]), p[0]}, 1)),
      {uni({3, 6, 2}, 76)});
  add(OpId::Slice, "slice step 2", F(return slice(in[0], 1, 1, 6, 2)), {uni({3, 7}, 77)});
  add(OpId::Slice, "slice negative bounds", F(return slice(in[0], 0, -3, -1)), {uni({5, 2}, 78)});
  add(OpId::Pad, "pad and crop", F(return pad(in[0], {1, 2, -1, 1}, 0.5)), {uni({2, 3, 4}, 79)});
  add(OpId::IndexSelect, "index_select with repeats", F(return index_select(in[0], 0, in[1])),
      {uni({3, 4}, 80), idx({2, 0, 2, 1}, {4})});
  add(OpId::Gather, "gather axis 1", F(return gather(in[0], 1, in[1])),
      {uni({3, 5}, 81), idx({0, 4, 4, 1, 2, 2, 3, 0, 1, 1, 0, 3}, {3, 4})});
  add(OpId::ScatterAdd, "scatter_add axis 1 with repeats", F(return scatter_add(in[0], 1, in[2], in[1])),
      {uni({3, 5}, 82), uni({3, 4}, 83), idx({0, 4, 4, 1, 2, 2, 3, 0, 1, 1, 0, 3}, {3, 4})});
  {
    OpCase& cast = add(OpId::Cast, "cast float64 -> float32 -> float64",
                       F(return in[0].to(DType::Float32).to(DType::Float64)), {uni(u, 84)});
    cast.grad_options = {.eps = 1e-3, .atol = 1e-4, .rtol = 1e-3};  // float32 rounding inside
  }
  add(OpId::Clone, "clone", F(return in[0].clone() * in[0]), {uni(u, 85)});
  {
    OpCase& to = add(OpId::ToDevice, "to cuda and back", F(return in[0].to(Device::cuda(0)).to(in[0].device()) * 2.0),
                     {uni(u, 86)});
    if (cuda_device_count() == 0) to.unsupported = "needs a CUDA device (this build or machine has none)";
  }
  // ---- vision
  const ConvParams strided{.stride = {2, 2}, .padding = {1, 1}, .groups = 2};
  add(OpId::Conv2d, "conv2d stride 2, pad 1, groups 2, bias", F(return conv2d(in[0], in[1], in[2], strided)),
      {uni({2, 4, 5, 5}, 90), uni({4, 2, 3, 3}, 91), uni({4}, 92)});
  const ConvParams dilated{.padding = {1, 0}, .dilation = {2, 1}};
  add(OpId::Conv2d, "conv2d dilation (2, 1), no bias", F(return conv2d(in[0], in[1], {}, dilated)),
      {uni({1, 3, 6, 5}, 93), uni({2, 3, 2, 3}, 94)});
  const ConvParams up{.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 0}};
  add(OpId::ConvTranspose2d, "conv_transpose2d stride 2, output_padding (1, 0)",
      F(return conv_transpose2d(in[0], in[1], in[2], up)), {uni({2, 4, 3, 3}, 95), uni({4, 3, 3, 3}, 96), uni({3}, 97)});
  add(OpId::Conv2dBackwardWeight, "conv2d_backward_weight (x, gy)",
      F(return recorded_gradient([&](const Tensor& w) { return conv2d(in[0], w, {}, strided); },
                                 full({4, 2, 3, 3}, 0.5, in[0].options()), in[1])),
      {uni({2, 4, 5, 5}, 98), uni({2, 4, 3, 3}, 99)});
  const Pair k{2, 3}, s{2, 2}, p{1, 1};
  add(OpId::MaxPool2d, "max_pool2d kernel (2, 3), stride 2, pad 1", F(return max_pool2d(in[0], k, s, p)),
      {uni({2, 3, 5, 6}, 100)});
  add(OpId::AvgPool2d, "avg_pool2d kernel (2, 3), stride 2, pad 1", F(return avg_pool2d(in[0], k, s, p)),
      {uni({2, 3, 5, 6}, 101)});
  add(OpId::AvgPool2dBackward, "avg_pool2d_backward (gy)",
      F(return recorded_gradient([&](const Tensor& x) { return avg_pool2d(x, k, s, p); },
                                 zeros({2, 3, 5, 6}, in[0].options()), in[0])),
      {uni({2, 3, 3, 3}, 102)});
  add(OpId::UpsampleNearest2d, "upsample_nearest2d x2", F(return upsample_nearest2d(in[0], 2)), {uni({2, 3, 3, 4}, 103)});
  // ---- resampling: adjoint pairs
  const Pads2d pads{2, 1, 0, 2};
  add(OpId::Pad2d, "pad2d reflect", F(return pad2d(in[0], pads, PadMode::Reflect)), {uni({2, 3, 4, 5}, 104)});
  add(OpId::Pad2d, "pad2d replicate", F(return pad2d(in[0], pads, PadMode::Replicate)), {uni({2, 3, 4, 5}, 105)});
  add(OpId::Pad2dBackward, "pad2d_backward reflect", F(return pad2d_backward(in[0], pads, PadMode::Reflect)),
      {uni({2, 3, 6, 8}, 106)});
  add(OpId::UpsampleBilinear2d, "upsample_bilinear2d 3x5 -> 7x4",
      F(return upsample_bilinear2d(in[0], 7, 4)), {uni({2, 3, 3, 5}, 107)});
  add(OpId::UpsampleBilinear2dBackward, "upsample_bilinear2d_backward 7x4 -> 3x5",
      F(return upsample_bilinear2d_backward(in[0], 3, 5)), {uni({2, 3, 7, 4}, 108)});
  // ---- dropout: the same Philox stream on every device
  add(OpId::Dropout, "dropout p=0.3", F(Generator g(11); return dropout(in[0], 0.3, true, &g)), {uni(u, 110)});
  // ---- composites: the layers and losses the models are made of
  add(OpId::BatchNorm, "batch_norm (training), affine",
      F(return batch_norm(in[0], in[1], in[2], {}, {}, true)), {uni({5, 3, 3, 2}, 120), uni({3}, 121), uni({3}, 122)});
  add(OpId::BatchNorm, "batch_norm (training) [N, C], gamma only",
      F(return batch_norm(in[0], in[1], {}, {}, {}, true)), {uni({7, 4}, 161), uni({4}, 162)});
  add(OpId::BatchNorm, "batch_norm (training), no affine", F(return batch_norm(in[0], {}, {}, {}, {}, true)),
      {uni({3, 2, 5}, 163)});
  add(OpId::Standardize, "standardize from axis 1", F(return standardize(in[0], 1)), {uni({3, 4, 5}, 119)});
  add(std::nullopt, "layer_norm", F(return layer_norm(in[0], {2, 5}, in[1], in[2])),
      {uni({3, 2, 5}, 123), uni({2, 5}, 124), uni({2, 5}, 125)});
  add(OpId::GroupNorm, "group_norm 2 groups", F(return group_norm(in[0], 2, in[1], in[2])),
      {uni({2, 4, 3, 2}, 126), uni({4}, 127), uni({4}, 128)});
  add(OpId::GroupNorm, "group_norm 2 groups of 3, gamma only, [N, C]", F(return group_norm(in[0], 2, in[1])),
      {uni({3, 6}, 164), uni({6}, 165)});
  add(OpId::GroupNorm, "group_norm 1 group, no affine", F(return group_norm(in[0], 1)), {uni({2, 3, 5}, 166)});
  add(OpId::GroupNorm, "instance_norm, affine", F(return instance_norm(in[0], in[1], in[2])),
      {uni({2, 3, 3, 4}, 142), uni({3}, 143), uni({3}, 144)});
  add(std::nullopt, "pixel_norm", F(return nn::pixel_norm(in[0])), {uni({2, 4, 3, 2}, 145)});
  add(std::nullopt, "minibatch_stddev", F(return nn::minibatch_stddev(in[0], 2)), {uni({4, 2, 3, 3}, 146)});
  add(std::nullopt, "scaled_dot_product_attention", F(return nn::scaled_dot_product_attention(in[0], in[1], in[2])),
      {uni({2, 2, 3, 4}, 147), uni({2, 2, 5, 4}, 148), uni({2, 2, 5, 3}, 149)});
  add(std::nullopt, "gru_cell", F(return nn::gru_cell(in[0], in[1], in[2], in[3], in[4], in[5])),
      {uni({2, 3}, 150), uni({2, 4}, 151), uni({12, 3}, 152), uni({12, 4}, 153), uni({12}, 154), uni({12}, 155)});
  add(std::nullopt, "lstm_cell (h')", F(return nn::lstm_cell(in[0], in[1], in[2], in[3], in[4]).first),
      {uni({2, 3}, 156), uni({2, 4}, 157), uni({2, 4}, 158), uni({16, 3}, 159), uni({16, 4}, 160)});
  add(std::nullopt, "var (unbiased)", F(return var(in[0], {1}, false, 1)), {uni(r, 129)});
  add(std::nullopt, "cross_entropy", F(return cross_entropy(in[0], in[1], Reduction::None)),
      {uni({4, 5}, 130, -2, 2), idx({3, 0, 4, 4}, {4})});
  add(std::nullopt, "binary_cross_entropy_with_logits",
      F(return binary_cross_entropy_with_logits(in[0], in[1], Reduction::Sum)), {away({3, 4}, 131), uni({3, 4}, 132, 0, 1)});
  add(std::nullopt, "mse_loss", F(return mse_loss(in[0], in[1])), {uni(u, 133), uni(u, 134)});
  add(std::nullopt, "gaussian_log_prob", F(return gaussian_log_prob(in[0], in[1], in[2])),
      {uni(u, 135), uni(u, 136), uni(u, 137)});
  add(std::nullopt, "kl_diag_gaussians", F(return kl_diag_gaussians(in[0], in[1], in[2], in[3])),
      {uni(u, 138), uni(u, 139), uni(u, 140), uni(u, 141)});
  return c;
}
#undef F

struct Row {
  std::map<std::string, Outcome> modes;
};
std::map<std::string, Row>& results() {
  static std::map<std::string, Row> r;
  return r;
}

}  // namespace

const std::vector<OpCase>& backend_op_cases() {
  static const std::vector<OpCase> cases = make_cases();
  return cases;
}

std::string case_label(const OpCase& c) { return c.op ? op_name(*c.op) : "composite: " + c.name; }

void report(const OpCase& c, const char* mode, Outcome o) {
  auto& slot = results()[case_label(c)].modes;
  auto it = slot.find(mode);
  // Over several cases of one op: any failure fails the op; a pass beats unsupported.
  if (it == slot.end() || o == Outcome::Fail || (o == Outcome::Pass && it->second == Outcome::Unsupported))
    slot[mode] = o;
}

void print_summary(const std::vector<const char*>& modes) {
  if (results().empty()) return;
  int width = 2;
  for (const auto& [label, row] : results()) width = std::max(width, static_cast<int>(label.size()));
  std::printf("\n%-*s", width, "op");
  for (const char* m : modes) std::printf(" | %-11s", m);
  std::printf("\n");
  for (const auto& [label, row] : results()) {
    std::printf("%-*s", width, label.c_str());
    for (const char* m : modes) {
      auto it = row.modes.find(m);
      const char* s = it == row.modes.end()                  ? "-"
                      : it->second == Outcome::Pass          ? "pass"
                      : it->second == Outcome::Fail          ? "FAIL"
                                                             : "unsupported";
      std::printf(" | %-11s", s);
    }
    std::printf("\n");
  }
}

}  // namespace loom::testing
