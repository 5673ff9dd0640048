// The op set. Every function here records itself on the tape when an input
// requires grad (see tape.h); the table of ops is autograd/ops.def and each
// family's forward + backward sit together in autograd/ops/<family>.cpp.
//
// Conventions: axes may be negative (counted from the end); binary ops follow
// NumPy broadcasting and refuse mismatched dtypes or devices with a loom::Error
// naming the op; comparison results are 0/1 in the operands' dtype.
#pragma once

#include <array>
#include <vector>

#include "autograd/tensor.h"

namespace loom {

// ---- elementwise unary (ops/elementwise.cpp) ---------------------------------------
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double slope = 0.01);
Tensor elu(const Tensor& x, double alpha = 1.0);
Tensor silu(const Tensor& x);
Tensor softplus(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor square(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor sin(const Tensor& x);  // radians
Tensor cos(const Tensor& x);
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor sign(const Tensor& x);  // not differentiable

// ---- elementwise binary, broadcasting (ops/elementwise.cpp) -------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // gradient split evenly on ties
Tensor minimum(const Tensor& a, const Tensor& b);
// Comparisons: not differentiable.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
// cond != 0 ? a : b, broadcasting all three; no gradient flows into cond.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
// A double operand becomes a 0-d tensor of the other operand's dtype and device.
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

// ---- reductions (ops/reduce.cpp) ------------------------------------------------
// `axes` empty means every axis.
Tensor sum(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdim = false);
// Gradient goes to the extremum (split evenly between exact ties).
Tensor max(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdim = false);
Tensor min(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdim = false);
// Variance with `correction` subtracted from the count (0: population, 1: unbiased).
Tensor var(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdim = false, int64_t correction = 0);
Tensor logsumexp(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdim = false);
// The vector p-norm over `axes` (all if empty), ‖x‖_p = (Σ|x|^p)^{1/p}, p ≥ 1 or
// p = inf (max |x|); float32/float64, shaped as a reduction. Its gradient
// sign(x)·|x|^{p−1}/‖x‖_p^{p−1} is taken as 0 where ‖x‖_p = 0, the subgradient
// torch.linalg.vector_norm takes: the gradient penalty ‖∇D‖₂ stays finite at 0,
// where sqrt(sum(x²)) would give NaN. Throws for p < 1 or an integer tensor.
Tensor norm(const Tensor& x, double p = 2, std::vector<int64_t> axes = {}, bool keepdim = false);
Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);  // int64, not differentiable
// Inclusive prefix sums along `axis`: y[.., j, ..] = Σ_{k ≤ j} x[.., k, ..]; with
// `reverse`, suffix sums Σ_{k ≥ j} x[.., k, ..] (torch.cumsum, and its flip–cumsum–flip).
// For an exclusive sum shift the result by one with pad (exact, unlike cumsum(x) − x). x: float32 or float64, any shape (a 0-d tensor is
// its own one-element line); y has x's shape and dtype. Sums accumulate in double on
// every device. The gradient is cumsum(g, axis, !reverse) (the adjoint of a prefix sum
// is a suffix sum), itself recorded, so gradients of gradients work. Throws a
// loom::Error naming cumsum for an axis outside [−rank, rank) or an integer tensor.
Tensor cumsum(const Tensor& x, int64_t axis, bool reverse = false);

// ---- linear algebra (ops/linalg.cpp) --------------------------------------------------
// 1-D·1-D, 2-D@2-D, and batched [..., m, k] @ [..., k, n] with broadcast batch dims.
Tensor matmul(const Tensor& a, const Tensor& b);
// A linear layer, y = x Wᵀ + b (PyTorch's F.linear): x [..., in], weight [out, in], bias [out] or undefined;
// y [..., out], x's dtype (float32 or float64). One GEMM that reads W transposed in place and starts from
// the bias (no transposed copy of W, no separate add); backward: ∂x = G W, ∂W = Gᵀ x and ∂b = Σ G over the
// rows, each one GEMM or one reduction, recorded as ops when a create_graph sweep needs them. Throws a
// loom::Error naming linear for a weight that is not 2-D, an input whose last size is not in, a bias not [out],
// or mixed dtypes/devices.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- shape (ops/shape.cpp) --------------------------------------------------------
Tensor reshape(const Tensor& x, Shape shape);  // one -1 is inferred; shares storage
Tensor flatten(const Tensor& x, int64_t start_axis = 0, int64_t end_axis = -1);
Tensor permute(const Tensor& x, std::vector<int64_t> perm);  // copies
Tensor transpose(const Tensor& x, int64_t a0, int64_t a1);
Tensor squeeze(const Tensor& x, int64_t axis);
Tensor unsqueeze(const Tensor& x, int64_t axis);
Tensor expand(const Tensor& x, const Shape& shape);  // NumPy broadcast to shape; copies
Tensor concat(const std::vector<Tensor>& xs, int64_t axis);
Tensor stack(const std::vector<Tensor>& xs, int64_t axis);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis);
// Elements start, start+step, ... < stop along axis (negative start/stop count from the end).
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t stop, int64_t step = 1);
// Constant padding; `pads` lists (before, after) pairs starting from the LAST axis,
// as torch.nn.functional.pad. Negative pads crop.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value = 0);
Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index);  // index: int64 1-D
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index);        // index: int64, x's rank
// x with src added at index along axis: out[.., index[..j..], ..] += src[..j..].
Tensor scatter_add(const Tensor& x, int64_t axis, const Tensor& index, const Tensor& src);
Tensor one_hot(const Tensor& labels, int64_t num_classes, DType dtype = DType::Float32);
// The range check the index ops run: every value of index (int64, any shape) in [0, bound), else a
// loom::Error "<op>: <noun> v at position j is out of range for <what>" (j the flat position of the
// first bad value). A kernel finds it on the index's device, so one word comes back, not the indices;
// during a CUDA graph capture the check is recorded and CudaGraph::replay throws after the step.
void check_indices(const char* op, const Tensor& index, int64_t bound, const std::string& what,
                   const char* noun = "index");

