// The interface every trainable model implements, and the registry the `loom`
// command line reads. Adding a model: one file in models/ defining
// make_<name>(), plus one line in models/models.def.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autograd/loom.h"

namespace loom::models {

// The hyper-parameters a model takes, each with the model's default. An unset
// entry means the model has no such option: giving it is an error naming the model.
struct ModelOptions {
  std::optional<double> lr, b1, b2;  // Adam's learning rate and betas
  std::optional<int64_t> latent_dim;
  // Explicit-density pixel models (models/likelihood/):
  std::optional<std::string> fit{};   // "gd" (gradient descent on the NLL) or "counts" (closed-form MLE)
  std::optional<double> alpha{};      // add-alpha smoothing of the counts fit, >= 0
  std::optional<bool> conditional{};  // one model per class plus the class prior p(y)
  std::optional<int64_t> levels{};    // values per pixel: 2 (binarized) or 256 (8-bit)
};

// Hyper-parameters from the command line (flag names follow the PyTorch
// GAN/VAE example scripts). Unset means "not given": the driver fills in the
// model's default (or, on resume, the checkpoint's value) with resolve_config,
// and a model reads `c.lr.value_or(its default)`.
struct Config {
  std::optional<int64_t> batch_size;  // the driver's default: 64
  std::optional<double> lr, b1, b2;
  std::optional<int64_t> latent_dim;
  std::optional<std::string> fit;
  std::optional<double> alpha;
  std::optional<bool> conditional;
  std::optional<int64_t> levels;
  Device device = Device::cpu();
  std::optional<uint64_t> seed;  // the driver's default: 0
  std::string data_dir;  // where a model that shows data (the classifier) finds it
};

// The accepted range of every option, as "--flag must ..." text.
inline constexpr int64_t kMaxLatentDim = 65536;
// "" when value is in range for the option called field ("lr", "b1", "b2",
// "latent_dim", "alpha", "levels", "batch_size"), else what the range is: "must be > 0".
std::string option_range_problem(const std::string& field, double value);
// "" when fit names a fitting method ("gd" or "counts"), else what it must be.
std::string fit_problem(const std::string& fit);
// The command-line flag of an option field: "latent_dim" -> "--latent-dim".
std::string option_flag(const std::string& field);

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
  ModelOptions options;  // what it takes, with its defaults
};

// Every registered model, in models.def order.
const std::vector<Registration>& registry();
// The registration named `name`; an Error listing the names otherwise.
const Registration& find_model(const std::string& name);

// c with every option checked (an Error naming the flag and its range, or the
// model for an option it does not take) and every option the model takes set
// (its default where c leaves it unset); batch_size and seed default to 64 and 0.
Config resolve_config(const Registration& r, Config c);

#define X(name, summary)                                \
  std::unique_ptr<Model> make_##name(const Config& c); \
  ModelOptions options_##name();
#include "models/models.def"
#undef X

}  // namespace loom::models
