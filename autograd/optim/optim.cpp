#include "autograd/optim.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/graph.h"
#include "kernels/optim.h"

namespace loom::optim {

namespace {

// Groups tensors by (dtype, device) preserving order and calls fn with each
// group's indices: one fused kernel call per group.
void group_by_kind(const std::vector<Tensor>& ts, const std::function<void(Device, DType, const std::vector<size_t>&)>& fn) {
  std::vector<std::pair<std::pair<Device, DType>, std::vector<size_t>>> groups;
  for (size_t i = 0; i < ts.size(); ++i) {
    auto key = std::make_pair(ts[i].device(), ts[i].dtype());
    auto it = std::find_if(groups.begin(), groups.end(), [&](auto& g) { return g.first == key; });
    if (it == groups.end()) it = groups.insert(groups.end(), {key, {}});
    it->second.push_back(i);
  }
  for (auto& [key, idx] : groups) fn(key.first, key.second, idx);
}

// The pointer arrays of one fused call: role r of member j is roles[r][idx[j]],
// its step (if `steps` is given) steps[idx[j]]. Marks every tensor of role 0 as
// written (version bump).
class FusedList {
 public:
  FusedList(const std::vector<const std::vector<Tensor>*>& roles, const std::vector<size_t>& idx,
            const std::vector<int64_t>* steps = nullptr) {
    for (size_t i : idx) numel_.push_back((*roles[0])[i].numel());
    if (steps)
      for (size_t i : idx) step_.push_back((*steps)[i]);
    for (size_t r = 0; r < roles.size(); ++r)
      for (size_t i : idx) ptr_[r].push_back((*roles[r])[i].data_ptr());
    for (size_t i : idx) ++(*roles[0])[i].impl().storage->version;
    list_.count = static_cast<int64_t>(idx.size());
    list_.numel = numel_.data();
    for (int r = 0; r < 4; ++r) list_.ptr[r] = ptr_[r].data();
    list_.step = steps ? step_.data() : nullptr;
  }
  const TensorList& list() const { return list_; }

