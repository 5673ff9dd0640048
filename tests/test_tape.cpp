// The tape: recording, the reverse sweep, accumulation, NoGrad, detach, and
// every error path of section 3 of the engine issue.
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {
TensorOptions f64() { return TensorOptions{DType::Float64}; }
}  // namespace

TEST(Tape, LinearModelWorkedExample) {
  // y = x·w + b, loss = Σ y ⊙ r: ∂/∂w = xᵀ r, ∂/∂b = Σ_rows r.
  Tensor x = from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, f64());
  Tensor w = from_vector(std::vector<double>{1, -1, 0.5, 2, 0, 1}, {3, 2}, f64());
  Tensor b = from_vector(std::vector<double>{0.1, -0.2}, {2}, f64());
  w.requires_grad_();
  b.requires_grad_();
  Tensor r = from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2}, f64());
  size_t before = tape_size();
  Tensor y = matmul(x, w) + b;
  expect_values(y, {1 + 1 + 0 + 0.1, -1 + 4 + 3 - 0.2, 4 + 2.5 + 0 + 0.1, -4 + 10 + 6 - 0.2});
  Tensor loss = sum(y * r);
  EXPECT_GT(tape_size(), before);
  backward(loss);
  // xᵀ r = [[1*1+4*3, 1*2+4*4], [2*1+5*3, 2*2+5*4], [3*1+6*3, 3*2+6*4]]
  expect_values(w.grad(), {13, 18, 17, 24, 21, 30});
  expect_values(b.grad(), {4, 6});
  EXPECT_FALSE(x.grad().defined()) << "x does not require grad";
  EXPECT_EQ(tape_size(), before) << "backward consumes what it swept";
}

TEST(Tape, GradientsAccumulateUntilZeroed) {
  Tensor w = from_vector(std::vector<double>{2}, {1}, f64());
  w.requires_grad_();
  backward(sum(w * w));
  backward(sum(w * 3.0));
  expect_values(w.grad(), {4 + 3});
  w.zero_grad();
  EXPECT_FALSE(w.grad().defined());
  backward(sum(w * w * w));
  expect_values(w.grad(), {12});
}

TEST(Tape, SharedSubexpressionsSumTheirGradients) {
  // f = a·a + a  → f' = 2a + 1, a used three times.
  Tensor a = from_vector(std::vector<double>{1.5}, {1}, f64());
  a.requires_grad_();
  Tensor u = a * a;
  backward(sum(u + a));
  expect_values(a.grad(), {4});
}

TEST(Tape, NoGradAndDetachRecordNothing) {
  Tensor w = ones({2}, f64());
  w.requires_grad_();
  size_t before = tape_size();
  {
    NoGrad ng;
    Tensor y = w * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_FALSE(grad_enabled());
  }
  EXPECT_TRUE(grad_enabled());
  Tensor d = (w * 2.0).detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  // w*2 above died with its only holder: the tape frees unreachable history.
  EXPECT_EQ(tape_size(), before);
  expect_error([&] { backward(sum(d)); }, {"backward", "does not require grad"});
}

TEST(Tape, NonScalarRootNeedsAnOutputGradient) {
  Tensor w = ones({3}, f64());
  w.requires_grad_();
  Tensor y = w * 2.0;
  expect_error([&] { backward(y); }, {"backward", "[3]", "one-element"});
  expect_error([&] { backward(y, ones({2}, f64())); }, {"backward", "[2]", "[3]"});
  backward(y, from_vector(std::vector<double>{1, 2, 3}, {3}, f64()));
  expect_values(w.grad(), {2, 4, 6});
}

TEST(Tape, SecondBackwardThroughConsumedTapeIsAnError) {
  Tensor w = ones({2}, f64());
  w.requires_grad_();
  Tensor loss = sum(exp(w));
  backward(loss);
  expect_error([&] { backward(loss); }, {"backward", "already consumed", "sum"});
  Tensor h = exp(w);
  backward(sum(h));
  expect_error([&] { backward(sum(h * 2.0)); }, {"backward", "already consumed", "exp"});
}

TEST(Tape, SavedTensorModifiedInPlaceIsAnError) {
  Tensor w = ones({2}, f64());
  w.requires_grad_();
  Tensor y = exp(w);  // exp saves its output
  Tensor loss = sum(y);
  {
    NoGrad ng;
    y.detach().fill_(5);
  }
  expect_error([&] { backward(loss); }, {"backward", "exp", "modified in place", "version"});
}

