// The training driver on data it needs no files for: shared by the tests of the
// driver and of the models it trains.
#pragma once

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "models/image_grid.h"
#include "tools/train.h"

namespace loom::testing {

// n random 28×28 "images" in [0, 1) with labels i mod 10; the train and test splits differ.
inline data::LabeledImages synthetic_images(data::Split split, int64_t n) {
  Generator g(split == data::Split::Train ? 1 : 2);
  data::LabeledImages d;
  d.images = rand({n, 1, 28, 28}, {}, &g);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = i % 10;
  d.labels = from_vector(labels, {n});
  return d;
}

// n images [n, 1, 28, 28] in {0, 1}, each a filled rectangle whose corner and size come from seed:
// unlike uniform noise, data with structure (four numbers) an autoencoder can learn within seconds.
inline Tensor rectangles(int64_t n, uint64_t seed) {
  constexpr int64_t side = 28;
  Generator g(seed);
  const std::vector<float> u = rand({n, 4}, {}, &g).to_vector<float>();
  std::vector<float> px(static_cast<size_t>(n * side * side), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    auto pick = [&](int j, int64_t lo, int64_t count) {  // lo .. lo + count − 1
      return lo + std::min(count - 1, static_cast<int64_t>(u[static_cast<size_t>(4 * i + j)] * count));
    };
    const int64_t top = pick(0, 2, 12), left = pick(1, 2, 12), bottom = std::min(side, top + pick(2, 6, 12)),
                  right = std::min(side, left + pick(3, 6, 12));
    for (int64_t r = top; r < bottom; ++r)
      for (int64_t c = left; c < right; ++c) px[static_cast<size_t>((i * side + r) * side + c)] = 1;
  }
  return from_vector(px, {n, 1, side, side});
}

// images as a labelled data set, every label 0.
inline data::LabeledImages labeled(const Tensor& images) {
  return {images, zeros({images.size(0)}, TensorOptions{DType::Int64})};
}

// A `steps`-step run of `model` into `out` on n synthetic images, batch 16, no progress bar.
inline tools::TrainOptions tiny_run(const std::string& model, const std::string& out, int64_t steps, int64_t n,
                                    uint64_t seed) {
  tools::TrainOptions o;
  o.model = model;
  o.config.batch_size = 16;
  o.config.seed = seed;
  o.steps = steps;
  o.out_dir = out;
  o.n_samples = 4;
  o.eval_size = 32;
  o.progress = false;
  o.load_data = [n](data::Split s) { return synthetic_images(s, n); };
  return o;
}

// A 2-step run of `model` with the options `tiny` into `out` on the RGB images of the folder `data`
// at 32 × 32 (the image-folder tests of the translation models).
inline tools::TrainOptions rgb_folder_run(const std::string& model, const models::OptionValues& tiny,
                                          const std::string& out, const std::string& data, int64_t batch_size) {
  tools::TrainOptions o = tiny_run(model, out, 2, 0, 1);
  o.load_data = {};
  o.data_dir = o.config.data_dir = data;
  o.config.batch_size = batch_size;
  for (const auto& [k, v] : tiny) o.config.set(k, v);
  o.config.set("rgb", true).set("image_size", "32");
  return o;
}

// One train_step / evaluate of m on (images, labels), outside the driver.
inline models::Batch batch(const Tensor& images, const Tensor& labels) {
  models::Batch b;
  b.images = images;
  b.labels = labels;
  return b;
}
inline models::Losses train_step(models::Model& m, const Tensor& images, const Tensor& labels) {
  models::Step step;
  return m.train_step(batch(images, labels), step);
}
// The registered model `name` built with `options` (each marked as given on the
// command line) and the rest of its defaults, its data in data_dir.
inline std::unique_ptr<models::Model> make_model(const std::string& name, const models::OptionValues& options,
                                                 const std::string& data_dir = "") {
  const models::Registration& r = models::find_model(name);
  models::Config c;
  c.data_dir = data_dir;
  for (const auto& [k, v] : options) {
    c.set(k, v);
    c.given.insert(k);
  }
  return r.make(models::resolve_config(r, c));
}

// An RGB PNG of w × h uniform noise drawn from g: images for the image-folder tests.
inline void write_noise(const std::string& path, int64_t w, int64_t h, Generator& g) {
  const std::vector<float> u = rand({w * h * 3}, {}, &g).to_vector<float>();
  std::vector<uint8_t> px;
  for (float v : u) px.push_back(static_cast<uint8_t>(v * 255));
  save_png(path, px.data(), w, h, 3, "test");
}

// Whether Fashion-MNIST's IDX files are installed (data::kFashionMnistDir): the
// learning tests on it skip otherwise.
inline bool have_fashion_mnist() {
  return std::filesystem::exists(std::string(data::kFashionMnistDir) + "/train-images-idx3-ubyte.gz");
}

inline models::Losses evaluate(models::Model& m, const Tensor& images, const Tensor& labels,
                               const models::EvalOptions& o = {}) {
  return m.evaluate(batch(images, labels), o);
}

// The model and optimizer tensors of a training checkpoint, by name, as float64
// values: what a bit-exact resume must reproduce.
inline std::map<std::string, std::vector<double>> model_tensors(const std::string& checkpoint) {
  std::map<std::string, std::vector<double>> out;
  for (auto& [n, t] : load_safetensors(checkpoint).tensors)
    if (n.rfind("model.", 0) == 0 || n.rfind("optim.", 0) == 0) out[n] = t.to(DType::Float64).to_vector<double>();
  return out;
}

// A run of `steps` steps straight, and the same run cut at steps / 2 and resumed
// from its checkpoint: options(tag, steps) gives the run's options (tag "straight"
// or "resumed" names its folder); on_resume adjusts the resuming run (the flags
// the checkpoint stores are left out). A bit-exact resume ends both with equal
// model_tensors.
struct StraightAndResumed {
  tools::TrainResult straight, resumed;
};
inline StraightAndResumed straight_and_resumed(
    const std::function<tools::TrainOptions(const std::string& tag, int64_t steps)>& options, int64_t steps,
    const std::function<void(tools::TrainOptions&)>& on_resume = {}) {
  StraightAndResumed r;
  r.straight = tools::train(options("straight", steps));
  const tools::TrainResult half = tools::train(options("resumed", steps / 2));
  tools::TrainOptions rest = options("resumed", steps);
  rest.resume = half.checkpoint;
  if (on_resume) on_resume(rest);
  r.resumed = tools::train(rest);
  return r;
}

}  // namespace loom::testing
