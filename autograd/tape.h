// The gradient tape: a Wengert list of the differentiable ops executed while
// recording. Entries are appended in execution order, so the list is already
// topologically sorted and backward is one reverse loop, no recursion, no sort.
//
// Ownership: a tensor holds its producing Node; a Node holds (strongly) the
// inputs that need a gradient and the values its backward reads, and (weakly)
// its outputs. The tape itself holds Nodes weakly, so history that nobody can
// reach any more (an eval pass run without NoGrad) frees itself.
#pragma once

#include <functional>
#include <memory>
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
// NoGrad, so it may use any op.
using BackwardFn = std::function<std::vector<Tensor>(BackwardCtx&)>;

struct Node {
  OpId op;
  uint64_t seq = 0;
  std::vector<std::shared_ptr<TensorImpl>> inputs;  // null where no gradient is needed
  std::vector<Shape> input_shapes;
  std::vector<std::weak_ptr<TensorImpl>> outputs;
  std::vector<Tensor> saved;
  std::vector<uint64_t> saved_versions;
  BackwardFn backward;
  bool consumed = false;
};

// Is the tape recording? (On by default; off inside NoGrad.)
bool grad_enabled();

// RAII scope with recording switched off.
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

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

// Sweeps the tape in reverse from `root`, accumulating into the .grad() of every
// leaf that requires grad. `grad` defaults to 1 for a one-element root. The
// entries it sweeps are consumed: a second backward through them is an error.
void backward(const Tensor& root, const Tensor& grad = {});

// Number of live entries on this thread's tape (tests and diagnostics).
size_t tape_size();
// Drops this thread's recorded history (entries stay reachable from tensors
// that hold them, but backward through them is refused).
void clear_tape();

}  // namespace loom
