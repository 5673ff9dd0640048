// nn: modules with named parameters, buffers and children, the standard layers
// and the initializers. A module registers pointers to its own Tensor members,
// so to(device) and load_state_dict() update the fields the layer's forward
// reads; modules are therefore neither copyable nor movable (hold them by
// shared_ptr).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"
#include "autograd/tape.h"

namespace loom::nn {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Single-input layers implement forward; composite models may define their
  // own methods instead.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }
  virtual std::string name() const { return "Module"; }

  // Dotted names ("encoder.0.weight"), children after the module's own entries.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;

  // This module and every descendant, depth first, the module itself first
  // (PyTorch's modules()).
  std::vector<Module*> modules();
  // Calls fn on every descendant, children before parents, then on this module
  // (PyTorch's apply): e.g. a custom initialization of every Linear.
  Module& apply(const std::function<void(Module&)>& fn);

  // Parameters and buffers by name: what checkpoints store.
  std::map<std::string, Tensor> state_dict() const;
  // Copies values into the registered tensors. Every name must match in both
  // directions with the same shape; the error lists what differs.
  void load_state_dict(const std::map<std::string, Tensor>& state);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves (or converts) every parameter and buffer in place, as PyTorch does: each
  // keeps its identity (TensorImpl), so handles taken before — an optimizer's
  // parameter list included — see the new storage, dtype and device; a gradient
  // is converted with it. Parameters stay leaves that require grad.
  void to(Device d);
  void to(DType t);
  void zero_grad();

 protected:
  Tensor& register_parameter(const std::string& name, Tensor* field, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor* field, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor>>& out) const;
  void convert_tensors(const std::function<Tensor(const Tensor&)>& convert);
  std::vector<std::pair<std::string, Tensor*>> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

using ModulePtr = std::shared_ptr<Module>;

// ---- initializers (all draw from the seeded Philox generator) -----------------
namespace init {
// fan_in, fan_out of a weight [out, in, k...] (Linear/Conv) as PyTorch computes them.
std::pair<int64_t, int64_t> fans(const Tensor& w);
void uniform_(Tensor& w, double lo, double hi, Generator* g = nullptr);
void normal_(Tensor& w, double mean, double stddev, Generator* g = nullptr);  // DCGAN: (0, 0.02)
void zeros_(Tensor& w);
void ones_(Tensor& w);
// Glorot & Bengio (2010): U(±gain·√(6/(fan_in+fan_out))) and N(0, gain²·2/(fan_in+fan_out)).
void xavier_uniform_(Tensor& w, double gain = 1, Generator* g = nullptr);
void xavier_normal_(Tensor& w, double gain = 1, Generator* g = nullptr);
// He et al. (2015), fan_in mode: U(±gain·√(3/fan_in)) and N(0, gain²/fan_in); gain = √2 for ReLU.
void kaiming_uniform_(Tensor& w, double gain = 1.4142135623730951, Generator* g = nullptr);
void kaiming_normal_(Tensor& w, double gain = 1.4142135623730951, Generator* g = nullptr);
}  // namespace init

// ---- layers -------------------------------------------------------------------
// y = x Wᵀ + b, W [out, in]; PyTorch's default init U(±1/√in) for W and b.
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias = true, TensorOptions o = {});
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Linear"; }
  Tensor weight, bias;
};

// Options of Conv2d and ConvTranspose2d, e.g. {.params = {.padding = {1, 1}}, .bias = false}.
struct ConvOptions {
  ConvParams params{};     // stride, padding, dilation, output padding, groups (ops.h)
  bool bias = true;
  TensorOptions tensors{};  // dtype and device of weight and bias
};

// y = conv2d(x, W) + b, W [out, in/groups, k, k]; PyTorch's default init U(±1/√(in/groups·k²)).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in, int64_t out, int64_t kernel, ConvOptions o = {});
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Conv2d"; }
  Tensor weight, bias;
  ConvParams params;
};

// y = conv_transpose2d(x, W) + b, W [in, out/groups, k, k]; init U(±1/√(out/groups·k²)) as PyTorch.
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in, int64_t out, int64_t kernel, ConvOptions o = {});
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "ConvTranspose2d"; }
  Tensor weight, bias;
  ConvParams params;
};

