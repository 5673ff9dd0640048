#include "autograd/tape.h"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

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
  int sweeping = 0;  // sweeps in progress (see SweepGuard)

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
EnableGrad::EnableGrad() : prev_(tape().enabled) { tape().enabled = true; }
EnableGrad::~EnableGrad() { tape().enabled = prev_; }

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
    Edge& e = node->inputs.emplace_back();
    if (in.defined() && in.requires_grad()) {
      if (in.is_leaf()) e.leaf = in.impl_ptr();
      else e = {in.impl().node, in.impl().output_nr, nullptr};
    }
    node->input_shapes.push_back(in.defined() ? in.shape() : Shape{});
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    TensorImpl& out = outputs[i].impl();
    node->outputs.push_back({out.shape, out.dtype, out.storage->device});
    out.requires_grad = true;
    out.node = node;
    out.output_nr = static_cast<uint32_t>(i);
  }
  for (Tensor& s : saved) {
    node->saved_versions.push_back(s.defined() ? s.impl().storage->version : 0);
    int output = -1;
    for (size_t i = 0; s.defined() && i < outputs.size(); ++i)
      if (outputs[i].impl_ptr() == s.impl_ptr()) output = static_cast<int>(i);
    node->saved_output.push_back(output);
    node->saved_source.push_back(output < 0 && s.defined() && s.requires_grad() ? s.impl_ptr() : nullptr);
    if (s.defined()) s = s.detach();
  }
  node->saved = std::move(saved);
  node->backward = std::move(backward);
  t.entries.push_back({node->seq, node});
  if (t.entries.size() >= t.compact_at && t.sweeping == 0) t.compact();
}

bool differentiable(std::initializer_list<const Tensor*> xs) { return needs_grad(xs); }

