// GRU and LSTM cells and batch-first sequence layers (declared in nn.h):
// compositions of matmul, elementwise ops, chunk and stack. The sequence layers
// project every time step's input at once (one [B·T, F] × [F, G·H] product) and
// run only the recurrent product per step.
#include <cmath>

#include "autograd/nn.h"

namespace loom::nn {

namespace {

// x Wᵀ + b (b may be undefined).
Tensor affine(const Tensor& x, const Tensor& w, const Tensor& b) {
  Tensor y = matmul(x, transpose(w, 0, 1));
  return b.defined() ? y + b : y;
}

void check_cell(const char* op, const Tensor& x, const Tensor& h, const Tensor& w_ih, const Tensor& w_hh,
                int64_t gates) {
  LOOM_CHECK(x.defined() && h.defined() && x.dim() == 2 && h.dim() == 2 && x.size(0) == h.size(0), op,
             ": expected x [B, F] and h [B, H], got ", x.shape(), " and ", h.shape());
  const int64_t hidden = h.size(1);
  LOOM_CHECK((w_ih.shape() == Shape{gates * hidden, x.size(1)}) && (w_hh.shape() == Shape{gates * hidden, hidden}), op,
             ": weight_ih ", w_ih.shape(), " and weight_hh ", w_hh.shape(), " do not fit x ", x.shape(), " and h ",
             h.shape(), " (expected [", gates, "·H, F] and [", gates, "·H, H])");
}

Tensor gru_step(const Tensor& gi, const Tensor& h, const Tensor& w_hh, const Tensor& b_hh) {
  std::vector<Tensor> i = chunk(gi, 3, 1), g = chunk(affine(h, w_hh, b_hh), 3, 1);
  Tensor r = sigmoid(i[0] + g[0]), z = sigmoid(i[1] + g[1]);
  Tensor n = tanh(i[2] + r * g[2]);
  return n + z * (h - n);  // (1 − z) ⊙ n + z ⊙ h
}

std::pair<Tensor, Tensor> lstm_step(const Tensor& gi, const Tensor& h, const Tensor& c, const Tensor& w_hh,
                                    const Tensor& b_hh) {
  return lstm_update(gi + affine(h, w_hh, b_hh), c);
}

// Fresh parameters for a cell or layer with `gates` gates, U(±1/√hidden) as PyTorch's.
void init_rnn(Tensor* w_ih, Tensor* w_hh, Tensor* b_ih, Tensor* b_hh, int64_t gates, int64_t in, int64_t hidden,
              bool bias, TensorOptions o, const char* what) {
  LOOM_CHECK(in > 0 && hidden > 0, what, ": sizes must be positive, got input_size=", in, " hidden_size=", hidden);
  o.requires_grad = false;
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden));
  *w_ih = empty({gates * hidden, in}, o);
  *w_hh = empty({gates * hidden, hidden}, o);
  init::uniform_(*w_ih, -bound, bound);
  init::uniform_(*w_hh, -bound, bound);
  if (bias) {
    *b_ih = empty({gates * hidden}, o);
    *b_hh = empty({gates * hidden}, o);
    init::uniform_(*b_ih, -bound, bound);
    init::uniform_(*b_hh, -bound, bound);
  }
}

// Per-step masks [B, 1] (1 while t < lengths[b]) in x's dtype and device; empty without lengths.
// Made and checked on the lengths' device (check_indices): nothing is read on the host, so a
// recurrence over lengths can be captured as a CUDA graph.
std::vector<Tensor> step_masks(const char* op, const Tensor& x, const Tensor& lengths) {
  std::vector<Tensor> masks;
  if (!lengths.defined()) return masks;
  const int64_t b = x.size(0), t = x.size(1);
  LOOM_CHECK(lengths.dtype() == DType::Int64 && lengths.shape() == Shape{b}, op, ": lengths must be int64 [", b,
             "], got ", lengths.dtype(), " ", lengths.shape(), " (input ", x.shape(), ")");
  const Tensor on_device = lengths.to(x.device());  // no copy when they are there already
  check_indices(op, on_device, t + 1, str("[0, ", t, "] (input ", x.shape(), ")"), "length");
  const Tensor len = reshape(on_device.to(x.dtype()), {b, 1});
  for (int64_t s = 0; s < t; ++s) masks.push_back(gt(len, full({}, static_cast<double>(s), len.options())));
  return masks;
}

