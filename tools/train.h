// The training driver behind `loom train`, `loom sample` and `loom eval`:
// data, the loop with progress and metrics, sample grids, and training
// checkpoints that resume bit-exactly.
#pragma once

#include <cstdio>
#include <functional>
#include <optional>
#include <string>

#include "models/data/data.h"
#include "models/model.h"

namespace loom::tools {

// Resuming (`resume` set) continues the stored run: every option left unset here
// (config's optionals, limit_train) takes the checkpoint's value, and one set to
// a different value is an Error naming the flag and both values. `steps` (or
// `epochs`) is the run's total and must exceed the checkpoint's step.
//
// A non-finite loss, or non-finite parameters or optimizer state when a
// checkpoint is due, stops training with an Error ("diverged") that names the
// last good checkpoint: the latest one this run wrote, else the --resume file;
// nothing is written then, and without either the message says so.
//
// SIGINT (Ctrl-C) or SIGTERM stops training after the step in progress: the
// checkpoint is written and train() throws an Error "train: interrupted at step
// N of M; checkpoint FILE (continue with --resume FILE)". A second signal ends
// the process at once.
struct TrainOptions {
  std::string model;
  // A model of your own, not in the registry: trained under its registration's
  // name with everything above (options, checkpoints, resume); `model` is ignored.
  const models::Registration* registration = nullptr;
  models::Config config;
  int64_t epochs = 0;          // one of epochs / steps; steps wins when both are set
  int64_t steps = 0;
  int64_t sample_every = 0;    // write samples_<step>.png every N steps (0: only at the end), all from one fixed noise
  int64_t checkpoint_every = 0;  // also checkpoint every N steps (0: only at the end)
  int64_t n_samples = 64;      // the final sample grid's size (0: no grid)
  std::string out_dir = "out";
  std::string resume;          // a checkpoint written by an earlier run
  std::string data_dir = data::kFashionMnistDir;
  std::optional<int64_t> limit_train;  // use only the first N >= 1 training images (unset: all)
  int64_t max_image_pixels = data::kDefaultMaxImagePixels;  // image folders: larger images are unreadable
  int64_t eval_size = 2000;    // held-out images evaluated at the end (0: skip)
  bool progress = true;
  std::FILE* progress_out = stdout;  // where the progress bar (or its plain lines) goes
  // Called after each step with its wall-clock seconds: drawing the batch and
  // train_step (forward, backward, optimizer). The step's losses are read back
  // inside it, so on CUDA its kernels have finished. `loom bench train` times steps by it.
  std::function<void(int64_t step, double seconds)> on_step;
  // Where the data comes from (images in [0, 1]); defaults to the model's data set,
  // data::load_dataset(model->data_spec(), split, data_dir).
  std::function<data::LabeledImages(data::Split)> load_data;
  // How the held-out metrics at the end are computed (importance samples K).
  models::EvalOptions eval_options{};
  // `--cuda-graph`: the run's first step runs eagerly; the second is captured as a CUDA
  // graph of train_step on batch tensors of the graph's own (loom::CudaGraph), and it and
  // every later step copy their batch in and replay it: one launch a step. The results
  // are the eager run's, bit for bit. Needs a CUDA device and a model whose train_step
  // can be captured (Model::cuda_graph_capable; an Error naming the model otherwise).
  bool cuda_graph = false;
};

struct TrainResult {
  int64_t steps = 0;
  models::Losses last;       // the final step's losses
  models::Losses eval;       // held-out metrics at the end
  std::string checkpoint;    // path of the final checkpoint
  std::string samples;       // path of the final sample grid (empty when n_samples is 0)
};

TrainResult train(const TrainOptions& o);

// A model rebuilt from a training checkpoint (its options are in the metadata).
// Every metadata number and every tensor (name, dtype, shape, finite values)
// is checked first; an error names the file and the field or tensor.
std::unique_ptr<models::Model> load_model(const std::string& name, const std::string& checkpoint, Device device,
                                          const std::string& data_dir = data::kFashionMnistDir);
// The same for a model of your own (TrainOptions::registration).
std::unique_ptr<models::Model> load_model(const models::Registration& reg, const std::string& checkpoint, Device device,
                                          const std::string& data_dir = data::kFashionMnistDir);

// What `loom sample` conditions on; empty fields are not given.
struct SampleCondition {
  std::string label;   // a Fashion-MNIST class: name ("sneaker", "ankle boot", "t-shirt") or index 0-9
  std::string prompt;  // a text prompt
  std::string input;   // an image file or a folder of images to translate
  std::string code;    // a value of the model's categorical latent code (InfoGAN), 0-based
  bool interpolate = false;  // a grid of latent-space walks instead of independent samples
  int64_t max_image_pixels = data::kDefaultMaxImagePixels;  // `input`: a larger image is an Error
  std::string direction = {};  // two-domain translation models: "a2b" (A's images into B, the default) or "b2a"
  // Multi-domain translation models (Conditions::domains): the domain to translate
  // into, by name (any case, '_' for ' ') or index; empty: each domain in turn.
  std::string target = {};
  models::SamplerSettings sampler = {};  // iterative samplers (diffusion): how to sample
  // Iterative samplers: also write this PNG of the reverse process, min(n, kTrajectoryRows)
  // rows of kTrajectoryColumns frames from pure noise to the sample ("": none).
  std::string trajectory = {};
  // Models completing images from pieces of them (Puzzle-GAN): the pieces cut from
  // each input (`--patches K`); 0: the model's own number.
  int64_t patches = 0;
};
inline constexpr int64_t kTrajectoryRows = 8, kTrajectoryColumns = 10;
// The class index `label` names (parse rules of SampleCondition::label); an
// Error listing the classes otherwise.
int64_t parse_label(const std::string& label);

// Writes samples of a trained model as a PNG grid: n of them, or one per input
// image when sc.input is given. A translation model (Conditions::directions)
// also writes each input's translation to <out without .png>/<input name>.png
// (<input file name>.png for inputs whose names differ only in their
// extension). A condition the model does not take is an Error saying so; so
// is, before anything is sampled, an n whose grid (the model's grid_layout) is
// larger than kMaxGridSide on a side (models/image_grid.h), or for points in
// the plane more than kMaxScatterPoints.
inline constexpr int64_t kMaxScatterPoints = 1'000'000;
void sample(const std::string& name, const std::string& checkpoint, int64_t n, const std::string& out, Device device,
            uint64_t seed, const std::string& data_dir = data::kFashionMnistDir, const SampleCondition& sc = {});

// `loom eval`: one protocol for every model. Held-out metrics on the first
// `images` images of its data set's test split (Likelihood: nll in nats per
// image and bits_per_dim; LatentVariable: its bounds and, with
// options.importance_samples, the importance-sampled nll; Classifier: loss and
// accuracy). For samplers (and any image model when `fd` is set), measured on
// `images` samples in the features of the classifier checkpoint `classifier`
// (trained by `loom train classifier`): "fd", the Fréchet distance to the test
// images (models/metrics.h); "precision" and "recall" (Kynkäänniemi et al.
// 2019); for label-conditional models "label_accuracy", the classifier's
// accuracy on samples of each class; for text-conditional models
// "prompt_accuracy", the same on samples for a prompt naming each class
// (Model::class_prompt); for a categorical latent code (InfoGAN)
// "code_accuracy", the same after the best matching of codes to classes. For
// two-domain translation models (Dataset::TwoDomains; --fd refused): "cycle_l1_A"
// and "cycle_l1_B" (Model::evaluate), and on two Fashion-MNIST classes
// "a2b_accuracy" and "b2a_accuracy", the classifier's verdict that a translated
// test image is of the target class, beside "a2b_accuracy_untranslated" and
// "b2a_accuracy_untranslated" for the images as they are. For multi-domain
// translation models (Conditions::domains; --fd refused): "cycle_l1" and
// "d_cls_accuracy" (Model::evaluate), and on Fashion-MNIST classes
// (DataSpec::domains) "target_accuracy", the classifier's verdict that a test image
// translated into another domain is of that domain's class, over every other
// domain, beside "target_accuracy_untranslated" for the images as they are. For
// models completing images from pieces (Conditions::pieces; --fd refused): their
// Model::evaluate metrics, and on Fashion-MNIST "class_agreement", the fraction of
// test images whose completion the classifier assigns to the class it assigns to
// the image, beside "class_agreement_mean_image" for the pieces pasted where they
// belong on the mean test image. For models of points in the plane (DataSpec Toy2d), `images` samples drawn in one
// call from Generator(0) against as many test points, as one set: "fd_2d", the
// Fréchet distance in the plane, and on the Gaussian mixtures "modes_covered" (a
// whole number) and "high_quality" (models::mode_coverage); train() reports the
// same on its eval_size points.
struct EvalRequest {
  std::string checkpoint;
  Device device = Device::cpu();
  std::string data_dir = data::kFashionMnistDir;
  int64_t images = 10000;  // >= 1 (an Error otherwise)
  models::EvalOptions options{};
  bool fd = false;
  std::string classifier = "out/classifier/checkpoint.safetensors";
  const models::Registration* registration = nullptr;  // a model of your own (TrainOptions::registration)
  std::function<data::LabeledImages(data::Split)> load_data{};  // default: the model's data set, as train
  int64_t max_image_pixels = data::kDefaultMaxImagePixels;     // image folders: larger images are unreadable
  models::SamplerSettings sampler = {};  // iterative samplers (diffusion): how the sample metrics sample
};
struct Evaluation {
  models::ModelKind kind{};
  int64_t parameters = 0;
  models::Losses metrics;  // averaged over the images
};
Evaluation evaluate(const std::string& name, const EvalRequest& r);

// `loom score`: log p(x) (or its estimate, for latent-variable models) of each
// image of an image file or folder, resized to the model's data, binary models
// seeing it thresholded at 1/2.
struct Score {
  std::string path;
  double log_px = 0;        // nats
  double bits_per_dim = 0;  // −log p(x) / (D ln 2)
};
std::vector<Score> score(const std::string& name, const std::string& checkpoint, Device device,
                         const std::string& input, const models::EvalOptions& eo = {},
                         int64_t max_image_pixels = data::kDefaultMaxImagePixels);

}  // namespace loom::tools