namespace {

// Why an entry may not be swept again, with what to do about it.
std::string consumed_message(OpId op) {
  return str("backward: op '", op_name(op),
             "' on this path was already consumed by an earlier backward, which freed its history; run the "
             "forward again, detach() a tensor whose history this backward must not reach (e.g. the generator's "
             "output in a discriminator step), or pass retain_graph = true to the earlier sweep");
}

void accumulate_leaf(TensorImpl& leaf, const Tensor& g, bool create_graph) {
  if (!leaf.grad) {
    // Copy so later in-place updates of the gradient never alias a tape value.
    leaf.grad = g.clone().impl_ptr();
  } else if (create_graph) {
    leaf.grad = (Tensor(leaf.grad) + g).impl_ptr();  // out of place: the sum keeps its history
  } else {
    Tensor(leaf.grad).add_(g);
  }
}

// A tensor's place on the tape, as gradients are routed: its producing entry and
// output index, or for a leaf the tensor itself.
constexpr uint32_t kLeaf = UINT32_MAX;
using Key = std::pair<const void*, uint32_t>;
Key key_of(const Tensor& t) {
  return t.is_leaf() ? Key{t.impl_ptr().get(), kLeaf} : Key{t.impl().node.get(), t.impl().output_nr};
}
Key key_of(const Edge& e) { return e.node ? Key{e.node.get(), e.output_nr} : Key{e.leaf.get(), kLeaf}; }
bool needed(const Edge& e) { return e.node || e.leaf; }

// Counts a sweep in progress: a create_graph sweep appends entries to the tape it
// walks by index, so compaction (which moves entries) waits until it ends.
struct SweepGuard {
  Tape& t;
  explicit SweepGuard(Tape& tape) : t(tape) { ++t.sweeping; }
  ~SweepGuard() { --t.sweeping; }
};

// One reverse sweep from several roots. With `targets` (grad()) the gradients of
// those tensors are returned and no leaf is touched; without (backward()) every
// leaf that requires grad accumulates into .grad().
std::vector<Tensor> sweep(const char* fn, const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds_in,
                          bool create_graph, bool retain_graph, const std::vector<Tensor>* targets) {
  LOOM_CHECK(!roots.empty(), fn, ": no output to differentiate");
  std::vector<Tensor> seeds(roots.size());
  for (size_t r = 0; r < roots.size(); ++r) {
    const Tensor& root = roots[r];
    LOOM_CHECK(root.defined(), fn, ": output ", r, " is an undefined tensor");
    LOOM_CHECK(root.requires_grad(), fn, ": tensor of shape ", root.shape(),
               " does not require grad (nothing on the tape leads from a parameter to it; ",
               grad_enabled() ? "was it computed under NoGrad, from detached tensors, or from a gradient taken "
                                "without create_graph = true (a gradient penalty needs it)?)"
                              : "recording is off here, inside NoGrad: open an EnableGrad scope around the "
                                "forward and this call)");
    Tensor seed = r < seeds_in.size() ? seeds_in[r] : Tensor();
    if (!seed.defined()) {
      LOOM_CHECK(root.numel() == 1, fn, ": the root has shape ", root.shape(), "; ", fn,
                 " without an output gradient needs a one-element tensor (reduce it, e.g. mean(), or pass ",
                 targets ? "grad_outputs" : "grad", ")");
      NoGrad no_grad;
      seed = ones_like(root);
    } else {
      LOOM_CHECK(seed.shape() == root.shape() && seed.dtype() == root.dtype() && seed.device() == root.device(), fn,
                 ": output gradient ", seed.shape(), " ", seed.dtype(), " on ", seed.device(),
                 " does not match the root ", root.shape(), " ", root.dtype(), " on ", root.device());
    }
    seeds[r] = seed;
  }

  Tape& t = tape();
  const SweepGuard guard(t);
  std::optional<NoGrad> no_grad;
  if (!create_graph) no_grad.emplace();

  // What the sweep is after: target index by place (grad()); a tensor given twice gets one slot.
  std::map<Key, size_t> target_index;
  std::vector<Tensor> captured;
  if (targets) {
    captured.resize(targets->size());
    for (size_t i = 0; i < targets->size(); ++i) {
      const Tensor& in = (*targets)[i];
      LOOM_CHECK(in.defined(), fn, ": input ", i, " is an undefined tensor");
      LOOM_CHECK(in.requires_grad(), fn, ": input ", i, " (shape ", in.shape(),
                 ") does not require grad, so no output can depend on it through the tape");
      target_index.emplace(key_of(in), i);
    }
  }
  auto capture = [&](const Key& key, const Tensor& g) {
    auto it = target_index.find(key);
    if (it == target_index.end()) return;
    Tensor& slot = captured[it->second];
    slot = slot.defined() ? slot + g : g;
  };
  auto result = [&] {
    if (targets)
      for (size_t i = 0; i < targets->size(); ++i) captured[i] = captured[target_index.at(key_of((*targets)[i]))];
    return captured;
  };

  // The gradients arrived so far at each entry's outputs (the entry is held until swept).
  struct Pending {
    std::shared_ptr<Node> node;
    std::vector<Tensor> grads;
  };
  std::unordered_map<const Node*, Pending> pending;
  auto add_grad = [&](const std::shared_ptr<Node>& node, uint32_t output, const Tensor& g) {
    Pending& p = pending[node.get()];
    if (!p.node) p = {node, std::vector<Tensor>(node->outputs.size())};
    Tensor& slot = p.grads.at(output);
    slot = slot.defined() ? slot + g : g;
  };
  uint64_t last = 0;
  bool any_node = false;
  std::vector<std::shared_ptr<Node>> starts;
  for (size_t r = 0; r < roots.size(); ++r) {
    const Tensor& root = roots[r];
    if (root.is_leaf()) {
      if (targets) capture(key_of(root), seeds[r]);
      else accumulate_leaf(root.impl(), seeds[r], create_graph);
      continue;
    }
    std::shared_ptr<Node> start = root.impl().node;
    LOOM_CHECK(!start->consumed, fn, ": the tape entry '", op_name(start->op),
               "' that produced this tensor was already consumed by an earlier backward; run the forward "
               "again, or pass retain_graph = true to the earlier sweep");
    add_grad(start, root.impl().output_nr, seeds[r]);
    last = any_node ? std::max(last, start->seq) : start->seq;
    any_node = true;
    starts.push_back(start);
  }
  if (!any_node) return result();

  // Entries after the last root's cannot contribute; start at its position.
  const size_t end = static_cast<size_t>(
      std::upper_bound(t.entries.begin(), t.entries.end(), last,
                       [](uint64_t s, const Tape::Entry& e) { return s < e.seq; }) -
      t.entries.begin());

  // grad(): only entries on a path from a target to a root need their backward.
  // An entry leads to a target when one of its inputs is a target or was made by
  // an entry that does; entries are in execution order, so one forward pass finds them.
  std::unordered_set<const Node*> leads;
  auto input_leads = [&](const Edge& in) {
    return needed(in) && (target_index.count(key_of(in)) || (in.node && leads.count(in.node.get())));
  };
  if (targets)
    for (size_t i = 0; i < end; ++i)
      if (auto n = t.entries[i].node.lock())
        for (const auto& in : n->inputs)
          if (input_leads(in)) {
            leads.insert(n.get());
            break;
          }

  std::vector<Tensor> saved_live;
  for (size_t idx = end; idx-- > 0;) {
    std::shared_ptr<Node> node = t.entries[idx].node.lock();
    if (!node) continue;
    if (std::find(starts.begin(), starts.end(), node) != starts.end()) std::erase(starts, node);
    // Gather the gradients flowing into this entry's outputs.
    std::vector<Tensor> gout(node->outputs.size());
    bool any = false;
    if (auto p = pending.find(node.get()); p != pending.end()) {
      gout = std::move(p->second.grads);
      pending.erase(p);
      for (size_t i = 0; i < gout.size(); ++i)
        if (gout[i].defined()) {
          if (targets) capture({node.get(), static_cast<uint32_t>(i)}, gout[i]);
          any = true;
        }
    }
    if (!any || (targets && !leads.count(node.get()))) continue;
    LOOM_CHECK(!node->consumed, consumed_message(node->op));
    for (size_t i = 0; i < node->saved.size(); ++i) {
      const Tensor& s = node->saved[i];
      LOOM_CHECK(!s.defined() || s.impl().storage->version == node->saved_versions[i],
                 "backward: a tensor of shape ", s.shape(), " saved by '", op_name(node->op),
                 "' was modified in place after it was used (version ", node->saved_versions[i],
                 " -> ", s.impl().storage->version, "); clone it before writing to it");
    }
    for (size_t i = 0; i < gout.size(); ++i) {
      const OutputMeta& m = node->outputs[i];
      if (!gout[i].defined()) gout[i] = zeros(m.shape, TensorOptions{}.with(m.dtype).on(m.device));
    }
    // A recording sweep differentiates through the saved values too: hand the backward
    // the tensors with their history (a saved output's is this entry), not the detached copies.
    const std::vector<Tensor>* saved = &node->saved;
    if (create_graph) {
      saved_live = node->saved;
      for (size_t i = 0; i < saved_live.size(); ++i) {
        if (const int o = node->saved_output[i]; o >= 0) {
          auto live = std::make_shared<TensorImpl>(saved_live[i].impl());  // the same view of the same storage
          live->requires_grad = true;
          live->node = node;
          live->output_nr = static_cast<uint32_t>(o);
          saved_live[i] = Tensor(live);
          continue;
        }
        // The same storage as when saved: a tensor converted in place since (Module::to) keeps its copy.
        const std::shared_ptr<TensorImpl>& live = node->saved_source[i];
        if (live && live->storage == saved_live[i].impl().storage) saved_live[i] = Tensor(live);
      }
      saved = &saved_live;
    }
    BackwardCtx ctx{std::move(gout), *saved, {}};
    for (const Edge& in : node->inputs) ctx.needs.push_back(targets ? input_leads(in) : needed(in));
    std::vector<Tensor> gin;
    {
      const OpRange range(node->op, true);
      gin = node->backward(ctx);
    }
    for (size_t i = 0; i < node->inputs.size(); ++i) {
      const Edge& in = node->inputs[i];
      if (!ctx.needs[i]) continue;
      const Tensor& g = gin.at(i);
      LOOM_CHECK(g.defined() && g.shape() == node->input_shapes[i],
                 "backward: internal error in '", op_name(node->op), "': gradient for input ", i,
                 " has shape ", (g.defined() ? g.shape() : Shape{}), ", expected ", node->input_shapes[i]);
      if (in.leaf) {
        if (targets) capture(key_of(in), g);
        else accumulate_leaf(*in.leaf, g, create_graph);
      } else {
        LOOM_CHECK(!in.node->consumed, consumed_message(in.node->op));
        add_grad(in.node, in.output_nr, g);
      }
    }
    if (!retain_graph) {
      node->consumed = true;
      node->saved.clear();
      node->saved_source.clear();
      node->backward = nullptr;
    }
  }
  LOOM_CHECK(starts.empty(), fn, ": the entry that produced the root is no longer on this thread's tape "
                             "(the tape was cleared, or the tensor comes from another thread)");
  return result();
}

}  // namespace

