#include <cmath>

#include "autograd/nn.h"

namespace loom::nn {

namespace {
// PyTorch's default for Linear/Conv: kaiming_uniform(a = √5) on W, which is
// U(±1/√fan_in), and U(±1/√fan_in) on the bias.
void default_init(Tensor& w, Tensor& b) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(init::fans(w).first));
  init::uniform_(w, -bound, bound);
  if (b.defined()) init::uniform_(b, -bound, bound);
}
}  // namespace

Linear::Linear(int64_t in, int64_t out, bool with_bias, TensorOptions o) {
  LOOM_CHECK(in > 0 && out > 0, "Linear: sizes must be positive, got in=", in, " out=", out);
  o.requires_grad = false;
  register_parameter("weight", &weight, empty({out, in}, o));
  if (with_bias) register_parameter("bias", &bias, empty({out}, o));
  default_init(weight, bias);
}

Tensor Linear::forward(const Tensor& x) {
  LOOM_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "Linear: input ", x.shape(), " does not end in ",
             weight.size(1), " features (weight ", weight.shape(), ")");
  return linear(x, weight, bias);
}

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, ConvOptions opt) : params(opt.params) {
  const ConvParams& p = opt.params;
  LOOM_CHECK(in > 0 && out > 0 && k > 0 && p.groups > 0 && in % p.groups == 0 && out % p.groups == 0,
             "Conv2d: bad sizes in=", in, " out=", out, " kernel=", k, " groups=", p.groups);
  TensorOptions o = opt.tensors;
  o.requires_grad = false;
  register_parameter("weight", &weight, empty({out, in / p.groups, k, k}, o));
  if (opt.bias) register_parameter("bias", &bias, empty({out}, o));
  default_init(weight, bias);
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, params); }

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, int64_t k, ConvOptions opt) : params(opt.params) {
  const ConvParams& p = opt.params;
  LOOM_CHECK(in > 0 && out > 0 && k > 0 && p.groups > 0 && in % p.groups == 0 && out % p.groups == 0,
             "ConvTranspose2d: bad sizes in=", in, " out=", out, " kernel=", k, " groups=", p.groups);
  TensorOptions o = opt.tensors;
  o.requires_grad = false;
  register_parameter("weight", &weight, empty({in, out / p.groups, k, k}, o));
  if (opt.bias) register_parameter("bias", &bias, empty({out}, o));
  // PyTorch computes the transposed conv's fan_in from weight.size(1) · k².
  const double bound = 1.0 / std::sqrt(static_cast<double>(out / p.groups * k * k));
  init::uniform_(weight, -bound, bound);
  if (bias.defined()) init::uniform_(bias, -bound, bound);
}

Tensor ConvTranspose2d::forward(const Tensor& x) { return conv_transpose2d(x, weight, bias, params); }

BatchNorm::BatchNorm(int64_t channels, int64_t spatial_dims, double momentum, double eps, TensorOptions o)
    : spatial_dims_(spatial_dims), momentum_(momentum), eps_(eps) {
  LOOM_CHECK(channels > 0, name(), ": channels must be positive, got ", channels);
  o.requires_grad = false;
  register_parameter("weight", &weight, ones({channels}, o));
  register_parameter("bias", &bias, zeros({channels}, o));
  register_buffer("running_mean", &running_mean, zeros({channels}, o));
  register_buffer("running_var", &running_var, ones({channels}, o));
}

Tensor BatchNorm::forward(const Tensor& x) {
  LOOM_CHECK(x.dim() == 2 + spatial_dims_, name(), ": expected a ", 2 + spatial_dims_, "-D input, got ", x.shape());
  return batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum_, eps_);
}

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double eps, TensorOptions o) : groups_(groups), eps_(eps) {
  LOOM_CHECK(groups > 0 && channels % groups == 0, "GroupNorm: ", groups, " groups do not divide ", channels,
             " channels");
  o.requires_grad = false;
  register_parameter("weight", &weight, ones({channels}, o));
  register_parameter("bias", &bias, zeros({channels}, o));
}

