#include "kernels/memory.h"

#include <cstdlib>
#include <cstring>

#include "kernels/dispatch.h"

namespace loom::kernels {

#if LOOM_WITH_CUDA
namespace cuda {
void* allocate(int device, size_t bytes);
void deallocate(int device, void* p, size_t bytes);
void copy_bytes(Device dst_dev, void* dst, Device src_dev, const void* src, size_t n);
int device_count();
void synchronize(int device);
}  // namespace cuda
#endif

[[noreturn]] void no_cuda_kernel(const char* fn) {
#if LOOM_WITH_CUDA
  throw Error(str("kernel '", fn, "' has no CUDA implementation yet; move the tensors to the CPU"));
#else
  throw Error(str("kernel '", fn, "' was asked to run on CUDA, but this loom build has no CUDA backend "
                  "(rebuild with the CUDA toolkit installed, or use --device cpu)"));
#endif
}

[[noreturn]] static void no_cuda(const char* what) {
  throw Error(str(what, ": this loom build has no CUDA backend (configure with the CUDA toolkit "
                        "installed and -DLOOM_CUDA=ON, or use the CPU)"));
}

void* allocate(Device d, size_t bytes) {
  if (d.is_cuda()) {
#if LOOM_WITH_CUDA
    return cuda::allocate(d.index, bytes);
#else
    no_cuda("allocate");
#endif
  }
  // 64-byte alignment: whole cache lines, and safe for 512-bit vector loads.
  size_t rounded = ((bytes + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  LOOM_CHECK(p, "allocate: out of host memory asking for ", bytes, " bytes");
  return p;
}

void deallocate(Device d, void* p, size_t bytes) {
  if (!p) return;
  if (d.is_cuda()) {
#if LOOM_WITH_CUDA
    cuda::deallocate(d.index, p, bytes);
#endif
    return;
  }
  std::free(p);
}

void copy_bytes(Device dst_dev, void* dst, Device src_dev, const void* src, size_t n) {
  if (n == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, n);
    return;
  }
#if LOOM_WITH_CUDA
  cuda::copy_bytes(dst_dev, dst, src_dev, src, n);
#else
  no_cuda("copy");
#endif
}

int cuda_device_count() {
#if LOOM_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

void synchronize(Device d) {
#if LOOM_WITH_CUDA
  if (d.is_cuda()) cuda::synchronize(d.index);
#endif
}

}  // namespace loom::kernels
