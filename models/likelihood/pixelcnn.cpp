// PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks" §3.4):
// exact log p(x) = Σ_i log p(x_i | x_<i) from one pass of masked convolutions —
// a 7×7 type-A layer, residual blocks with a 3×3 type-B layer (Fig. 5 left), two
// 1×1 layers — and sampling in H·W passes (pixel_net.h).
//
//   levels 2 (default)  binarized images, one Bernoulli logit per pixel;
//   levels 256          8-bit images, a 256-way softmax per pixel (§2.2), whose
//                       NLL is also reported in bits/dim.
//
// Fitted by Adam on the mean NLL (nats per image) of each batch.
#include "models/likelihood/pixel_net.h"

namespace loom::models {
namespace likelihood {
namespace {

// The default network: 2h = 64 features, 5 residual blocks (about 0.4 s per step
// at batch 64 on 28×28 with 2 CPU cores; the paper's MNIST net is wider and deeper).
constexpr PixelCnnSize kPixelCnnSize{.channels = 64, .blocks = 5};

const ModelOptions kOptions{.lr = 1e-3, .b1 = 0.9, .b2 = 0.999, .latent_dim = std::nullopt, .fit = std::nullopt,
                            .alpha = std::nullopt, .conditional = std::nullopt, .levels = 2};

}  // namespace

PixelCNN::PixelCNN(int64_t levels, PixelCnnSize size, int64_t height, int64_t width)
    : PixelNet("pixelcnn", levels, size.channels, height, width) {
  LOOM_CHECK(size.channels >= 2 && size.channels % 2 == 0 && size.blocks >= 0,
             "pixelcnn: channels must be even and >= 2, blocks >= 0; got ", size.channels, " channels, ", size.blocks,
             " blocks");
  const int64_t h = size.channels / 2;
  for (int64_t k = 0; k < size.blocks; ++k)
    blocks_.push_back(register_module(str("blocks.", k), std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
        std::make_shared<nn::ReLU>(), std::make_shared<nn::Conv2d>(2 * h, h, 1),
        std::make_shared<nn::ReLU>(), std::make_shared<nn::MaskedConv2d>(h, h, 3, 'B'),
        std::make_shared<nn::ReLU>(), std::make_shared<nn::Conv2d>(h, 2 * h, 1)})));
  add_output_layers();
}

Tensor PixelCNN::body(const Tensor& features) {
  Tensor x = features;
  for (auto& block : blocks_) x = x + (*block)(x);
  return x;
}

std::unique_ptr<DensityModel> make_pixelcnn_model(const Config& c, int64_t height, int64_t width,
                                                  std::optional<PixelCnnSize> size, DType dtype) {
  auto net = std::make_shared<PixelCNN>(c.levels.value_or(*kOptions.levels), size.value_or(kPixelCnnSize), height,
                                        width);
  return make_pixel_density_model(std::move(net), c, kOptions, dtype);
}

}  // namespace likelihood

std::unique_ptr<Model> make_pixelcnn(const Config& c) {
  return likelihood::make_pixelcnn_model(c, 28, 28, likelihood::registry_pixelcnn_size());
}
ModelOptions options_pixelcnn() { return likelihood::kOptions; }

}  // namespace loom::models
