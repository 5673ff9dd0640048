// Optimizers, gradient clipping, learning-rate schedules and weight averaging.
// Every update is one fused kernel call per parameter group and (dtype, device)
// among its parameters (kernels/optim.h); parameters without a gradient are
// skipped, as in PyTorch.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "autograd/nn.h"

namespace loom {
struct TensorList;  // kernels/optim.h: the pointer arrays of one fused update
}

namespace loom::optim {

// A set of parameters with its own hyperparameters (torch.optim's param_groups):
// e.g. a smaller learning rate or no weight decay for some layers.
template <class Options>
struct ParamGroup {
  std::vector<Tensor> params;
  Options options;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();

  // Learning rates. lr() and set_lr() are the single-group case (an error with
  // several groups); group_lr(g) and set_group_lr(g, lr) reach any group.
  double lr() const;
  void set_lr(double lr);
  size_t group_count() const { return groups_.size(); }
  double group_lr(size_t g) const;
  void set_group_lr(size_t g, double lr);
  // Every group's lr ← the lr it was built with × factor: how a schedule
  // (LRSchedule::factor(step)) applies to all groups at once.
  void scale_lr(double factor);

  // Calls of step(); each parameter also counts its own updates (in the state dict).
  int64_t steps() const { return steps_; }
  // All parameters, group after group; their positions are the <i> of the state dict.
  const std::vector<Tensor>& params() const { return params_; }

  // What a training checkpoint stores so that resuming is bit-exact: per
  // parameter i with state, "step.<i>" (its own update count, int64) and
  // "<role>.<i>" (e.g. exp_avg.0); per group g, "lr.<g>" (float64); plus "step"
  // (calls of step()). A checkpoint from before per-parameter steps holds only
  // "step": every parameter with state then takes that step, which is exact
  // unless a parameter skipped steps; one without "lr.<g>" keeps the current lrs.
  std::map<std::string, Tensor> state_dict() const;
  // Checks every entry (counts are integers in range: per-parameter steps in
  // [1, step]; learning rates finite and >= 0; shapes match) before changing anything.
  void load_state_dict(const std::map<std::string, Tensor>& state);
  // The per-parameter state roles ("exp_avg", "exp_avg_sq" for Adam): the
  // <role> of the state dict's "<role>.<i>" entries.
  const std::vector<std::string>& state_roles() const { return role_names_; }

 protected:
  template <class Options>
  explicit Optimizer(const std::vector<ParamGroup<Options>>& groups) {
    for (const auto& g : groups) add_group(g.params, g.options.lr);
  }
  // Runs update(ctx, dtype, list, g) once per parameter group g and (dtype,
  // device) among its parameters that have a gradient; roles beyond param and
  // grad come from state_ (created lazily as zeros).
  void for_each_fused_call(int n_state_roles,
                           const std::function<void(const KernelCtx&, DType, const TensorList&, size_t)>& update);
  std::vector<Tensor> params_;
  std::vector<std::vector<Tensor>> state_;  // [role][param]
  std::vector<int64_t> param_steps_;        // [param]: updates it has had (PyTorch's state["step"])
  std::vector<std::string> role_names_;
  int64_t steps_ = 0;
  // While a CUDA graph's replay restages a captured step() (autograd/graph.h): which
  // parameters the captured call updated. Null otherwise.
  const std::vector<char>* restaging_ = nullptr;

 private:
  struct Group {
    size_t begin, end;  // its parameters: params_[begin, end)
    double lr, initial_lr;
  };
  void add_group(const std::vector<Tensor>& params, double lr);
  std::vector<Group> groups_;
};

struct SGDOptions {
  double lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions o) : SGD(std::vector<ParamGroup<SGDOptions>>{{std::move(params), o}}) {}
  explicit SGD(const std::vector<ParamGroup<SGDOptions>>& groups);
  void step() override;

 private:
  std::vector<SGDOptions> options_;  // [group]; the lr lives in the group (Optimizer)
};

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
};
// Adam with L2 weight decay folded into the gradient; AdamW decouples it.
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions o, bool decoupled_weight_decay = false)
      : Adam(std::vector<ParamGroup<AdamOptions>>{{std::move(params), o}}, decoupled_weight_decay) {}
  explicit Adam(const std::vector<ParamGroup<AdamOptions>>& groups, bool decoupled_weight_decay = false);
  void step() override;

 private:
  std::vector<AdamOptions> options_;  // [group]; the lr lives in the group (Optimizer)
  bool decoupled_;
};
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamOptions o) : Adam(std::move(params), o, true) {}
  explicit AdamW(const std::vector<ParamGroup<AdamOptions>>& groups) : Adam(groups, true) {}
};

// Scales all gradients so that their global L2 norm is at most max_norm, as
// PyTorch's clip_grad_norm_ does: g ← g · min(1, max_norm / (‖g‖₂ + 1e-6)), the norm
// accumulated in double. Returns the norm before clipping, a float64 0-d tensor on
// the gradients' device (the CPU when there are none), computed and applied there
// without reading it on the host, so that a step captured as a CUDA graph may clip.
// Errors: max_norm ≤ 0; a norm that is inf or NaN (a gradient holds one) — before
// anything is scaled when eager, after the replay that met it inside a CUDA graph
// (autograd/graph.h: checked like the index checks, that replay's writes undefined).
Tensor clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

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
  // The average starts as m's weights, kept in a copy of its own (averages(), copy_to).
  EMA(const nn::Module& m, double decay);
  // The average is `average`'s own weights, updated in place: a module of the averaged
  // one's architecture (the smoothed network samples come from), which must outlive
  // this EMA and stay on its device (the EMA holds its tensors' storage: a later
  // Module::to gives the module new storage the EMA no longer updates, so move it first);
  // copy_to is then not needed.
  static EMA into(nn::Module& average, double decay);
  // avg ← decay · avg + (1 − decay) · value for each parameter; buffers are copied.
  // Inside a CUDA graph capture each replay restages the decay set by then (set_decay
  // between replays), as an optimizer's learning rate is; m must outlive the graph.
  void update(const nn::Module& m);
  // The decay of the following updates (a warm-up: TensorFlow's
  // ExponentialMovingAverage with num_updates uses min(decay, (1 + n)/(10 + n))).
  void set_decay(double decay);
  double decay() const { return decay_; }
  // Writes the averaged weights into a module of the same architecture.
  void copy_to(nn::Module& m) const;
  const std::map<std::string, Tensor>& averages() const { return avg_; }

 private:
  EMA(std::map<std::string, Tensor> average, double decay);
  // avg ← decay · avg + (1 − decay) · value over the pairs, one fused call per kind.
  void lerp(const std::vector<Tensor>& avgs, const std::vector<Tensor>& values) const;
  double decay_;
  std::map<std::string, Tensor> avg_;
};

}  // namespace loom::optim