TEST(Tape, InPlaceWriteToRecordedTensorIsRefused) {
  Tensor w = ones({2}, f64());
  w.requires_grad_();
  expect_error([&] { w.fill_(0); }, {"fill_", "requires grad", "NoGrad"});
  {
    NoGrad ng;
    w.fill_(3);  // the optimizer's path
  }
  expect_values(w, {3, 3});
}

TEST(Tape, GanStyleLoopDStepThenGStep) {
  // G: fake = z·g. D: d(x) = x·dw. D step on the detached fake must not touch g;
  // the G step then differentiates through the same fake (its history survived
  // the D step because the D step never reached it).
  Tensor g = from_vector(std::vector<double>{2}, {1}, f64());
  Tensor dw = from_vector(std::vector<double>{3}, {1}, f64());
  g.requires_grad_();
  dw.requires_grad_();
  Tensor z = from_vector(std::vector<double>{0.5}, {1}, f64());
  Tensor real = from_vector(std::vector<double>{4}, {1}, f64());
  Tensor fake = z * g;
  // D step: loss_D = d(fake.detach()) − d(real)
  Tensor loss_d = sum(fake.detach() * dw - real * dw);
  backward(loss_d);
  expect_values(dw.grad(), {1 - 4});
  EXPECT_FALSE(g.grad().defined()) << "the D step must not reach the generator";
  dw.zero_grad();
  // G step: loss_G = −d(fake)
  Tensor loss_g = sum(neg(fake * dw));
  backward(loss_g);
  expect_values(g.grad(), {-0.5 * 3});
  expect_values(dw.grad(), {-1});
}

TEST(Tape, AnIntermediateNoBackwardReadsIsFreedBeforeBackward) {
  // The tape routes gradients by (producing entry, output index), not by holding the
  // tensors: s = w + 1 is read by no backward (add needs nothing, relu keeps its
  // output), so its storage goes when the forward drops it; the gradient still
  // reaches w through it. ∂/∂w Σ relu(w + 1) · 2 = 2·[w + 1 > 0].
  Tensor w = from_vector(std::vector<double>{-3, 0.5, 2}, {3}, f64());
  w.requires_grad_();
  std::weak_ptr<Storage> s_storage, r_storage;
  Tensor loss;
  {
    Tensor s = w + 1.0;
    Tensor r = relu(s);
    s_storage = s.impl().storage;
    r_storage = r.impl().storage;
    loss = sum(r + r);
  }
  EXPECT_TRUE(s_storage.expired()) << "no backward reads w + 1";
  EXPECT_FALSE(r_storage.expired()) << "relu keeps its output for its backward";
  backward(loss);
  expect_values(w.grad(), {0, 2, 2});
  EXPECT_TRUE(r_storage.expired()) << "backward frees what it consumed";
}

TEST(Tape, ActivationsKeepOnlyTheValueTheirDerivativeReads) {
  // Which of x and y = f(x) the entry holds, for ops whose f' needs only y (exp,
  // sigmoid, tanh, relu), only x (silu, softplus, log) or neither (neg); the
  // derivative is still right when computed from the one kept value.
  Tensor w = from_vector(std::vector<double>{-0.7, 0.2, 1.3}, {3}, f64());
  w.requires_grad_();
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&)> f;
    bool keeps_x, keeps_y;
  };
  const std::vector<Case> cases = {
      {"exp", [](const Tensor& x) { return exp(x); }, false, true},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, false, true},
      {"tanh", [](const Tensor& x) { return tanh(x); }, false, true},
      {"relu", [](const Tensor& x) { return relu(x); }, false, true},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); }, false, true},
      {"elu", [](const Tensor& x) { return elu(x, 1.0); }, false, true},
      {"silu", [](const Tensor& x) { return silu(x); }, true, false},
      {"softplus", [](const Tensor& x) { return softplus(x); }, true, false},
      {"neg", [](const Tensor& x) { return neg(x); }, false, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor x = w * 2.0;
    Tensor y = c.f(x);
    const std::vector<Tensor>& saved = y.impl().node->saved;
    EXPECT_EQ(saved.size(), (c.keeps_x || c.keeps_y) ? 1u : 0u);
    for (const Tensor& s : saved) {
      EXPECT_EQ(s.impl().storage == x.impl().storage, c.keeps_x);
      EXPECT_EQ(s.impl().storage == y.impl().storage, c.keeps_y);
    }
    const Fn f = [&](const std::vector<Tensor>& in) { return c.f(in[0] * 2.0); };
    expect_gradients(f, {w.detach()});
    expect_second_gradients(f, {w.detach()});
  }
}
