// Independent pixels: p(x) = Π_j p(x_j), one distribution per pixel.
//
//   levels 2 (default)  x_j ∈ {0, 1} on dynamically binarized images:
//                       p(x_j = 1) = σ(θ_j), n = 784 parameters (the logits θ);
//   levels 256          x_j ∈ {0, …, 255} on 8-bit images: a categorical per
//                       pixel, softmax of 256 logits, 255 free parameters each.
//   conditional         one such image model per class y plus the class prior
//                       p(y) (softmax of 10 logits, 9 free): p(x, y) = p(y) Π_j p(x_j | y).
//                       Evaluation reports the marginal NLL −log Σ_y p(x, y) and the
//                       accuracy of the generative classifier argmax_y p(x | y) p(y)
//                       (Bayes' rule).
//
// The MLE from counts (fit = counts): p(x_j = 1 | y) = (n1 + α) / (n_y + 2α), where
// n1 counts the images of class y with pixel j on and n_y the images of class y
// (256 levels: (n_v + α) / (n_y + 256 α)); p(y) = (n_y + α) / (N + 10 α).
// Gradient descent (fit = gd) minimizes the mean of −log p(x, y) over each batch
// with Adam from all-zero logits; both reach the same optimum (α = 0).
#include <numeric>

#include "models/likelihood/likelihood.h"

namespace loom::models {
namespace likelihood {
namespace {

constexpr int64_t kClasses = 10;

class Bernoulli : public DensityModel {
 public:
  Bernoulli(const Config& c, int64_t n)
      : n_(n),
        k_(c.flag("conditional") ? kClasses : 1),
        levels_(c.integer("levels")),
        counts_fit_(c.text("fit") == "counts"),
        alpha_(c.real("alpha")) {
    check_fit_options(c, "bernoulli");
    LOOM_CHECK(counts_fit_ || alpha_ == 0,
               "bernoulli: --alpha applies to --fit counts (gradient descent fits the unsmoothed MLE)");
    LOOM_CHECK(levels_ == 2 || levels_ == 256, "bernoulli: --levels must be 2 or 256, got ", levels_);
    const TensorOptions o{DType::Float64, c.device};
    const Shape table = levels_ == 2 ? Shape{k_, n_} : Shape{k_, n_, levels_};
    tables_ = std::make_shared<Tables>();
    tables_->add("logits", &logits_, zeros(table, o), !counts_fit_);
    if (k_ > 1) tables_->add("prior", &prior_, zeros({k_}, o), !counts_fit_);
    if (counts_fit_) {
      // levels 2: images with pixel j on; 256: images with pixel j at each value.
      tables_->add("counts", &counts_, zeros(table, o), false);
      tables_->add("seen", &seen_, zeros({k_}, o), false);  // images of each class
    } else {
      opt_ = make_adam(tables_->parameters(), c);
    }
  }

  DataSpec data_spec() const override { return {.lo = 0, .hi = 1, .binarize = levels_ == 2}; }

  // Gradient descent is capturable; the counts fit accumulates its counts on the host.
  bool cuda_graph_capable() const override { return !counts_fit_; }
  Losses train_step(const Batch& batch, Step&) override {
    const Tensor& labels = batch.labels;
    const Tensor x = flat_pixels(batch.images, n_, "bernoulli");
    if (counts_fit_) {
      add_counts(x, labels);
      NoGrad ng;
      return {{"nll", -mean(joint_of_labels(class_log_joint_flat(x), labels)).item()}};
    }
    return descend(*opt_, -mean(joint_of_labels(class_log_joint_flat(x), labels)));
  }

  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    const Tensor& labels = batch.labels;
    const Tensor lj = class_log_joint_flat(flat_pixels(batch.images, n_, "bernoulli"));
    Losses l = nll_losses(-mean(logsumexp(lj, {1})).item(), n_);
    if (k_ > 1)
      l["acc"] = mean(eq(argmax(lj, 1).to(DType::Float64), labels.to(lj.device()).to(DType::Float64))).item();
    return l;
  }

