#include "autograd/tensor.h"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "kernels/elementwise.h"
#include "kernels/graph.h"
#include "kernels/memory.h"
#include "kernels/philox.h"
#include "kernels/random.h"

namespace loom {

Storage::Storage(Device d, size_t n) : device(d), data(kernels::allocate(d, n)), nbytes(n) {}
Storage::~Storage() { kernels::deallocate(device, data, nbytes); }

KernelCtx kernel_ctx(Device d) { return KernelCtx{d, kernels::current_stream(d)}; }
int cuda_device_count() { return kernels::cuda_device_count(); }

TensorImpl& Tensor::impl() const {
  LOOM_CHECK(impl_, "Tensor: use of an undefined tensor");
  return *impl_;
}

int64_t Tensor::size(int64_t d) const {
  int64_t r = dim();
  LOOM_CHECK(d >= -r && d < r, "size: dim ", d, " out of range for shape ", shape());
  return shape()[d < 0 ? d + r : d];
}

void* Tensor::data_ptr() const {
  return static_cast<char*>(impl().storage->data) + impl().offset * dtype_size(dtype());
}

namespace {
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::Float32;
  else if constexpr (std::is_same_v<T, double>) return DType::Float64;
  else if constexpr (std::is_same_v<T, int32_t>) return DType::Int32;
  else return DType::Int64;
}
}  // namespace