 private:
  std::vector<int64_t> numel_, step_;
  std::vector<void*> ptr_[4];
  TensorList list_;
};

}  // namespace

void Optimizer::add_group(const std::vector<Tensor>& params, double lr) {
  LOOM_CHECK(std::isfinite(lr) && lr >= 0, "optimizer: learning rate of group ", groups_.size(),
             " must be finite and non-negative, got ", lr);
  for (const Tensor& p : params) {
    const size_t i = params_.size();
    LOOM_CHECK(p.defined() && p.requires_grad() && p.is_leaf(), "optimizer: parameter ", i,
               " must be a leaf tensor that requires grad");
    for (size_t j = 0; j < i; ++j)
      LOOM_CHECK(params_[j].impl_ptr() != p.impl_ptr(), "optimizer: parameter ", i, " (group ", groups_.size(),
                 ") is parameter ", j, " again; a parameter belongs to one group only");
    params_.push_back(p);
    param_steps_.push_back(0);
  }
  groups_.push_back({params_.size() - params.size(), params_.size(), lr, lr});
}

double Optimizer::lr() const {
  LOOM_CHECK(groups_.size() == 1, "optimizer lr(): this optimizer has ", groups_.size(),
             " parameter groups; use group_lr(g)");
  return groups_[0].lr;
}

void Optimizer::set_lr(double lr) {
  LOOM_CHECK(groups_.size() == 1, "optimizer set_lr(): this optimizer has ", groups_.size(),
             " parameter groups; use set_group_lr(g, lr) or scale_lr(factor)");
  set_group_lr(0, lr);
}

double Optimizer::group_lr(size_t g) const {
  LOOM_CHECK(g < groups_.size(), "optimizer group_lr: group ", g, " of ", groups_.size());
  return groups_[g].lr;
}

void Optimizer::set_group_lr(size_t g, double lr) {
  LOOM_CHECK(g < groups_.size(), "optimizer set_group_lr: group ", g, " of ", groups_.size());
  LOOM_CHECK(std::isfinite(lr) && lr >= 0, "optimizer: learning rate must be finite and non-negative, got ", lr);
  groups_[g].lr = lr;
}

void Optimizer::scale_lr(double factor) {
  LOOM_CHECK(std::isfinite(factor) && factor >= 0, "optimizer scale_lr: factor must be finite and non-negative, got ",
             factor);
  for (Group& g : groups_) g.lr = g.initial_lr * factor;
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

void Optimizer::for_each_fused_call(
    int n_state_roles, const std::function<void(const KernelCtx&, DType, const TensorList&, size_t)>& update) {
  if (state_.empty()) state_.assign(n_state_roles, std::vector<Tensor>(params_.size()));
  NoGrad ng;
  CudaGraph* const graph = CudaGraph::capturing();
  const int64_t steps_before = steps_;
  const std::vector<int64_t> param_steps_before = graph ? param_steps_ : std::vector<int64_t>{};
  // The parameters this call updates: those with a gradient, or, when a replay of a CUDA graph
  // restages this call, the ones the captured call updated (whatever gradients exist by then).
  std::vector<char> updated(params_.size(), 0);
  for (size_t i = 0; i < params_.size(); ++i)
    updated[i] = restaging_ ? (*restaging_)[i] : char(params_[i].grad().defined());
  for (size_t i = 0; i < params_.size(); ++i) {  // checked before any state changes
    const Tensor& p = params_[i];
    LOOM_CHECK(!p.grad().defined() || (p.grad().dtype() == p.dtype() && p.grad().device() == p.device()),
               "optimizer: parameter ", i, " is ", p.dtype(), " on ", p.device(), " but its gradient is ",
               p.grad().dtype(), " on ", p.grad().device(),
               " (was its module moved with to() between forward and backward?)");
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    std::vector<Tensor> params, grads;
    std::vector<int64_t> steps;
    std::vector<std::vector<Tensor>> states(n_state_roles);
    for (size_t i = groups_[g].begin; i < groups_[g].end; ++i) {
      const Tensor& p = params_[i];
      if (!updated[i]) continue;
      params.push_back(p);
      // Restaging writes only the call's values (kernels/graph.h): the pointers of a gradient
      // replaced or dropped since the capture are not read, the parameter stands in for it.
      grads.push_back(p.grad().defined() ? p.grad() : p);
      steps.push_back(++param_steps_[i]);
      for (int r = 0; r < n_state_roles; ++r) {
        Tensor& st = state_[r][i];
        if (!st.defined()) {
          // Zeroing it inside a graph would zero it again on every replay.
          LOOM_CHECK(!CudaGraph::capturing(), "optimizer: parameter ", i, " has no ", role_names_[r],
                     " state yet; run one step eagerly before capturing a CUDA graph");
          st = zeros_like(p.detach());
        }
        // The parameter was moved or converted since (Module::to): its state follows.
        if (st.dtype() != p.dtype() || st.device() != p.device()) st = st.to(p.device()).to(p.dtype());
        states[r].push_back(st);
      }
    }
    std::vector<const std::vector<Tensor>*> roles{&params, &grads};
    for (auto& st : states) roles.push_back(&st);
    group_by_kind(params, [&](Device d, DType dt, const std::vector<size_t>& idx) {
      FusedList fused(roles, idx, &steps);
      update(kernel_ctx(d), dt, fused.list(), g);
    });
  }
  if (graph) {
    // In a CUDA graph: the capture puts the counters back when it ends, and every replay runs
    // step() again on the host over the same parameters, to restage the learning rate and the
    // bias corrections (nothing launches then).
    graph->restage_on_replay(
        this, [this, steps_before, param_steps_before] {
          steps_ = steps_before;
          param_steps_ = param_steps_before;
        },
        [this, updated] {
          restaging_ = &updated;
          try {
            step();
          } catch (...) {
            restaging_ = nullptr;
            throw;
          }
          restaging_ = nullptr;
        });
  }
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
  std::map<std::string, Tensor> out;
  out["step"] = from_vector(std::vector<int64_t>{steps_}, {});
  for (size_t g = 0; g < groups_.size(); ++g)
    out[str("lr.", g)] = from_vector(std::vector<double>{groups_[g].lr}, {}, TensorOptions{DType::Float64});
  for (size_t i = 0; i < params_.size(); ++i)
    if (param_steps_[i] > 0) out[str("step.", i)] = from_vector(std::vector<int64_t>{param_steps_[i]}, {});
  for (size_t r = 0; r < state_.size(); ++r)
    for (size_t i = 0; i < params_.size(); ++i)
      if (state_[r][i].defined()) out[str(role_names_[r], ".", i)] = state_[r][i].detach();
  return out;
}

namespace {
// A count stored in a state dict: one integer in [lo, hi], exact in any dtype
// (an int64 as such; a float only when finite and integral, so that no
// out-of-range float->int conversion happens).
int64_t stored_count(const Tensor& t, const std::string& name, int64_t lo, int64_t hi) {
  LOOM_CHECK(t.numel() == 1, "optimizer load_state_dict: '", name, "' must hold one count, got shape ", t.shape());
  int64_t v = 0;
  if (t.dtype() == DType::Int64 || t.dtype() == DType::Int32) {
    v = t.to(DType::Int64).to_vector<int64_t>()[0];
  } else {
    const double d = t.item();
    LOOM_CHECK(std::isfinite(d) && d == std::floor(d) && d >= -9.0e18 && d <= 9.0e18, "optimizer load_state_dict: '",
               name, "' = ", d, " is not an integer count");
    v = static_cast<int64_t>(d);
  }
  LOOM_CHECK(v >= lo && v <= hi, "optimizer load_state_dict: '", name, "' = ", v,
             " is out of range: a step count must be >= ", lo, " and <= ", hi);
  return v;
}
}  // namespace

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state) {
  auto it = state.find("step");
  LOOM_CHECK(it != state.end(), "optimizer load_state_dict: no 'step' entry");
  const int64_t steps = stored_count(it->second, "step", 0, std::numeric_limits<int64_t>::max());
  std::vector<std::vector<Tensor>> states(role_names_.size(), std::vector<Tensor>(params_.size()));
  std::vector<int64_t> param_steps(params_.size(), 0);
  std::vector<double> lrs;
  for (const Group& g : groups_) lrs.push_back(g.lr);
  bool per_param_steps = false;
  for (const auto& [name, t] : state) {
    if (name == "step") continue;
    const size_t dot = name.find('.');
    const std::string role = name.substr(0, dot);
    auto r = std::find(role_names_.begin(), role_names_.end(), role);
    size_t i = 0;
    try {
      i = dot == std::string::npos ? params_.size() : std::stoul(name.substr(dot + 1));
    } catch (const std::exception&) {
      i = params_.size();
    }
    if (role == "lr") {
      LOOM_CHECK(i < groups_.size() && t.numel() == 1, "optimizer load_state_dict: unexpected entry '", name,
                 "' (this optimizer has ", groups_.size(), " parameter groups)");
      lrs[i] = t.to(DType::Float64).to_vector<double>()[0];
      LOOM_CHECK(std::isfinite(lrs[i]) && lrs[i] >= 0, "optimizer load_state_dict: '", name, "' = ", lrs[i],
                 " is not a learning rate (finite, >= 0)");
      continue;
    }
    LOOM_CHECK((role == "step" || r != role_names_.end()) && i < params_.size(),
               "optimizer load_state_dict: unexpected entry '", name, "' (this optimizer has ", params_.size(),
               " parameters)");
    if (role == "step") {
      // A parameter is updated at most once per call of step().
      param_steps[i] = stored_count(t, name, 1, steps);
      per_param_steps = true;
      continue;
    }
    LOOM_CHECK(t.shape() == params_[i].shape(), "optimizer load_state_dict: '", name, "' has shape ", t.shape(),
               " but parameter ", i, " has shape ", params_[i].shape());
    states[r - role_names_.begin()][i] = t.detach().to(params_[i].device()).to(params_[i].dtype()).clone();
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const bool has_state = std::any_of(states.begin(), states.end(), [&](auto& role) { return role[i].defined(); });
    if (!per_param_steps && has_state) param_steps[i] = steps;  // a checkpoint from before per-parameter steps
    LOOM_CHECK(!has_state || param_steps[i] > 0, "optimizer load_state_dict: parameter ", i,
               " has state but no 'step.", i, "' entry");
  }
  // Nothing changes until everything has been checked.
  steps_ = steps;
  state_ = std::move(states);
  param_steps_ = std::move(param_steps);
  for (size_t g = 0; g < groups_.size(); ++g) set_group_lr(g, lrs[g]);
}

SGD::SGD(const std::vector<ParamGroup<SGDOptions>>& groups) : Optimizer(groups) {
  for (const auto& [params, o] : groups) {
    LOOM_CHECK(o.momentum >= 0 && o.weight_decay >= 0, "SGD: momentum ", o.momentum, " and weight decay ",
               o.weight_decay, " must be non-negative");
    LOOM_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
               "SGD: Nesterov needs momentum > 0 and no dampening");
    options_.push_back(o);
  }
  role_names_ = {"momentum"};
}