// ---- vision (ops/conv.cpp, ops/pool.cpp) -------------------------------------------
using Pair = std::array<int64_t, 2>;
struct ConvParams {
  Pair stride{1, 1};
  Pair padding{0, 0};
  Pair dilation{1, 1};
  Pair output_padding{0, 0};  // conv_transpose2d only
  int64_t groups = 1;
};
// x [N, C, H, W], weight [O, C/groups, kh, kw], bias [O] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, const ConvParams& p = {});
// x [N, C, H, W], weight [C, O/groups, kh, kw] (PyTorch layout), bias [O] or undefined.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
                        const ConvParams& p = {});
// stride {0, 0} means stride = kernel.
Tensor max_pool2d(const Tensor& x, Pair kernel, Pair stride = {0, 0}, Pair padding = {0, 0});
// Padding counts as zeros in the average (count_include_pad, PyTorch's default).
Tensor avg_pool2d(const Tensor& x, Pair kernel, Pair stride = {0, 0}, Pair padding = {0, 0});
Tensor upsample_nearest2d(const Tensor& x, int64_t scale);

// ---- resampling (ops/resample.cpp) ------------------------------------------------------
// Each op's backward is the recorded op after it, whose backward is the first
// again (adjoint linear maps), so gradients of gradients stay on the tape.
//
// F.pad's non-constant modes on x [N, C, H, W]; pads = {left, right, top, bottom}, each ≥ 0.
// Reflect mirrors without repeating the edge (pad < size), Replicate repeats the edge.
enum class PadMode { Reflect, Replicate };
using Pads2d = std::array<int64_t, 4>;
Tensor pad2d(const Tensor& x, const Pads2d& pads, PadMode mode);
// The adjoint of pad2d: gy [N, C, H + top + bottom, W + left + right] → [N, C, H, W], each
// padded element's gradient added to the source element it copied.
Tensor pad2d_backward(const Tensor& gy, const Pads2d& pads, PadMode mode);
// Bilinear resize of x [N, C, H, W] to [N, C, out_h, out_w], align_corners = false
// (PyTorch's convention: source = max((dst + ½)·in/out − ½, 0), edges clamped).
Tensor upsample_bilinear2d(const Tensor& x, int64_t out_h, int64_t out_w);
// An integer scale: [N, C, H·scale, W·scale] (the same as F.interpolate's scale_factor then).
Tensor upsample_bilinear2d(const Tensor& x, int64_t scale);
// Its adjoint: gy [N, C, out_h, out_w] → [N, C, in_h, in_w].
Tensor upsample_bilinear2d_backward(const Tensor& gy, int64_t in_h, int64_t in_w);

