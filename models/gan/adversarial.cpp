#include "models/gan/adversarial.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace loom::models::gan {

GeneratorLoss parse_generator_loss(const std::string& name) {
  if (name == "minimax") return GeneratorLoss::Minimax;
  if (name == "nonsaturating") return GeneratorLoss::NonSaturating;
  throw Error(str("gan: unknown generator loss '", name, "' (minimax or nonsaturating)"));
}

Tensor discriminator_loss(const Tensor& real_logits, const Tensor& fake_logits) {
  return mean(softplus(-real_logits)) + mean(softplus(fake_logits));
}

Tensor matching_aware_discriminator_loss(const Tensor& real_right, const Tensor& real_wrong, const Tensor& fake_right) {
  // −log σ(l) = softplus(−l), −log(1 − σ(l)) = softplus(l).
  return mean(softplus(-real_right)) + 0.5 * (mean(softplus(real_wrong)) + mean(softplus(fake_right)));
}

Tensor generator_loss(const Tensor& fake_logits, GeneratorLoss kind) {
  return kind == GeneratorLoss::Minimax ? -mean(softplus(fake_logits)) : mean(softplus(-fake_logits));
}

Tensor least_squares_discriminator_loss(const Tensor& real_outputs, const Tensor& fake_outputs) {
  return 0.5 * (mean(square(real_outputs - 1.0)) + mean(square(fake_outputs)));
}

Tensor least_squares_generator_loss(const Tensor& fake_outputs) { return mean(square(fake_outputs - 1.0)); }

void descend(optim::Optimizer& opt, const Tensor& loss) {
  opt.zero_grad();
  backward(loss);
  opt.step();
}

