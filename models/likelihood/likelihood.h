// Explicit-density pixel models: log p(x) is computed exactly, so they are fitted
// by maximum likelihood and report the negative log-likelihood (NLL) itself, not
// a bound. Each is fitted one of two ways (the `fit` option), which agree:
//
//   gd      gradient descent (Adam) on the mean NLL of each batch, through the engine;
//   counts  the closed-form MLE from counts of the pixel values it has seen
//           (train_step adds a batch to the counts; no optimizer). With add-alpha
//           smoothing (`alpha` >= 0; 0, the default, is the MLE) a Bernoulli
//           parameter is p = (n1 + alpha) / (n + 2 alpha).
//
// Where the MLE is p = 0 or 1 its logit is -inf or +inf; it is stored clamped at
// +-kMaxLogit (p ~ 1e-13) so a checkpoint stays finite. A context never seen
// (a Markov pixel after a value that never occurred) keeps logit 0, p = 1/2: the
// value gradient descent, which starts at 0 and gets no gradient there, keeps too.
// bernoulli and markov compute in float64; nade (a neural network, gradient descent
// only) in float32 unless built with float64, and reports log p(x) in float64.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <memory>
#include <vector>

#include "models/model.h"

namespace loom::models::likelihood {

inline constexpr double kMaxLogit = 30;

// A model whose log-likelihood is exact.
class DensityModel : public Model {
 public:
  // log p(x) of each image ([B, 1, H, W] or [B, n], pixels in {0, 1}, or in
  // {0, 1/255, ..., 1} with 256 levels): float64 [B].
  virtual Tensor log_prob(const Tensor& images) = 0;
  // log p(x, y = k) for every class k: float64 [B, K]; undefined for models
  // without classes.
  virtual Tensor class_log_joint(const Tensor&) { return {}; }
  // The number of free parameters: values that fix the distribution and can vary
  // independently (a categorical over L values has L - 1).
  virtual int64_t free_parameters() const = 0;

