// Optimizers, gradient clipping, learning-rate schedules and weight averaging.
// Every update is one fused kernel call per (dtype, device) group of parameters
// (kernels/optim.h); parameters without a gradient are skipped, as in PyTorch.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "autograd/nn.h"

namespace loom {
struct TensorList;  // kernels/optim.h: the pointer arrays of one fused update
}

namespace loom::optim {

class Optimizer {
 public:
  Optimizer(std::vector<Tensor> params, double lr);
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  // Calls of step(); each parameter also counts its own updates (in the state dict).
  int64_t steps() const { return steps_; }
  const std::vector<Tensor>& params() const { return params_; }

  // What a training checkpoint stores so that resuming is bit-exact: per
  // parameter i with state, "step.<i>" (its own update count, int64) and
  // "<role>.<i>" (e.g. exp_avg.0), plus "step" (calls of step()). A checkpoint
  // from before per-parameter steps holds only "step": every parameter with
  // state then takes that step, which is exact unless a parameter skipped steps.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& state);

 protected:
  // Runs `update` on every (dtype, device) group of parameters that have a
  // gradient; roles beyond param and grad come from state_ (created lazily as zeros).
  void for_each_group(int n_state_roles, const std::function<void(const KernelCtx&, DType, const TensorList&)>& update);
  std::vector<Tensor> params_;
  std::vector<std::vector<Tensor>> state_;  // [role][param]
  std::vector<int64_t> param_steps_;        // [param]: updates it has had (PyTorch's state["step"])
  std::vector<std::string> role_names_;
  double lr_;
  int64_t steps_ = 0;
};

struct SGDOptions {
  double lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions o);
  void step() override;

 private:
  SGDOptions o_;
};

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
};
// Adam with L2 weight decay folded into the gradient; AdamW decouples it.
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions o, bool decoupled_weight_decay = false);
  void step() override;

 private:
  AdamOptions o_;
  bool decoupled_;
};
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamOptions o) : Adam(std::move(params), o, true) {}
};

// Scales all gradients so their global L2 norm is at most max_norm; returns the
// norm before clipping.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

// Learning-rate factor as a function of the step: linear warm-up from 0 over
// `warmup` steps, then constant, cosine or linear decay to `final_factor` at
// `total` steps.
class LRSchedule {
 public:
  enum class Kind { Constant, Cosine, Linear };
  static LRSchedule constant(int64_t warmup = 0) { return {Kind::Constant, warmup, 0, 1}; }
  static LRSchedule cosine(int64_t total, int64_t warmup = 0, double final_factor = 0) {
    return {Kind::Cosine, warmup, total, final_factor};
  }
  static LRSchedule linear(int64_t total, int64_t warmup = 0, double final_factor = 0) {
    return {Kind::Linear, warmup, total, final_factor};
  }
  static LRSchedule parse(const std::string& name, int64_t total, int64_t warmup);  // constant|cosine|linear
  double factor(int64_t step) const;

 private:
  LRSchedule(Kind k, int64_t warmup, int64_t total, double final_factor)
      : kind_(k), warmup_(warmup), total_(total), final_(final_factor) {}
  Kind kind_;
  int64_t warmup_, total_;
  double final_;
};

// Exponential moving average of a module's parameters (and a copy of its
// buffers): avg ← decay·avg + (1 − decay)·param after each update.
class EMA {
 public:
  EMA(const nn::Module& m, double decay);
  void update(const nn::Module& m);
  // Writes the averaged weights into a module of the same architecture.
  void copy_to(nn::Module& m) const;
  const std::map<std::string, Tensor>& averages() const { return avg_; }

 private:
  double decay_;
  std::map<std::string, Tensor> avg_;
};

}  // namespace loom::optim
