// PixelRNN with Row LSTM layers (van den Oord et al. 2016, "Pixel Recurrent Neural
// Networks" §3.1, Table 1): exact log p(x) = Σ_i log p(x_i | x_<i), the LSTM run
// down the rows with each row's pixels in parallel (pixel_net.h has the
// equations). Slower than PixelCNN by design: a layer takes H sequential steps.
//
//   levels 2 (default)  binarized images, one Bernoulli logit per pixel;
//   levels 256          8-bit images, a 256-way softmax per pixel (§2.2).
//
// Fitted by Adam on the mean NLL (nats per image) of each batch.
#include <algorithm>
#include <tuple>

#include "models/likelihood/pixel_net.h"

namespace loom::models {
namespace likelihood {
namespace {

// The default network: h = 32 state channels (64 features between layers), one
// Row LSTM layer. A training step at batch 64 on 28×28 takes 2.9 s of CPU time
// (the 28 row steps are small operations that parallelize poorly).
constexpr PixelRnnOptions kPixelRnnOptions{.hidden = 32, .layers = 1};

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
    const Tensor from_input = input_to_state_conv(x);  // every row at once
    State s;
    std::vector<Tensor> states;
    for (int64_t r = 0; r < x.size(2); ++r) states.push_back(next_row(slice(from_input, 2, r, r + 1), s));
    return residual(x, concat(states, 2));
  }

  // The state (h, c) of a row, [B, h, 1, W] each; undefined above the first row (zero).
  struct State {
    Tensor h, c;
  };
  // K_is ⊛ x of rows x [B, 2h, R, W]: [B, 4h, R, W].
  Tensor input_to_state_conv(const Tensor& x) { return row_conv_b(x, input_to_state, bias); }
  // The states of the next row from its K_is ⊛ x row [B, 4h, 1, W] and s, the row
  // above's, which becomes the new row's: its h [B, h, 1, W].
  Tensor next_row(const Tensor& from_input, State& s) {
    Tensor gates = from_input;
    if (s.h.defined()) {
      ConvParams along_row;
      along_row.padding = {0, 1};
      gates = gates + conv2d(s.h, state_to_state, {}, along_row);
    }
    const Tensor c = s.c.defined() ? s.c : zeros({from_input.size(0), h_, 1, from_input.size(3)},
                                                 TensorOptions{from_input.dtype(), from_input.device()});
    std::tie(s.h, s.c) = nn::lstm_update(gates, c);
    return s.h;
  }
  // The layer's output from its input x and states h, both [B, ·, R, W].
  Tensor residual(const Tensor& x, const Tensor& h) { return x + (*up_)(h); }

  Tensor input_to_state, bias, state_to_state;

 private:
  int64_t h_;
  std::shared_ptr<nn::Conv2d> up_;
};

// Runs the network one row at a time, keeping every layer's state of the last
// completed row: row r's logits need the 7×7 layer on rows r − 3 … r and one row
// step per layer.
class PixelRNN::RowSampler : public PixelNet::Sampler {
 public:
  explicit RowSampler(PixelRNN& net) : net_(net), above_(net.layers_.size()) {}

  Tensor logits(const Tensor& pixels, int64_t r, int64_t c) override {
    for (; done_ < r; ++done_) run_row(pixels, done_, above_);  // rows above are final now
    std::vector<RowLstm::State> scratch = above_;                // row r is not
    const Tensor row = net_.output_layers(run_row(pixels, r, scratch));
    return reshape(slice(row, 3, c, c + 1), {pixels.size(0), -1});
  }

 private:
  // Row r's features after the last layer, from the states of row r − 1 (updated to row r's).
  Tensor run_row(const Tensor& pixels, int64_t r, std::vector<RowLstm::State>& states) {
    const int64_t top = std::max<int64_t>(0, r - 3);
    Tensor x = slice(net_.input_layer(slice(pixels, 2, top, r + 1)), 2, r - top, r - top + 1);
    for (size_t l = 0; l < net_.layers_.size(); ++l) {
      RowLstm& layer = *net_.layers_[l];
      x = layer.residual(x, layer.next_row(layer.input_to_state_conv(x), states[l]));
    }
    return x;
  }

  PixelRNN& net_;
  std::vector<RowLstm::State> above_;
  int64_t done_ = 0;  // rows whose states above_ holds
};

PixelRNN::PixelRNN(int64_t levels, PixelRnnOptions o, int64_t height, int64_t width)
    : PixelNet("pixelrnn", levels, 2 * o.hidden, height, width) {
  LOOM_CHECK(o.hidden >= 1 && o.layers >= 1, "pixelrnn: hidden and layers must be >= 1, got hidden ", o.hidden, ", ",
             o.layers, " layers");
  for (int64_t k = 0; k < o.layers; ++k)
    layers_.push_back(register_module(str("layers.", k), std::make_shared<RowLstm>(o.hidden)));
  add_output_layers();
}

std::unique_ptr<PixelNet::Sampler> PixelRNN::sampler() { return std::make_unique<RowSampler>(*this); }

Tensor PixelRNN::body(const Tensor& features, const Tensor&) {
  Tensor x = features;
  for (auto& layer : layers_) x = (*layer)(x);
  return x;
}

std::unique_ptr<DensityModel> make_pixelrnn_model(const Config& c, int64_t height, int64_t width,
                                                  std::optional<PixelRnnOptions> options, DType dtype) {
  auto net = std::make_shared<PixelRNN>(
      c.integer("levels"), options ? *options : PixelRnnOptions{c.integer("hidden"), c.integer("layers")}, height, width);
  return make_pixel_density_model(std::move(net), c, dtype);
}

}  // namespace likelihood

std::unique_ptr<Model> make_pixelrnn(const Config& c) { return likelihood::make_pixelrnn_model(c); }
std::vector<OptionSpec> options_pixelrnn() {
  const likelihood::PixelRnnOptions d = likelihood::kPixelRnnOptions;
  std::vector<OptionSpec> o = likelihood::pixel_model_options();
  o.push_back(integer_option("hidden", d.hidden, Range::closed(1, 4096), "LSTM state channels h (2h features between layers)"));
  o.push_back(integer_option("layers", d.layers, Range::closed(1, 64), "Row LSTM layers"));
  return o;
}

}  // namespace loom::models
