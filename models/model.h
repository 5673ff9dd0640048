// The interface every trainable model implements, and the registry the `loom`
// command line reads. Adding a model: one file (or folder) in its family's room
// under models/ defining make_<name>() and options_<name>(), plus one line in
// models/models.def.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "autograd/loom.h"
#include "models/data/data.h"
#include "models/options.h"

namespace loom::models {

// What a run is configured with: the driver's settings plus the model's own
// options (models/options.h). Before resolve_config, `options` holds what the
// command line gave; after it, every option the model takes, as canonical text,
// read by the model through real() / integer() / flag() / text().
struct Config {
  std::optional<int64_t> batch_size;  // the driver's default: 64
  std::optional<uint64_t> seed;       // the driver's default: 0
  Device device = Device::cpu();
  std::string data_dir;  // --data: where the model's data set is (IDX files or an image folder)
  OptionValues options;
  // The options the user set on this run's command line (resume and load fill
  // the others in): a model refuses one that would have no effect.
  std::set<std::string> given;

  // Sets option `name` as the command line would (numbers written exactly).
  Config& set(const std::string& name, const std::string& value);
  Config& set(const std::string& name, const char* value) { return set(name, std::string(value)); }
  Config& set(const std::string& name, double value);
  Config& set(const std::string& name, int64_t value);
  Config& set(const std::string& name, int value) { return set(name, static_cast<int64_t>(value)); }
  Config& set(const std::string& name, bool value);
  bool has(const std::string& name) const { return options.count(name) != 0; }
  // An option's value; an Error naming it when it is unset (the model does not
  // take it, or resolve_config has not run).
  double real(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  bool flag(const std::string& name) const;
  const std::string& text(const std::string& name) const;
};

// Adam (Kingma & Ba 2015) with the lr, b1 and b2 options of c (adam_options()).
inline optim::AdamOptions adam_from(const Config& c) {
  return optim::AdamOptions{.lr = c.real("lr"), .beta1 = c.real("b1"), .beta2 = c.real("b2")};
}

// ---- data ----------------------------------------------------------------------------
using data::Dataset;
using data::DataSpec;

// One batch, on the model's device. Images are in the DataSpec's range
// (binarized when it asks). Fields a data set does not provide are undefined.
struct Batch {
  Tensor images;      // float32 [B, C, H, W]; for Toy2d, float32 [B, 2]
  Tensor labels;      // int64 [B]: the class (0 where the data set has none)
  Tensor images_b;    // float32 [B, C, H, W]: a second, unpaired domain (translation models)
  Tensor attributes;  // float32 [B, A] in {0, 1}: binary attributes (multi-domain models)
  Tensor tokens;      // int64 [B, T]: a caption as token ids (text-conditional models)
  // int64 [B]: each image's position in its split as data::load_dataset orders it
  // (for an image folder, data::image_folder_files): a model keeping side data per
  // image (a user's captions) looks it up by this.
  Tensor indices;
};

// Where training stands when train_step runs, and more data if the model wants
// it (Goodfellow et al. 2014, Algorithm 1: k discriminator steps per generator
// step, each on its own minibatch). Every batch drawn is counted, so a resumed
// run continues the data order exactly.
struct Step {
  int64_t index = 0;  // steps completed before this one
  int64_t total = 1;  // steps in the whole run
  std::function<Batch()> next_batch;  // another batch from the training data
  double progress() const { return static_cast<double>(index) / static_cast<double>(total); }  // in [0, 1)
};

// ---- sampling and evaluation ---------------------------------------------------------
// What a sample is conditioned on: `loom sample M --label sneaker | --prompt TEXT | --input PATH [--direction b2a]`.
// `loom sample M --code K` and `--interpolate` choose InfoGAN's categorical code and a walk through the latent space.
struct Condition {
  Tensor labels;       // int64 [n]: the class of each sample
  Tensor codes;        // int64 [n]: a categorical latent code of each sample (InfoGAN's c₁), in [0, Conditions::codes)
  std::string prompt;  // a text prompt
  Tensor images;       // [n, C, H, W] in the data range: images to translate
  bool interpolate = false;  // rows that walk the latent space between random end points
  // Two-domain translation models: `images` are of domain B, to be translated into A
  // (`--direction b2a`); false: of A, into B (a2b).
  bool b_to_a = false;
  // Multi-domain translation models: int64 [n], the domain each of `images` is
  // translated into (`--target DOMAIN`), an index into Conditions::domains.
  Tensor targets;
  // Models completing images from pieces of them (Conditions::pieces): how many
  // pieces to cut from each of `images` (`--patches K`); 0: the model's own number.
  int64_t pieces = 0;
  bool empty() const {
    return !labels.defined() && !codes.defined() && prompt.empty() && !images.defined() && !interpolate && !b_to_a &&
           !targets.defined() && pieces == 0;
  }
};
// The kinds of condition a model's sample() takes.
struct Conditions {
  bool labels = false, prompt = false, images = false, interpolate = false;
  int64_t codes = 0;  // the values of its categorical latent code (0: it has none)
  bool directions = false;  // it translates both ways between two domains (Condition::b_to_a)
  bool sampler = false;     // it samples iteratively and takes SamplerSettings (diffusion models)
  // The names of the domains it translates images into (Condition::targets), in
  // the order of their indices; empty for a model without target domains.
  std::vector<std::string> domains = {};
  // Models completing each of Condition::images from square pieces cut from it
  // (Puzzle-GAN): the number of pieces they cut by default (Condition::pieces
  // chooses another) and the pieces' side in pixels; 0 for other models.
  int64_t pieces = 0, piece_side = 0;
};

// int64 [n]: `run` 0s, `run` 1s, …, `run` (classes − 1)s, then 0s again: the labels of a
// grid with one row of `run` samples per class.
Tensor cycling_labels(int64_t n, int64_t run, int64_t classes = 10);

// How an iterative sampler runs: `loom sample|eval M --sampler ddim --sample-steps 50
// --eta 0 --guidance 3` (diffusion models). Unset fields keep the model's own options.
struct SamplerSettings {
  std::string sampler;                // "ancestral" or "ddim"; "": the model's
  std::optional<int64_t> steps;       // DDIM's number of steps S
  std::optional<double> eta;          // DDIM's η (0: deterministic)
  std::optional<double> guidance;     // classifier-free guidance weight w
  bool empty() const { return sampler.empty() && !steps && !eta && !guidance; }
};

// A picture of samples: images [n, C, H, W] in the data range, `columns` to a
// row (0: as square a grid as n allows).
struct SampleGrid {
  Tensor images;
  int64_t columns = 0;
};
// How many images a model's sample grid holds and how many go to a row (0: a
// square grid), known before any is sampled.
struct GridLayout {
  int64_t count = 0;
  int64_t columns = 0;
};

// Points of a 2-D latent code, for the scatter `loom train` draws beside the
// prior (models whose code is 2-D: the AAE).
struct LatentCodes {
  Tensor codes;  // float32 [B, 2]: the encoder's codes of the images given
  Tensor prior;  // float32 [B, 2]: as many draws from the prior imposed on them
};

enum class ModelKind {
  Classifier,      // reports test loss and accuracy
  Likelihood,      // exact log p(x): test NLL in nats per image and bits per dimension
  LatentVariable,  // a bound on log p(x) (ELBO, IWAE_k) and an importance-sampled estimate
  Sampler,         // no density: judged by the Fréchet distance of its samples
};
const char* kind_name(ModelKind k);  // "classifier", "exact likelihood", ...

struct EvalOptions {
  int64_t importance_samples = 0;  // LatentVariable models: K for log p(x) ≈ log (1/K) Σ p(x,z_k)/q(z_k|x); 0: the model's default
  int64_t bound_timesteps = 0;     // diffusion models: time steps t drawn per image for the bound; 0: the model's default
};
// The most importance samples `loom eval` and `loom score` take: 200 times the
// IWAE paper's 5000, already hours per test set; more would only look like a hang.
inline constexpr int64_t kMaxImportanceSamples = 1'000'000;

using Losses = std::map<std::string, double>;

// A training step's losses from device scalars (0-d tensors): their values (item()). While
// the step is being captured as a CUDA graph (loom train --cuda-graph; loom::CudaGraph,
// autograd/graph.h) no value exists yet: it returns nothing and keeps the tensors for the
// driver (take_captured_losses), which reads them after each replay of the graph.
Losses step_losses(const std::vector<std::pair<std::string, Tensor>>& scalars);
// The tensors step_losses kept during the capture under way on this thread, handed over once.
std::vector<std::pair<std::string, Tensor>> take_captured_losses();

// Progress of a long sample() (the autoregressive models: one network pass per
// pixel): steps done of total.
using SampleProgress = std::function<void(int64_t done, int64_t total)>;

class Model {
 public:
  virtual ~Model() = default;
  virtual ModelKind kind() const = 0;
  virtual DataSpec data_spec() const { return {}; }
  // One training step (one or more optimizer updates) on batch.
  virtual Losses train_step(const Batch& batch, Step& step) = 0;
  // What a training step needs of each of its batches that only the host can compute,
  // written into the batch before the step runs (text2image's captions, composed from
  // each image, as Batch::tokens): the driver calls it on every training batch as it is
  // drawn, so that a captured step finds it among the batch tensors it copies in. Its
  // draws from the default generator come before the step's. train_step prepares a batch
  // itself when it is given one unprepared. Nothing by default.
  virtual void prepare_batch(Batch& batch) {}
  // Whether train_step can be captured once as a CUDA graph and replayed (`loom train
  // --cuda-graph`): it reports its losses through step_losses, draws batches_per_step() − 1
  // batches beyond the one given, reads no device value on the host, and keeps no host state that changes
  // from step to step but its optimizers', its generators' and what before_replay redoes.
  virtual bool cuda_graph_capable() const { return false; }
  // How many batches one train_step uses: the one it is given, and batches_per_step() − 1 it
  // draws with Step::next_batch (the GAN's k discriminator batches). A capturable step must draw
  // exactly that many; the CUDA-graph driver draws them before each replay, into tensors of the
  // graph's own, in the order the eager step would have drawn them.
  virtual int64_t batches_per_step() const { return 1; }
  // The host side of train_step that must run again before each replay of its graph (a
  // learning rate set from the step index); nothing by default.
  virtual void before_replay(const Step& step) {}
  // Which graph the step at `step` replays: steps of one phase share one capture, and when
  // the phase changes the driver runs a step eagerly (it creates the optimizers' state of
  // what the phase trains) and captures the next (ProGAN: each level, fading or stable, has
  // its own layers and shapes). One phase for a whole run by default.
  virtual int64_t graph_phase(const Step& step) const { return 0; }
  // n samples [n, C, H, W] in the data range (Toy2d: [n, 2]), given c; c is
  // empty or of a kind conditions() names (the driver checks).
  virtual Tensor sample(int64_t n, const Condition& c, Generator& g) = 0;
  virtual Conditions conditions() const { return {}; }
  // The picture `loom sample` and the trainer draw: by default n samples in a
  // square grid; a model may lay out its own (one row per class, a code along
  // each axis, interpolation walks).
  virtual SampleGrid sample_grid(int64_t n, const Condition& c, Generator& g) { return {sample(n, c, g), 0}; }
  // The layout sample_grid(n, c, ·) draws, without sampling: what `loom sample`
  // checks against the largest picture it writes before it samples. Only which
  // conditions c gives matters (its tensors may be stand-ins). A model
  // overriding sample_grid overrides this and lays its grid out by it.
  virtual GridLayout grid_layout(int64_t n, const Condition& c) const { return {n, 0}; }
  // Iterative samplers (conditions().sampler): how the following samples are drawn
  // (an Error naming the setting that is out of range or does not apply). The
  // default throws: the model has no such sampler.
  virtual void set_sampler(const SamplerSettings& s);
  // The reverse process as a picture: n rows, each one sample from pure noise
  // (left) to the image (right) through `columns` evenly spaced steps. The default
  // throws: the model has no iterative sampler.
  virtual SampleGrid trajectory(int64_t n, int64_t columns, const Condition& c, Generator& g);
  // The 2-D latent codes of images and prior draws (LatentCodes); undefined
  // tensors (the default) where the model has no 2-D code.
  virtual LatentCodes latent_codes(const Tensor& images, Generator& g);
  // A prompt naming Fashion-MNIST class k (0-9) in words the model knows ("a
  // sneaker"): what `loom eval` conditions on for prompt_accuracy. Text-conditional
  // models (conditions().prompt) define it, "" when their texts do not name
  // Fashion-MNIST classes (no prompt_accuracy then); the default throws.
  virtual std::string class_prompt(int64_t k) const;
  // Metrics over held-out data, averaged over the batch (called in eval mode,
  // under NoGrad). Likelihood and LatentVariable models report "nll" (nats per
  // image) and "bits_per_dim" (nll / (D ln 2)).
  virtual Losses evaluate(const Batch& batch, const EvalOptions& o) = 0;
  // log p(x) of each image (Likelihood) or its estimate (LatentVariable, with
  // o.importance_samples), nats, float64 [B]; images as in a Batch. The default
  // throws: the model has no density.
  virtual Tensor score(const Tensor& images, const EvalOptions& o);
  // The number of free parameters (default: every element of every module parameter).
  virtual int64_t parameter_count();
  // Everything a checkpoint holds, by name.
  virtual std::vector<std::pair<std::string, nn::Module*>> modules() = 0;
  virtual std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() = 0;
  // Sets train/eval mode on every module.
  void train(bool on);
  // What sample() reports its progress to, if it reports any (empty: nothing).
  void set_sample_progress(SampleProgress p) { sample_progress_ = std::move(p); }