// The input projections of every step: [B, T, G·H] → T tensors [B, G·H].
std::vector<Tensor> project_inputs(const char* op, const Tensor& x, const Tensor& w_ih, const Tensor& b_ih) {
  LOOM_CHECK(x.defined() && x.dim() == 3 && x.size(2) == w_ih.size(1), op, ": expected x [B, T, ", w_ih.size(1),
             "], got ", x.shape());
  LOOM_CHECK(x.size(1) > 0, op, ": the sequence is empty (input ", x.shape(), ")");
  Tensor gi = affine(x, w_ih, b_ih);
  std::vector<Tensor> steps;
  for (int64_t s = 0; s < x.size(1); ++s) steps.push_back(reshape(slice(gi, 1, s, s + 1), {x.size(0), -1}));
  return steps;
}

Tensor initial_state(const char* op, const char* name, const Tensor& given, const Tensor& x, int64_t hidden) {
  if (!given.defined()) return zeros({x.size(0), hidden}, TensorOptions{x.dtype(), x.device()});
  LOOM_CHECK((given.shape() == Shape{x.size(0), hidden}), op, ": ", name, " must be [", x.size(0), ", ", hidden,
             "], got ", given.shape());
  return given;
}

}  // namespace

Tensor gru_cell(const Tensor& x, const Tensor& h, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                const Tensor& b_hh) {
  check_cell("gru_cell", x, h, w_ih, w_hh, 3);
  return gru_step(affine(x, w_ih, b_ih), h, w_hh, b_hh);
}

std::pair<Tensor, Tensor> lstm_cell(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& w_ih,
                                    const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  check_cell("lstm_cell", x, h, w_ih, w_hh, 4);
  LOOM_CHECK(c.defined() && c.shape() == h.shape(), "lstm_cell: c ", c.shape(), " must be shaped like h ",
             h.shape());
  return lstm_step(affine(x, w_ih, b_ih), h, c, w_hh, b_hh);
}

std::pair<Tensor, Tensor> lstm_update(const Tensor& gates, const Tensor& c) {
  LOOM_CHECK(gates.defined() && c.defined() && c.dim() >= 2,
             "lstm_update: expected gates [B, 4H, ...] and c [B, H, ...]");
  Shape want = c.shape();
  want[1] *= 4;
  LOOM_CHECK(gates.shape() == want, "lstm_update: gates ", gates.shape(), " must be c ", c.shape(),
             " with 4× the channels, ", want);
  std::vector<Tensor> g = chunk(gates, 4, 1);
  Tensor c2 = sigmoid(g[1]) * c + sigmoid(g[0]) * tanh(g[2]);
  return {sigmoid(g[3]) * tanh(c2), c2};
}

GRUCell::GRUCell(int64_t in, int64_t hidden, bool bias, TensorOptions o) {
  Tensor a, b, c, d;
  init_rnn(&a, &b, &c, &d, 3, in, hidden, bias, o, "GRUCell");
  register_parameter("weight_ih", &weight_ih, a);
  register_parameter("weight_hh", &weight_hh, b);
  if (bias) {
    register_parameter("bias_ih", &bias_ih, c);
    register_parameter("bias_hh", &bias_hh, d);
  }
}

Tensor GRUCell::forward(const Tensor& x) {
  LOOM_CHECK(x.defined() && x.dim() == 2, "GRUCell: expected x [B, F], got ", x.shape());
  return forward(x, zeros({x.size(0), weight_hh.size(1)}, TensorOptions{x.dtype(), x.device()}));
}

Tensor GRUCell::forward(const Tensor& x, const Tensor& h) {
  return gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh);
}

