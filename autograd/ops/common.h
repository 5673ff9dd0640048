// Helpers shared by the op implementations in autograd/ops/ (not public API).
#pragma once

#include <initializer_list>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "kernels/broadcast.h"  // broadcast_shapes, make_broadcast
#include "kernels/elementwise.h"

namespace loom::detail {

// Refuses operands that differ in dtype or device, or are undefined.
void check_compatible(const char* op, std::initializer_list<const Tensor*> xs);
void check_floating(const char* op, const Tensor& x);
// Wraps a possibly negative axis into [0, rank); a 0-d tensor accepts 0 and -1 (both give 0).
int64_t wrap_axis(const char* op, int64_t axis, int64_t rank);
// Sums a broadcast gradient back down to `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& g, const Shape& shape);
// Product of shape[begin, end).
int64_t prod(const Shape& s, int64_t begin, int64_t end);
// Every index (int64) in [0, bound), else a loom::Error "<op>: <noun> v at position j is out of range for
// <what>". A CUDA index is checked by a kernel (one word comes back, not the indices); during a CUDA graph
// capture the check is recorded and the graph reads its word after each replay (CudaGraph::check_after_replay).
void check_index_values(const char* op, const Tensor& index, int64_t bound, const std::string& what,
                        const char* noun = "index");

}  // namespace loom::detail
