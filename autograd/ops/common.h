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

}  // namespace loom::detail
