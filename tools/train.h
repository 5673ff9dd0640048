// The training driver behind `loom train`, `loom sample` and `loom eval`:
// data, the loop with progress and metrics, sample grids, and training
// checkpoints that resume bit-exactly.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "models/data.h"
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
struct TrainOptions {
  std::string model;
  models::Config config;
  int64_t epochs = 0;          // one of epochs / steps; steps wins when both are set
  int64_t steps = 0;
  int64_t sample_every = 0;    // write samples_<step>.png every N steps (0: only at the end)
  int64_t checkpoint_every = 0;  // also checkpoint every N steps (0: only at the end)
  int64_t n_samples = 64;
  std::string out_dir = "out";
  std::string resume;          // a checkpoint written by an earlier run
  std::string data_dir = data::kFashionMnistDir;
  std::optional<int64_t> limit_train;  // use only the first N >= 1 training images (unset: all)
  int64_t eval_size = 2000;    // held-out images evaluated at the end (0: skip)
  bool progress = true;
  // Where the data comes from; defaults to load_mnist(split, data_dir).
  std::function<data::LabeledImages(data::Split)> load_data;
  // What builds the model from the resolved config; defaults to the registration's make. For a
  // variant the options cannot name yet (the VAE's VaeSettings, models/vae.h). The checkpoint does
  // not record it: resuming needs the same one.
  std::function<std::unique_ptr<models::Model>(const models::Config&)> make_model;
};

struct TrainResult {
  int64_t steps = 0;
  models::Losses last;       // the final step's losses
  models::Losses eval;       // held-out metrics at the end
  std::string checkpoint;    // path of the final checkpoint
  std::string samples;       // path of the final sample grid
};

TrainResult train(const TrainOptions& o);

// A model rebuilt from a training checkpoint (its config is in the metadata).
// Every metadata number and every tensor (name, dtype, shape, finite values)
// is checked first; an error names the file and the field or tensor.
std::unique_ptr<models::Model> load_model(const std::string& name, const std::string& checkpoint, Device device,
                                          const std::string& data_dir = data::kFashionMnistDir);

// Writes n samples of a trained model as a PNG grid.
void sample(const std::string& name, const std::string& checkpoint, int64_t n, const std::string& out, Device device,
            uint64_t seed, const std::string& data_dir = data::kFashionMnistDir);

// Held-out metrics of a trained model on the test split.
models::Losses evaluate(const std::string& name, const std::string& checkpoint, Device device,
                        const std::string& data_dir, int64_t eval_size);

}  // namespace loom::tools
