// The networks of the autoregressive image models PixelCNN and PixelRNN (van den
// Oord et al. 2016, "Pixel Recurrent Neural Networks", ICML; the gated PixelCNN from
// "Conditional Image Generation with PixelCNN Decoders", NeurIPS 2016): one channel,
// pixels in raster order, and the chain rule
//
//   log p(x) = Σ_i log p(x_i | x_1, …, x_{i−1})   (nats; eq. 1)
//
// computed exactly in one forward pass, because every layer is masked (or its
// kernel shifted) so that the output at pixel i depends on input pixels j < i only
// (§3.4). The networks share the paper's outer layers (Table 1): a 7×7 type-A masked
// convolution (a pixel does not see itself), then their own type-B body (pixel i's
// features may see pixel i's features), then ReLU, 1×1 conv, ReLU, 1×1 conv to the
// head's logits (likelihood.h: one Bernoulli logit, or 256 softmax logits per pixel).
//
// Shapes: images [B, 1, H, W] (or [B, H·W]) in {0, 1} or {0, 1/255, …, 1}; the
// networks run on any H', W' (they are convolutional), log_prob and sample on the
// H × W they were built for.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/likelihood/likelihood.h"

namespace loom::models::likelihood {

// sample()'s progress hook (models::SampleProgress) is called after each sampled
// pixel with (pixels done, H·W).

// The open taps of a type-B convolution along the row, 1 × k with k = 2m + 1: the
// taps at columns c − m … c, weight [out, in, 1, m + 1] (the closed ones are not
// stored), i.e. a 1 × (m + 1) convolution of x [B, in, H, W] shifted m columns
// right (zeros enter at the left edge): [B, out, H, W]. bias may be undefined.
Tensor row_conv_b(const Tensor& x, const Tensor& weight, const Tensor& bias);

// A fresh weight or bias U(±1/√fan_in), PyTorch's convolution default (float32, CPU:
// a module converts it with the rest).
Tensor uniform_fan_in(const Shape& shape, int64_t fan_in);

class PixelNet : public nn::Module {
 public:
  // Logits [B, head_channels(levels), H', W'] of every pixel's conditional
  // p(x_i | x_<i), from pixels x [B, 1, H', W'] in the parameters' dtype.
  Tensor forward(const Tensor& x) override;
  // log p(x) in nats of images [B, 1, H, W] (or [B, H·W]; any dtype, converted):
  // [B] in the parameters' dtype. Throws unless the images have H·W pixels.
  Tensor log_prob(const Tensor& images);
  // n images [n, 1, H, W] (float32, on the parameters' device) drawn pixel by pixel
  // in raster order, H·W steps: pixel i of image b from p(x_i | x_<i) (the
  // sampler()'s logits) with the uniform u[b, i] of u = rand({n, H·W}, float64, g)
  // (draw_pixels).
  Tensor sample(int64_t n, Generator& g, const SampleProgress& progress = {});

  // The logits of one pixel at a time, as sample() needs them: each network
  // computes only what the pixel's conditional depends on.
  class Sampler {
   public:
    virtual ~Sampler() = default;
    // Logits [n, head_channels(levels)] of pixel (r, c), forward(pixels)'s there (to
    // rounding), for pixels [n, 1, H, W] (the parameters' dtype and device) whose pixels
    // before (r, c) in raster order are final. Calls come in raster order.
    virtual Tensor logits(const Tensor& pixels, int64_t r, int64_t c) = 0;
  };
  virtual std::unique_ptr<Sampler> sampler() = 0;

  // The parameters the likelihood depends on: every parameter entry except the
  // masked-out taps of masked convolutions (they get no gradient).
  int64_t free_parameters();

  int64_t levels() const { return levels_; }
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }

 protected:
  // `model` names the model in errors ("pixelcnn"); `channels` is the width of the
  // features the body maps to themselves. Throws for levels other than 2 and 256
  // and for non-positive sizes.
  PixelNet(const char* model, int64_t levels, int64_t channels, int64_t height, int64_t width);
  // The registered layers between the type-A input layer and the output layers:
  // features [B, channels, H', W'] → the same shape, pixel i seeing the features of
  // pixels ≤ i. x [B, 1, H', W'] is the pixels themselves, for a body that has its
  // own view of them (the gated variant's vertical stack).
  virtual Tensor body(const Tensor& features, const Tensor& x) = 0;
  // Registers the output layers; a subclass calls it after registering its body,
  // so that parameters are listed in the order the data flows.
  void add_output_layers();
  // forward's first and last layers, for a sampler that runs the body its own way.
  Tensor input_layer(const Tensor& x) { return (*input_)(x); }
  Tensor output_layers(const Tensor& features) { return (*output_)(features); }
  // A sampler for a network whose conditional of pixel (r, c) depends on pixels in
  // rows r − up … r and columns c − side … c + side only: forward on that window.
  std::unique_ptr<Sampler> window_sampler(int64_t up, int64_t side);

