// Attention and sinusoidal embeddings (declared in nn.h): compositions of
// matmul, softmax, where and the shape ops.
#include <cmath>

#include "autograd/nn.h"

namespace loom::nn {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask) {
  LOOM_CHECK(q.defined() && k.defined() && v.defined() && q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2,
             "scaled_dot_product_attention: q, k, v must be [..., N, d], [..., M, d], [..., M, dv], got ", q.shape(),
             ", ", k.shape(), ", ", v.shape());
  LOOM_CHECK(q.size(-1) == k.size(-1) && k.size(-2) == v.size(-2),
             "scaled_dot_product_attention: q ", q.shape(), ", k ", k.shape(), ", v ", v.shape(),
             " do not fit [..., N, d], [..., M, d], [..., M, dv]");
  Tensor scores = matmul(q, transpose(k, -2, -1)) * (1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  if (mask.defined()) {
    LOOM_CHECK(mask.device() == q.device(), "scaled_dot_product_attention: mask ", mask.shape(), " is on ",
               mask.device(), " but q ", q.shape(), " is on ", q.device());
    const Tensor m = mask.dtype() == q.dtype() ? mask : mask.to(q.dtype());
    scores = where(m, scores, full({}, -1e30, TensorOptions{q.dtype(), q.device()}));
  }
  return matmul(softmax(scores, -1), v);
}

MultiheadAttention::MultiheadAttention(int64_t embed_dim, int64_t num_heads, bool bias, TensorOptions o)
    : heads_(num_heads) {
  LOOM_CHECK(embed_dim > 0 && num_heads > 0 && embed_dim % num_heads == 0, "MultiheadAttention: ", num_heads,
             " heads do not divide embed_dim ", embed_dim);
  o.requires_grad = false;
  register_parameter("in_proj_weight", &in_proj_weight, empty({3 * embed_dim, embed_dim}, o));
  init::xavier_uniform_(in_proj_weight);
  if (bias) register_parameter("in_proj_bias", &in_proj_bias, zeros({3 * embed_dim}, o));
  out_proj = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, bias, o));
  if (bias) init::zeros_(out_proj->bias);
}

Tensor MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& mask) {
  const int64_t e = in_proj_weight.size(1), dh = e / heads_;
  LOOM_CHECK(query.dim() == 3 && key.dim() == 3 && value.dim() == 3 && query.size(2) == e && key.size(2) == e &&
                 value.size(2) == e && key.size(1) == value.size(1) && query.size(0) == key.size(0) &&
                 key.size(0) == value.size(0),
             "MultiheadAttention: expected query [B, N, ", e, "], key and value [B, M, ", e, "], got ",
             query.shape(), ", ", key.shape(), ", ", value.shape());
  std::vector<Tensor> w = chunk(in_proj_weight, 3, 0);
  std::vector<Tensor> b = in_proj_bias.defined() ? chunk(in_proj_bias, 3, 0) : std::vector<Tensor>(3);
  // [B, L, E] → projected → [B, heads, L, dh]
  auto heads = [&](const Tensor& x, int i) {
    Tensor y = matmul(x, transpose(w[i], 0, 1));
    if (b[i].defined()) y = y + b[i];
    return permute(reshape(y, {x.size(0), x.size(1), heads_, dh}), {0, 2, 1, 3});
  };
  Tensor o = scaled_dot_product_attention(heads(query, 0), heads(key, 1), heads(value, 2), mask);
  return out_proj->forward(reshape(permute(o, {0, 2, 1, 3}), {query.size(0), query.size(1), e}));
}

SelfAttention2d::SelfAttention2d(int64_t channels, int64_t num_heads, int64_t norm_groups, TensorOptions o) {
  norm = register_module("norm", std::make_shared<GroupNorm>(norm_groups, channels, 1e-5, o));
  attn = register_module("attn", std::make_shared<MultiheadAttention>(channels, num_heads, true, o));
}

Tensor SelfAttention2d::forward(const Tensor& x) {
  LOOM_CHECK(x.dim() == 4 && x.size(1) == attn->in_proj_weight.size(1), "SelfAttention2d: expected [B, ",
             attn->in_proj_weight.size(1), ", H, W], got ", x.shape());
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  Tensor tokens = permute(reshape(norm->forward(x), {b, c, h * w}), {0, 2, 1});  // [B, HW, C]
  Tensor y = attn->forward(tokens);
  return x + reshape(permute(y, {0, 2, 1}), {b, c, h, w});
}

Tensor sinusoidal_embedding(const Tensor& t, int64_t dim, DType dtype) {
  LOOM_CHECK(t.defined() && t.dim() == 1, "sinusoidal_embedding: t must be 1-D [B], got ", t.shape());
  LOOM_CHECK(dim >= 2, "sinusoidal_embedding: dim ", dim, " must be at least 2 (t ", t.shape(), ")");
  // On t's device, nothing read on the host: a DDPM step stays capturable as a CUDA graph.
  NoGrad ng;
  const int64_t n = t.size(0), half = dim / 2;
  const TensorOptions f64{DType::Float64, t.device()};
  const Tensor freqs = exp(arange(0, static_cast<double>(half), 1, f64) * (-std::log(10000.0) / static_cast<double>(half)));
  const Tensor angles = unsqueeze(t.detach().to(DType::Float64), 1) * unsqueeze(freqs, 0);  // [B, h]
  std::vector<Tensor> columns{sin(angles), cos(angles)};
  if (dim % 2) columns.push_back(zeros({n, 1}, f64));
  return concat(columns, 1).to(dtype);
}

}  // namespace loom::nn
