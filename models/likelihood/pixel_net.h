// The networks of the autoregressive image models PixelCNN and PixelRNN (van den
// Oord et al. 2016, "Pixel Recurrent Neural Networks", ICML): one channel, pixels in
// raster order, and the chain rule
//
//   log p(x) = Σ_i log p(x_i | x_1, …, x_{i−1})   (nats; eq. 1)
//
// computed exactly in one forward pass, because every layer is masked so that the
// output at pixel i depends on input pixels j < i only (§3.4). Both networks share
// the paper's outer layers (Table 1): a 7×7 type-A masked convolution (a pixel does
// not see itself), their own type-B body (pixel i's features may see pixel i's
// features), then ReLU, 1×1 conv, ReLU, 1×1 conv to the head's logits
// (likelihood.h: one Bernoulli logit, or 256 softmax logits per pixel).
//
// Shapes: images [B, 1, H, W] (or [B, H·W]) in {0, 1} or {0, 1/255, …, 1}; the
// networks run on any H', W' (they are convolutional), log_prob and sample on the
// H × W they were built for.
#pragma once

#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "models/likelihood/likelihood.h"

namespace loom::models::likelihood {

// Called after each sampled pixel with (pixels done, H·W): a progress bar's hook.
using SampleProgress = std::function<void(int64_t done, int64_t total)>;

class PixelNet : public nn::Module {
 public:
  // Logits [B, head_channels(levels), H', W'] of every pixel's conditional
  // p(x_i | x_<i), from pixels x [B, 1, H', W'] in the parameters' dtype.
  Tensor forward(const Tensor& x) override;
  // log p(x) in nats of images [B, 1, H, W] (or [B, H·W]; any dtype, converted):
  // [B] in the parameters' dtype. Throws unless the images have H·W pixels.
  Tensor log_prob(const Tensor& images);
  // n images [n, 1, H, W] (float32, on the parameters' device) drawn pixel by pixel
  // in raster order: H·W forward passes, pixel i from p(x_i | x_<i) with uniforms
  // from g. A pass for a pixel in row r runs on rows 0 … r only: the masks make rows
  // below irrelevant to it.
  Tensor sample(int64_t n, Generator& g, const SampleProgress& progress = {});
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
  // features [B, channels, H', W'] → the same shape, pixel i seeing pixels ≤ i.
  virtual Tensor body(const Tensor& features) = 0;
  // Registers the output layers; a subclass calls it after registering its body,
  // so that parameters are listed in the order the data flows.
  void add_output_layers();

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
  PixelCNN(int64_t levels, PixelCnnSize size, int64_t height, int64_t width);
  std::string name() const override { return "PixelCNN"; }

 protected:
  Tensor body(const Tensor& features) override;

 private:
  std::vector<std::shared_ptr<nn::Sequential>> blocks_;
};

// PixelRNN with Row LSTM layers (§3.1, Fig. 4 left; residual as Fig. 5 right): the
// LSTM runs down the rows, each step a whole row at once,
//
//   [o_r, f_r, i_r, g_r] = [σ, σ, σ, tanh](K_ss ⊛ h_{r−1} + K_is ⊛ x_r)
//   c_r = f_r ⊙ c_{r−1} + i_r ⊙ g_r,   h_r = o_r ⊙ tanh(c_r)             (eq. 3)
//
// (nn::lstm_update; the gates lie in its channel order i, f, g, o). K_is is a k = 3
// type-B convolution along the row (the paper's "3 × 1 conv, mask B": taps at
// columns c−1 and c, and only those open taps are stored, [4h, 2h, 1, 2]), computed
// for the whole map at once; K_ss a k = 3 convolution of the row above's state,
// [4h, h, 1, 3]. The states [B, h, H, W] go through a 1×1 conv h → 2h and are added
// to the layer's input. A pixel's context is a triangle above it (the recurrence
// widens it by a column each way per row) around the type-A layer's 7×7 half-window.
class PixelRNN : public PixelNet {
 public:
  PixelRNN(int64_t levels, PixelRnnSize size, int64_t height, int64_t width);
  std::string name() const override { return "PixelRNN"; }

 protected:
  Tensor body(const Tensor& features) override;

 private:
  class RowLstm;
  std::vector<std::shared_ptr<RowLstm>> layers_;
};

// The density model around a network: Adam (lr, b1, b2 from c, else `defaults`) on
// the mean NLL of each batch, evaluation in nats and bits/dim, sampling, in `dtype`
// on c.device.
std::unique_ptr<DensityModel> make_pixel_density_model(std::shared_ptr<PixelNet> net, const Config& c,
                                                       const ModelOptions& defaults, DType dtype);

// The sizes a live ScopedPixelNetSizes (likelihood.h) sets for the registered
// models; nullopt without one (the registry then builds the default sizes).
std::optional<PixelCnnSize> registry_pixelcnn_size();
std::optional<PixelRnnSize> registry_pixelrnn_size();

}  // namespace loom::models::likelihood