// Batch normalization over [N, C] (1d) or [N, C, H, W] (2d) with running statistics.
class BatchNorm : public Module {
 public:
  BatchNorm(int64_t channels, int64_t spatial_dims, double momentum = 0.1, double eps = 1e-5, TensorOptions o = {});
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return spatial_dims_ == 0 ? "BatchNorm1d" : "BatchNorm2d"; }
  Tensor weight, bias, running_mean, running_var;

 private:
  int64_t spatial_dims_;
  double momentum_, eps_;
};
// [N, C] input.
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t c, double momentum = 0.1, double eps = 1e-5, TensorOptions o = {})
      : BatchNorm(c, 0, momentum, eps, o) {}
};
// [N, C, H, W] input.
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t c, double momentum = 0.1, double eps = 1e-5, TensorOptions o = {})
      : BatchNorm(c, 2, momentum, eps, o) {}
};

class GroupNorm : public Module {
 public:
  GroupNorm(int64_t groups, int64_t channels, double eps = 1e-5, TensorOptions o = {});
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "GroupNorm"; }
  Tensor weight, bias;

 private:
  int64_t groups_;
  double eps_;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, TensorOptions o = {});
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "LayerNorm"; }
  Tensor weight, bias;

 private:
  Shape shape_;
  double eps_;
};

// Rows of a [num, dim] table picked by int64 indices of any shape; init N(0, 1).
class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, TensorOptions o = {});
  Tensor forward(const Tensor& indices) override;
  std::string name() const override { return "Embedding"; }
  Tensor weight;
};

class Dropout : public Module {
 public:
  explicit Dropout(double p) : p_(p) {}
  Tensor forward(const Tensor& x) override { return dropout(x, p_, is_training()); }
  std::string name() const override { return "Dropout"; }

 private:
  double p_;
};

// A parameter-free layer from a function: activations, flatten, reshape.
class Lambda : public Module {
 public:
  Lambda(std::string name, std::function<Tensor(const Tensor&)> fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  Tensor forward(const Tensor& x) override { return fn_(x); }
  std::string name() const override { return name_; }

 private:
  std::string name_;
  std::function<Tensor(const Tensor&)> fn_;
};
// The activations and reshapes as layers: each applies the op of the same name (ops.h).
class ReLU : public Lambda {
 public:
  ReLU();
};
class LeakyReLU : public Lambda {
 public:
  explicit LeakyReLU(double slope = 0.01);
};
class Tanh : public Lambda {
 public:
  Tanh();
};
class Sigmoid : public Lambda {
 public:
  Sigmoid();
};
class SiLU : public Lambda {
 public:
  SiLU();
};
class ELU : public Lambda {
 public:
  explicit ELU(double alpha = 1);
};
class Softplus : public Lambda {
 public:
  Softplus();
};
// [N, ...] → [N, prod(...)]
class Flatten : public Lambda {
 public:
  Flatten();
};
// [N, prod(shape)] → [N, shape...]
class Unflatten : public Lambda {
 public:
  explicit Unflatten(Shape shape);
};

class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<ModulePtr> layers);
  void push_back(ModulePtr layer);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Sequential"; }
  size_t size() const { return layers_.size(); }
  const ModulePtr& operator[](size_t i) const { return layers_.at(i); }

 private:
  std::vector<ModulePtr> layers_;
};

// A multilayer perceptron [N, sizes.front()] → [N, sizes.back()]: Linear layers
// with `activation` between them and none after the last. Weights ~ N(0, 1/fan_in)
// (LeCun normal; drawn from g, or the default generator), biases 0, with dtype and
// device from o. Throws a loom::Error for fewer than two sizes or a size < 1.
std::shared_ptr<Sequential> mlp(const std::vector<int64_t>& sizes,
                                const std::function<Tensor(const Tensor&)>& activation, TensorOptions o = {},
                                Generator* g = nullptr);

// ---- normalization and GAN layers (nn/gan_layers.cpp) ----------------------------
// Instance normalization (Ulyanov et al. 2016) of x [N, C, H, W]: per sample and
// channel over H·W (see loom::instance_norm). PyTorch's defaults: no affine γ/β and
// no running statistics; with track_running_stats, eval normalizes by them.
class InstanceNorm2d : public Module {
 public:
  explicit InstanceNorm2d(int64_t channels, bool affine = false, bool track_running_stats = false,
                          double momentum = 0.1, double eps = 1e-5, TensorOptions o = {});
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "InstanceNorm2d"; }
  Tensor weight, bias, running_mean, running_var;  // undefined unless affine / tracking

 private:
  int64_t channels_;
  double momentum_, eps_;
};

// ProGAN's pixelwise feature normalization (Karras et al. 2018, "Progressive Growing
// of GANs", §4.2): b = a / √(mean over the C channels of a² + ε), per sample and pixel,
// for x [N, C, ...].
Tensor pixel_norm(const Tensor& x, double eps = 1e-8);

