// conv2d and conv_transpose2d on CUDA against the CPU reference, for every CUDA variant (v2 tiled
// implicit GEMM, v1 direct, and v0 cuDNN when the build has it, which makes cuDNN a second reference):
// forward values and the gradients of x, w and bias through backward(), on awkward geometries (batch 1
// and 3, channels 1/3/5, 7x9 and 31x33 inputs, kernels 1/3/4/7, stride, padding, dilation, groups and
// depthwise). Allocations are poisoned while the tests run, so an element a kernel forgets to write
// fails. Without a CUDA device every test is skipped.
#include <cmath>

#include "kernels/conv.h"
#include "kernels/memory.h"
#include "tests/cuda/cuda_test.h"
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;
using kernels::ConvVariant;

namespace {

const Device kCuda = Device::cuda(0);

class CudaConv : public CudaTest {
 protected:
  void TearDown() override {
    CudaTest::TearDown();
    kernels::set_conv_variant(ConvVariant::Auto);
  }
};

std::vector<ConvVariant> cuda_variants() {
#ifdef LOOM_HAVE_CUDNN
  return {ConvVariant::V2, ConvVariant::V1, ConvVariant::V0};
#else
  return {ConvVariant::V2, ConvVariant::V1};
#endif
}

struct Case {
  int64_t batch, in_c, out_c, h, w, kh, kw;
  ConvParams p;
  bool transpose;
};

std::string describe(const Case& c) {
  return str(c.transpose ? "conv_transpose2d" : "conv2d", " N=", c.batch, " C=", c.in_c, " O=", c.out_c, " ",
             c.h, "x", c.w, " k=", c.kh, "x", c.kw, " s=", c.p.stride[0], ",", c.p.stride[1], " p=", c.p.padding[0],
             ",", c.p.padding[1], " d=", c.p.dilation[0], ",", c.p.dilation[1], " op=", c.p.output_padding[0], ",",
             c.p.output_padding[1], " g=", c.p.groups);
}

ConvParams params(Pair stride, Pair padding, Pair dilation, int64_t groups, Pair output_padding = {0, 0}) {
  ConvParams p;
  p.stride = stride;
  p.padding = padding;
  p.dilation = dilation;
  p.groups = groups;
  p.output_padding = output_padding;
  return p;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (bool t : {false, true}) {
    out.push_back({1, 1, 1, 7, 9, 1, 1, params({1, 1}, {0, 0}, {1, 1}, 1), t});
    out.push_back({3, 3, 5, 7, 9, 3, 3, params({1, 1}, {1, 1}, {1, 1}, 1), t});
    out.push_back({3, 5, 3, 7, 9, 4, 4, params({2, 2}, {1, 1}, {1, 1}, 1), t});
    out.push_back({1, 3, 5, 31, 33, 7, 7, params({1, 1}, {3, 3}, {1, 1}, 1), t});
    out.push_back({3, 1, 5, 31, 33, 3, 4, params({2, 1}, {0, 3}, {2, 1}, 1), t});
    out.push_back({3, 4, 6, 31, 33, 3, 3, params({2, 2}, {1, 1}, {2, 2}, 2), t});
    out.push_back({1, 5, 5, 31, 33, 3, 3, params({1, 2}, {1, 0}, {1, 1}, 5), t});  // depthwise
    out.push_back({3, 5, 5, 7, 9, 1, 3, params({2, 2}, {0, 1}, {1, 2}, 5), t});    // depthwise, dilated
    // Stride phases (backward_data's GEMMs) that no tap reaches, and a dilation sharing a factor with the stride.
    out.push_back({1, 2, 3, 9, 9, 1, 1, params({3, 3}, {0, 0}, {1, 1}, 1), t});
    out.push_back({3, 2, 3, 11, 10, 3, 5, params({3, 2}, {2, 1}, {2, 2}, 1), t});
  }
  // conv_transpose2d's output_padding: output rows no input reaches.
  out.push_back({3, 3, 5, 7, 9, 4, 3, params({2, 2}, {1, 1}, {1, 1}, 1, {1, 1}), true});
  return out;
}

struct Result {
  Tensor y, gx, gw, gb;
};

// y = conv(x, w) + b and the gradients of Σ y·r, on x's device.
Result run(const Case& c, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& r) {
  Tensor xx = x.detach().clone(), ww = w.detach().clone(), bb = b.detach().clone();
  xx.requires_grad_();
  ww.requires_grad_();
  bb.requires_grad_();
  Tensor y = c.transpose ? conv_transpose2d(xx, ww, bb, c.p) : conv2d(xx, ww, bb, c.p);
  backward(sum(y * r));
  return {y.detach(), xx.grad(), ww.grad(), bb.grad()};
}

// The longest sum behind any value of the three passes: C/G·kh·kw (forward), O/G·kh·kw
// (backward-data) and N·OH·OW (weight), OH·OW being the smaller side: conv2d's output, and
// conv_transpose2d's input.
int64_t longest_sum(const Case& c, const Tensor& y) {
  const int64_t spatial = c.transpose ? c.h * c.w : y.size(2) * y.size(3);
  return std::max({c.in_c / c.p.groups * c.kh * c.kw, c.out_c / c.p.groups * c.kh * c.kw, c.batch * spatial});
}

void check_case(const Case& c, DType dt) {
  // conv2d: x [N, C, H, W], w [O, C/G, kh, kw]; conv_transpose2d: x [N, C, H, W], w [C, O/G, kh, kw].
  const Shape ws = c.transpose ? Shape{c.in_c, c.out_c / c.p.groups, c.kh, c.kw}
                               : Shape{c.out_c, c.in_c / c.p.groups, c.kh, c.kw};
  Generator gen(17);
  const TensorOptions o{dt};
  Tensor x = uniform({c.batch, c.in_c, c.h, c.w}, -1, 1, o, &gen), w = uniform(ws, -1, 1, o, &gen);
  Tensor b = uniform({c.out_c}, -1, 1, o, &gen);
  Tensor y_shape = c.transpose ? conv_transpose2d(x, w, b, c.p) : conv2d(x, w, b, c.p);
  Tensor r = uniform(y_shape.shape(), -1, 1, o, &gen);
  const Result cpu = [&] {
    // The selector is for both backends: loom's own CPU kernels (v1) are the reference, not oneDNN (auto's
    // choice for deep float32 convs).
    const kernels::ConvVariantScope cpu_reference(ConvVariant::V1);
    return run(c, x, w, b, r);
  }();
  // |cuda − cpu| ≤ t + t·|cpu|, t growing with √(sum length): rounding errors of a sum walk randomly.
  const double t = (dt == DType::Float32 ? 1e-5 : 1e-12) * std::sqrt(double(longest_sum(c, y_shape)));
  for (ConvVariant v : cuda_variants()) {
    SCOPED_TRACE(kernels::conv_variant_name(v, DeviceType::CUDA));
    kernels::set_conv_variant(v);
    // cuDNN may pick Winograd or FFT algorithms, whose float32 rounding error exceeds a direct sum's.
    const double ti = v == ConvVariant::V0 && dt == DType::Float32 ? 10 * t : t;
    const Result gpu = run(c, x.to(kCuda), w.to(kCuda), b.to(kCuda), r.to(kCuda));
    ASSERT_EQ(gpu.y.device(), kCuda);
    expect_tensors_near(gpu.y, cpu.y, ti, ti);
    expect_tensors_near(gpu.gx, cpu.gx, ti, ti);
    expect_tensors_near(gpu.gw, cpu.gw, ti, ti);
    expect_tensors_near(gpu.gb, cpu.gb, ti, ti);
  }
}

TEST_F(CudaConv, Float32MatchesCpuAndCudnn) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(describe(c));
    check_case(c, DType::Float32);
  }
}

