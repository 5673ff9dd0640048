#include "autograd/tape.h"

#include <algorithm>
#include <unordered_map>

#include "autograd/ops.h"

namespace loom {

namespace {
constexpr const char* kOpNames[] = {
#define X(id, name) name,
#include "autograd/ops.def"
#undef X
};
static_assert(sizeof(kOpNames) / sizeof(kOpNames[0]) == static_cast<size_t>(OpId::Count),
              "every op in ops.def has a name");

struct Tape {
  struct Entry {
    uint64_t seq;
    std::weak_ptr<Node> node;
  };
  std::vector<Entry> entries;
  size_t compact_at = 1024;
  uint64_t next_seq = 0;
  bool enabled = true;

  void compact() {
    std::erase_if(entries, [](const Entry& e) {
      auto n = e.node.lock();
      return !n || n->consumed;
    });
    compact_at = std::max<size_t>(1024, 2 * entries.size());
  }
};

Tape& tape() {
  thread_local Tape t;
  return t;
}
}  // namespace

const char* op_name(OpId op) { return kOpNames[static_cast<size_t>(op)]; }

const char* op_backward_name(OpId op) {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> r;
    for (const char* name : kOpNames) r.push_back(std::string(name) + "_backward");
    return r;
  }();
  return names[static_cast<size_t>(op)].c_str();
}