LSTMCell::LSTMCell(int64_t in, int64_t hidden, bool bias, TensorOptions o) {
  Tensor a, b, c, d;
  init_rnn(&a, &b, &c, &d, 4, in, hidden, bias, o, "LSTMCell");
  register_parameter("weight_ih", &weight_ih, a);
  register_parameter("weight_hh", &weight_hh, b);
  if (bias) {
    register_parameter("bias_ih", &bias_ih, c);
    register_parameter("bias_hh", &bias_hh, d);
  }
}

Tensor LSTMCell::forward(const Tensor& x) {
  LOOM_CHECK(x.defined() && x.dim() == 2, "LSTMCell: expected x [B, F], got ", x.shape());
  Tensor z = zeros({x.size(0), weight_hh.size(1)}, TensorOptions{x.dtype(), x.device()});
  return forward(x, z, z).first;
}

std::pair<Tensor, Tensor> LSTMCell::forward(const Tensor& x, const Tensor& h, const Tensor& c) {
  return lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh);
}

GRU::GRU(int64_t in, int64_t hidden, bool bias, TensorOptions o) {
  Tensor a, b, c, d;
  init_rnn(&a, &b, &c, &d, 3, in, hidden, bias, o, "GRU");
  register_parameter("weight_ih_l0", &weight_ih_l0, a);
  register_parameter("weight_hh_l0", &weight_hh_l0, b);
  if (bias) {
    register_parameter("bias_ih_l0", &bias_ih_l0, c);
    register_parameter("bias_hh_l0", &bias_hh_l0, d);
  }
}

RNNOutput GRU::forward(const Tensor& x, const Tensor& lengths, const Tensor& h0) {
  const int64_t hidden = weight_hh_l0.size(1);
  std::vector<Tensor> gi = project_inputs("GRU", x, weight_ih_l0, bias_ih_l0);
  std::vector<Tensor> masks = step_masks("GRU", x, lengths);
  Tensor h = initial_state("GRU", "h0", h0, x, hidden);
  std::vector<Tensor> outs;
  for (size_t s = 0; s < gi.size(); ++s) {
    Tensor hn = gru_step(gi[s], h, weight_hh_l0, bias_hh_l0);
    if (masks.empty()) {
      h = hn;
      outs.push_back(hn);
    } else {
      h = h + masks[s] * (hn - h);
      outs.push_back(masks[s] * hn);
    }
  }
  return {stack(outs, 1), h, {}};
}

LSTM::LSTM(int64_t in, int64_t hidden, bool bias, TensorOptions o) {
  Tensor a, b, c, d;
  init_rnn(&a, &b, &c, &d, 4, in, hidden, bias, o, "LSTM");
  register_parameter("weight_ih_l0", &weight_ih_l0, a);
  register_parameter("weight_hh_l0", &weight_hh_l0, b);
  if (bias) {
    register_parameter("bias_ih_l0", &bias_ih_l0, c);
    register_parameter("bias_hh_l0", &bias_hh_l0, d);
  }
}

RNNOutput LSTM::forward(const Tensor& x, const Tensor& lengths, const Tensor& h0, const Tensor& c0) {
  const int64_t hidden = weight_hh_l0.size(1);
  std::vector<Tensor> gi = project_inputs("LSTM", x, weight_ih_l0, bias_ih_l0);
  std::vector<Tensor> masks = step_masks("LSTM", x, lengths);
  Tensor h = initial_state("LSTM", "h0", h0, x, hidden), c = initial_state("LSTM", "c0", c0, x, hidden);
  std::vector<Tensor> outs;
  for (size_t s = 0; s < gi.size(); ++s) {
    auto [hn, cn] = lstm_step(gi[s], h, c, weight_hh_l0, bias_hh_l0);
    if (masks.empty()) {
      h = hn, c = cn;
      outs.push_back(hn);
    } else {
      h = h + masks[s] * (hn - h);
      c = c + masks[s] * (cn - c);
      outs.push_back(masks[s] * hn);
    }
  }
  return {stack(outs, 1), h, c};
}

}  // namespace loom::nn
