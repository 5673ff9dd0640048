// CUDA against the CPU reference for the resample family (pad2d, bilinear
// resize and their adjoint ops): forward and backward on awkward planes (batch 1,
// odd channels, 1×1, 7×9, 33×31, pads up to size − 1, up- and downsampling).
// The adjoint kernels gather in the CPU's order in double, so tolerances are tight.
// Allocations are poisoned while the tests run; without a device they are skipped.
#include "tests/gradcheck.h"
#include "tests/cuda/cuda_test.h"

using namespace loom;
using namespace loom::testing;

namespace {

class CudaResample : public CudaTest {};

const std::vector<DType> kFloatTypes = {DType::Float32, DType::Float64};

Tensor uniform_cpu(const Shape& s, double lo, double hi, DType dt, uint64_t seed) {
  Generator g(seed);
  return uniform(s, lo, hi, TensorOptions{dt}, &g);
}

// expect_cuda_matches_cpu (cuda_test.h) for a one-input f.
void expect_same(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, Tol t) {
  expect_cuda_matches_cpu([&](const std::vector<Tensor>& in) { return f(in[0]); }, {x}, t);
}

}  // namespace

TEST_F(CudaResample, Pad2dMatchesCpu) {
  for (DType dt : kFloatTypes)
    for (Shape s : {Shape{1, 3, 7, 9}, Shape{2, 5, 33, 31}, Shape{1, 1, 1, 1}, Shape{1, 2, 2, 5}})
      for (PadMode m : {PadMode::Reflect, PadMode::Replicate})
        for (Pads2d pads : {Pads2d{1, 1, 1, 1}, Pads2d{3, 0, 0, 2}, Pads2d{6, 4, 1, 6}}) {
          if (m == PadMode::Reflect && (pads[0] >= s[3] || pads[1] >= s[3] || pads[2] >= s[2] || pads[3] >= s[2]))
            continue;
          SCOPED_TRACE(str(dtype_name(dt), " ", s, " mode ", int(m), " pads ",
                           Shape{pads[0], pads[1], pads[2], pads[3]}));
          expect_same([&](const Tensor& v) { return pad2d(v, pads, m); },
                                  uniform_cpu(s, -3, 3, dt, s[2] + pads[0]), tol(dt));
          const Shape gs{s[0], s[1], s[2] + pads[2] + pads[3], s[3] + pads[0] + pads[1]};
          expect_same([&](const Tensor& v) { return pad2d_backward(v, pads, m); },
                                  uniform_cpu(gs, -3, 3, dt, s[3] + pads[1]), tol(dt));
        }
}

TEST_F(CudaResample, BilinearMatchesCpu) {
  for (DType dt : kFloatTypes)
    for (Shape s : {Shape{1, 3, 7, 9}, Shape{2, 5, 33, 31}, Shape{1, 1, 1, 1}})
      for (Shape out : {Shape{14, 18}, Shape{5, 3}, Shape{1, 1}, Shape{64, 17}}) {
        SCOPED_TRACE(str(dtype_name(dt), " ", s, " → ", out));
        expect_same([&](const Tensor& v) { return upsample_bilinear2d(v, out[0], out[1]); },
                                uniform_cpu(s, -3, 3, dt, s[2] + out[0]), tol(dt));
        expect_same([&](const Tensor& v) { return upsample_bilinear2d_backward(v, s[2], s[3]); },
                                uniform_cpu({s[0], s[1], out[0], out[1]}, -3, 3, dt, s[3] + out[1]), tol(dt));
      }
}
