// A first-order Markov chain over the pixels in raster order, on dynamically
// binarized images:
//
//   p(x) = p(x_1) Π_{i=2..n} p(x_i | x_{i−1}),   p(x_1 = 1) = σ(a),  p(x_i = 1 | x_{i−1} = c) = σ(θ_{i,c})
//
// 1 + 2(n − 1) = 2n − 1 parameters (1567 for 28×28): `first` [1] holds a, `cond`
// [n − 1, 2] holds θ_{i,c}, column c the value of the previous pixel.
//
// The MLE from counts (fit = counts): p(x_1 = 1) = (n1 + α) / (N + 2α) and
// p(x_i = 1 | x_{i−1} = c) = (n_{i,c,1} + α) / (n_{i−1,c} + 2α), where n_{i,c,1}
// counts the images with x_{i−1} = c and x_i = 1, and n_{i−1,c} those with x_{i−1} = c.
// Gradient descent (fit = gd) minimizes the mean NLL of each batch with Adam from
// all-zero logits. Sampling draws the pixels one after the other.
#include "models/likelihood/likelihood.h"

namespace loom::models {
namespace likelihood {
namespace {

class Markov : public DensityModel {
 public:
  Markov(const Config& c, int64_t n)
      : n_(n), counts_fit_(c.text("fit") == "counts"), alpha_(c.real("alpha")) {
    LOOM_CHECK(n_ >= 2, "markov: needs at least 2 pixels, got ", n_);
    check_fit_options(c, "markov");
    LOOM_CHECK(counts_fit_ || alpha_ == 0,
               "markov: --alpha applies to --fit counts (gradient descent fits the unsmoothed MLE)");
    const TensorOptions o{DType::Float64, c.device};
    tables_ = std::make_shared<Tables>();
    tables_->add("first", &first_, zeros({1}, o), !counts_fit_);
    tables_->add("cond", &cond_, zeros({n_ - 1, 2}, o), !counts_fit_);
    if (counts_fit_) {
      // [0]: images seen, [1]: images with x_1 = 1.
      tables_->add("first_counts", &first_counts_, zeros({2}, o), false);
      // [i−1, c]: images with x_{i−1} = c, and those with x_{i−1} = c and x_i = 1.
      tables_->add("context_counts", &context_counts_, zeros({n_ - 1, 2}, o), false);
      tables_->add("ones_counts", &ones_counts_, zeros({n_ - 1, 2}, o), false);
    } else {
      opt_ = make_adam(tables_->parameters(), c);
    }
  }

  DataSpec data_spec() const override { return kBinarizedFashionMnist; }

  // Gradient descent is capturable; the counts fit accumulates its counts on the host.
  bool cuda_graph_capable() const override { return !counts_fit_; }
  Losses train_step(const Batch& batch, Step&) override {
    const Tensor x = flat_pixels(batch.images, n_, "markov");
    if (counts_fit_) {
      add_counts(x);
      NoGrad ng;
      return {{"nll", -mean(log_prob_flat(x)).item()}};
    }
    return descend(*opt_, -mean(log_prob_flat(x)));
  }

  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    return nll_losses(-mean(log_prob(batch.images)).item(), n_);
  }

  Tensor log_prob(const Tensor& images) override { return log_prob_flat(flat_pixels(images, n_, "markov")); }
  int64_t free_parameters() const override { return 2 * n_ - 1; }

  Tensor sample(int64_t count, const Condition&, Generator& g) override {
    NoGrad ng;
    const double p1 = sigmoid(first_).to(Device::cpu()).to_vector<double>()[0];
    const std::vector<double> p = sigmoid(cond_).to(Device::cpu()).to_vector<double>();  // [n − 1, 2]
    const std::vector<double> u = rand({count, n_}, {DType::Float64}, &g).to_vector<double>();
    std::vector<float> out(count * n_);
    for (int64_t b = 0; b < count; ++b) {
      const double* ub = &u[b * n_];
      float* x = &out[b * n_];
      x[0] = ub[0] <= p1 ? 1.0f : 0.0f;
      for (int64_t i = 1; i < n_; ++i) x[i] = ub[i] <= p[(i - 1) * 2 + (x[i - 1] > 0.5f ? 1 : 0)] ? 1.0f : 0.0f;
    }
    return from_vector(out, sample_shape(count, n_), TensorOptions{DType::Float32, first_.device()});
  }

  std::vector<std::pair<std::string, nn::Module*>> modules() override { return {{"pixels", tables_.get()}}; }
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() override {
    if (counts_fit_) return {};
    return {{"adam", opt_.get()}};
  }

 private:
  // log p(x) of rows x [B, n]: [B].
  Tensor log_prob_flat(const Tensor& x) {
    Tensor prev = slice(x, 1, 0, n_ - 1);
    Tensor theta = prev * reshape(slice(cond_, 1, 1, 2), {n_ - 1}) +
                   (1.0 - prev) * reshape(slice(cond_, 1, 0, 1), {n_ - 1});  // θ_{i, x_{i−1}}: [B, n − 1]
    return bernoulli_log_likelihood(slice(x, 1, 0, 1), first_, 1) +
           bernoulli_log_likelihood(slice(x, 1, 1, n_), theta, 1);
  }

  void add_counts(const Tensor& x) {
    NoGrad ng;
    const int64_t b = x.size(0);
    std::vector<double> fc = first_counts_.to(Device::cpu()).to_vector<double>();
    std::vector<double> ctx = context_counts_.to(Device::cpu()).to_vector<double>();
    std::vector<double> ones = ones_counts_.to(Device::cpu()).to_vector<double>();
    const std::vector<double> px = x.to(Device::cpu()).to_vector<double>();
    for (int64_t r = 0; r < b; ++r) {
      const double* xr = &px[r * n_];
      fc[0] += 1;
      fc[1] += xr[0];
      for (int64_t i = 1; i < n_; ++i) {
        const int64_t c = xr[i - 1] > 0.5 ? 1 : 0;
        ctx[(i - 1) * 2 + c] += 1;
        ones[(i - 1) * 2 + c] += xr[i];
      }
    }
    std::vector<double> cond(ctx.size());
    for (size_t k = 0; k < cond.size(); ++k) cond[k] = logit_from_counts(ones[k], ctx[k], alpha_);
    assign(first_counts_, fc);
    assign(context_counts_, ctx);
    assign(ones_counts_, ones);
    assign(first_, {logit_from_counts(fc[1], fc[0], alpha_)});
    assign(cond_, cond);
  }

  int64_t n_;
  bool counts_fit_;
  double alpha_;
  std::shared_ptr<Tables> tables_;
  Tensor first_, cond_, first_counts_, context_counts_, ones_counts_;
  std::unique_ptr<optim::Adam> opt_;
};

}  // namespace

std::unique_ptr<DensityModel> make_markov_model(const Config& c, int64_t pixels) {
  return std::make_unique<Markov>(c, pixels);
}

}  // namespace likelihood

std::unique_ptr<Model> make_markov(const Config& c) { return likelihood::make_markov_model(c); }
std::vector<OptionSpec> options_markov() { return likelihood::table_options(); }

}  // namespace loom::models
