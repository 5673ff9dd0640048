// CUDA graphs under loom: the device runtime of stream capture and replay
// (issue #15 §3). The engine's API is loom::CudaGraph (autograd/graph.h); this
// layer knows streams, memory and pinned words, nothing of tensors.
//
// While device d is being captured:
//   - every kernel, copy and fill loom issues on d goes to the capture stream
//     (current_stream(d); outside a capture loom uses the legacy default stream)
//     and is recorded, not run;
//   - allocations on d come from the capture's own memory pool, and blocks freed
//     during the capture join it: a replay writes the same addresses, so none of
//     them may serve anything else while the graph lives (the pool goes back to
//     the cache when the graph is destroyed; PyTorch's graph pools do the same);
//   - what a replay must see anew (a generator's Philox offset, the optimizer's
//     step counts and learning rate) is read by the device from pinned host
//     memory the graph owns: capture_word() and the optimizer's staging buffers,
//     rewritten before each launch (replay()'s refresh);
//   - reading device memory from the host, copying host memory to the device
//     (pageable: a batch, from_vector) and synchronizing are refused with a
//     loom::Error naming the call: a graph cannot contain them.
// CPU-only builds: capture and replay throw; capturing() is false, current_stream() null.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "kernels/base.h"

namespace loom::kernels {

// An instantiated graph with the memory pool and pinned memory of its capture.
struct DeviceGraph;

// Starts capturing device d (a loom::Error when d is not a CUDA device, when d
// is already being captured, or in a build without CUDA).
void begin_capture(Device d);
// Ends the capture of d: the instantiated graph. A loom::Error when the capture
// was invalidated (a call a graph cannot hold; CUDA's reason is in the message).
std::shared_ptr<DeviceGraph> end_capture(Device d);
// Ends the capture of d after an error, dropping what it recorded (its memory
// pool is given back). Never throws.
void abandon_capture(Device d) noexcept;
bool capturing(Device d);
// The stream loom's kernels on d are issued to now (KernelCtx::stream): the
// capture stream while d is captured, else null (the legacy default stream).
void* current_stream(Device d);
// Only during a capture of d: a word of pinned host memory the graph owns, and
// the device word a copy node recorded here fills from it. Kernels recorded
// after this call read the device word; the host word is what the next replay
// copies (write it in replay()'s refresh).
std::pair<uint64_t*, const uint64_t*> capture_word(Device d);
// Launches the graph on its stream: first waits for its previous launch (the
// pinned memory it reads must not change under it), then runs refresh() on the
// host (rewrite pinned words), then launches. Returns without waiting.
void replay(DeviceGraph& g, const std::function<void()>& refresh);

// The optimizer entry points (kernels/optim.h) stage their per-call values
// (pointers, step counts' bias corrections, learning rate, EMA's decay) in pinned
// memory copied to the device by the graph. While a RestageScope for g is alive,
// they launch nothing: the k-th call rewrites the values (not the tensors'
// pointers, which stay the capture's) in the staging buffer of the k-th call
// captured in g that has per-call values (scale and sum_squares have none: they
// are skipped), so that an optimizer's step() or EMA::update, run on the host in
// replay()'s refresh, gives the next launch its new step counts, rates and decay.
// Any other kernel launch inside the scope is a loom::Error, as is a call that
// does not match the captured one (another kind, more tensors).
class RestageScope {
 public:
  explicit RestageScope(DeviceGraph& g);
  ~RestageScope();
  RestageScope(const RestageScope&) = delete;
  RestageScope& operator=(const RestageScope&) = delete;
  // Restaging calls made so far, and how many the capture holds.
  size_t done() const;
  size_t captured() const;

 private:
  DeviceGraph& g_;
};

}  // namespace loom::kernels
