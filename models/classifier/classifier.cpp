#include "models/classifier/classifier.h"

#include "models/data/data.h"

namespace loom::models {

ClassifierNet::ClassifierNet(TensorOptions o) {
  using namespace nn;
  const ConvParams same{.padding = {1, 1}};
  body = register_module("body", std::make_shared<Sequential>(std::vector<ModulePtr>{
      std::make_shared<Conv2d>(1, 32, 3, ConvOptions{.params = same, .tensors = o}), std::make_shared<ReLU>(),
      std::make_shared<Lambda>("MaxPool2d", [](const Tensor& x) { return max_pool2d(x, {2, 2}); }),
      std::make_shared<Conv2d>(32, 64, 3, ConvOptions{.params = same, .tensors = o}), std::make_shared<ReLU>(),
      std::make_shared<Lambda>("MaxPool2d", [](const Tensor& x) { return max_pool2d(x, {2, 2}); }),
      std::make_shared<Flatten>(),
      std::make_shared<Linear>(64 * 7 * 7, kFeatures, true, o), std::make_shared<ReLU>()}));
  head = register_module("head", std::make_shared<Linear>(kFeatures, 10, true, o));
}

Tensor ClassifierNet::features(const Tensor& images) {
  LOOM_CHECK(images.dim() == 4 && images.size(1) == 1 && images.size(2) == 28 && images.size(3) == 28,
             "classifier: expected images [N, 1, 28, 28], got ", images.shape());
  return body->forward(images);
}

Classifier::Classifier(const Config& c) : device_(c.device), data_dir_(c.data_dir.empty() ? data::kFashionMnistDir : c.data_dir) {
  net = std::make_shared<ClassifierNet>();
  net->to(c.device);
  opt = std::make_unique<optim::Adam>(net->parameters(), adam_from(c));
}

Losses Classifier::train_step(const Batch& batch, Step&) {
  const Tensor &images = batch.images, &labels = batch.labels;
  Tensor logits = (*net)(images);
  Tensor loss = cross_entropy(logits, labels);
  opt->zero_grad();
  backward(loss);
  opt->step();
  NoGrad ng;
  const Tensor acc = mean(eq(argmax(logits, 1).to(DType::Float32), labels.to(DType::Float32)));
  return step_losses({{"loss", loss}, {"acc", acc}});
}

Losses Classifier::evaluate(const Batch& batch, const EvalOptions&) {
  const Tensor &images = batch.images, &labels = batch.labels;
  Tensor logits = (*net)(images);
  last_images = images;
  const double n = static_cast<double>(images.size(0));
  const double nll = cross_entropy(logits, labels, Reduction::Sum).item() / n;
  const double acc = sum(eq(argmax(logits, 1).to(DType::Float32), labels.to(DType::Float32))).item() / n;
  return {{"loss", nll}, {"acc", acc}};
}

Tensor Classifier::sample(int64_t n, const Condition&, Generator&) {
  NoGrad ng;
  if (!last_images.defined() || last_images.size(0) < n) {
    data::LabeledImages test = data::load_mnist(data::Split::Test, data_dir_, data::PixelRange::MinusOneOne);
    last_images = slice(test.images, 0, 0, std::min(n, test.images.size(0))).to(device_);
  }
  Tensor imgs = slice(last_images, 0, 0, std::min(n, last_images.size(0)));
  // Order by predicted class so each row of the grid shows one kind of garment.
  std::vector<int64_t> pred = argmax((*net)(imgs), 1).to_vector<int64_t>();
  std::vector<int64_t> order(pred.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return pred[a] < pred[b]; });
  return index_select(imgs, 0, from_vector(order, {static_cast<int64_t>(order.size())}).to(imgs.device()));
}

std::unique_ptr<Model> make_classifier(const Config& c) { return std::make_unique<Classifier>(c); }
// Adam's own defaults; no latent space.
std::vector<OptionSpec> options_classifier() { return adam_options(1e-3, 0.9, 0.999); }

}  // namespace loom::models
