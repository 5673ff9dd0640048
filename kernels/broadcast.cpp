// Building a Broadcast (kernels/broadcast.h): shape checks and stride merging, on the host.
#include "kernels/broadcast.h"

#include <algorithm>
#include <vector>

namespace loom {

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    LOOM_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b,
               " cannot be broadcast (dimension ", i, " is ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  numel(out, op);  // [n, 1] and [1, m] may broadcast to more elements than int64 counts
  return out;
}

Broadcast make_broadcast(const char* op, const Shape& out, std::initializer_list<Shape> operands) {
  const int r = static_cast<int>(out.size());
  const int nops = static_cast<int>(operands.size());
  // Full-rank strides per operand (0 where broadcast).
  std::vector<std::vector<int64_t>> st(nops, std::vector<int64_t>(r, 0));
  int j = 0;
  for (const Shape& s : operands) {
    int64_t stride = 1;
    for (int i = r - 1; i >= 0; --i) {
      int si = i - (r - static_cast<int>(s.size()));
      int64_t d = si >= 0 ? s[si] : 1;
      st[j][i] = (d == 1 && out[i] != 1) ? 0 : stride;
      stride *= d;
    }
    ++j;
  }
  // Merge dim i into i+1 when every operand is contiguous across the pair.
  Broadcast bc;
  std::vector<int64_t> shape;
  std::vector<std::vector<int64_t>> merged(nops);
  for (int i = 0; i < r; ++i) {
    if (out[i] == 1 && r > 1) continue;  // size-1 dims carry no iteration
    bool can_merge = !shape.empty();
    for (int o = 0; o < nops && can_merge; ++o)
      can_merge = merged[o].back() == st[o][i] * out[i];
    if (can_merge) {
      shape.back() *= out[i];
      for (int o = 0; o < nops; ++o) merged[o].back() = st[o][i];
    } else {
      shape.push_back(out[i]);
      for (int o = 0; o < nops; ++o) merged[o].push_back(st[o][i]);
    }
  }
  LOOM_CHECK(shape.size() <= static_cast<size_t>(kMaxRank), op, ": shape ", out, " has more than ",
             kMaxRank, " non-mergeable dimensions");
  bc.rank = static_cast<int>(shape.size());
  for (int i = 0; i < bc.rank; ++i) {
    bc.shape[i] = shape[i];
    for (int o = 0; o < nops; ++o) bc.stride[o][i] = merged[o][i];
  }
  return bc;
}

}  // namespace loom
