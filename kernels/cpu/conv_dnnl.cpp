// v0 of the CPU conv family: oneDNN 2.x's convolution primitives (convolution_forward,
// convolution_backward_data, convolution_backward_weights; https://oneapi-src.github.io/oneDNN/v2/,
// "Convolution"), selected by set_conv_variant(ConvVariant::V0) or LOOM_CONV=v0, or by auto where it is
// faster (kernels/cpu/conv.cpp). It is what PyTorch's CPU convolutions run on, the baseline loom's own
// kernels are measured against, and a second implementation the tests compare with loom's loops.
//
// Layouts: loom's tensors are plain NCHW (x, y) and [O, C/G, kh, kw] (w, as oneDNN's goihw with
// G = groups). Each primitive is created with format_tag::any, so oneDNN picks its blocked layouts
// (nChw16c and the like on AVX-512), and the arguments are reordered into and out of those around it:
// the weights change every step, so nothing can stay reordered between calls.
// Geometry: oneDNN's dilation counts the gaps (d − 1), and its right padding is whatever makes the given
// out_h, out_w come out; it is negative when the stride skips the last rows (conv2d rounding down) or
// when out_h is conv_transpose2d's (output_padding), both of which oneDNN accepts.
// Cache: creating a primitive (choosing and JIT-compiling a kernel) takes milliseconds, more than a
// small conv, so each (pass, geometry, bias, thread count) keeps its primitive and its reorders for the
// life of the process (a process sees a handful of geometries). The buffers in the primitive's layouts
// and its scratchpad are not kept: they are as large as the activations, one set per entry was most
// of a U-Net's memory (ddpm: 600 MiB), so each call takes them from loom's host allocator and gives
// them back, and its cache of freed blocks hands the same pages to the next call. The entry's mutex
// is held while it runs, since its memory objects are rebound to each call's buffers.
// Threads: this oneDNN build runs on OpenMP (libgomp, the runtime loom's own loops use), so it takes
// as many threads as omp_get_max_threads() says, i.e. kernels::set_cpu_threads / --threads /
// OMP_NUM_THREADS. The count is part of the cache key because oneDNN divides the work for it when the
// primitive is created.
// Arithmetic: float32 with fpmath_mode::strict (no bf16 or other down-conversion, whatever
// DNNL_DEFAULT_FPMATH_MODE says) and algorithm::convolution_direct (no Winograd). For a fixed thread
// count and CPU (instruction set) the result is bitwise reproducible: oneDNN's CPU primitives split and
// reduce work statically, the same way every run.
#include "kernels/cpu/conv_dnnl.h"

#ifdef LOOM_HAVE_DNNL
#include <omp.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>
#include <oneapi/dnnl/dnnl_debug.h>

#include "kernels/memory.h"

namespace loom::kernels::cpu::onednn {
namespace {

using dnnl::memory;

const char* pass_name(ConvPass p) {
  switch (p) {
    case ConvPass::Forward: return "forward";
    case ConvPass::BackwardData: return "backward_data";
    case ConvPass::BackwardWeight: return "backward_weight";
  }
  return "?";
}

// The engine and the cache (below) are leaked at exit, like cuBLAS's handles (kernels/cuda/gemm.cu): static
// destructors would run in no particular order relative to each other and to oneDNN's own.
dnnl::engine& engine() {
  static auto* e = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *e;
}

// The memory descriptors and conv parameters of a geometry, in loom's layouts (`plain`) or as
// format_tag::any (the primitive's choice).
struct Descs {
  memory::desc x, w, y;
  memory::dims strides, dilates, pad_l, pad_r;

