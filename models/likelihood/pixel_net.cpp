// What the pixel networks share (pixel_net.h): the type-A input layer, the output
// layers, log p(x), pixel-by-pixel sampling, the type-B row convolution, and the
// density model around a network.
#include <algorithm>
#include <cmath>

#include "models/likelihood/pixel_net.h"

namespace loom::models::likelihood {

Tensor row_conv_b(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return conv2d(pad(x, {weight.size(3) - 1, 0}), weight, bias);
}

Tensor uniform_fan_in(const Shape& shape, int64_t fan_in) {
  Tensor t = empty(shape);
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  nn::init::uniform_(t, -bound, bound);
  return t;
}

PixelNet::PixelNet(const char* model, int64_t levels, int64_t channels, int64_t height, int64_t width)
    : model_(model), levels_(levels), channels_(channels), height_(height), width_(width) {
  LOOM_CHECK(levels == 2 || levels == 256, model_, ": --levels must be 2 or 256, got ", levels);
  LOOM_CHECK(channels > 0 && height > 0 && width > 0, model_, ": sizes must be positive, got ", channels,
             " channels for ", height, "×", width, " images");
  input_ = register_module("input", std::make_shared<nn::MaskedConv2d>(1, channels, 7, 'A'));
}

void PixelNet::add_output_layers() {
  // Table 1: "ReLU followed by 1 × 1 conv, mask B (2 layers)"; with one colour
  // group a 1×1 type-B mask is all ones, so these are plain 1×1 convolutions.
  output_ = register_module("output", std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
                                          std::make_shared<nn::ReLU>(),
                                          std::make_shared<nn::Conv2d>(channels_, channels_, 1),
                                          std::make_shared<nn::ReLU>(),
                                          std::make_shared<nn::Conv2d>(channels_, head_channels(levels_), 1)}));
}

Tensor PixelNet::forward(const Tensor& x) {
  LOOM_CHECK(x.dim() == 4 && x.size(1) == 1, model_, ": expected pixels [B, 1, H, W], got ", x.shape());
  return output_layers(body(input_layer(x), x));
}

Tensor PixelNet::log_prob(const Tensor& images) {
  const int64_t b = images.size(0);
  LOOM_CHECK(images.numel() == b * height_ * width_, model_, ": expected images of ", height_, "×", width_,
             " pixels, got ", images.shape());
  const Tensor x = reshape(images, {b, 1, height_, width_}).to(input_->weight.dtype());
  return sum(pixel_log_likelihood(forward(x), x, levels_), {1, 2, 3});
}

Tensor PixelNet::sample(int64_t n, Generator& g, const SampleProgress& progress) {
  NoGrad ng;
  const int64_t hw = height_ * width_;
  const TensorOptions o{input_->weight.dtype(), input_->weight.device()};
  const std::vector<double> u = rand({n, hw}, {DType::Float64}, &g).to_vector<double>();
  std::vector<float> pixels(static_cast<size_t>(n * hw), 0.0f);
  std::vector<double> u_at(static_cast<size_t>(n));
  const std::unique_ptr<Sampler> s = sampler();
  for (int64_t r = 0; r < height_; ++r)
    for (int64_t c = 0; c < width_; ++c) {
      const int64_t i = r * width_ + c;
      const Tensor at = s->logits(from_vector(pixels, {n, 1, height_, width_}, o), r, c);
      for (int64_t b = 0; b < n; ++b) u_at[b] = u[b * hw + i];
      const std::vector<float> v = draw_pixels(at, levels_, u_at.data());
      for (int64_t b = 0; b < n; ++b) pixels[b * hw + i] = v[b];
      if (progress) progress(i + 1, hw);
    }
  return from_vector(pixels, {n, 1, height_, width_}, TensorOptions{DType::Float32, o.device});
}

namespace {
class WindowSampler : public PixelNet::Sampler {
 public:
  WindowSampler(PixelNet& net, int64_t up, int64_t side) : net_(net), up_(up), side_(side) {}
  Tensor logits(const Tensor& pixels, int64_t r, int64_t c) override {
    // What lies outside the window cannot change the pixel's logits; zero padding at
    // the window's edges stays outside what the pixel depends on.
    const int64_t top = std::max<int64_t>(0, r - up_), left = std::max<int64_t>(0, c - side_);
    const Tensor window = slice(slice(pixels, 2, top, r + 1), 3, left, std::min(pixels.size(3), c + side_ + 1));
    const Tensor at = slice(slice(net_(window), 2, r - top, r - top + 1), 3, c - left, c - left + 1);
    return reshape(at, {pixels.size(0), -1});
  }

 private:
  PixelNet& net_;
  int64_t up_, side_;
};
}  // namespace

std::unique_ptr<PixelNet::Sampler> PixelNet::window_sampler(int64_t up, int64_t side) {
  return std::make_unique<WindowSampler>(*this, up, side);
}

int64_t PixelNet::free_parameters() {
  int64_t count = parameter_count();
  for (nn::Module* m : modules())
    if (auto* masked = dynamic_cast<nn::MaskedConv2d*>(m))
      count -= masked->mask.numel() - static_cast<int64_t>(std::llround(sum(masked->mask).item()));
  return count;
}

namespace {

// The model adapter: the network does the mathematics, this the training protocol.
class PixelDensityModel : public DensityModel {
 public:
  PixelDensityModel(std::shared_ptr<PixelNet> net, const Config& c, DType dtype) : net_(std::move(net)) {
    net_->to(dtype);
    net_->to(c.device);
    opt_ = make_adam(net_->parameters(), c);
  }

  DataSpec data_spec() const override { return {.lo = 0, .hi = 1, .binarize = net_->levels() == 2}; }

  bool cuda_graph_capable() const override { return true; }  // one batch, device tensors only
  Losses train_step(const Batch& batch, Step&) override { return descend(*opt_, -mean(net_->log_prob(batch.images))); }

  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    return nll_losses(-mean(log_prob(batch.images)).item(), net_->height() * net_->width());
  }

  Tensor log_prob(const Tensor& images) override { return net_->log_prob(images).to(DType::Float64); }
  int64_t free_parameters() const override { return net_->free_parameters(); }
  Tensor sample(int64_t count, const Condition&, Generator& g) override {
    return net_->sample(count, g, sample_progress_);
  }

  std::vector<std::pair<std::string, nn::Module*>> modules() override { return {{"net", net_.get()}}; }
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() override { return {{"adam", opt_.get()}}; }

 private:
  std::shared_ptr<PixelNet> net_;
  std::unique_ptr<optim::Adam> opt_;
};

}  // namespace

std::unique_ptr<DensityModel> make_pixel_density_model(std::shared_ptr<PixelNet> net, const Config& c, DType dtype) {
  return std::make_unique<PixelDensityModel>(std::move(net), c, dtype);
}

}  // namespace loom::models::likelihood
