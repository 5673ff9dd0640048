// Broadcasting: how an elementwise kernel walks operands of different shapes.
//
// A Broadcast is the output shape plus, for each operand (at most three), its strides in elements,
// 0 on the dimensions where the operand is broadcast. Ops in autograd/ build it once with
// make_broadcast below (after broadcast_shapes has checked and computed the output shape); the
// kernels (kernels/elementwise.h, and kernels/shape.h's strided copy, which reuses it as a shape +
// strides record) only walk it. Merging contiguous dimensions at build time keeps kMaxRank small
// and the kernels' inner loops long.
#pragma once

#include <initializer_list>

#include "kernels/base.h"

namespace loom {

constexpr int kMaxRank = 8;
struct Broadcast {
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t stride[3][kMaxRank] = {};  // per operand, in elements; 0 = broadcast
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= shape[i];
    return n;
  }
};

// NumPy broadcast of two shapes; a loom::Error naming op and shapes when impossible.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// The walk record for `out_shape` with operands of the given shapes (each right-aligned and
// broadcast to out_shape). Drops size-1 dimensions and merges the ones every operand walks
// contiguously; a loom::Error naming op when more than kMaxRank dimensions remain.
Broadcast make_broadcast(const char* op, const Shape& out_shape, std::initializer_list<Shape> operands);

}  // namespace loom
