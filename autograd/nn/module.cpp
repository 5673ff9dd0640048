#include <set>

#include "autograd/nn.h"

namespace loom::nn {

Tensor Module::forward(const Tensor&) {
  throw Error(str(name(), ": this module has no single-input forward; call its own methods"));
}

Tensor& Module::register_parameter(const std::string& name, Tensor* field, Tensor value) {
  LOOM_CHECK(value.defined() && is_floating(value.dtype()), this->name(), ": parameter '", name,
             "' must be a defined floating tensor");
  *field = value.detach();
  field->requires_grad_();
  params_.emplace_back(name, field);
  return *field;
}

Tensor& Module::register_buffer(const std::string& name, Tensor* field, Tensor value) {
  *field = value.detach();
  buffers_.emplace_back(name, field);
  return *field;
}

void Module::collect(const std::string& prefix, bool params,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [n, t] : params ? params_ : buffers_)
    if (t->defined()) out.emplace_back(prefix + n, *t);
  for (const auto& [n, child] : children_) child->collect(prefix + n + ".", params, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const Tensor& t : parameters()) n += t.numel();
  return n;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [n, t] : named_parameters()) out.emplace(n, t.detach());
  for (auto& [n, t] : named_buffers()) out.emplace(n, t.detach());
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state) {
  std::map<std::string, Tensor> mine = state_dict();
  std::string problems;
  for (const auto& [n, t] : mine) {
    auto it = state.find(n);
    if (it == state.end()) {
      problems += str("\n  missing: ", n, " ", t.shape());
    } else if (it->second.shape() != t.shape()) {
      problems += str("\n  shape mismatch: ", n, " is ", t.shape(), " in the model, ", it->second.shape(), " in the state");
    }
  }
  for (const auto& [n, t] : state)
    if (!mine.count(n)) problems += str("\n  unexpected: ", n, " ", t.shape());
  LOOM_CHECK(problems.empty(), "load_state_dict: the state does not fit this ", name(), problems);
  NoGrad ng;
  for (auto& [n, t] : mine) t.copy_(state.at(n));
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, child] : children_) child->train(on);
}

void Module::apply(const std::function<Tensor(const Tensor&)>& convert) {
  NoGrad ng;
  for (auto& [n, t] : params_) {
    if (!t->defined()) continue;
    *t = convert(*t).detach();
    t->requires_grad_();
  }
  for (auto& [n, t] : buffers_)
    if (t->defined()) *t = convert(*t).detach();
  for (auto& [n, child] : children_) child->apply(convert);
}

void Module::to(Device d) {
  apply([d](const Tensor& t) { return t.to(d); });
}

void Module::to(DType dt) {
  apply([dt](const Tensor& t) { return is_floating(t.dtype()) ? t.to(dt) : t; });
}

void Module::zero_grad() {
  for (auto& [n, t] : params_)
    if (t->defined()) t->zero_grad();
  for (auto& [n, child] : children_) child->zero_grad();
}

}  // namespace loom::nn