  Tensor log_prob(const Tensor& images) override {
    return logsumexp(class_log_joint_flat(flat_pixels(images, n_, "bernoulli")), {1});
  }
  Tensor class_log_joint(const Tensor& images) override {
    return k_ > 1 ? class_log_joint_flat(flat_pixels(images, n_, "bernoulli")) : Tensor();
  }
  int64_t free_parameters() const override { return k_ * n_ * (levels_ - 1) + (k_ - 1); }

  // Classes from p(y) (sorted, so a grid reads class by class) or as c.labels
  // gives them, then every pixel independently from p(x_j | y).
  Conditions conditions() const override { return {.labels = k_ > 1}; }
  Tensor sample(int64_t count, const Condition& c, Generator& g) override {
    NoGrad ng;
    std::vector<int64_t> y(count, 0);
    if (c.labels.defined()) {
      y = c.labels.to(Device::cpu()).to_vector<int64_t>();
      LOOM_CHECK(static_cast<int64_t>(y.size()) == count, "bernoulli: ", y.size(), " labels for ", count, " samples");
      for (int64_t v : y) LOOM_CHECK(v >= 0 && v < k_, "bernoulli: label ", v, " is not a class in [0, ", k_, ")");
    } else if (k_ > 1) {
      const std::vector<double> py = softmax(prior_, 0).to(Device::cpu()).to_vector<double>();
      const std::vector<double> u = rand({count}, {DType::Float64}, &g).to_vector<double>();
      for (int64_t i = 0; i < count; ++i) y[i] = draw_categorical(py.data(), k_, u[i]);
      std::sort(y.begin(), y.end());
    }
    const std::vector<double> u = rand({count, n_}, {DType::Float64}, &g).to_vector<double>();
    // Each image's class's logits, one row per pixel: [count · n, 1 or L].
    const Tensor rows = reshape(index_select(logits_, 0, from_vector(y, {count}).to(logits_.device())),
                                {count * n_, head_channels(levels_)});
    const std::vector<float> out = draw_pixels(rows, levels_, u.data());
    return from_vector(out, sample_shape(count, n_), TensorOptions{DType::Float32, logits_.device()});
  }

  std::vector<std::pair<std::string, nn::Module*>> modules() override { return {{"pixels", tables_.get()}}; }
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() override {
    if (counts_fit_) return {};
    return {{"adam", opt_.get()}};
  }

 private:
  // log p(x, y = k): [B, K] (log p(x) as [B, 1] without classes).
  Tensor class_log_joint_flat(const Tensor& x) {
    const int64_t b = x.size(0);
    Tensor lj;
    if (levels_ == 2) {
      lj = bernoulli_log_likelihood(reshape(x, {b, 1, n_}), unsqueeze(logits_, 0), 2);
    } else {
      // Σ_j log softmax(θ_kj)[v_j]: the entry j·L + v_j of each class's flattened table.
      std::vector<int64_t> idx = pixel_levels(x, levels_).to(Device::cpu()).to_vector<int64_t>();
      for (int64_t i = 0; i < b * n_; ++i) idx[i] += (i % n_) * levels_;
      const Tensor index = from_vector(idx, {b * n_}).to(x.device());
      const Tensor ls = log_softmax(logits_, 2);
      std::vector<Tensor> per_class;
      for (int64_t k = 0; k < k_; ++k)
        per_class.push_back(sum(reshape(index_select(reshape(slice(ls, 0, k, k + 1), {n_ * levels_}), 0, index),
                                        {b, n_}), {1}));
      lj = stack(per_class, 1);
    }
    if (k_ > 1) lj = lj + unsqueeze(log_softmax(prior_, 0), 0);
    return lj;
  }

