// Tensor: a cheap handle (shared pointer) to storage + shape + dtype + device +
// an optional gradient. Data is always contiguous row-major; views that don't
// reorder data (reshape, squeeze, unsqueeze, flatten, detach) share storage.
#pragma once

#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/base.h"

namespace loom {

struct Node;

// Device memory plus a version counter that every in-place write bumps: the tape
// compares it to catch a saved tensor modified before backward.
struct Storage {
  Device device;
  void* data = nullptr;
  size_t nbytes = 0;
  uint64_t version = 0;
  Storage(Device d, size_t n);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::Float32;
  bool requires_grad = false;
  std::shared_ptr<Node> node;          // the tape entry that produced it; null for leaves
  uint32_t output_nr = 0;              // which of node's outputs it is (gradients are routed by node and index)
  std::shared_ptr<TensorImpl> grad;    // accumulated gradient of a leaf
};

struct TensorOptions {
  DType dtype = DType::Float32;
  Device device = Device::cpu();
  bool requires_grad = false;
  TensorOptions& with(DType d) { dtype = d; return *this; }
  TensorOptions& on(Device d) { device = d; return *this; }
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return loom::numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device; }
  TensorOptions options() const { return {dtype(), device(), false}; }

  // Raw element pointer (offset applied). data<T>() checks that T matches the dtype.
  void* data_ptr() const;
  template <class T>
  T* data() const;

  // Autograd state.
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& requires_grad_(bool on = true);  // only on leaves
  bool is_leaf() const { return impl().node == nullptr; }
  Tensor grad() const;  // undefined until a backward reaches this leaf
  void set_grad(const Tensor& g);
  void zero_grad();
  // A tensor sharing this one's storage, cut from the tape.
  Tensor detach() const;

  // Conversions (differentiable: recorded on the tape).
  Tensor to(Device d) const;
  Tensor to(DType t) const;
  Tensor clone() const;

  // Host read-back (synchronises with the device).
  double item() const;
  template <class T>
  std::vector<T> to_vector() const;

  // In-place writes: not recorded; they bump the version counter. Refused on a
  // tensor that requires grad while the tape records (wrap them in NoGrad).
  Tensor& fill_(double v);
  Tensor& zero_() { return fill_(0); }
  Tensor& copy_(const Tensor& src);             // same shape; any device/dtype
  Tensor& add_(const Tensor& other, double alpha = 1);  // this += alpha * other
  Tensor& mul_(double s);

  std::string to_string(int64_t max_per_dim = 6) const;
  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- creation ----------------------------------------------------------------
Tensor empty(const Shape& shape, TensorOptions o = {});
Tensor zeros(const Shape& shape, TensorOptions o = {});
Tensor ones(const Shape& shape, TensorOptions o = {});
Tensor full(const Shape& shape, double value, TensorOptions o = {});
Tensor scalar(double value, TensorOptions o = {});          // 0-d
Tensor arange(double start, double stop, double step = 1, TensorOptions o = {});
Tensor from_vector(const std::vector<double>& values, const Shape& shape, TensorOptions o = {});
Tensor from_vector(const std::vector<float>& values, const Shape& shape, TensorOptions o = {});
// Integer values default to int64 (indices, labels, counters) rather than float32.
Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape, TensorOptions o = {DType::Int64});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);

// ---- random (Philox; identical streams on every device) -------------------------
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t seed) { seed_ = seed; offset_ = 0; }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }
  // Reserves `blocks` Philox blocks and returns the offset of the first.
  uint64_t advance(uint64_t blocks) { uint64_t o = offset_; offset_ += blocks; return o; }

 private:
  uint64_t seed_ = 0, offset_ = 0;
};
Generator& default_generator();
void manual_seed(uint64_t seed);

Tensor rand(const Shape& shape, TensorOptions o = {}, Generator* g = nullptr);   // U(0, 1]
Tensor randn(const Shape& shape, TensorOptions o = {}, Generator* g = nullptr);  // N(0, 1)
Tensor uniform(const Shape& shape, double lo, double hi, TensorOptions o = {}, Generator* g = nullptr);
Tensor normal(const Shape& shape, double mean, double stddev, TensorOptions o = {}, Generator* g = nullptr);
// Integers uniform on {0, …, high − 1}, int64 on o's device (o's dtype is ignored);
// high >= 1, else an Error. Drawn as ⌊high·(1 − u)⌋ from float32 u ~ U(0, 1], so the
// stream is the same on every device; fair for high up to 2^24 (float32's integers).
Tensor randint(int64_t high, const Shape& shape, TensorOptions o = {}, Generator* g = nullptr);
// Draws 1 with probability p (elementwise), 0 otherwise; not differentiable.
Tensor bernoulli(const Tensor& p, Generator* g = nullptr);

// Number of CUDA devices visible (0 in a CPU-only build).
int cuda_device_count();

// Kernel context for a tensor's device (stream selection lives here).
KernelCtx kernel_ctx(Device d);

}  // namespace loom
