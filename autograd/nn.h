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

}  // namespace loom::nn