  // log p(x_b, y_b) of each image with its own label: [B].
  Tensor joint_of_labels(const Tensor& lj, const Tensor& labels) const {
    if (k_ == 1) return reshape(lj, {lj.size(0)});
    return reshape(gather(lj, 1, reshape(labels.to(lj.device()), {lj.size(0), 1})), {lj.size(0)});
  }

  // Adds the batch to the counts and sets the logits to the smoothed MLE.
  void add_counts(const Tensor& x, const Tensor& labels) {
    NoGrad ng;
    const int64_t b = x.size(0);
    std::vector<double> counts = counts_.to(Device::cpu()).to_vector<double>();
    std::vector<double> seen = seen_.to(Device::cpu()).to_vector<double>();
    const std::vector<double> px = x.to(Device::cpu()).to_vector<double>();
    std::vector<int64_t> y(b, 0);
    if (k_ > 1) y = labels.to(Device::cpu()).to_vector<int64_t>();
    for (int64_t i = 0; i < b; ++i) {
      LOOM_CHECK(y[i] >= 0 && y[i] < k_, "bernoulli: label ", y[i], " is not a class in [0, ", k_, ")");
      seen[y[i]] += 1;
      for (int64_t j = 0; j < n_; ++j) {
        const double v = px[i * n_ + j];
        if (levels_ == 2) {
          counts[y[i] * n_ + j] += v;
        } else {
          counts[(y[i] * n_ + j) * levels_ + static_cast<int64_t>(v * (levels_ - 1) + 0.5)] += 1;
        }
      }
    }
    std::vector<double> logits(counts.size());
    if (levels_ == 2) {
      for (int64_t k = 0; k < k_; ++k)
        for (int64_t j = 0; j < n_; ++j) logits[k * n_ + j] = logit_from_counts(counts[k * n_ + j], seen[k], alpha_);
    } else {
      for (int64_t kj = 0; kj < k_ * n_; ++kj) categorical_logits(&counts[kj * levels_], levels_, &logits[kj * levels_]);
    }
    assign(counts_, counts);
    assign(seen_, seen);
    assign(logits_, logits);
    if (k_ > 1) {
      std::vector<double> prior(k_);
      categorical_logits(seen.data(), k_, prior.data());
      assign(prior_, prior);
    }
  }

  // The smoothed-MLE log-probabilities log((c_v + α) / (Σc + kα)) of a categorical
  // (up to a constant: softmax normalizes), a zero estimate at log p = −kMaxLogit and
  // all zeros when there is no data and no prior.
  void categorical_logits(const double* c, int64_t k, double* out) const {
    const double total = std::accumulate(c, c + k, 0.0) + static_cast<double>(k) * alpha_;
    for (int64_t v = 0; v < k; ++v) {
      const double a = c[v] + alpha_;
      out[v] = total <= 0 ? 0 : a <= 0 ? -kMaxLogit : std::max(std::log(a / total), -kMaxLogit);
    }
  }

  int64_t n_, k_, levels_;
  bool counts_fit_;
  double alpha_;
  std::shared_ptr<Tables> tables_;
  Tensor logits_, prior_, counts_, seen_;
  std::unique_ptr<optim::Adam> opt_;
};

}  // namespace

std::unique_ptr<DensityModel> make_bernoulli_model(const Config& c, int64_t pixels) {
  return std::make_unique<Bernoulli>(c, pixels);
}

}  // namespace likelihood

std::unique_ptr<Model> make_bernoulli(const Config& c) { return likelihood::make_bernoulli_model(c); }
std::vector<OptionSpec> options_bernoulli() {
  std::vector<OptionSpec> o = likelihood::table_options();
  o.push_back(switch_option("conditional", "one image model per class plus p(y); eval reports Bayes-rule accuracy"));
  o.push_back(choice_option("levels", "2", {"2", "256"}, "values per pixel: 2 (binarized) or 256 (8-bit categorical)"));
  return o;
}

}  // namespace loom::models
