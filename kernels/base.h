// The vocabulary shared by every layer: dtypes, devices, errors and the
// kernel context. It lives at the bottom (kernels/) because kernels need it and
// must never include anything from autograd/.
#pragma once

#include "kernels/config.h"  // generated: LOOM_WITH_CUDA, LOOM_CUDA_<FAMILY>, LOOM_HAVE_CUDNN

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

// Marks scalar math shared by the CPU reference and the CUDA kernels
// (kernels/philox.h, kernels/elementwise_math.h): compiled for both sides by
// nvcc, a plain inline function for the host compiler.
#if defined(__CUDACC__)
#define LOOM_HD __host__ __device__ __forceinline__
#else
#define LOOM_HD inline
#endif

namespace loom {

// Every failure loom reports is a loom::Error whose message names the op and the
// shapes, dtypes or devices involved.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Shape = std::vector<int64_t>;
// Declared before str() so that str(..., shape, ...) finds it (Shape is a std::
// type, so argument-dependent lookup would not).
std::ostream& operator<<(std::ostream& os, const Shape& s);
// The number of elements of shape s, the product of its dimensions. A
// loom::Error naming op and s when a dimension is negative or the product
// leaves int64 (signed overflow would be undefined behaviour): checked with the
// zero dimensions counted as 1, so that every partial product an op forms over
// some of the axes (outer × inner sizes, strides) fits as well.
int64_t numel(const Shape& s, const char* op = "numel");
// a · b and a + b for sizes computed from shapes and op arguments (output
// sizes, padded sizes): a loom::Error naming op and shape (its input) when the
// result leaves int64, instead of undefined behaviour.
int64_t checked_mul(const char* op, const Shape& shape, int64_t a, int64_t b);
int64_t checked_add(const char* op, const Shape& shape, int64_t a, int64_t b);

// str(a, b, c): concatenate anything streamable into a message.
template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

#define LOOM_CHECK(cond, ...)                             \
  do {                                                    \
    if (!(cond)) throw ::loom::Error(::loom::str(__VA_ARGS__)); \
  } while (0)

enum class DType : uint8_t { Float32, Float64, Int32, Int64 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int32: return 4;
    case DType::Int64: return 8;
  }
  return 0;
}
constexpr bool is_floating(DType t) { return t == DType::Float32 || t == DType::Float64; }
const char* dtype_name(DType t);
inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;
  static Device cpu() { return {}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  static Device parse(const std::string& s);  // "cpu", "cuda", "cuda:1"
};
std::ostream& operator<<(std::ostream& os, Device d);


// What every kernel entry point receives first: where to run and on which
// stream (a cudaStream_t on CUDA, ignored on the CPU).
struct KernelCtx {
  Device device;
  void* stream = nullptr;
};

// Calls T-templated code with T = float or double for a floating dtype.
#define LOOM_FLOAT_SWITCH(dt, T, ...)                                           \
  switch (dt) {                                                                 \
    case ::loom::DType::Float32: { using T = float; __VA_ARGS__; break; }       \
    case ::loom::DType::Float64: { using T = double; __VA_ARGS__; break; }      \
    default: throw ::loom::Error(::loom::str("kernel needs a floating dtype, got ", dt)); \
  }

#define LOOM_ANY_SWITCH(dt, T, ...)                                             \
  switch (dt) {                                                                 \
    case ::loom::DType::Float32: { using T = float; __VA_ARGS__; break; }       \
    case ::loom::DType::Float64: { using T = double; __VA_ARGS__; break; }      \
    case ::loom::DType::Int32: { using T = int32_t; __VA_ARGS__; break; }       \
    case ::loom::DType::Int64: { using T = int64_t; __VA_ARGS__; break; }       \
  }

}  // namespace loom