  ModelKind kind() const override { return ModelKind::Likelihood; }
  Tensor score(const Tensor& images, const EvalOptions&) override { return log_prob(images); }
  int64_t parameter_count() override { return free_parameters(); }
};

// The options of the count-or-gradient-descent fit every table model takes,
// after Adam's (with the models' learning rate 3e-2: tables start at zero and
// need large steps).
inline std::vector<OptionSpec> table_options() {
  std::vector<OptionSpec> o = adam_options(3e-2, 0.9, 0.999);
  o.push_back(choice_option("fit", "gd", {"gd", "counts"},
                            "gd: gradient descent on the NLL; counts: the closed-form MLE"));
  o.push_back(real_option("alpha", 0, Range::at_least(0), "--fit counts: add-alpha smoothing (0: the MLE)"));
  return o;
}
// Adam's options tune gradient descent: with --fit counts they would do nothing.
inline void check_fit_options(const Config& c, const char* model) {
  if (c.text("fit") != "counts") return;
  for (const char* o : {"lr", "b1", "b2"})
    LOOM_CHECK(!c.given.count(o), model, ": --", o, " tunes gradient descent; --fit counts takes no optimizer");
}
// The options every network model over pixels takes: Adam's (lr 1e-3) and the
// values per pixel (2: Bernoulli, 256: a 256-way softmax).
inline std::vector<OptionSpec> pixel_model_options() {
  std::vector<OptionSpec> o = adam_options(1e-3, 0.9, 0.999);
  o.push_back(choice_option("levels", "2", {"2", "256"}, "values per pixel: 2 (binarized, Bernoulli) or 256 (8-bit, softmax)"));
  return o;
}
inline const DataSpec kBinarizedFashionMnist{.lo = 0, .hi = 1, .binarize = true};

// The tables of a density model: parameters when fitted by gradient descent,
// buffers (no gradient) when fitted from counts, under the same names.
class Tables : public nn::Module {
 public:
  std::string name() const override { return "Tables"; }
  Tensor& add(const std::string& name, Tensor* field, Tensor value, bool parameter) {
    return parameter ? register_parameter(name, field, std::move(value)) : register_buffer(name, field, std::move(value));
  }
};

// The models over `pixels` pixels (784 for Fashion-MNIST; tests use small images).
std::unique_ptr<DensityModel> make_bernoulli_model(const Config& c, int64_t pixels = 784);
std::unique_ptr<DensityModel> make_markov_model(const Config& c, int64_t pixels = 784);
// NADE (models/likelihood/nade.cpp) computes in `dtype`, float32 (faster, the
// registered model) or float64 (for checks that sum probabilities to 1e-6); its
// log_prob is float64 [B] in nats either way. Errors: pixels < 1, another dtype.
std::unique_ptr<DensityModel> make_nade_model(const Config& c, int64_t pixels = 784, DType dtype = DType::Float32);

// NADE's conditional logits z_i = b_i + V_i · σ(c + W_{:,<i} x_<i) for pixels x [B, n]
// (Larochelle & Murray 2011, eqs. 6–7; models/likelihood/nade.cpp): [B, n], so that
// p(x_i = 1 | x_<i) = σ(z_i). W [H, n], V [n, H], b [n], c [H], all of x's dtype and
// device (float32 or float64). O(B n H) time and memory: the pre-activations of all n
// hidden layers come from one exclusive prefix sum over pixels, not n networks.
// Differentiable in x and the weights; z_i does not depend on x_j for j >= i.
// Throws a loom::Error naming the shapes when they do not fit together.
Tensor nade_logits(const Tensor& x, const Tensor& W, const Tensor& V, const Tensor& b, const Tensor& c);

// The architecture of the autoregressive image models (models/likelihood/pixel_net.h):
// the model options --channels, --blocks, --gated and --hidden, --layers.
struct PixelCnnOptions {
  int64_t channels;    // 2h: features between blocks (h inside a residual block); gated: per stack
  int64_t blocks;      // residual blocks (gated: layers of both stacks) after the 7×7 type-A layer
  bool gated = false;  // the gated variant: vertical and horizontal stacks, no blind spot
};
struct PixelRnnOptions {
  int64_t hidden;  // h: LSTM state channels per pixel (2h features between layers)
  int64_t layers;  // Row LSTM layers after the 7×7 type-A layer
};

// PixelCNN and PixelRNN (Row LSTM) on height × width images, one channel: exact
// log p(x) = Σ_i log p(x_i | x_<i) in raster order, `levels` (Config::levels) 2 for
// Bernoulli pixels, 256 for a 256-way softmax per pixel. The networks compute in
// `dtype` (float64 where a test sums probabilities); log_prob returns float64.
// nullopt options are c's (--channels, --blocks, --gated; --hidden, --layers).
// Throws for levels other than 2 and 256 and for sizes out of range.
std::unique_ptr<DensityModel> make_pixelcnn_model(const Config& c, int64_t height = 28, int64_t width = 28,
                                                  std::optional<PixelCnnOptions> options = std::nullopt,
                                                  DType dtype = DType::Float32);
std::unique_ptr<DensityModel> make_pixelrnn_model(const Config& c, int64_t height = 28, int64_t width = 28,
                                                  std::optional<PixelRnnOptions> options = std::nullopt,
                                                  DType dtype = DType::Float32);

// The smoothed-MLE logit log((ones + alpha) / (total - ones + alpha)), clamped to
// +-kMaxLogit; 0 when total + 2 alpha == 0 (no data, no prior).
inline double logit_from_counts(double ones, double total, double alpha) {
  const double a = ones + alpha, b = total - ones + alpha;
  if (a + b <= 0) return 0;
  if (a <= 0) return -kMaxLogit;
  if (b <= 0) return kMaxLogit;
  return std::clamp(std::log(a) - std::log(b), -kMaxLogit, kMaxLogit);
}

// Images as float64 rows [B, n], checked to have n pixels.
inline Tensor flat_pixels(const Tensor& images, int64_t n, const char* model) {
  const int64_t b = images.size(0);
  LOOM_CHECK(images.numel() == b * n, model, ": expected images of ", n, " pixels, got ", images.shape());
  return reshape(images, {b, n}).to(DType::Float64);
}

// A buffer replaced by host values (counts and the logits derived from them).
inline void assign(Tensor& field, const std::vector<double>& values) {
  field = from_vector(values, field.shape(), TensorOptions{DType::Float64, field.device()});
}

// log p(x) of binary pixels x ∈ {0, 1} under independent Bernoullis with
// p(x_j = 1) = σ(z_j), summed over `axis`: Σ_j log σ(s_j z_j) with s = 2x − 1,
// written −softplus(−s z) (exact for any |z|). x and logits broadcast.
inline Tensor bernoulli_log_likelihood(const Tensor& x, const Tensor& logits, int64_t axis) {
  return -sum(softplus(-((x * 2.0 - 1.0) * logits)), {axis});
}

// Adam over params with the config's lr and betas.
inline std::unique_ptr<optim::Adam> make_adam(std::vector<Tensor> params, const Config& c) {
  return std::make_unique<optim::Adam>(std::move(params), adam_from(c));
}

// One gradient-descent step on a batch's mean NLL (nats per image): the step's losses
// (through step_losses: a CUDA graph of the step reads them after each replay).
inline Losses descend(optim::Optimizer& opt, const Tensor& nll) {
  opt.zero_grad();
  backward(nll);
  opt.step();
  return step_losses({{"nll", nll}});
}

// The shape of `count` sampled images of n pixels: square [count, 1, side, side]
// when n is a square, else one row each, [count, 1, 1, n].
inline Shape sample_shape(int64_t count, int64_t n) {
  const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  return side * side == n ? Shape{count, 1, side, side} : Shape{count, 1, 1, n};
}

// ---- pixel values and their distributions -------------------------------------------
// A pixel with `levels` values lies in {0, 1/(L−1), …, 1}: {0, 1} for L = 2
// (binarized images), {0, 1/255, …, 1} for L = 256 (8-bit images).

// The level 0 … L−1 of each pixel x (the nearest one): int64, x's shape.
inline Tensor pixel_levels(const Tensor& x, int64_t levels) {
  return (x * static_cast<double>(levels - 1) + 0.5).to(DType::Int64);
}

// The value drawn from a categorical p[0..k) by inverse CDF with u in (0, 1].
inline int64_t draw_categorical(const double* p, int64_t k, double u) {
  double c = 0;
  for (int64_t v = 0; v < k; ++v) {
    c += p[v];
    if (u <= c) return v;
  }
  return k - 1;  // rounding: u above the last partial sum
}

// The output head of a network that predicts a pixel distribution (van den Oord et
// al. 2016, "Pixel Recurrent Neural Networks" §2.2: pixels as discrete variables):
// per pixel, 1 Bernoulli logit θ (levels 2, p(x = 1) = σ(θ)), or L logits of a
// softmax over the L values (levels 256). The channels it needs per pixel:
inline int64_t head_channels(int64_t levels) { return levels == 2 ? 1 : levels; }

// log p(x_i) in nats of every pixel of x [B, 1, ...] under the head's logits
// [B, head_channels(levels), ...] (the same trailing shape): [B, 1, ...], in the
// logits' dtype. Levels 2: log σ(±θ), exact for any θ (x must be 0 or 1); 256: the
// log-softmax over axis 1 at the pixel's level. Throws on mismatched shapes.
inline Tensor pixel_log_likelihood(const Tensor& logits, const Tensor& x, int64_t levels) {
  LOOM_CHECK(x.dim() >= 2 && x.size(1) == 1, "pixel_log_likelihood: expected pixels [B, 1, ...], got ", x.shape());
  Shape want = x.shape();
  want[1] = head_channels(levels);
  LOOM_CHECK(logits.shape() == want, "pixel_log_likelihood: logits ", logits.shape(), " do not fit pixels ",
             x.shape(), " with ", levels, " levels (expected ", want, ")");
  if (levels == 2) return -binary_cross_entropy_with_logits(logits, x, Reduction::None);
  return gather(log_softmax(logits, 1), 1, pixel_levels(x, levels));
}

// One pixel value per row, drawn from the head's logits at one pixel, [B,
// head_channels(levels)], with u[b] ∈ (0, 1]: 1 when u ≤ σ(θ) (levels 2), else the
// inverse CDF of the softmax; values in {0, 1/(L−1), …, 1}.
inline std::vector<float> draw_pixels(const Tensor& logits, int64_t levels, const double* u) {
  NoGrad ng;
  const int64_t b = logits.size(0), k = head_channels(levels);
  LOOM_CHECK(logits.dim() == 2 && logits.size(1) == k, "draw_pixels: expected logits [B, ", k, "], got ",
             logits.shape());
  const std::vector<double> p =
      (levels == 2 ? sigmoid(logits) : softmax(logits, 1)).to(DType::Float64).to(Device::cpu()).to_vector<double>();
  std::vector<float> out(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i)
    out[i] = levels == 2 ? (u[i] <= p[i] ? 1.0f : 0.0f)
                         : static_cast<float>(draw_categorical(&p[i * k], k, u[i])) / static_cast<float>(levels - 1);
  return out;
}

// Losses every density model reports: NLL in nats per image and in bits per
// dimension (nats / (n ln 2)). (Its parameter count is Model::parameter_count.)
inline Losses nll_losses(double nll_nats, int64_t n) {
  return {{"nll", nll_nats}, {"bits_per_dim", nll_nats / (static_cast<double>(n) * std::log(2.0))}};
}

}  // namespace loom::models::likelihood
