// A learning check for image samplers that needs no classifier, and the short
// run it is made on: shared by the adversarial models' tests.
#pragma once

#include <string>

#include "models/metrics.h"
#include "models/model.h"
#include "tools/train.h"

namespace loom::testing {

// The Fréchet distance in pixel space between 1000 samples of a model (in eval
// mode, from Generator(11)) and the first 1000 Fashion-MNIST test images in
// [−1, 1], both 4×4-average-pooled to 7×7: 49 dimensions, few enough for a
// covariance from 1000 images. The test images are loaded once, on construction.
class PooledPixelFd {
 public:
  PooledPixelFd()
      : test_features_(features(slice(data::load_mnist(data::Split::Test, data::kFashionMnistDir,
                                                       data::PixelRange::MinusOneOne).images, 0, 0, 1000))) {}
  double operator()(models::Model& m) const {
    m.train(false);
    NoGrad ng;
    Generator g(11);
    return models::frechet_distance(features(m.sample(1000, {}, g)), test_features_);
  }

 private:
  static Tensor features(const Tensor& images) { return flatten(avg_pool2d(images, {4, 4}), 1); }
  Tensor test_features_;
};

// A short run of `model` on the first 3200 Fashion-MNIST training images: 150
// steps of 32, into out_dir, no progress bar; the caller sets the model's options.
inline tools::TrainOptions short_fashion_run(const std::string& model, const std::string& out_dir, uint64_t seed) {
  tools::TrainOptions o;
  o.model = model;
  o.config.batch_size = 32;
  o.config.seed = seed;
  o.limit_train = 3200;
  o.steps = 150;
  o.out_dir = out_dir;
  o.n_samples = 16;
  o.eval_size = 256;
  o.progress = false;
  return o;
}

}  // namespace loom::testing