void SGD::step() {
  // One momentum role for all groups: a group without momentum leaves its buffers unused.
  const bool any_momentum = std::any_of(options_.begin(), options_.end(), [](auto& o) { return o.momentum != 0; });
  for_each_fused_call(any_momentum ? 1 : 0, [&](const KernelCtx& k, DType dt, const TensorList& l, size_t g) {
    const SGDOptions& o = options_[g];
    const SgdHyper h{group_lr(g), o.momentum, o.dampening, o.weight_decay, o.nesterov};
    LOOM_DISPATCH(k, LOOM_CUDA_OPTIM, sgd_step, k, dt, l, h);
  });
  ++steps_;
}

Adam::Adam(const std::vector<ParamGroup<AdamOptions>>& groups, bool decoupled)
    : Optimizer(groups), decoupled_(decoupled) {
  for (const auto& [params, o] : groups) {
    LOOM_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, decoupled ? "AdamW" : "Adam",
               ": betas must lie in [0, 1), got (", o.beta1, ", ", o.beta2, ")");
    LOOM_CHECK(o.eps >= 0 && o.weight_decay >= 0, decoupled ? "AdamW" : "Adam", ": eps and weight decay must be >= 0");
    options_.push_back(o);
  }
  role_names_ = {"exp_avg", "exp_avg_sq"};
}