template <class T>
T* Tensor::data() const {
  LOOM_CHECK(dtype() == dtype_of<T>(), "data<", dtype_of<T>(), ">: tensor has dtype ", dtype());
  return static_cast<T*>(data_ptr());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int32_t* Tensor::data<int32_t>() const;
template int64_t* Tensor::data<int64_t>() const;

Tensor& Tensor::requires_grad_(bool on) {
  LOOM_CHECK(is_leaf(), "requires_grad_: only a leaf tensor (not the result of a recorded op) can change "
                        "requires_grad; use detach() first");
  LOOM_CHECK(!on || is_floating(dtype()), "requires_grad_: a ", dtype(), " tensor cannot require grad");
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
void Tensor::set_grad(const Tensor& g) {
  LOOM_CHECK(!g.defined() || (g.shape() == shape() && g.dtype() == dtype() && g.device() == device()),
             "set_grad: gradient ", g.shape(), " ", g.dtype(), " does not match tensor ", shape(), " ", dtype());
  impl().grad = g.defined() ? g.impl_ptr() : nullptr;
}
void Tensor::zero_grad() { impl().grad = nullptr; }

Tensor Tensor::detach() const {
  auto p = std::make_shared<TensorImpl>();
  p->storage = impl().storage;
  p->offset = impl().offset;
  p->shape = impl().shape;
  p->dtype = impl().dtype;
  return Tensor(p);
}

// to(Device), to(DType) and clone() are ops on the tape: autograd/ops/shape.cpp, as autograd/ops.def files them.

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor host = detach().to(Device::cpu()).to(dtype_of<T>());
  const T* p = host.data<T>();
  return std::vector<T>(p, p + host.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

double Tensor::item() const {
  LOOM_CHECK(numel() == 1, "item: tensor of shape ", shape(), " has ", numel(), " elements, not one");
  return to_vector<double>()[0];
}

static void check_inplace(const Tensor& t, const char* op) {
  LOOM_CHECK(!(grad_enabled() && t.requires_grad()),
             op, ": in-place write to a tensor of shape ", t.shape(),
             " that requires grad while the tape records; wrap it in loom::NoGrad");
}

Tensor& Tensor::fill_(double v) {
  check_inplace(*this, "fill_");
  KernelCtx k = kernel_ctx(device());
  LOOM_DISPATCH(k, LOOM_CUDA_ELEMENTWISE, fill, k, dtype(), data_ptr(), numel(), v);
  ++impl().storage->version;
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_");
  LOOM_CHECK(src.shape() == shape(), "copy_: source shape ", src.shape(), " differs from destination ", shape());
  Tensor s = src.detach().to(device()).to(dtype());
  kernels::copy_bytes(device(), data_ptr(), device(), s.data_ptr(), numel() * dtype_size(dtype()));
  ++impl().storage->version;
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace(*this, "add_");
  LOOM_CHECK(other.shape() == shape() && other.dtype() == dtype() && other.device() == device(),
             "add_: ", other.shape(), " ", other.dtype(), " on ", other.device(), " into ", shape(), " ",
             dtype(), " on ", device(), " (in-place add needs identical shape, dtype and device)");
  Tensor scaled = other;
  if (alpha != 1) {
    NoGrad ng;
    scaled = other * alpha;
  }
  Broadcast bc;
  bc.rank = 1;
  bc.shape[0] = numel();
  bc.stride[0][0] = bc.stride[1][0] = 1;
  KernelCtx k = kernel_ctx(device());
  LOOM_DISPATCH(k, LOOM_CUDA_ELEMENTWISE, binary, k, BinaryOp::Add, dtype(), data_ptr(), scaled.data_ptr(),
                data_ptr(), bc);
  ++impl().storage->version;
  return *this;
}

Tensor& Tensor::mul_(double s) {
  check_inplace(*this, "mul_");
  Tensor f = full({}, s, options());
  Broadcast bc;
  bc.rank = 1;
  bc.shape[0] = numel();
  bc.stride[0][0] = 1;
  bc.stride[1][0] = 0;
  KernelCtx k = kernel_ctx(device());
  LOOM_DISPATCH(k, LOOM_CUDA_ELEMENTWISE, binary, k, BinaryOp::Mul, dtype(), data_ptr(), f.data_ptr(),
                data_ptr(), bc);
  ++impl().storage->version;
  return *this;
}

// ---- printing ---------------------------------------------------------------------
std::string Tensor::to_string(int64_t max_per_dim) const {
  std::ostringstream os;
  if (!defined()) return "Tensor(undefined)";
  std::vector<double> v = to_vector<double>();
  const Shape& s = shape();
  std::vector<int64_t> strides(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * s[i + 1];
  os << std::setprecision(is_floating(dtype()) ? 6 : 20);
  auto rec = [&](auto&& self, size_t d, int64_t base) -> void {
    if (d == s.size()) {
      os << v[base];
      return;
    }
    os << '[';
    for (int64_t i = 0; i < s[d]; ++i) {
      if (i == max_per_dim / 2 && s[d] > max_per_dim) {
        os << "..., ";
        i = s[d] - max_per_dim / 2;
      }
      if (i) os << ", ";
      self(self, d + 1, base + i * strides[d]);
    }
    os << ']';
  };
  rec(rec, 0, 0);
  os << ", shape=" << s << ", dtype=" << dtype() << ", device=" << device();
  if (requires_grad()) os << ", requires_grad";
  return "Tensor(" + os.str() + ")";
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

// ---- creation ------------------------------------------------------------------
Tensor empty(const Shape& shape, TensorOptions o) {
  const int64_t bytes = checked_mul("empty", shape, numel(shape, "empty"), static_cast<int64_t>(dtype_size(o.dtype)));
  auto p = std::make_shared<TensorImpl>();
  p->storage = std::make_shared<Storage>(o.device, static_cast<size_t>(bytes));
  p->shape = shape;
  p->dtype = o.dtype;
  Tensor t(p);
  if (o.requires_grad) t.requires_grad_();
  return t;
}

Tensor full(const Shape& shape, double value, TensorOptions o) {
  bool rg = o.requires_grad;
  o.requires_grad = false;
  Tensor t = empty(shape, o);
  t.fill_(value);
  if (rg) t.requires_grad_();
  return t;
}
Tensor zeros(const Shape& shape, TensorOptions o) { return full(shape, 0, o); }
Tensor ones(const Shape& shape, TensorOptions o) { return full(shape, 1, o); }
Tensor scalar(double value, TensorOptions o) { return full({}, value, o); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.options()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.options()); }

Tensor arange(double start, double stop, double step, TensorOptions o) {
  LOOM_CHECK(step != 0 && std::isfinite(start) && std::isfinite(stop) && std::isfinite(step),
             "arange: start ", start, ", stop ", stop, ", step ", step, " do not describe a finite range");
  const double count = std::ceil((stop - start) / step);
  // Converting a double beyond int64 would be undefined behaviour.
  LOOM_CHECK(count < 0x1p63, "arange: start ", start, ", stop ", stop, ", step ", step, " describe ", count,
             " elements, more than int64 counts");
  const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(count));
  Tensor t = empty({n}, o.with(o.dtype));
  KernelCtx k = kernel_ctx(o.device);
  LOOM_DISPATCH(k, LOOM_CUDA_ELEMENTWISE, iota, k, o.dtype, t.data_ptr(), n, start, step);
  return t;
}

template <class T>
static Tensor from_host(const std::vector<T>& values, const Shape& shape, TensorOptions o) {
  LOOM_CHECK(numel(shape) == static_cast<int64_t>(values.size()), "from_vector: ", values.size(),
             " values do not fill shape ", shape);
  Tensor host = empty(shape, TensorOptions{dtype_of<T>(), Device::cpu()});
  std::copy(values.begin(), values.end(), host.data<T>());
  Tensor t = host.to(o.dtype).to(o.device);  // a leaf: host does not require grad
  if (o.requires_grad) t.requires_grad_();
  return t;
}
Tensor from_vector(const std::vector<double>& v, const Shape& s, TensorOptions o) { return from_host(v, s, o); }
Tensor from_vector(const std::vector<float>& v, const Shape& s, TensorOptions o) { return from_host(v, s, o); }
Tensor from_vector(const std::vector<int64_t>& v, const Shape& s, TensorOptions o) { return from_host(v, s, o); }

// ---- random --------------------------------------------------------------------
Generator& default_generator() {
  static Generator g(0);
  return g;
}
void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

// Reserves the Philox blocks of n values from g (the default generator when null) for a
// fill on device d. During a CUDA graph capture of d the offset travels in a device word
// the graph rewrites before each replay (autograd/graph.h), so every replay draws anew.
static PhiloxOffset reserve(Generator* g, DType dt, int64_t n, bool normal_dist, Device d) {
  Generator& gen = g ? *g : default_generator();
  uint64_t blocks = dt == DType::Float32 ? philox::blocks_for<float>(n, normal_dist)
                                         : philox::blocks_for<double>(n, normal_dist);
  const uint64_t offset = gen.advance(blocks);
  if (!kernels::capturing(d)) return offset;
  CudaGraph* graph = CudaGraph::capturing();
  LOOM_CHECK(graph, "random fill on ", d, " during a CUDA graph capture that is not a loom::CudaGraph's");
  return PhiloxOffset(0, graph->random_offset(gen, offset, blocks));
}

// A fresh tensor filled by a Philox kernel: fill(ctx, t, seed, offset) launches it
// on a stream position reserved from the generator.
template <class Fill>
static Tensor random_tensor(const char* op, const Shape& shape, TensorOptions o, Generator* g, bool normal_dist,
                            Fill fill) {
  LOOM_CHECK(is_floating(o.dtype), op, ": needs a floating dtype, got ", o.dtype);
  const bool rg = o.requires_grad;
  o.requires_grad = false;
  Tensor t = empty(shape, o);
  const PhiloxOffset off = reserve(g, o.dtype, t.numel(), normal_dist, o.device);
  fill(kernel_ctx(o.device), t, (g ? *g : default_generator()).seed(), off);
  if (rg) t.requires_grad_();
  return t;
}

Tensor uniform(const Shape& shape, double lo, double hi, TensorOptions o, Generator* g) {
  return random_tensor("uniform", shape, o, g, false, [&](const KernelCtx& k, Tensor& t, uint64_t seed, PhiloxOffset off) {
    LOOM_DISPATCH(k, LOOM_CUDA_RANDOM, uniform, k, t.dtype(), t.data_ptr(), t.numel(), seed, off, lo, hi);
  });
}

Tensor normal(const Shape& shape, double mean, double stddev, TensorOptions o, Generator* g) {
  return random_tensor("normal", shape, o, g, true, [&](const KernelCtx& k, Tensor& t, uint64_t seed, PhiloxOffset off) {
    LOOM_DISPATCH(k, LOOM_CUDA_RANDOM, normal, k, t.dtype(), t.data_ptr(), t.numel(), seed, off, mean, stddev);
  });
}

Tensor rand(const Shape& shape, TensorOptions o, Generator* g) { return uniform(shape, 0, 1, o, g); }
Tensor randn(const Shape& shape, TensorOptions o, Generator* g) { return normal(shape, 0, 1, o, g); }

Tensor randint(int64_t high, const Shape& shape, TensorOptions o, Generator* g) {
  LOOM_CHECK(high >= 1 && high <= (int64_t(1) << 24), "randint: high must be in [1, 2^24], got ", high);
  const Tensor u = rand(shape, TensorOptions{DType::Float32, o.device}, g);
  const double k = static_cast<double>(high);
  // (1 − u)·k ∈ [0, k); the clamp keeps float rounding (1 − u rounding to 1) from ever giving k.
  return clamp((1.0 - u) * k, 0.0, k - 0.5).to(DType::Int64);
}

Tensor bernoulli(const Tensor& p, Generator* g) {
  LOOM_CHECK(is_floating(p.dtype()), "bernoulli: probabilities must be floating, got ", p.dtype());
  Tensor t = empty(p.shape(), p.options());
  const PhiloxOffset off = reserve(g, p.dtype(), t.numel(), false, p.device());
  uint64_t seed = (g ? *g : default_generator()).seed();
  KernelCtx k = kernel_ctx(p.device());
  LOOM_DISPATCH(k, LOOM_CUDA_RANDOM, bernoulli, k, p.dtype(), p.data_ptr(), t.data_ptr(), t.numel(), seed, off);
  return t;
}

}  // namespace loom
