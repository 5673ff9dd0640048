// The Fashion-MNIST classifier. Besides classifying, its penultimate layer is
// the feature space of loom's Fréchet distance (models/metrics.h).
#pragma once

#include "models/model.h"

namespace loom::models {

// conv 3x3 (1→32) · ReLU · maxpool 2 → conv 3x3 (32→64) · ReLU · maxpool 2 →
// linear (3136→128) · ReLU = features → linear (128→10) = logits.
class ClassifierNet : public nn::Module {
 public:
  explicit ClassifierNet(TensorOptions o = {});
  Tensor features(const Tensor& images);  // [N, 128]
  Tensor forward(const Tensor& images) override { return head->forward(features(images)); }
  std::string name() const override { return "ClassifierNet"; }
  static constexpr int64_t kFeatures = 128;

  std::shared_ptr<nn::Sequential> body;
  std::shared_ptr<nn::Linear> head;
};

class Classifier : public Model {
 public:
  explicit Classifier(const Config& c);
  ModelKind kind() const override { return ModelKind::Classifier; }
  Losses train_step(const Batch& batch, Step& step) override;
  bool cuda_graph_capable() const override { return true; }  // one batch; its labels checked on the device
  // A classifier has nothing to sample: the grid shows held-out images sorted by
  // predicted class, which is what a person wants to look at.
  Tensor sample(int64_t n, const Condition& c, Generator& g) override;
  Losses evaluate(const Batch& batch, const EvalOptions& o) override;
  std::vector<std::pair<std::string, nn::Module*>> modules() override { return {{"net", net.get()}}; }
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() override { return {{"adam", opt.get()}}; }

  std::shared_ptr<ClassifierNet> net;
  std::unique_ptr<optim::Adam> opt;
  Tensor last_images;  // the latest evaluation batch, for sample()

 private:
  Device device_;
  std::string data_dir_;
};

}  // namespace loom::models
