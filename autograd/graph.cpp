// loom::CudaGraph (autograd/graph.h) over the device runtime of kernels/graph.h.
#include "autograd/graph.h"

#include <algorithm>

#include "kernels/graph.h"

namespace loom {

namespace {
thread_local CudaGraph* g_capturing = nullptr;
}

CudaGraph::CudaGraph() = default;
CudaGraph::~CudaGraph() = default;

CudaGraph* CudaGraph::capturing() { return g_capturing; }

void CudaGraph::capture(Device d, const std::function<void()>& step) {
  LOOM_CHECK(!graph_, "CudaGraph::capture: this graph already holds a capture (make another CudaGraph)");
  LOOM_CHECK(!g_capturing, "CudaGraph::capture: another capture is under way on this thread");
  LOOM_CHECK(d.is_cuda(), "CudaGraph::capture: CUDA graphs need a CUDA device, got ", d);
  device_ = d;
  kernels::begin_capture(d);
  g_capturing = this;
  // Capturing is not a step: the generators and optimizers step() moved on go back.
  auto put_back = [&] {
    for (const GeneratorUse& u : generators_) u.generator->set_state(u.seed, u.start);
    for (auto& restore : restores_) restore();
    restores_.clear();
  };
  // A failed capture leaves nothing behind: this graph can capture again.
  auto forget = [&] {
    fills_.clear();
    generators_.clear();
    owners_.clear();
    resteps_.clear();
    checks_.clear();
  };
  try {
    step();
  } catch (...) {
    g_capturing = nullptr;
    kernels::abandon_capture(d);
    put_back();
    forget();
    throw;
  }
  g_capturing = nullptr;
  put_back();
  try {
    graph_ = kernels::end_capture(d);
  } catch (...) {
    forget();
    throw;
  }
}

const uint64_t* CudaGraph::random_offset(Generator& g, uint64_t offset, uint64_t blocks) {
  auto use = std::find_if(generators_.begin(), generators_.end(),
                          [&](const GeneratorUse& u) { return u.generator == &g; });
  if (use == generators_.end()) {
    generators_.push_back({&g, g.seed(), offset, offset});
    use = generators_.end() - 1;
  }
  LOOM_CHECK(g.seed() == use->seed, "CudaGraph::capture: a generator was reseeded during the captured step");
  use->end = offset + blocks;
  const auto [host, device] = kernels::capture_word(device_);
  fills_.push_back({&g, offset - use->start, host});
  return device;
}

void CudaGraph::restage_on_replay(const void* owner, std::function<void()> restore, std::function<void()> restep) {
  if (std::find(owners_.begin(), owners_.end(), owner) == owners_.end()) {
    owners_.push_back(owner);
    if (restore) restores_.push_back(std::move(restore));
  }
  resteps_.push_back(std::move(restep));
}

void CudaGraph::replay() {
  LOOM_CHECK(graph_, "CudaGraph::replay: nothing captured yet (call capture() first)");
  kernels::replay(*graph_, [&] {
    // Each generator continues where it stands, as an eager step would draw.
    for (const GeneratorUse& u : generators_) {
      LOOM_CHECK(u.generator->seed() == u.seed, "CudaGraph::replay: a generator of the captured step was reseeded "
                                                "since the capture (its seed is part of the graph)");
    }
    for (const RandomFill& f : fills_) *f.word = f.generator->offset() + f.relative;
    for (const GeneratorUse& u : generators_) u.generator->advance(u.end - u.start);
    // Each optimizer's step() and EMA update on the host: counters advance and the
    // staged learning rate, bias corrections and decay are rewritten; nothing launches.
    kernels::RestageScope restage(*graph_);
    for (auto& restep : resteps_) restep();
    LOOM_CHECK(restage.done() == restage.captured(), "CudaGraph::replay: the optimizers and EMAs restaged ",
               restage.done(), " calls, the capture made ", restage.captured());
  });
  for (auto& check : checks_) check();
}

void CudaGraph::check_after_replay(std::function<void()> check) { checks_.push_back(std::move(check)); }

}  // namespace loom