  Descs(const ConvGeometry& g, bool plain) {
    using tag = memory::format_tag;
    const auto f32 = memory::data_type::f32;
    x = memory::desc({g.batch, g.in_channels, g.in_h, g.in_w}, f32, plain ? tag::nchw : tag::any);
    y = memory::desc({g.batch, g.out_channels, g.out_h, g.out_w}, f32, plain ? tag::nchw : tag::any);
    const int64_t c_group = g.in_channels / g.groups, o_group = g.out_channels / g.groups;
    w = g.groups == 1
            ? memory::desc({g.out_channels, c_group, g.kernel_h, g.kernel_w}, f32, plain ? tag::oihw : tag::any)
            : memory::desc({g.groups, o_group, c_group, g.kernel_h, g.kernel_w}, f32, plain ? tag::goihw : tag::any);
    strides = {g.stride_h, g.stride_w};
    dilates = {g.dilation_h - 1, g.dilation_w - 1};
    pad_l = {g.pad_h, g.pad_w};
    // The last output's last tap is the last padded pixel read: (out − 1)·s + (k − 1)·d = in + pl + pr − 1.
    pad_r = {(g.out_h - 1) * g.stride_h + (g.kernel_h - 1) * g.dilation_h + 1 - g.in_h - g.pad_h,
             (g.out_w - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1 - g.in_w - g.pad_w};
  }
};

memory::desc bias_desc(int64_t channels) { return {{channels}, memory::data_type::f32, memory::format_tag::a}; }

// One tensor argument of a primitive: `user` wraps the caller's buffer (rebound at every call); when
// the primitive wants another layout, `inner` describes it (its buffer is the call's) and `reorder`
// converts, into `inner` for an input, out of it for an output.
struct Arg {
  int id;  // DNNL_ARG_*
  bool output;
  memory user, inner;
  dnnl::reorder reorder;

  Arg(int arg_id, bool is_output, const memory::desc& user_md, const memory::desc& inner_md)
      : id(arg_id), output(is_output), user(user_md, engine(), DNNL_MEMORY_NONE) {
    if (inner_md == user_md) return;
    inner = memory(inner_md, engine(), DNNL_MEMORY_NONE);
    reorder = output ? dnnl::reorder(inner, user) : dnnl::reorder(user, inner);
  }
  const memory& operand() const { return inner ? inner : user; }
};

struct Entry {
  std::mutex mutex;
  dnnl::primitive primitive;
  std::vector<Arg> args;
  memory scratchpad;
};

dnnl::primitive_attr attributes() {
  dnnl::primitive_attr attr;
  attr.set_fpmath_mode(dnnl::fpmath_mode::strict);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // the entry's own, see the top
  return attr;
}

// One argument of a pass: its DNNL_ARG_* id, loom's layout of it, and whether the primitive writes it.
struct ArgSpec {
  int id;
  memory::desc user;
  bool output;
};

std::unique_ptr<Entry> make_entry(ConvPass pass, const ConvGeometry& g, bool bias) {
  const Descs user(g, true), any(g, false);
  const dnnl::primitive_attr attr = attributes();
  const auto direct = dnnl::algorithm::convolution_direct;
  const auto training = dnnl::prop_kind::forward_training;
  // The forward primitive descriptor: the forward pass itself, and the hint the backward passes need.
  const dnnl::convolution_forward::primitive_desc fwd(
      bias ? dnnl::convolution_forward::desc(training, direct, any.x, any.w, bias_desc(g.out_channels), any.y,
                                             any.strides, any.dilates, any.pad_l, any.pad_r)
           : dnnl::convolution_forward::desc(training, direct, any.x, any.w, any.y, any.strides, any.dilates,
                                             any.pad_l, any.pad_r),
      attr, engine());
  // The backward passes' descriptors take the same arguments: (x or gx, w or gw, gy, geometry).
  auto backward = [&](auto primitive) {
    using P = typename decltype(primitive)::type;
    return typename P::primitive_desc(
        typename P::desc(direct, any.x, any.w, any.y, any.strides, any.dilates, any.pad_l, any.pad_r), attr,
        engine(), fwd);
  };
  dnnl::primitive_desc pd;
  std::vector<ArgSpec> args;  // in the order of conv2d's (a, b, bias, out)
  switch (pass) {
    case ConvPass::Forward:
      pd = fwd;
      args = {{DNNL_ARG_SRC, user.x, false}, {DNNL_ARG_WEIGHTS, user.w, false}};
      if (bias) args.push_back({DNNL_ARG_BIAS, bias_desc(g.out_channels), false});
      args.push_back({DNNL_ARG_DST, user.y, true});
      break;
    case ConvPass::BackwardData:
      pd = backward(std::type_identity<dnnl::convolution_backward_data>{});
      args = {{DNNL_ARG_DIFF_DST, user.y, false}, {DNNL_ARG_WEIGHTS, user.w, false}, {DNNL_ARG_DIFF_SRC, user.x, true}};
      break;
    case ConvPass::BackwardWeight:
      pd = backward(std::type_identity<dnnl::convolution_backward_weights>{});
      args = {{DNNL_ARG_SRC, user.x, false}, {DNNL_ARG_DIFF_DST, user.y, false}, {DNNL_ARG_DIFF_WEIGHTS, user.w, true}};
      break;
  }
  auto e = std::make_unique<Entry>();
  e->primitive = dnnl::primitive(pd);
  for (const ArgSpec& a : args)
    e->args.emplace_back(a.id, a.output, a.user, pd.query_md(dnnl::query::exec_arg_md, a.id));
  e->scratchpad = memory(pd.scratchpad_desc(), engine(), DNNL_MEMORY_NONE);
  return e;
}

// The entry of (pass, geometry, bias, threads), created on first use.
Entry& entry(ConvPass pass, const ConvGeometry& g, bool bias) {
  using Key = std::array<int64_t, 19>;
  static std::mutex mutex;
  static auto* cache = new std::map<Key, std::unique_ptr<Entry>>;  // leaked: see engine()
  const Key key{static_cast<int64_t>(pass), bias, omp_get_max_threads(), g.batch, g.in_channels, g.in_h, g.in_w,
                g.out_channels, g.out_h, g.out_w, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w,
                g.dilation_h, g.dilation_w, g.groups};
  const std::lock_guard lock(mutex);
  std::unique_ptr<Entry>& e = (*cache)[key];
  if (!e) e = make_entry(pass, g, bias);
  return *e;
}

// Host blocks from loom's allocator for one call, given back when it ends (or throws).
class CallBuffers {
 public:
  CallBuffers() = default;
  CallBuffers(const CallBuffers&) = delete;
  CallBuffers& operator=(const CallBuffers&) = delete;
  ~CallBuffers() {
    for (auto [p, bytes] : blocks_) deallocate(Device::cpu(), p, bytes);
  }
  // Points m at a fresh block of its size (nothing for an empty descriptor).
  void bind(memory& m) {
    const size_t bytes = m.get_desc().get_size();
    if (bytes == 0) return;
    blocks_.emplace_back(allocate(Device::cpu(), bytes), bytes);
    m.set_data_handle(blocks_.back().first);
  }

