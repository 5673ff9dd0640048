// The gradient tape: a Wengert list of the differentiable ops executed while
// recording. Entries are appended in execution order, so the list is already
// topologically sorted and backward is one reverse loop, no recursion, no sort.
//
// Ownership: a tensor holds its producing Node (and knows which of its outputs it
// is); a Node holds, for each input that needs a gradient, where that gradient
// goes: the producing Node and output index, or the leaf tensor itself; plus the
// values its backward reads. It does not hold its inputs' tensors, so an
// intermediate that no backward reads (the product in x·γ + β, a residual
// branch's sum) is freed as soon as the forward drops it, as in PyTorch; of its
// outputs a Node keeps only their shape, dtype and device. The tape itself holds
// Nodes weakly, so history that nobody can reach any more (an eval pass run
// without NoGrad) frees itself.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "autograd/tensor.h"
#include "kernels/profiling.h"

namespace loom {

enum class OpId : uint16_t {
#define X(id, name) id,
#include "autograd/ops.def"
#undef X
  Count
};
const char* op_name(OpId op);
const char* op_backward_name(OpId op);  // "<name>_backward"

// A profiler range named after op `id` (its backward, for the reverse sweep) for
// the scope: the first line of every public op function and of every backward
// step, so a profile shows which op's kernels are which. Compiles to nothing in
// a CPU-only build (kernels/profiling.h).
class OpRange {
 public:
  explicit OpRange(OpId id, bool backward = false) {
    if constexpr (kernels::kProfilingRanges) kernels::range_push(backward ? op_backward_name(id) : op_name(id));
  }
  ~OpRange() { kernels::range_pop(); }
  OpRange(const OpRange&) = delete;
  OpRange& operator=(const OpRange&) = delete;
};

// What a backward function sees: the gradients of the op's outputs (zeros for an
// output nobody used), the tensors it saved, and which inputs need a gradient.
struct BackwardCtx {
  std::vector<Tensor> grad_out;
  const std::vector<Tensor>& saved;
  std::vector<bool> needs;
};
// Returns one gradient per input (undefined where !needs[i]). It runs under
// NoGrad unless the sweep was asked to create_graph; then the tape records the
// ops it runs, so it must compute through recorded (differentiable) ops whenever
// differentiable() says so, and may use raw kernels otherwise (the fast path).
using BackwardFn = std::function<std::vector<Tensor>(BackwardCtx&)>;

// Inside a backward function: is this sweep recording (create_graph) and does any
// of these tensors require grad? Then the gradient must be computed through
// recorded ops so that it can be differentiated again.
bool differentiable(std::initializer_list<const Tensor*> xs);

// Where the gradient of one input goes: output `output_nr` of `node`, or the
// leaf `leaf` (accumulated into its .grad()); neither where none is needed.
struct Edge {
  std::shared_ptr<Node> node;
  uint32_t output_nr = 0;
  std::shared_ptr<TensorImpl> leaf;
};

struct OutputMeta {
  Shape shape;
  DType dtype;
  Device device;
};

struct Node {
  OpId op;
  uint64_t seq = 0;
  std::vector<Edge> inputs;
  std::vector<Shape> input_shapes;
  std::vector<OutputMeta> outputs;  // a zero gradient for an output nobody used is made from these
  // Saved values are stored detached (a handle of their own on the same storage,
  // which what the caller later does to its tensor cannot change). A create_graph
  // sweep differentiates through them, so it needs their history too: for an
  // input-side value that is saved_source[i] (the tensor as it was passed); an
  // output of this very entry (saved_output[i] ≥ 0, its index) is re-attached to
  // this Node, since an output holds its Node and a strong handle would be a cycle.
  std::vector<Tensor> saved;
  std::vector<uint64_t> saved_versions;
  std::vector<std::shared_ptr<TensorImpl>> saved_source;
  std::vector<int> saved_output;
  BackwardFn backward;
  bool consumed = false;
};

// Is the tape recording? (On by default; off inside NoGrad.)
bool grad_enabled();

// RAII scope with recording switched off. `NoGrad();` alone (a temporary that
// ends at once) is a compile warning: name it, `NoGrad no_grad;`.
class NoGrad {
 public:
  [[nodiscard]] NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool prev_;
};

// RAII scope with recording switched on, also inside NoGrad (torch.enable_grad):
// for a gradient penalty computed where the caller has switched recording off.
class EnableGrad {
 public:
  [[nodiscard]] EnableGrad();
  ~EnableGrad();
  EnableGrad(const EnableGrad&) = delete;
  EnableGrad& operator=(const EnableGrad&) = delete;

 private:
  bool prev_;
};

// Would an op with these inputs be recorded?
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Records one op: called by every differentiable op after its forward. Does
// nothing unless grad_enabled() and some input requires grad; otherwise marks
// the outputs as requiring grad and appends one entry. `saved` are stored
// detached (no reference cycle through an output) with their versions.
void record(OpId op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            std::vector<Tensor> saved, BackwardFn backward);

struct BackwardOptions {
  // Record the sweep itself on the tape, so that the gradients it produces are
  // differentiable again (higher-order derivatives, gradient penalties).
  bool create_graph = false;
  // Keep the swept entries for another sweep; defaults to create_graph.
  std::optional<bool> retain_graph = std::nullopt;
};

// Sweeps the tape in reverse from `root`, accumulating into the .grad() of every
// leaf that requires grad. `grad` defaults to 1 for a one-element root. Unless
// retain_graph, the entries it sweeps are consumed: a second backward through
// them is an error. With create_graph the accumulated .grad() tensors carry history.
void backward(const Tensor& root, const Tensor& grad = {}, BackwardOptions o = {});

struct GradOptions {
  bool create_graph = false;         // as in BackwardOptions
  std::optional<bool> retain_graph = std::nullopt;  // defaults to create_graph
  bool allow_unused = false;         // an input the outputs do not depend on gets an undefined tensor, not an error
};

// ∂(Σ_k ⟨outputs[k], grad_outputs[k]⟩)/∂inputs[i], one tensor per input, shaped
// like it; no leaf's .grad() is touched (torch.autograd.grad). grad_outputs may
// be empty when every output has one element (each then gets 1). Inputs may be
// leaves or intermediate results that require grad. Only the entries on a path
// from an input to an output are swept. Errors: an undefined or non-requiring
// output, a grad_output whose shape/dtype/device differs from its output, a
// multi-element output without grad_output, an input the outputs do not depend
// on (unless allow_unused), and the consumed/modified-in-place errors of backward.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, GradOptions o = {});

// Number of live entries on this thread's tape (tests and diagnostics).
size_t tape_size();
// Drops this thread's recorded history (entries stay reachable from tensors
// that hold them, but backward through them is refused).
void clear_tape();

}  // namespace loom