void backward(const Tensor& root, const Tensor& grad, BackwardOptions o) {
  LOOM_CHECK(root.defined(), "backward: the root tensor is undefined");
  sweep("backward", {root}, {grad}, o.create_graph, o.retain_graph.value_or(o.create_graph), nullptr);
  if (tape().sweeping == 0) tape().compact();
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, GradOptions o) {
  LOOM_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), "grad: ", grad_outputs.size(),
             " grad_outputs for ", outputs.size(), " outputs (give one per output, or none)");
  LOOM_CHECK(!inputs.empty(), "grad: no input to differentiate with respect to");
  std::vector<Tensor> result =
      sweep("grad", outputs, grad_outputs, o.create_graph, o.retain_graph.value_or(o.create_graph), &inputs);
  for (size_t i = 0; i < inputs.size(); ++i)
    LOOM_CHECK(result[i].defined() || o.allow_unused, "grad: input ", i, " (shape ", inputs[i].shape(),
               ") is not used to compute the outputs: no path on the tape leads from it to them "
               "(pass allow_unused = true to get an undefined gradient instead)");
  if (tape().sweeping == 0) tape().compact();
  return result;
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
      n->saved_source.clear();
      n->backward = nullptr;
    }
  tape().entries.clear();
}

}  // namespace loom