 private:
  std::string model_;
  int64_t levels_, channels_, height_, width_;
  std::shared_ptr<nn::MaskedConv2d> input_;
  std::shared_ptr<nn::Sequential> output_;
};

// PixelCNN (§3.4, Fig. 5 left): residual blocks of ReLU, 1×1 conv 2h → h, ReLU,
// 3×3 type-B masked conv h → h, ReLU, 1×1 conv h → 2h, added to the block's input.
// Its receptive field has the blind spot of stacked masked convolutions (up and to
// the right; van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
// Decoders" §2.2), which the exact likelihood does not depend on.
class PixelCNN : public PixelNet {
 public:
  PixelCNN(int64_t levels, PixelCnnOptions options, int64_t height, int64_t width);
  std::string name() const override { return "PixelCNN"; }
  // The window: 3 rows and columns for the 7×7 layer, 1 more per 3×3 layer.
  std::unique_ptr<Sampler> sampler() override;

 protected:
  Tensor body(const Tensor& features, const Tensor& x) override;

 private:
  std::vector<std::shared_ptr<nn::Sequential>> blocks_;
};

// Gated PixelCNN ("Conditional Image Generation with PixelCNN Decoders" §2.1–2.2,
// Fig. 2), without the blind spot: two stacks of p = `channels` features per pixel,
//
//   vertical    v' = tanh(W_f ∗ v) ⊙ σ(W_g ∗ v)   (eq. 2), ∗ a 2 × 3 convolution of
//               rows r − 1 and r (row r whole: the stack reaches the horizontal one a
//               row down);
//   horizontal  h' = h + 1×1(tanh(a) ⊙ σ(b)),  [a | b] = U ∗ h + 1×1(W ∗ v one row
//               down), U a type-B 1 × 3 convolution along the row (row_conv_b).
//
// The horizontal stack starts from the shared 7×7 type-A layer; the vertical one
// from its own 4 × 7 convolution of rows r − 3 … r of the pixels (the 7×7 window's
// upper half and centre row), since it must see each row whole. The output layers
// read the horizontal stack.
class GatedPixelCNN : public PixelNet {
 public:
  GatedPixelCNN(int64_t levels, PixelCnnOptions options, int64_t height, int64_t width);
  std::string name() const override { return "GatedPixelCNN"; }
  // The window: the vertical stack's 3 rows and columns, 1 more per layer, and the
  // row it is shifted down.
  std::unique_ptr<Sampler> sampler() override;

 protected:
  Tensor body(const Tensor& features, const Tensor& x) override;

 private:
  class GatedLayer;
  Tensor vertical_weight, vertical_bias;  // [p, 1, 4, 7], [p]
  std::vector<std::shared_ptr<GatedLayer>> layers_;
};

// PixelRNN with Row LSTM layers (§3.1, Fig. 4 left; residual as Fig. 5 right): the
// LSTM runs down the rows, each step a whole row at once,
//
//   [o_r, f_r, i_r, g_r] = [σ, σ, σ, tanh](K_ss ⊛ h_{r−1} + K_is ⊛ x_r)
//   c_r = f_r ⊙ c_{r−1} + i_r ⊙ g_r,   h_r = o_r ⊙ tanh(c_r)             (eq. 3)
//
// (nn::lstm_update; the gates lie in its channel order i, f, g, o). K_is is a k = 3
// type-B convolution along the row (the paper's "3 × 1 conv, mask B": row_conv_b,
// taps at columns c−1 and c), computed for the whole map at once; K_ss a k = 3
// convolution of the row above's state, [4h, h, 1, 3]. The states [B, h, H, W] go
// through a 1×1 conv h → 2h and are added to the layer's input. A pixel's context
// is a triangle above it (the recurrence widens it by a column each way per row)
// around the type-A layer's 7×7 half-window.
class PixelRNN : public PixelNet {
 public:
  PixelRNN(int64_t levels, PixelRnnOptions options, int64_t height, int64_t width);
  std::string name() const override { return "PixelRNN"; }
  // Keeps each layer's state of the row above: a pixel costs one row step per
  // layer, not a pass over every row above it.
  std::unique_ptr<Sampler> sampler() override;

 protected:
  Tensor body(const Tensor& features, const Tensor& x) override;

 private:
  class RowLstm;
  class RowSampler;
  std::vector<std::shared_ptr<RowLstm>> layers_;
};

// The density model around a network: Adam (c's lr, b1, b2) on the mean NLL of
// each batch, evaluation in nats and bits/dim, sampling, in `dtype` on c.device.
std::unique_ptr<DensityModel> make_pixel_density_model(std::shared_ptr<PixelNet> net, const Config& c, DType dtype);

}  // namespace loom::models::likelihood