Losses adversarial_losses(const Tensor& d_loss, const Tensor& g_loss, const Tensor& real_logits,
                          const Tensor& fake_logits, std::vector<std::pair<std::string, Tensor>> more) {
  NoGrad ng;
  std::vector<std::pair<std::string, Tensor>> scalars = {{"d_loss", d_loss},
                                                         {"g_loss", g_loss},
                                                         {"D(x)", mean(sigmoid(real_logits))},
                                                         {"D(G(z))", mean(sigmoid(fake_logits))}};
  scalars.insert(scalars.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  return step_losses(scalars);
}

OptionSpec lr_schedule_option() {
  return choice_option("lr_schedule", "constant", {"constant", "linear", "cosine"},
                       "learning rate over the run: constant, or decayed to 0 at the last step (linear, cosine)");
}

std::vector<OptionSpec> adversarial_options(int64_t latent_dim) {
  std::vector<OptionSpec> o = adam_options(2e-4, 0.5, 0.999);
  o.push_back(latent_dim_option(latent_dim));
  o.push_back(choice_option("loss", "nonsaturating", {"nonsaturating", "minimax"},
                            "generator loss: -log D(G(z)) (nonsaturating, the paper's section 3) or "
                            "log(1 - D(G(z))) (minimax, eq. 1)"));
  o.push_back(lr_schedule_option());
  return o;
}

optim::LRSchedule::Kind parse_lr_schedule(const std::string& name) {
  if (name == "constant") return optim::LRSchedule::Kind::Constant;
  if (name == "linear") return optim::LRSchedule::Kind::Linear;
  if (name == "cosine") return optim::LRSchedule::Kind::Cosine;
  throw Error(str("--lr-schedule must be constant, linear or cosine, got '", name, "'"));
}

AdversarialModel::AdversarialModel(const Config& c)
    : device_(c.device),
      latent_(c.has("latent_dim") ? c.integer("latent_dim") : 0),
      loss_(c.has("loss") ? parse_generator_loss(c.text("loss")) : GeneratorLoss::NonSaturating),
      schedule_(c.has("lr_schedule") ? parse_lr_schedule(c.text("lr_schedule")) : optim::LRSchedule::Kind::Constant) {}

void AdversarialModel::adopt(nn::Module& generator, nn::Module& discriminator, const optim::AdamOptions& g_adam,
                             const optim::AdamOptions& d_adam, const std::vector<Tensor>& with_d) {
  generator.to(device_);
  discriminator.to(device_);
  g_opt_ = std::make_unique<optim::Adam>(generator.parameters(), g_adam);
  std::vector<Tensor> d_params = discriminator.parameters();
  d_params.insert(d_params.end(), with_d.begin(), with_d.end());
  d_opt_ = std::make_unique<optim::Adam>(d_params, d_adam);
  modules_.emplace_back("generator", &generator);
  modules_.emplace_back("discriminator", &discriminator);
}

void AdversarialModel::schedule_lr(const Step& step) {
  using Kind = optim::LRSchedule::Kind;
  if (schedule_ == Kind::Constant) return;
  const optim::LRSchedule s =
      schedule_ == Kind::Linear ? optim::LRSchedule::linear(step.total) : optim::LRSchedule::cosine(step.total);
  const double f = s.factor(step.index);
  g_opt_->scale_lr(f);
  d_opt_->scale_lr(f);
}

Tensor categorical_information(const Tensor& logits, const Tensor& codes) {
  LOOM_CHECK(logits.dim() == 2 && codes.dim() == 1 && codes.size(0) == logits.size(0),
             "categorical_information: expected logits [B, K] and codes [B], got ", logits.shape(), " and ",
             codes.shape());
  return std::log(static_cast<double>(logits.size(1))) - cross_entropy(logits, codes);
}

Tensor gaussian_information(const Tensor& codes, const Tensor& mu, const Tensor& log_var) {
  LOOM_CHECK(codes.dim() == 2 && mu.shape() == codes.shape(),
             "gaussian_information: expected codes and means [B, d] alike, got ", codes.shape(), " and ", mu.shape());
  const double d = static_cast<double>(codes.size(1));
  return mean(sum(gaussian_log_prob(codes, mu, log_var), {1})) + d * std::log(2.0);
}

Tensor gradient_penalty(const std::function<Tensor(const Tensor&)>& critic, const Tensor& x_hat) {
  LOOM_CHECK(x_hat.defined() && x_hat.dim() >= 2 && x_hat.size(0) >= 1,
             "gradient_penalty: expected points [N, ...] with N >= 1, got ", x_hat.defined() ? x_hat.shape() : Shape{});
  const EnableGrad enable;
  const Tensor x = x_hat.detach().requires_grad_();
  const Tensor g = grad({sum(critic(x))}, {x}, {}, {.create_graph = true})[0];
  return mean(square(norm(reshape(g, {g.size(0), -1}), 2, {1}) - 1.0));
}

Tensor penalty_points(const Tensor& real, const Tensor& fake, Generator* g) {
  LOOM_CHECK(real.defined() && fake.defined() && real.shape() == fake.shape() && real.dim() >= 1 &&
                 real.device() == fake.device(),
             "penalty_points: expected real and fake samples of one shape and device, got ",
             real.defined() ? real.shape() : Shape{}, " and ", fake.defined() ? fake.shape() : Shape{});
  Shape per_sample(static_cast<size_t>(real.dim()), 1);
  per_sample[0] = real.size(0);
  const Tensor eps = rand(per_sample, TensorOptions{real.dtype(), real.device()}, g);
  return eps * real.detach() + (1.0 - eps) * fake.detach();
}

void dcgan_init(nn::Module& root) {
  root.apply([](nn::Module& m) {
    auto init = [](Tensor& weight, Tensor& bias, double mean) {
      nn::init::normal_(weight, mean, 0.02);
      if (bias.defined()) nn::init::zeros_(bias);
    };
    if (auto* l = dynamic_cast<nn::Linear*>(&m)) init(l->weight, l->bias, 0);
    if (auto* c = dynamic_cast<nn::Conv2d*>(&m)) init(c->weight, c->bias, 0);
    if (auto* t = dynamic_cast<nn::ConvTranspose2d*>(&m)) init(t->weight, t->bias, 0);
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) init(bn->weight, bn->bias, 1);
  });
}

namespace {

// The feature maps between z and the image: G's first is start × start, each next one twice the size;
// D has the same widths in reverse.
struct DcganArchitecture {
  int64_t start;
  std::vector<int64_t> widths;
};
DcganArchitecture dcgan_architecture(int64_t image_size, int64_t f) {
  LOOM_CHECK(image_size == 28 || image_size == 64, "dcgan: image size must be 28 or 64, got ", image_size);
  if (image_size == 64) return {4, {8 * f, 4 * f, 2 * f, f}};
  return {7, {2 * f, f}};
}

const nn::ConvOptions kSingle{.params = {}, .bias = false, .tensors = {}};  // the k×k layer at the 1×1 end
const nn::ConvOptions kStrided{.params = {.stride = {2, 2}, .padding = {1, 1}}, .bias = false, .tensors = {}};

}  // namespace