bool grad_enabled() { return tape().enabled; }
NoGrad::NoGrad() : prev_(tape().enabled) { tape().enabled = false; }
NoGrad::~NoGrad() { tape().enabled = prev_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(OpId op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            std::vector<Tensor> saved, BackwardFn backward) {
  if (!needs_grad(inputs)) return;
  Tape& t = tape();
  auto node = std::make_shared<Node>();
  node->op = op;
  node->seq = t.next_seq++;
  for (const Tensor& in : inputs) {
    node->inputs.push_back(in.defined() && in.requires_grad() ? in.impl_ptr() : nullptr);
    node->input_shapes.push_back(in.defined() ? in.shape() : Shape{});
  }
  for (const Tensor& out : outputs) {
    node->outputs.push_back(out.impl_ptr());
    out.impl().requires_grad = true;
    out.impl().node = node;
  }
  for (Tensor& s : saved) {
    node->saved_versions.push_back(s.defined() ? s.impl().storage->version : 0);
    if (s.defined()) s = s.detach();
  }
  node->saved = std::move(saved);
  node->backward = std::move(backward);
  t.entries.push_back({node->seq, node});
  if (t.entries.size() >= t.compact_at) t.compact();
}

static void accumulate_leaf(TensorImpl& leaf, const Tensor& g) {
  if (!leaf.grad) {
    // Copy so later in-place updates of the gradient never alias a tape value.
    leaf.grad = g.clone().impl_ptr();
  } else {
    Tensor(leaf.grad).add_(g);
  }
}

void backward(const Tensor& root, const Tensor& grad) {
  LOOM_CHECK(root.defined(), "backward: the root tensor is undefined");
  LOOM_CHECK(root.requires_grad(),
             "backward: tensor of shape ", root.shape(),
             " does not require grad (nothing on the tape leads from a parameter to it; "
             "was it computed under NoGrad or from detached tensors?)");
  Tensor seed = grad;
  if (!seed.defined()) {
    LOOM_CHECK(root.numel() == 1, "backward: the root has shape ", root.shape(),
               "; backward without an output gradient needs a one-element tensor "
               "(reduce it, e.g. mean(), or pass grad)");
    seed = ones_like(root);
  } else {
    LOOM_CHECK(seed.shape() == root.shape() && seed.dtype() == root.dtype() && seed.device() == root.device(),
               "backward: output gradient ", seed.shape(), " ", seed.dtype(), " on ", seed.device(),
               " does not match the root ", root.shape(), " ", root.dtype(), " on ", root.device());
  }
  NoGrad no_grad;
  if (root.is_leaf()) {
    accumulate_leaf(root.impl(), seed);
    return;
  }
  std::shared_ptr<Node> start = root.impl().node;
  LOOM_CHECK(!start->consumed, "backward: the tape entry '", op_name(start->op),
             "' that produced this tensor was already consumed by an earlier backward; "
             "run the forward again (one backward per forward)");

  Tape& t = tape();
  std::unordered_map<const TensorImpl*, Tensor> grads;
  grads[root.impl_ptr().get()] = seed;
  // Entries after the root's cannot contribute; start at the root's position.
  auto it = std::upper_bound(t.entries.begin(), t.entries.end(), start->seq,
                             [](uint64_t s, const Tape::Entry& e) { return s < e.seq; });
  bool found = false;
  for (auto e = std::make_reverse_iterator(it); e != t.entries.rend(); ++e) {
    std::shared_ptr<Node> node = e->node.lock();
    if (!node) continue;
    if (node == start) found = true;
    // Gather the gradients flowing into this entry's outputs.
    std::vector<Tensor> gout(node->outputs.size());
    bool any = false;
    for (size_t i = 0; i < node->outputs.size(); ++i) {
      auto out = node->outputs[i].lock();
      if (!out) continue;
      auto g = grads.find(out.get());
      if (g == grads.end()) continue;
      gout[i] = std::move(g->second);
      grads.erase(g);
      any = true;
    }
    if (!any) continue;
    LOOM_CHECK(!node->consumed, "backward: op '", op_name(node->op),
               "' on this path was already consumed by an earlier backward; run the forward "
               "again (one backward per forward)");
    for (size_t i = 0; i < node->saved.size(); ++i) {
      const Tensor& s = node->saved[i];
      LOOM_CHECK(!s.defined() || s.impl().storage->version == node->saved_versions[i],
                 "backward: a tensor of shape ", s.shape(), " saved by '", op_name(node->op),
                 "' was modified in place after it was used (version ", node->saved_versions[i],
                 " -> ", s.impl().storage->version, "); clone it before writing to it");
    }
    for (size_t i = 0; i < gout.size(); ++i) {
      if (gout[i].defined()) continue;
      auto out = node->outputs[i].lock();
      gout[i] = out ? zeros_like(Tensor(out)) : Tensor();
    }
    BackwardCtx ctx{std::move(gout), node->saved, {}};
    for (auto& in : node->inputs) ctx.needs.push_back(in != nullptr);
    std::vector<Tensor> gin;
    {
      const OpRange range(node->op, true);
      gin = node->backward(ctx);
    }
    for (size_t i = 0; i < node->inputs.size(); ++i) {
      const auto& in = node->inputs[i];
      if (!in) continue;
      const Tensor& g = gin.at(i);
      LOOM_CHECK(g.defined() && g.shape() == node->input_shapes[i],
                 "backward: internal error in '", op_name(node->op), "': gradient for input ", i,
                 " has shape ", (g.defined() ? g.shape() : Shape{}), ", expected ", node->input_shapes[i]);
      if (!in->node) {
        accumulate_leaf(*in, g);
      } else {
        LOOM_CHECK(!in->node->consumed, "backward: op '", op_name(in->node->op),
                   "' on this path was already consumed by an earlier backward; run the forward "
                   "again (one backward per forward)");
        auto [slot, fresh] = grads.try_emplace(in.get(), g);
        if (!fresh) slot->second = slot->second + g;
      }
    }
    node->consumed = true;
    node->saved.clear();
    node->backward = nullptr;
  }
  LOOM_CHECK(found, "backward: the entry that produced the root is no longer on this thread's tape "
                    "(the tape was cleared, or the tensor comes from another thread)");
  t.compact();
}

size_t tape_size() {
  Tape& t = tape();
  t.compact();
  return t.entries.size();
}

void clear_tape() {
  for (auto& e : tape().entries)
    if (auto n = e.node.lock()) {
      n->consumed = true;
      n->saved.clear();
      n->backward = nullptr;
    }
  tape().entries.clear();
}

}  // namespace loom