// ProGAN's minibatch standard deviation (Karras et al. 2018, §3): x [N, C, H, W] →
// [N, C + 1, H, W]. The batch is split into groups of G = min(group_size, N) samples
// (sample n in group n mod N/G, as the reference reshape [G, N/G, ...] does); per group,
// the population std over its G samples of every feature and pixel (+1e-8 inside the
// root), averaged over features and pixels, is appended as one constant channel to
// each of the group's samples. N must be a multiple of G.
Tensor minibatch_stddev(const Tensor& x, int64_t group_size = 4);

// Equalized learning rate (Karras et al. 2018, §4.1): weights stored N(0, 1) and scaled
// at run time by He's constant c = gain/√fan_in (fan_in = in·k·k, resp. in), so Adam's
// step size is the same for every layer; biases start at zero.
class EqualizedConv2d : public Module {
 public:
  EqualizedConv2d(int64_t in, int64_t out, int64_t kernel, ConvParams p = {}, bool bias = true,
                  double gain = 1.4142135623730951, TensorOptions o = {});
  Tensor forward(const Tensor& x) override;  // conv2d(x, c·weight, bias)
  std::string name() const override { return "EqualizedConv2d"; }
  Tensor weight, bias;  // weight [out, in, k, k]
  ConvParams params;
  double scale;  // c
};
class EqualizedLinear : public Module {
 public:
  EqualizedLinear(int64_t in, int64_t out, bool bias = true, double gain = 1.4142135623730951, TensorOptions o = {});
  Tensor forward(const Tensor& x) override;  // x (c·W)ᵀ + b
  std::string name() const override { return "EqualizedLinear"; }
  Tensor weight, bias;  // weight [out, in]
  double scale;
};

// PixelCNN's masked convolution (van den Oord et al. 2016, "Pixel Recurrent Neural
// Networks" §3.4; "Conditional Image Generation with PixelCNN Decoders"): a k×k
// (k odd) "same" convolution, stride 1, whose weight is multiplied at run time by a
// fixed mask (buffer "mask" [out, in, k, k]) so that output pixel i (raster order)
// sees only input pixels j < i, and at j = i only some channels:
//   the in and out channels are split into `color_groups` contiguous groups (1, or
//   3 for R, G, B); at the centre tap output group g sees input groups g' < g (type
//   A, the first layer: a pixel never sees itself) or g' ≤ g (type B, later layers).
// With color_groups = 1, type A drops the centre tap and type B keeps it. A stack of
// one A layer followed by B layers keeps the property: output i, group g depends on
// input j < i and on input i in groups g' < g only.
class MaskedConv2d : public Module {
 public:
  MaskedConv2d(int64_t in, int64_t out, int64_t kernel, char mask_type, int64_t color_groups = 1, bool bias = true,
               TensorOptions o = {});
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "MaskedConv2d"; }
  Tensor weight, bias, mask;
};

// ---- recurrent layers (nn/recurrent.cpp) -----------------------------------------
// PyTorch's equations and parameter layout. For x [B, F] and h, c [B, H]:
//   GRU  (Cho et al. 2014), weight_ih [3H, F], weight_hh [3H, H], gate order r, z, n:
//     r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz)
//     n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h
//   LSTM (Hochreiter & Schmidhuber 1997), weight_ih [4H, F], weight_hh [4H, H], order i, f, g, o:
//     i, f, o = σ(·), g = tanh(·) of W_i* x + b_i* + W_h* h + b_h*
//     c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c')
// Biases may be undefined. Every parameter starts U(±1/√H).
Tensor gru_cell(const Tensor& x, const Tensor& h, const Tensor& weight_ih, const Tensor& weight_hh,
                const Tensor& bias_ih = {}, const Tensor& bias_hh = {});
std::pair<Tensor, Tensor> lstm_cell(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& weight_ih,
                                    const Tensor& weight_hh, const Tensor& bias_ih = {}, const Tensor& bias_hh = {});
// The LSTM state update alone, from the gates' summed pre-activations: gates
// [B, 4H, ...] (i, f, g, o along axis 1, lstm_cell's order) and c [B, H, ...] →
// (h', c') as above. lstm_cell and LSTM are this after their affine maps; a
// convolutional LSTM (PixelRNN's Row LSTM, van den Oord et al. 2016 §3.1) computes
// the pre-activations by convolutions and updates feature maps [B, 4H, W] with it.
// Throws unless gates is c's shape with 4× the channels.
std::pair<Tensor, Tensor> lstm_update(const Tensor& gates, const Tensor& c);

