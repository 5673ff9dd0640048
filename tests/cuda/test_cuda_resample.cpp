// CUDA against the CPU reference for the resample family (pad2d, bilinear
// resize and their adjoint ops): forward and backward on awkward planes (batch 1,
// odd channels, 1×1, 7×9, 33×31, pads up to size − 1, up- and downsampling).
// The adjoint kernels gather in the CPU's order in double, so tolerances are tight.
// Allocations are poisoned while the tests run; without a device they are skipped.
#include "tests/cuda/cuda_test.h"
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {

const Device kCuda = Device::cuda(0);
const std::vector<DType> kFloatTypes = {DType::Float32, DType::Float64};

class CudaResample : public CudaTest {};

double tol(DType dt) { return dt == DType::Float32 ? 1e-6 : 1e-13; }

Tensor uniform_cpu(const Shape& s, double lo, double hi, DType dt, uint64_t seed) {
  Generator g(seed);
  return uniform(s, lo, hi, TensorOptions{dt}, &g);
}

// f on the CPU and on the GPU, then the gradients of Σ f(x)·R: must agree.
void expect_cuda_matches_cpu(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, double t) {
  Tensor c = x.detach().clone(), g = x.detach().to(kCuda);
  c.requires_grad_();
  g.requires_grad_();
  Tensor yc = f(c), yg = f(g);
  ASSERT_EQ(yg.device(), kCuda);
  expect_tensors_near(yg, yc, t, t);
  Generator gen(99);
  Tensor r = randn(yc.shape(), TensorOptions{yc.dtype()}, &gen);
  backward(sum(yc * r));
  backward(sum(yg * r.to(kCuda)));
  ASSERT_TRUE(g.grad().defined());
  EXPECT_EQ(g.grad().device(), kCuda);
  expect_tensors_near(g.grad(), c.grad(), t, t);
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
          expect_cuda_matches_cpu([&](const Tensor& v) { return pad2d(v, pads, m); },
                                  uniform_cpu(s, -3, 3, dt, s[2] + pads[0]), tol(dt));
          const Shape gs{s[0], s[1], s[2] + pads[2] + pads[3], s[3] + pads[0] + pads[1]};
          expect_cuda_matches_cpu([&](const Tensor& v) { return pad2d_backward(v, pads, m); },
                                  uniform_cpu(gs, -3, 3, dt, s[3] + pads[1]), tol(dt));
        }
}

TEST_F(CudaResample, BilinearMatchesCpu) {
  for (DType dt : kFloatTypes)
    for (Shape s : {Shape{1, 3, 7, 9}, Shape{2, 5, 33, 31}, Shape{1, 1, 1, 1}})
      for (Shape out : {Shape{14, 18}, Shape{5, 3}, Shape{1, 1}, Shape{64, 17}}) {
        SCOPED_TRACE(str(dtype_name(dt), " ", s, " → ", out));
        expect_cuda_matches_cpu([&](const Tensor& v) { return upsample_bilinear2d(v, out[0], out[1]); },
                                uniform_cpu(s, -3, 3, dt, s[2] + out[0]), tol(dt));
        expect_cuda_matches_cpu([&](const Tensor& v) { return upsample_bilinear2d_backward(v, s[2], s[3]); },
                                uniform_cpu({s[0], s[1], out[0], out[1]}, -3, 3, dt, s[3] + out[1]), tol(dt));
      }
}