void Adam::step() {
  for_each_fused_call(2, [&](const KernelCtx& k, DType dt, const TensorList& l, size_t g) {
    const AdamOptions& o = options_[g];
    const AdamHyper h{group_lr(g), o.beta1, o.beta2, o.eps, o.weight_decay, decoupled_};
    LOOM_DISPATCH(k, LOOM_CUDA_OPTIM, adam_step, k, dt, l, h);
  });
  ++steps_;
}

Tensor clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  LOOM_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be positive, got ", max_norm);
  NoGrad ng;
  std::vector<Tensor> grads;
  for (const Tensor& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return zeros({}, TensorOptions{DType::Float64});
  Tensor total;  // Σ g², float64 0-d on the first gradient's device
  group_by_kind(grads, [&](Device d, DType dt, const std::vector<size_t>& idx) {
    FusedList fused({&grads}, idx);
    KernelCtx k = kernel_ctx(d);
    Tensor s = empty({}, TensorOptions{DType::Float64, d});
    LOOM_DISPATCH(k, LOOM_CUDA_OPTIM, sum_squares, k, dt, fused.list(), static_cast<double*>(s.data_ptr()));
    total = total.defined() ? total + s.to(total.device()) : s;
  });
  const Tensor norm = sqrt(total);
  CudaGraph* graph = CudaGraph::capturing();
  auto check = [norm, replayed = graph != nullptr] {
    const double n = norm.item();
    LOOM_CHECK(std::isfinite(n), "clip_grad_norm: the gradient norm is ", n,
               " (a gradient contains inf or NaN; lower the learning rate or check the loss)",
               replayed ? "; found after a CUDA-graph replay whose updates already ran: the parameters may hold "
                          "inf or NaN, resume from the last checkpoint"
                        : "");
  };
  if (graph)
    graph->check_after_replay(check);
  else
    check();
  const Tensor factor = clamp(max_norm / (norm + 1e-6), 0.0, 1.0);  // 1: the scale kernels change nothing
  group_by_kind(grads, [&](Device d, DType dt, const std::vector<size_t>& idx) {
    FusedList fused({&grads}, idx);
    KernelCtx k = kernel_ctx(d);
    const Tensor f = factor.to(d);
    LOOM_DISPATCH(k, LOOM_CUDA_OPTIM, scale, k, dt, fused.list(), static_cast<const double*>(f.data_ptr()));
  });
  return norm;
}