 private:
  std::vector<std::pair<void*, size_t>> blocks_;
};

// Runs the pass with the caller's buffers, in the order of the entry's arguments.
void run(ConvPass pass, const ConvGeometry& g, bool bias, const std::vector<const void*>& buffers) {
  try {
    Entry& e = entry(pass, g, bias);
    const std::lock_guard lock(e.mutex);
    dnnl::stream stream(engine());
    CallBuffers call;
    call.bind(e.scratchpad);
    std::unordered_map<int, memory> args{{DNNL_ARG_SCRATCHPAD, e.scratchpad}};
    for (size_t i = 0; i < e.args.size(); ++i) {
      Arg& a = e.args[i];
      if (a.inner) call.bind(a.inner);
      // oneDNN takes a non-const handle for inputs too; it only reads them.
      a.user.set_data_handle(const_cast<void*>(buffers[i]));
      if (!a.output && a.inner) a.reorder.execute(stream, a.user, a.inner);
      args.emplace(a.id, a.operand());
    }
    e.primitive.execute(stream, args);
    for (Arg& a : e.args)
      if (a.output && a.inner) a.reorder.execute(stream, a.inner, a.user);
    stream.wait();
  } catch (const dnnl::error& err) {
    throw Error(str("conv (oneDNN) ", pass_name(pass), ", x [", g.batch, ", ", g.in_channels, ", ", g.in_h, ", ",
                    g.in_w, "], y [", g.batch, ", ", g.out_channels, ", ", g.out_h, ", ", g.out_w, "]: ", err.what(),
                    " (", dnnl_status2str(err.status), ")"));
  }
}

}  // namespace

void conv2d(ConvPass pass, const ConvGeometry& g, const float* a, const float* b, const float* bias, float* out) {
  if (g.batch == 0) {  // nothing to compute, except a weight gradient: Σ over no images
    if (pass == ConvPass::BackwardWeight)
      std::fill(out, out + g.out_channels * (g.in_channels / g.groups) * g.kernel_h * g.kernel_w, 0.0f);
    return;
  }
  // oneDNN's backward-data primitive has no bias (conv_transpose2d's): added per input channel after it.
  const bool native_bias = bias && pass == ConvPass::Forward;
  if (native_bias) {
    run(pass, g, true, {a, b, bias, out});
  } else {
    run(pass, g, false, {a, b, out});
  }
  if (!bias || native_bias) return;
  const int64_t plane = g.in_h * g.in_w;
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t c = 0; c < g.in_channels; ++c) {
      float* p = out + (n * g.in_channels + c) * plane;
      for (int64_t q = 0; q < plane; ++q) p[q] += bias[c];
    }
}

}  // namespace loom::kernels::cpu::onednn
#endif