class GRUCell : public Module {
 public:
  GRUCell(int64_t input_size, int64_t hidden_size, bool bias = true, TensorOptions o = {});
  Tensor forward(const Tensor& x) override;  // from h = 0
  Tensor forward(const Tensor& x, const Tensor& h);
  std::string name() const override { return "GRUCell"; }
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

class LSTMCell : public Module {
 public:
  LSTMCell(int64_t input_size, int64_t hidden_size, bool bias = true, TensorOptions o = {});
  Tensor forward(const Tensor& x) override;  // h' from h = c = 0
  std::pair<Tensor, Tensor> forward(const Tensor& x, const Tensor& h, const Tensor& c);  // (h', c')
  std::string name() const override { return "LSTMCell"; }
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

// One-layer, unidirectional, batch-first GRU / LSTM over x [B, T, F] (parameters
// named weight_ih_l0 … as PyTorch's). `lengths` (int64 [B], each in [0, T], on any
// device) gives the masked form: for t ≥ lengths[b] the state of sequence b is
// frozen and its output is zero, so h_n is the state after its last real step (what
// PyTorch's packed sequences give). h0/c0 [B, H] default to zeros.
struct RNNOutput {
  Tensor output;  // [B, T, H]
  Tensor h_n;     // [B, H]
  Tensor c_n;     // [B, H], LSTM only
};
class GRU : public Module {
 public:
  GRU(int64_t input_size, int64_t hidden_size, bool bias = true, TensorOptions o = {});
  Tensor forward(const Tensor& x) override { return forward(x, Tensor{}).output; }
  RNNOutput forward(const Tensor& x, const Tensor& lengths, const Tensor& h0 = {});
  std::string name() const override { return "GRU"; }
  Tensor weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0;
};
class LSTM : public Module {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, bool bias = true, TensorOptions o = {});
  Tensor forward(const Tensor& x) override { return forward(x, Tensor{}).output; }
  RNNOutput forward(const Tensor& x, const Tensor& lengths, const Tensor& h0 = {}, const Tensor& c0 = {});
  std::string name() const override { return "LSTM"; }
  Tensor weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0;
};

// ---- attention and embeddings (nn/attention.cpp) ---------------------------------
// Vaswani et al. 2017, eq. 1: softmax(q kᵀ / √d) v for q [..., N, d], k [..., M, d],
// v [..., M, dv] (e.g. [B, heads, N, d]; batch dims broadcast). `mask`, if defined,
// broadcasts to [..., N, M] on q's device (any dtype): 0 means "do not attend" (the score
// becomes −1e30 before the softmax, so a fully masked row averages v uniformly).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask = {});

// Multi-head attention (Vaswani et al. 2017, §3.2.2), batch-first: query [B, N, E],
// key/value [B, M, E] → [B, N, E]. PyTorch's layout: in_proj_weight [3E, E] (q, k, v
// rows), in_proj_bias [3E], out_proj (Linear E → E); xavier-uniform in_proj, zero biases.
// `mask` broadcasts to [B, heads, N, M] (see scaled_dot_product_attention).
class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, bool bias = true, TensorOptions o = {});
  Tensor forward(const Tensor& x) override { return forward(x, x, x); }  // self-attention
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& mask = {});
  std::string name() const override { return "MultiheadAttention"; }
  Tensor in_proj_weight, in_proj_bias;
  std::shared_ptr<Linear> out_proj;

 private:
  int64_t heads_;
};

// Self-attention over the pixels of a feature map, as in SAGAN/DDPM's U-Net blocks:
// x [B, C, H, W] → x + MHA(GroupNorm(x)) with the H·W pixels as tokens.
class SelfAttention2d : public Module {
 public:
  SelfAttention2d(int64_t channels, int64_t num_heads = 1, int64_t norm_groups = 1, TensorOptions o = {});
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "SelfAttention2d"; }
  std::shared_ptr<GroupNorm> norm;
  std::shared_ptr<MultiheadAttention> attn;
};

// Sinusoidal embedding of (time steps, positions) t [B] (Vaswani et al. 2017, §3.5;
// DDPM's time-step embedding): [B, dim] = [sin(t·f_0) … sin(t·f_{h−1}), cos(t·f_0) …
// cos(t·f_{h−1})] with h = ⌊dim/2⌋, f_k = 10000^(−k/h) (Vaswani's frequencies; DDPM's
// code divides by h − 1), and a zero last column when dim is odd. Computed in double
// on t's device, returned in `dtype`; not differentiable in t.
Tensor sinusoidal_embedding(const Tensor& t, int64_t dim, DType dtype = DType::Float32);

}  // namespace loom::nn