LRSchedule LRSchedule::parse(const std::string& name, int64_t total, int64_t warmup) {
  if (name == "constant") return constant(warmup);
  if (name == "cosine") return cosine(total, warmup);
  if (name == "linear") return linear(total, warmup);
  throw Error(str("lr schedule: unknown '", name, "' (expected constant, cosine or linear)"));
}

double LRSchedule::factor(int64_t step) const {
  if (step < warmup_) return static_cast<double>(step + 1) / static_cast<double>(warmup_);
  if (kind_ == Kind::Constant) return 1;
  const int64_t span = std::max<int64_t>(1, total_ - warmup_);
  const double t = std::min(1.0, static_cast<double>(step - warmup_) / static_cast<double>(span));
  if (kind_ == Kind::Linear) return 1 + (final_ - 1) * t;
  return final_ + (1 - final_) * 0.5 * (1 + std::cos(M_PI * t));  // cosine annealing (Loshchilov & Hutter 2017)
}

EMA::EMA(std::map<std::string, Tensor> average, double decay) : decay_(decay), avg_(std::move(average)) {
  LOOM_CHECK(decay >= 0 && decay <= 1, "EMA: decay must lie in [0, 1], got ", decay);
}

EMA::EMA(const nn::Module& m, double decay) : decay_(decay) {
  LOOM_CHECK(decay >= 0 && decay <= 1, "EMA: decay must lie in [0, 1], got ", decay);
  NoGrad ng;
  for (auto& [name, t] : m.state_dict()) avg_[name] = t.clone();
}

EMA EMA::into(nn::Module& average, double decay) { return EMA(average.state_dict(), decay); }

void EMA::set_decay(double decay) {
  LOOM_CHECK(decay >= 0 && decay <= 1, "EMA: decay must lie in [0, 1], got ", decay);
  decay_ = decay;
}

void EMA::update(const nn::Module& m) {
  NoGrad ng;
  auto average_of = [&](const std::string& name, const Tensor& t) -> Tensor& {
    auto it = avg_.find(name);
    LOOM_CHECK(it != avg_.end() && it->second.shape() == t.shape(), "EMA update: '", name, "' ", t.shape(),
               " is not in the average (a module of another architecture?)");
    return it->second;
  };
  for (auto& [name, b] : m.named_buffers()) average_of(name, b).copy_(b);  // running statistics: copied
  std::vector<Tensor> avgs, params;
  for (auto& [name, p] : m.named_parameters()) {
    avgs.push_back(average_of(name, p));
    params.push_back(p.detach());
  }
  lerp(avgs, params);
  // In a CUDA graph: every replay stages the decay set by then (nothing launches then).
  if (CudaGraph* graph = CudaGraph::capturing())
    graph->restage_on_replay(this, {}, [this, avgs, params] { lerp(avgs, params); });
}

void EMA::lerp(const std::vector<Tensor>& avgs, const std::vector<Tensor>& values) const {
  group_by_kind(avgs, [&](Device d, DType dt, const std::vector<size_t>& idx) {
    FusedList fused({&avgs, &values}, idx);
    KernelCtx k = kernel_ctx(d);
    LOOM_DISPATCH(k, LOOM_CUDA_OPTIM, lerp_to, k, dt, fused.list(), decay_);
  });
}

void EMA::copy_to(nn::Module& m) const { m.load_state_dict(avg_); }

}  // namespace loom::optim