Tensor GroupNorm::forward(const Tensor& x) { return group_norm(x, groups_, weight, bias, eps_); }

LayerNorm::LayerNorm(Shape normalized_shape, double eps, TensorOptions o) : shape_(std::move(normalized_shape)), eps_(eps) {
  o.requires_grad = false;
  register_parameter("weight", &weight, ones(shape_, o));
  register_parameter("bias", &bias, zeros(shape_, o));
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, shape_, weight, bias, eps_); }

Embedding::Embedding(int64_t num, int64_t dim, TensorOptions o) {
  LOOM_CHECK(num > 0 && dim > 0, "Embedding: sizes must be positive, got num=", num, " dim=", dim);
  o.requires_grad = false;
  register_parameter("weight", &weight, empty({num, dim}, o));
  init::normal_(weight, 0, 1);
}

Tensor Embedding::forward(const Tensor& indices) {
  LOOM_CHECK(indices.dtype() == DType::Int64, "Embedding: indices must be int64, got ", indices.dtype(), " ",
             indices.shape());
  Shape out = indices.shape();
  out.push_back(weight.size(1));
  return reshape(index_select(weight, 0, reshape(indices, {-1})), out);
}

ReLU::ReLU() : Lambda("ReLU", [](const Tensor& x) { return relu(x); }) {}
LeakyReLU::LeakyReLU(double slope)
    : Lambda("LeakyReLU", [slope](const Tensor& x) { return leaky_relu(x, slope); }) {}
Tanh::Tanh() : Lambda("Tanh", [](const Tensor& x) { return tanh(x); }) {}
Sigmoid::Sigmoid() : Lambda("Sigmoid", [](const Tensor& x) { return sigmoid(x); }) {}
SiLU::SiLU() : Lambda("SiLU", [](const Tensor& x) { return silu(x); }) {}
ELU::ELU(double alpha) : Lambda("ELU", [alpha](const Tensor& x) { return elu(x, alpha); }) {}
Softplus::Softplus() : Lambda("Softplus", [](const Tensor& x) { return softplus(x); }) {}
Flatten::Flatten() : Lambda("Flatten", [](const Tensor& x) { return flatten(x, 1); }) {}
Unflatten::Unflatten(Shape shape)
    : Lambda("Unflatten", [shape](const Tensor& x) {
        Shape s{x.size(0)};
        s.insert(s.end(), shape.begin(), shape.end());
        return reshape(x, s);
      }) {}

Sequential::Sequential(std::vector<ModulePtr> layers) {
  for (auto& l : layers) push_back(std::move(l));
}

void Sequential::push_back(ModulePtr layer) {
  LOOM_CHECK(layer != nullptr, "Sequential: null layer at position ", layers_.size());
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& l : layers_) h = l->forward(h);
  return h;
}

std::shared_ptr<Sequential> mlp(const std::vector<int64_t>& sizes,
                                const std::function<Tensor(const Tensor&)>& activation, TensorOptions o, Generator* g) {
  LOOM_CHECK(sizes.size() >= 2, "mlp: needs at least an input and an output size, got ", sizes.size(), " sizes");
  for (int64_t s : sizes) LOOM_CHECK(s >= 1, "mlp: every size must be >= 1, got ", s);
  auto net = std::make_shared<Sequential>();
  for (size_t l = 0; l + 1 < sizes.size(); ++l) {
    auto lin = std::make_shared<Linear>(sizes[l], sizes[l + 1], true, o);
    init::normal_(lin->weight, 0, 1 / std::sqrt(static_cast<double>(sizes[l])), g);
    init::zeros_(lin->bias);
    net->push_back(lin);
    if (l + 2 < sizes.size()) net->push_back(std::make_shared<Lambda>("activation", activation));
  }
  return net;
}

}  // namespace loom::nn
