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
  std::vector<std::string> problems;
  for (const auto& [n, t] : mine) {
    auto it = state.find(n);
    if (it == state.end()) {
      problems.push_back(str("missing: ", n, " ", t.shape(), " ", t.dtype()));
    } else if (it->second.shape() != t.shape() || it->second.dtype() != t.dtype()) {
      problems.push_back(str("shape mismatch: ", n, " is ", t.shape(), " ", t.dtype(), " in the model, ",
                             it->second.shape(), " ", it->second.dtype(), " in the state"));
    }
  }
  for (const auto& [n, t] : state)
    if (!mine.count(n)) problems.push_back(str("unexpected: ", n, " ", t.shape(), " ", t.dtype()));
  if (!problems.empty()) {
    // One line, so that a caller can prefix it with the file and the module's role.
    std::string msg = str("load_state_dict: the state does not fit this ", name(), ": ");
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    throw Error(msg);
  }
  NoGrad ng;
  for (auto& [n, t] : mine) t.copy_(state.at(n));
}

std::vector<Module*> Module::modules() {
  std::vector<Module*> out{this};
  for (auto& [n, child] : children_) {
    std::vector<Module*> below = child->modules();
    out.insert(out.end(), below.begin(), below.end());
  }
  return out;
}

Module& Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& [n, child] : children_) child->apply(fn);
  fn(*this);
  return *this;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, child] : children_) child->train(on);
}

namespace {

// Replaces t's data by convert(t) in place (PyTorch's `param.data = fn(param)`):
// the TensorImpl is kept, its storage, offset and dtype are swapped, and its
// gradient is converted alike, so every handle to t sees the new tensor.
void convert_in_place(Tensor& t, const std::function<Tensor(const Tensor&)>& convert) {
  Tensor value = convert(t).detach();
  TensorImpl& impl = t.impl();
  if (value.impl().storage == impl.storage) return;  // already of that dtype and device
  // The old data counts as written: a pending backward that saved it is refused
  // (its gradient would have the old dtype) instead of mixing dtypes.
  ++impl.storage->version;
  const Tensor grad = t.grad();
  impl.storage = value.impl().storage;
  impl.offset = value.impl().offset;
  impl.dtype = value.dtype();
  impl.grad = grad.defined() ? convert(grad).detach().impl_ptr() : nullptr;
}

}  // namespace

void Module::convert_tensors(const std::function<Tensor(const Tensor&)>& convert) {
  NoGrad ng;
  for (auto& [n, t] : params_)
    if (t->defined()) convert_in_place(*t, convert);
  for (auto& [n, t] : buffers_)
    if (t->defined()) convert_in_place(*t, convert);
  for (auto& [n, child] : children_) child->convert_tensors(convert);
}

void Module::to(Device d) {
  convert_tensors([d](const Tensor& t) { return t.to(d); });
}

void Module::to(DType dt) {
  convert_tensors([dt](const Tensor& t) { return is_floating(t.dtype()) ? t.to(dt) : t; });
}

void Module::zero_grad() {
  for (auto& [n, t] : params_)
    if (t->defined()) t->zero_grad();
  for (auto& [n, child] : children_) child->zero_grad();
}

}  // namespace loom::nn
