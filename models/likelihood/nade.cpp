// NADE, the neural autoregressive distribution estimator (Larochelle & Murray 2011,
// "The Neural Autoregressive Distribution Estimator", AISTATS), over dynamically
// binarized images, pixels in raster order:
//
//   p(x) = Π_i p(x_i | x_<i),
//   p(x_i = 1 | x_<i) = σ(b_i + V_i · h_i),   h_i = σ(c + W_{:,<i} x_<i)      (eqs. 6–7)
//
// W [H, n] (column j: what pixel j adds to every later hidden layer), V [n, H] (the
// output weights untied from W, which the paper's tied form sets to Wᵀ), b [n], c [H];
// H = 500 hidden units (--hidden) as in the paper's experiments; 2nH + n + H parameters
// (785 284 for 28×28). All n hidden layers share W and c, so their pre-activations
// a_i = c + Σ_{j<i} x_j W_{:,j} obey a_{i+1} = a_i + x_i W_{:,i} (the paper's O(nH)
// evaluation of all conditionals): nade_logits takes them all at once as an
// exclusive prefix sum (cumsum) of the per-pixel contributions along the pixel
// axis, instead of n networks or an n × n masked matmul. It keeps the [B, n, H]
// activations for the backward pass: 100 MB per float32 tensor at batch 64, 28×28.
//
// log p(x) = Σ_i log p(x_i | x_<i) is exact, in nats. Training: Adam on the mean NLL
// of each batch (the paper used plain SGD). Initialization as Larochelle's reference
// implementation (the NADE learner of MLPython): W and V uniform in [−1/n, 1/n],
// b = c = 0. Sampling is ancestral, pixel after pixel: a = c; x_i ~ σ(b_i + V_i · σ(a));
// a += x_i W_{:,i}, O(H) per pixel.
//
// The registered model computes in float32 (speed; log_prob still returns float64);
// make_nade_model(c, n, DType::Float64) computes in float64, as the tests that sum
// probabilities over every image do.
#include "models/likelihood/likelihood.h"

namespace loom::models {
namespace likelihood {
namespace {

class Nade : public DensityModel {
 public:
  Nade(const Config& c, int64_t n, DType dtype) : n_(n), hidden_(c.integer("hidden")) {
    LOOM_CHECK(n_ >= 1, "nade: needs at least 1 pixel, got ", n_);
    LOOM_CHECK(is_floating(dtype), "nade: computes in float32 or float64, not ", dtype);
    const TensorOptions o{dtype, c.device};
    const double r = 1.0 / static_cast<double>(n_);
    net_ = std::make_shared<Tables>();
    net_->add("W", &W_, uniform({hidden_, n_}, -r, r, o), true);
    net_->add("V", &V_, uniform({n_, hidden_}, -r, r, o), true);
    net_->add("b", &b_, zeros({n_}, o), true);
    net_->add("c", &c_, zeros({hidden_}, o), true);
    opt_ = make_adam(net_->parameters(), c);
  }

  DataSpec data_spec() const override { return kBinarizedFashionMnist; }

  bool cuda_graph_capable() const override { return true; }  // one batch, device tensors only
  Losses train_step(const Batch& batch, Step&) override {
    return descend(*opt_, -mean(log_prob_flat(pixels(batch.images))));
  }

  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    return nll_losses(-mean(log_prob(batch.images)).item(), n_);
  }

  Tensor log_prob(const Tensor& images) override { return log_prob_flat(pixels(images)).to(DType::Float64); }
  // The weights' count: the network's symmetries (permuting hidden units, or
  // flipping one's sign with V and b adjusted) are discrete and remove no dimension.
  int64_t free_parameters() const override { return 2 * n_ * hidden_ + n_ + hidden_; }

