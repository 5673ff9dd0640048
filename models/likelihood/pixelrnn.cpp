// PixelRNN with Row LSTM layers (van den Oord et al. 2016, "Pixel Recurrent Neural
// Networks" §3.1, Table 1): exact log p(x) = Σ_i log p(x_i | x_<i), the LSTM run
// down the rows with each row's pixels in parallel (pixel_net.h has the
// equations). Slower than PixelCNN by design: a layer takes H sequential steps.
//
//   levels 2 (default)  binarized images, one Bernoulli logit per pixel;
//   levels 256          8-bit images, a 256-way softmax per pixel (§2.2).
//
// Fitted by Adam on the mean NLL (nats per image) of each batch.
#include <tuple>

#include "models/likelihood/pixel_net.h"

namespace loom::models {
namespace likelihood {
namespace {

// The default network: h = 32 state channels (64 features between layers), one
// Row LSTM layer. A training step at batch 64 on 28×28 takes 2.9 s of CPU time
// (the 28 row steps are small operations that parallelize poorly).
constexpr PixelRnnOptions kPixelRnnOptions{.hidden = 32, .layers = 1};

const ModelOptions kOptions{.lr = 1e-3, .b1 = 0.9, .b2 = 0.999, .latent_dim = std::nullopt, .fit = std::nullopt,
                            .alpha = std::nullopt, .conditional = std::nullopt, .levels = 2};

}  // namespace

// One residual Row LSTM layer: features [B, 2h, H, W] → the same shape.
class PixelRNN::RowLstm : public nn::Module {
 public:
  explicit RowLstm(int64_t h) : h_(h) {
    register_parameter("input_to_state", &input_to_state, uniform_fan_in({4 * h, 2 * h, 1, 2}, 2 * h * 2));
    register_parameter("bias", &bias, uniform_fan_in({4 * h}, 2 * h * 2));
    register_parameter("state_to_state", &state_to_state, uniform_fan_in({4 * h, h, 1, 3}, h * 3));
    up_ = register_module("up", std::make_shared<nn::Conv2d>(h, 2 * h, 1));
  }
  std::string name() const override { return "RowLstm"; }

  Tensor forward(const Tensor& x) override {
    const int64_t b = x.size(0), rows = x.size(2), w = x.size(3);
    const Tensor from_input = row_conv_b(x, input_to_state, bias);  // K_is ⊛ x, every row at once
    ConvParams along_row;
    along_row.padding = {0, 1};
    Tensor h = zeros({b, h_, 1, w}, TensorOptions{x.dtype(), x.device()}), c = h;
    std::vector<Tensor> states;
    for (int64_t r = 0; r < rows; ++r) {
      Tensor gates = slice(from_input, 2, r, r + 1);
      if (r > 0) gates = gates + conv2d(h, state_to_state, {}, along_row);  // h_{−1} = 0
      std::tie(h, c) = nn::lstm_update(gates, c);
      states.push_back(h);
    }
    return x + (*up_)(concat(states, 2));
  }

  Tensor input_to_state, bias, state_to_state;

 private:
  int64_t h_;
  std::shared_ptr<nn::Conv2d> up_;
};

PixelRNN::PixelRNN(int64_t levels, PixelRnnOptions o, int64_t height, int64_t width)
    : PixelNet("pixelrnn", levels, 2 * o.hidden, height, width) {
  LOOM_CHECK(o.hidden >= 1 && o.layers >= 1, "pixelrnn: hidden and layers must be >= 1, got hidden ", o.hidden, ", ",
             o.layers, " layers");
  for (int64_t k = 0; k < o.layers; ++k)
    layers_.push_back(register_module(str("layers.", k), std::make_shared<RowLstm>(o.hidden)));
  add_output_layers();
}

Tensor PixelRNN::body(const Tensor& features, const Tensor&) {
  Tensor x = features;
  for (auto& layer : layers_) x = (*layer)(x);
  return x;
}

std::unique_ptr<DensityModel> make_pixelrnn_model(const Config& c, int64_t height, int64_t width,
                                                  std::optional<PixelRnnOptions> options, DType dtype) {
  auto net = std::make_shared<PixelRNN>(c.levels.value_or(*kOptions.levels), options.value_or(kPixelRnnOptions),
                                        height, width);
  return make_pixel_density_model(std::move(net), c, kOptions, dtype);
}

}  // namespace likelihood

std::unique_ptr<Model> make_pixelrnn(const Config& c) {
  return likelihood::make_pixelrnn_model(c, 28, 28, likelihood::registry_pixelrnn_options());
}
ModelOptions options_pixelrnn() { return likelihood::kOptions; }

}  // namespace loom::models