// ---- normalization (ops/norm.cpp) -----------------------------------------------------
// x standardized over its axes from `axis` on: every slice x[i₀, …, i_{axis−1}, …] becomes
// (x − μ) / √(σ² + ε), μ and the biased σ² of the slice's elements; x float32 or float64, y of
// x's shape and dtype. Layer norm's core, one op with one kernel each way (a CPU pass over the
// statistics, one over the values, in double; backward ∂x = s·(g − mean(g) − x̂·mean(g·x̂)),
// s = 1/√(σ² + ε), x̂ recomputed from x and the saved μ and s; recorded as ops in a create_graph
// sweep). Throws a loom::Error naming standardize for an integer x, an axis outside
// [−rank, rank), slices with no elements, or ε negative or not finite.
Tensor standardize(const Tensor& x, int64_t axis, double eps = 1e-5);
// x [N, C, ...]. training: normalize by the batch statistics (biased variance) and
// update running_mean/var in place (unbiased variance, PyTorch's convention) when
// they are defined; eval: normalize by the running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);
// Group normalization (Wu & He 2018, "Group Normalization", §3.1): x [N, C, ...] float32/float64 standardized over each
// sample's groups of C/groups channels (with their spatial dims), then y = x̂·γ_c + β_c, γ and β [C]
// optional: one op, one kernel each way (γ and β fused, x̂ recomputed from x in the backward, whose
// ∂x = s·(g' − mean(g') − x̂·mean(g'·x̂)) per group, g' = ∂y·γ). Throws a loom::Error naming group_norm
// for an integer x, fewer than 2 dims, groups not dividing C, γ or β not [C], groups with no
// elements, or ε negative or not finite.
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);
// Instance normalization (Ulyanov et al. 2016, "Instance Normalization: The Missing
// Ingredient for Fast Stylization"; CycleGAN, StarGAN): x [N, C, ...] normalized per
// sample and channel over the spatial dims, i.e. group_norm with groups = C (its one
// kernel each way, γ and β included). use_input_stats (PyTorch's training or no
// running statistics): normalize by each instance's statistics (biased variance) and,
// when running_mean/var are defined, update them with the batch mean of the
// per-instance mean and unbiased variance; otherwise normalize by the running ones.
Tensor instance_norm(const Tensor& x, const Tensor& weight = {}, const Tensor& bias = {},
                     const Tensor& running_mean = {}, const Tensor& running_var = {}, bool use_input_stats = true,
                     double momentum = 0.1, double eps = 1e-5);
// Normalizes over the trailing dims `normalized_shape`.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

// ---- losses and distributions (ops/loss.cpp) -------------------------------------------
enum class Reduction { None, Mean, Sum };
// max(z, 0) - z·y + log1p(exp(-|z|)): exact for any |z|.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction r = Reduction::Mean);
// logits [N, C], labels int64 [N] in [0, C).
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction r = Reduction::Mean);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction r = Reduction::Mean);
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction r = Reduction::Mean);
// Elementwise log N(x; mean, exp(log_var)).
Tensor gaussian_log_prob(const Tensor& x, const Tensor& mean, const Tensor& log_var);
// Elementwise KL(N(mu_q, e^{lv_q}) ‖ N(mu_p, e^{lv_p})) in closed form.
Tensor kl_diag_gaussians(const Tensor& mu_q, const Tensor& log_var_q, const Tensor& mu_p,
                         const Tensor& log_var_p);
// Inverted dropout: zero with probability p, scale the rest by 1/(1-p); identity in eval.
Tensor dropout(const Tensor& x, double p, bool training, Generator* g = nullptr);

}  // namespace loom