 protected:
  // `given` as prepare_batch leaves it, for a train_step whose batch carries prepared tokens:
  // given itself when Batch::tokens is there (the driver prepared it), else a prepared copy
  // (a batch handed to train_step directly, as the tests do).
  Batch prepared(const Batch& given) {
    Batch b = given;
    if (!b.tokens.defined()) prepare_batch(b);
    return b;
  }

  SampleProgress sample_progress_;
};

struct Registration {
  const char* name;
  const char* summary;
  std::unique_ptr<Model> (*make)(const Config&);
  std::vector<OptionSpec> options;  // what it takes, with its defaults
};

// Every registered model, in models.def order.
const std::vector<Registration>& registry();
// The registration named `name`; an Error listing the names otherwise.
const Registration& find_model(const std::string& name);
// The spec of option `name` of r, or nullptr when r does not take it.
const OptionSpec* find_option(const Registration& r, const std::string& name);

// c with every option checked (an Error naming the flag and its range, or the
// model for an option it does not take) and every option the model takes set
// (its default where c leaves it unset); batch_size and seed default to 64 and 0.
Config resolve_config(const Registration& r, Config c);

#define X(name, summary)                                \
  std::unique_ptr<Model> make_##name(const Config& c); \
  std::vector<OptionSpec> options_##name();
#include "models/models.def"
#undef X

}  // namespace loom::models
