// Raw device memory: allocation, copies between devices, device queries.
// The CUDA implementation (kernels/cuda/memory.cu) adds the caching allocator.
#pragma once

#include "kernels/base.h"

namespace loom::kernels {

void* allocate(Device d, size_t bytes);
void deallocate(Device d, void* p, size_t bytes);
// Copies n bytes; either side may be CPU or CUDA. Synchronous when the
// destination is host memory (the caller is about to read it).
void copy_bytes(Device dst_dev, void* dst, Device src_dev, const void* src, size_t n);
int cuda_device_count();  // 0 in a CPU-only build or without a device
void synchronize(Device d);

}  // namespace loom::kernels
