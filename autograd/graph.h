// A whole step on one CUDA device captured once as a CUDA graph and replayed
// (issue #15 §3): the kernels, copies and fills of the step, with their
// arguments and addresses, become one launch. The small models loom trains are
// bound by launch overhead on a GPU; a replay pays one launch per step.
// (CUDA C++ Programming Guide, "CUDA Graphs" / stream capture; PyTorch's
// torch.cuda.CUDAGraph is the same idea.)
//
//   loom::CudaGraph graph;
//   step();                                  // once eagerly: optimizer state, handles, caches
//   graph.capture(Device::cuda(), step);     // records step(); runs nothing, changes no state
//   for (...) { static_x.copy_(next_batch); graph.replay(); read(static_loss); }
//
// What a replay equals: one eager call of step() — the same kernels on the same
// tensors, the generators' streams continuing where they stand (each replay
// draws fresh numbers, as an eager step would), each optimizer's step counts
// and learning rate as they stand (a schedule's set_lr between replays takes
// effect). Parameters, their optimizer state and every tensor the step
// created and still referenced after the capture (its losses, the gradients)
// are updated in place by each replay: read them after replay(). replay() returns
// once the graph is launched; it first waits for the previous replay to finish
// (that one reads the pinned memory the next rewrites), so replays do not queue up.
// The tensors step() assigns during the capture (its loss, the gradients) hold the
// graph's memory, unwritten until the first replay.
//
// What a captured step may not do (each a loom::Error naming it, and the
// capture is dropped): read a device value on the host (item(), to_vector,
// printing), copy host data in (a new batch: copy it into a tensor of the
// step's before replay() instead), copy between devices, synchronize. What it
// may: clip_grad_norm (the norm stays on the device; its check for inf or NaN
// runs after each replay, like the index checks below) and EMA::update (its
// decay, set on the host between replays, is restaged like a learning rate). What no check can
// see, and a captured step must therefore not do: take a branch on host state
// that changes between steps (the step index, a schedule computed inside
// step()), draw on the host or work on host tensors it expects to be redone,
// work on another device. Shapes are fixed by the capture.
//
// Index checks (check_indices: the labels of cross_entropy and one_hot, the indices of
// gather, index_select, scatter_add) run on the device: during the capture each becomes
// a kernel writing the first bad position to a word of the graph's, and replay()
// reads those words after the step, throwing the Error the eager step would have
// (the op, the value, its position). A graph holding such checks therefore waits
// for its replay to finish; when one fails, what that replay wrote is undefined.
//
// What must hold while the graph lives: every tensor the step reads or writes
// stays where it is (new data goes in with copy_, never by rebinding a tensor;
// no load_state_dict, Module::to or optimizer state replaced), since the graph
// holds their addresses; the generators and optimizers step() uses outlive it;
// and during the capture one thread alone uses the device.
//
// Bits: a replay gives what the eager step gives, bit for bit (the same kernels
// on the same inputs); tests/cuda checks it in the CUDA emulator.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "autograd/tensor.h"

namespace loom {

namespace kernels {
struct DeviceGraph;
}

class CudaGraph {
 public:
  CudaGraph();
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Captures step() on device d (a CUDA device; an Error otherwise, in a build
  // without CUDA, when another capture is under way on this thread, or when this
  // graph already holds one). The host state step() changes in generators and
  // optimizers is put back afterwards, so capturing is not a step.
  void capture(Device d, const std::function<void()>& step);
  // Runs the captured step once (an Error before capture()).
  void replay();
  bool captured() const { return graph_ != nullptr; }

  // The capture under way on this thread, or null: how random fills and
  // optimizer steps join it (autograd/tensor.cpp, autograd/optim/optim.cpp).
  static CudaGraph* capturing();
  // A random fill of `blocks` Philox blocks from g starting at `offset` (what
  // g.advance returned): the device word its kernel adds to a zero offset.
  const uint64_t* random_offset(Generator& g, uint64_t offset, uint64_t blocks);
  // A call during the capture with per-call values a replay must restage (an
  // optimizer's step(), EMA::update): `restore` (may be empty) puts its owner's
  // counters back at the capture's end (called once per owner, the first time); on
  // every replay `restep` runs in call order (the call again on the host, restaging).
  void restage_on_replay(const void* owner, std::function<void()> restore, std::function<void()> restep);
  // An index check during the capture (autograd/ops/shape.cpp): `check` reads its
  // device word and throws; replay() runs every check after the launch, in order.
  void check_after_replay(std::function<void()> check);

 private:
  struct RandomFill {
    Generator* generator;
    uint64_t relative;  // its offset minus the generator's offset at its first fill in the capture
    uint64_t* word;     // pinned: the absolute offset, written before each replay
  };
  struct GeneratorUse {
    Generator* generator;
    uint64_t seed, start, end;  // its seed, and its offsets at its first fill and after its last
  };
  Device device_;
  std::shared_ptr<kernels::DeviceGraph> graph_;
  std::vector<RandomFill> fills_;
  std::vector<GeneratorUse> generators_;
  std::vector<const void*> owners_;  // of the restaged calls
  std::vector<std::function<void()>> restores_, resteps_, checks_;
};

}  // namespace loom