TEST_F(CudaConv, Float64MatchesCpuAndCudnn) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(describe(c));
    check_case(c, DType::Float64);
  }
}

// The DCGAN-64 shapes the benchmark times (batch cut to 2), so a tile-boundary or split-K bug on a
// production shape shows up here: 64 output channels fill whole tiles and K spans many slices.
TEST_F(CudaConv, DcganShapesMatchCpu) {
  for (bool t : {false, true}) {
    const Case c{2, t ? 128 : 64, t ? 64 : 128, t ? 8 : 16, t ? 8 : 16, 4, 4, params({2, 2}, {1, 1}, {1, 1}, 1), t};
    SCOPED_TRACE(describe(c));
    check_case(c, DType::Float32);
  }
}

// Same inputs, same variant, twice: the split-K weight gradient and every other pass are deterministic.
TEST_F(CudaConv, BitwiseReproducible) {
  const Case c{3, 64, 64, 16, 16, 3, 3, params({1, 1}, {1, 1}, {1, 1}, 1), false};
  Generator gen(5);
  Tensor x = uniform({3, 64, 16, 16}, -1, 1, {}, &gen).to(kCuda), w = uniform({64, 64, 3, 3}, -1, 1, {}, &gen).to(kCuda);
  Tensor b = uniform({64}, -1, 1, {}, &gen).to(kCuda), r = uniform({3, 64, 16, 16}, -1, 1, {}, &gen).to(kCuda);
  for (ConvVariant v : cuda_variants()) {
    SCOPED_TRACE(kernels::conv_variant_name(v, DeviceType::CUDA));
    kernels::set_conv_variant(v);
    const Result a = run(c, x, w, b, r), a2 = run(c, x, w, b, r);
    expect_tensors_near(a2.y, a.y, 0, 0);
    expect_tensors_near(a2.gx, a.gx, 0, 0);
    expect_tensors_near(a2.gw, a.gw, 0, 0);
  }
}

}  // namespace