std::shared_ptr<nn::Sequential> dcgan_generator(int64_t in, int64_t out, int64_t image_size, int64_t features) {
  using namespace nn;
  const DcganArchitecture a = dcgan_architecture(image_size, features);
  auto g = std::make_shared<Sequential>();
  auto block = [&](ModulePtr layer, int64_t width) {
    g->push_back(std::move(layer));
    g->push_back(std::make_shared<BatchNorm2d>(width));
    g->push_back(std::make_shared<ReLU>());
  };
  block(std::make_shared<ConvTranspose2d>(in, a.widths[0], a.start, kSingle), a.widths[0]);
  for (size_t i = 1; i < a.widths.size(); ++i)
    block(std::make_shared<ConvTranspose2d>(a.widths[i - 1], a.widths[i], 4, kStrided), a.widths[i]);
  g->push_back(std::make_shared<ConvTranspose2d>(a.widths.back(), out, 4, kStrided));
  g->push_back(std::make_shared<Tanh>());
  dcgan_init(*g);
  return g;
}

std::shared_ptr<nn::Sequential> dcgan_discriminator(int64_t in, int64_t image_size, int64_t features) {
  using namespace nn;
  const DcganArchitecture a = dcgan_architecture(image_size, features);
  auto d = std::make_shared<Sequential>();
  d->push_back(std::make_shared<Conv2d>(in, a.widths.back(), 4, kStrided));  // no batch norm on the input layer
  d->push_back(std::make_shared<LeakyReLU>(0.2));
  for (size_t i = a.widths.size() - 1; i > 0; --i) {
    d->push_back(std::make_shared<Conv2d>(a.widths[i], a.widths[i - 1], 4, kStrided));
    d->push_back(std::make_shared<BatchNorm2d>(a.widths[i - 1]));
    d->push_back(std::make_shared<LeakyReLU>(0.2));
  }
  d->push_back(std::make_shared<Conv2d>(a.widths[0], 1, a.start, kSingle));
  dcgan_init(*d);
  return d;
}

Tensor tile_labels(const Tensor& labels, int64_t height, int64_t width) {
  LOOM_CHECK(labels.dim() == 2, "tile_labels: expected labels [B, K], got ", labels.shape());
  LOOM_CHECK(height >= 1 && width >= 1, "tile_labels: expected a side >= 1, got ", height, " x ", width);
  return expand(reshape(labels, {labels.size(0), labels.size(1), 1, 1}),
                {labels.size(0), labels.size(1), height, width});
}

Tensor slerp(const Tensor& a, const Tensor& b, double t) {
  LOOM_CHECK(a.shape() == b.shape() && a.dim() >= 1, "slerp: expected a and b of one shape [..., D], got ", a.shape(),
             " and ", b.shape());
  LOOM_CHECK(std::isfinite(t), "slerp: t must be finite, got ", t);
  const std::vector<double> x = a.to(Device::cpu()).to(DType::Float64).to_vector<double>(),
                            y = b.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  const int64_t d = a.size(a.dim() - 1), rows = d == 0 ? 0 : a.numel() / d;
  std::vector<double> ca(static_cast<size_t>(rows)), cb(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double xy = 0, xx = 0, yy = 0;
    for (int64_t i = r * d; i < (r + 1) * d; ++i) xy += x[i] * y[i], xx += x[i] * x[i], yy += y[i] * y[i];
    const double norms = std::sqrt(xx) * std::sqrt(yy);
    const double omega = norms > 0 ? std::acos(std::clamp(xy / norms, -1.0, 1.0)) : 0;
    const double s = std::sin(omega);
    if (s < 1e-6) {  // no unique great circle: the straight line
      ca[r] = 1 - t, cb[r] = t;
    } else {
      ca[r] = std::sin((1 - t) * omega) / s, cb[r] = std::sin(t * omega) / s;
    }
  }
  Shape per_row = a.shape();
  per_row.back() = 1;
  const TensorOptions o{a.dtype(), a.device()};
  return a * from_vector(ca, per_row, o) + b * from_vector(cb, per_row, o);
}

Tensor latent_walks(int64_t rows, int64_t columns, int64_t latent_dim, Device device, Generator& g) {
  LOOM_CHECK(rows >= 1 && columns >= 2 && latent_dim >= 1, "latent_walks: expected rows >= 1, columns >= 2 and ",
             "latent_dim >= 1, got ", rows, ", ", columns, ", ", latent_dim);
  const TensorOptions o{DType::Float32, device};
  const Tensor z0 = randn({rows, latent_dim}, o, &g), z1 = randn({rows, latent_dim}, o, &g);
  std::vector<Tensor> points;
  for (int64_t j = 0; j < columns; ++j)
    points.push_back(slerp(z0, z1, static_cast<double>(j) / static_cast<double>(columns - 1)));
  return reshape(stack(points, 1), {rows * columns, latent_dim});
}

}  // namespace loom::models::gan
