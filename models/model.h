// The interface every trainable model implements, and the registry the `loom`
// command line reads. Adding a model: one file in models/ defining
// make_<name>(), plus one line in models/models.def.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/loom.h"

namespace loom::models {

// Hyper-parameters from the command line (flag names follow the PyTorch
// GAN/VAE example scripts).
struct Config {
  int64_t batch_size = 64;
  double lr = 0;  // 0: the model's default
  double b1 = 0.5, b2 = 0.999;
  int64_t latent_dim = 0;  // 0: the model's default
  Device device = Device::cpu();
  uint64_t seed = 0;
  std::string data_dir;  // where a model that shows data (the classifier) finds it
};

// What a model trains on; the trainer prepares batches accordingly.
struct DataSpec {
  double lo = -1, hi = 1;   // pixel range of the images the model sees and samples
  bool binarize = false;    // dynamic binarization (fresh Bernoulli draw per epoch)
};

using Losses = std::map<std::string, double>;

class Model {
 public:
  virtual ~Model() = default;
  virtual DataSpec data_spec() const { return {}; }
  // One optimization step on a batch: images [B, 1, 28, 28], labels int64 [B].
  virtual Losses train_step(const Tensor& images, const Tensor& labels) = 0;
  // n images [n, C, H, W] in the data range, for sample grids.
  virtual Tensor sample(int64_t n, Generator& g) = 0;
  // Metrics over held-out data (called in eval mode, under NoGrad).
  virtual Losses evaluate(const Tensor& images, const Tensor& labels) = 0;
  // Everything a checkpoint holds, by name.
  virtual std::vector<std::pair<std::string, nn::Module*>> modules() = 0;
  virtual std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() = 0;
  // Sets train/eval mode on every module.
  void train(bool on);
};

struct Registration {
  const char* name;
  const char* summary;
  std::unique_ptr<Model> (*make)(const Config&);
};

// Every registered model, in models.def order.
const std::vector<Registration>& registry();
// The registration named `name`; an Error listing the names otherwise.
const Registration& find_model(const std::string& name);

#define X(name, summary) std::unique_ptr<Model> make_##name(const Config& c);
#include "models/models.def"
#undef X

}  // namespace loom::models