  // Ancestral sampling on the host, in double, from the weights as stored: image s
  // draws pixel i as u_{s,i} <= p(x_i = 1 | x_<i), u uniform in (0, 1] from g.
  Tensor sample(int64_t count, const Condition&, Generator& g) override {
    NoGrad ng;
    auto host = [](const Tensor& t) { return t.to(Device::cpu()).to(DType::Float64).to_vector<double>(); };
    // Wᵀ, so that the column W_{:,i} added after pixel i is contiguous.
    const std::vector<double> wt = host(transpose(W_, 0, 1)), v = host(V_), b = host(b_), c = host(c_);
    const std::vector<double> u = rand({count, n_}, {DType::Float64}, &g).to_vector<double>();
    auto sigmoid = [](double z) { return 1 / (1 + std::exp(-z)); };
    std::vector<float> out(count * n_);
    std::vector<double> a(hidden_);
    for (int64_t s = 0; s < count; ++s) {
      a = c;
      for (int64_t i = 0; i < n_; ++i) {
        double z = b[i];
        for (int64_t k = 0; k < hidden_; ++k) z += v[i * hidden_ + k] * sigmoid(a[k]);
        const bool on = u[s * n_ + i] <= sigmoid(z);
        out[s * n_ + i] = on ? 1.0f : 0.0f;
        if (on)
          for (int64_t k = 0; k < hidden_; ++k) a[k] += wt[i * hidden_ + k];
      }
    }
    return from_vector(out, sample_shape(count, n_), TensorOptions{DType::Float32, W_.device()});
  }

  std::vector<std::pair<std::string, nn::Module*>> modules() override { return {{"nade", net_.get()}}; }
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() override { return {{"adam", opt_.get()}}; }

 private:
  // Images as rows [B, n] in the model's dtype.
  Tensor pixels(const Tensor& images) const { return flat_pixels(images, n_, "nade").to(W_.dtype()); }

  // log p(x) of rows x [B, n], in the model's dtype: [B].
  Tensor log_prob_flat(const Tensor& x) const { return bernoulli_log_likelihood(x, nade_logits(x, W_, V_, b_, c_), 1); }

  int64_t n_;
  int64_t hidden_;  // H, the hidden units shared by every conditional (--hidden)
  std::shared_ptr<Tables> net_;
  Tensor W_, V_, b_, c_;
  std::unique_ptr<optim::Adam> opt_;
};

}  // namespace

Tensor nade_logits(const Tensor& x, const Tensor& W, const Tensor& V, const Tensor& b, const Tensor& c) {
  const bool fit = x.dim() == 2 && W.dim() == 2 && x.size(1) == W.size(1) &&
                  V.shape() == Shape({W.size(1), W.size(0)}) && b.shape() == Shape({W.size(1)}) &&
                  c.shape() == Shape({W.size(0)});
  LOOM_CHECK(fit, "nade_logits: expected x [B, n], W [H, n], V [n, H], b [n], c [H], got x ", x.shape(), ", W ",
             W.shape(), ", V ", V.shape(), ", b ", b.shape(), ", c ", c.shape());
  const int64_t n = x.size(1);
  // The exclusive prefix sum a_i − c = Σ_{j<i} x_j W_{:,j} is the inclusive one of the
  // contributions shifted on by one pixel (pixel 0 gets none). The shift is applied
  // to the factors x [B, n] and Wᵀ [n, H], not to their [B, n, H] product.
  Tensor x_prev = pad(slice(x, 1, 0, n - 1), {1, 0});                           // [B, n]: x_{i−1}, 0 first
  Tensor w_prev = pad(slice(transpose(W, 0, 1), 0, 0, n - 1), {0, 0, 1, 0});  // [n, H]: W_{:,i−1}, 0 first
  Tensor a = cumsum(unsqueeze(x_prev, 2) * w_prev, 1) + c;                     // [B, n, H]
  return sum(sigmoid(a) * V, {2}) + b;                                         // b_i + V_i · h_i
}

std::unique_ptr<DensityModel> make_nade_model(const Config& c, int64_t pixels, DType dtype) {
  return std::make_unique<Nade>(c, pixels, dtype);
}

}  // namespace likelihood

std::unique_ptr<Model> make_nade(const Config& c) { return likelihood::make_nade_model(c); }
std::vector<OptionSpec> options_nade() {
  std::vector<OptionSpec> o = adam_options(1e-3, 0.9, 0.999);
  o.push_back(integer_option("hidden", 500, Range::closed(1, 65536), "hidden units H shared by every conditional (the paper's 500)"));
  return o;
}

}  // namespace loom::models
