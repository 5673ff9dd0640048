// instance_norm (declared in ops.h with the norms): a composition of group_norm
// (groups = C) and elementwise ops, no op of its own, so its backward and every
// higher derivative are those of its parts.
#include "autograd/ops/common.h"

namespace loom {
using namespace detail;

namespace {
void check_channel_param(const char* name, const Tensor& t, const Tensor& x) {
  if (!t.defined()) return;
  check_compatible("instance_norm", {&x, &t});
  LOOM_CHECK(t.shape() == Shape{x.size(1)}, "instance_norm: ", name, " has shape ", t.shape(), ", expected ",
             Shape{x.size(1)}, " (one per channel of x ", x.shape(), ")");
}
}  // namespace

Tensor instance_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                     const Tensor& running_var, bool use_input_stats, double momentum, double eps) {
  check_floating("instance_norm", x);
  LOOM_CHECK(x.dim() >= 3, "instance_norm: input must be [N, C, spatial...], got ", x.shape());
  const int64_t channels = x.size(1);
  check_channel_param("weight", weight, x);
  check_channel_param("bias", bias, x);
  check_channel_param("running_mean", running_mean, x);
  check_channel_param("running_var", running_var, x);
  LOOM_CHECK(running_mean.defined() == running_var.defined(),
             "instance_norm: running_mean and running_var must be given together (input ", x.shape(), ")");
  Shape param_shape(x.dim(), 1);
  param_shape[1] = channels;
  Tensor y;
  if (use_input_stats) {
    const int64_t count = prod(x.shape(), 2, x.dim());
    LOOM_CHECK(count > 1, "instance_norm: needs more than one spatial element per channel, got input ", x.shape());
    y = group_norm(x, channels, {}, {}, eps);
    if (running_mean.defined()) {
      NoGrad no_grad;
      std::vector<int64_t> spatial;
      for (int64_t a = 2; a < x.dim(); ++a) spatial.push_back(a);
      Tensor xd = x.detach();
      Tensor rm = running_mean, rv = running_var;  // the storage is the caller's
      rm.mul_(1 - momentum).add_(mean(mean(xd, spatial), {0}), momentum);
      rv.mul_(1 - momentum).add_(mean(var(xd, spatial, false, 1), {0}), momentum);
    }
  } else {
    LOOM_CHECK(running_mean.defined(), "instance_norm: normalizing by running statistics, but running_mean and "
                                       "running_var are undefined (input ", x.shape(), ")");
    y = (x - reshape(running_mean, param_shape)) * rsqrt(reshape(running_var, param_shape) + eps);
  }
  if (weight.defined()) y = y * reshape(weight, param_shape);
  if (bias.defined()) y = y + reshape(bias, param_shape);
  return y;
}

}  // namespace loom
