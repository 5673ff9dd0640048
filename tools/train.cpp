#include "tools/train.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>

#include "models/classifier/classifier.h"
#include "models/gan/puzzlegan.h"
#include "models/image_grid.h"
#include "models/metrics.h"
#include "tools/cli.h"
#include "tools/plot.h"
#include "tools/progress.h"

namespace loom::tools {
namespace fs = std::filesystem;

namespace {

// The generator the trainer owns (binarization, sampling); the model's own noise
// comes from the default generator. Both are saved in the checkpoint.
struct RngState {
  Generator trainer;
};

std::string exact(int64_t v) { return std::to_string(v); }
std::string exact(uint64_t v) { return std::to_string(v); }

// What a training checkpoint's metadata says about its run, every number checked.
struct StoredRun {
  int64_t step = 0, total = 0, limit_train = 0;  // limit_train 0: all images
  int64_t batches = 0;                            // training batches drawn (≥ step: a step may draw several)
  models::Config config;                          // batch_size, seed and every option the model takes
};

// The driver's keys; a model option may not take one of these names.
const std::vector<std::string> kRunKeys{"model", "step", "total_steps", "batches", "batch_size", "seed", "limit_train"};

SafetensorsMetadata config_metadata(const std::string& model, const models::Config& c, int64_t limit_train,
                                    int64_t step, int64_t total, int64_t batches) {
  SafetensorsMetadata m{{"model", model},
                        {"step", exact(step)},
                        {"total_steps", exact(total)},
                        {"batches", exact(batches)},
                        {"batch_size", exact(*c.batch_size)},
                        {"seed", exact(*c.seed)},
                        {"limit_train", exact(limit_train)}};
  // Every option the model takes, whole (resolve_config has set each).
  for (auto& [name, value] : c.options) {
    LOOM_CHECK(std::find(kRunKeys.begin(), kRunKeys.end(), name) == kRunKeys.end(), "model '", model,
               "' declares an option named '", name, "', which the checkpoint's metadata uses for itself");
    m[name] = value;
  }
  return m;
}

// Reads and checks the metadata fields of the checkpoint at path: each error
// names the file and the field, in one line.
class MetadataReader {
 public:
  MetadataReader(const Safetensors& s, const std::string& path) : s_(s), path_(path) {}

  const std::string& text(const std::string& key) const {
    auto it = s_.metadata.find(key);
    LOOM_CHECK(it != s_.metadata.end(), "checkpoint ", path_, ": metadata has no '", key,
               "' (not a loom training checkpoint?)");
    return it->second;
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const {
    const std::string& v = text(key);
    int64_t out = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    LOOM_CHECK(!v.empty() && ec != std::errc::invalid_argument && end == v.data() + v.size(), "checkpoint ", path_,
               ": metadata '", key, "' = '", v, "' is not an integer");
    LOOM_CHECK(ec == std::errc() && out >= lo && out <= hi, "checkpoint ", path_, ": metadata '", key, "' = '", v,
               "' is out of range [", lo, ", ", hi, "]");
    return out;
  }
  uint64_t unsigned_integer(const std::string& key) const {
    const std::string& v = text(key);
    uint64_t out = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    LOOM_CHECK(!v.empty() && ec == std::errc() && end == v.data() + v.size(), "checkpoint ", path_, ": metadata '",
               key, "' = '", v, "' is not an integer in [0, 2^64)");
    return out;
  }
  // A model option's value, checked as the command line checks it. A checkpoint
  // written before the model gained the option runs with its default (a new
  // option's default keeps the old behaviour).
  std::string option(const models::OptionSpec& spec) const {
    auto it = s_.metadata.find(spec.name);
    if (it == s_.metadata.end()) return spec.default_value;
    try {
      return spec.canonical(it->second);
    } catch (const Error& e) {
      throw Error(str("checkpoint ", path_, ": metadata '", spec.name, "' = '", it->second, "' is out of range (",
                      e.what(), ")"));
    }
  }
  bool has(const std::string& key) const { return s_.metadata.count(key) != 0; }

 private:
  const Safetensors& s_;
  const std::string& path_;
};

// The model the checkpoint at path belongs to must be `model`.
void check_model(const Safetensors& ck, const std::string& path, const std::string& model, const std::string& what) {
  auto it = ck.metadata.find("model");
  LOOM_CHECK(it != ck.metadata.end() && it->second == model, what, path, " is a checkpoint of '",
             it == ck.metadata.end() ? "?" : it->second, "', not of '", model, "'");
}

StoredRun read_run(const Safetensors& ck, const std::string& path, const models::Registration& reg) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  MetadataReader m(ck, path);
  StoredRun r;
  r.total = m.integer("total_steps", 1, kMax);
  r.step = m.integer("step", 0, r.total);
  r.limit_train = m.integer("limit_train", 0, kMax);
  r.config.batch_size = m.integer("batch_size", 1, kMax);
  r.config.seed = m.unsigned_integer("seed");
  // Checkpoints from before models could draw extra batches drew one per step.
  r.batches = m.has("batches") ? m.integer("batches", r.step, kMax) : r.step;
  // Only the options the model takes; others (from older checkpoints) mean nothing to it.
  for (const models::OptionSpec& spec : reg.options) r.config.options[spec.name] = m.option(spec);
  return r;
}

// Every tensor a training checkpoint of m holds, with its dtype and shape.
std::vector<TensorSpec> expected_tensors(models::Model& m) {
  std::vector<TensorSpec> out;
  for (auto& [mname, mod] : m.modules())
    for (auto& [n, t] : mod->state_dict()) out.push_back({str("model.", mname, ".", n), t.shape(), t.dtype()});
  for (auto& [oname, opt] : m.optimizers()) {
    const std::string p = str("optim.", oname, ".");
    out.push_back({p + "step", {}, DType::Int64});
    for (size_t g = 0; g < opt->group_count(); ++g) out.push_back({str(p, "lr.", g), {}, DType::Float64, false});
    // Per-parameter state exists only for parameters that have been updated.
    const std::vector<Tensor>& params = opt->params();
    for (size_t i = 0; i < params.size(); ++i) {
      out.push_back({str(p, "step.", i), {}, DType::Int64, false});
      for (const std::string& role : opt->state_roles())
        out.push_back({str(p, role, ".", i), params[i].shape(), params[i].dtype(), false});
    }
  }
  out.push_back({"rng.default", {2}, DType::Int64});
  out.push_back({"rng.trainer", {2}, DType::Int64});
  return out;
}

bool all_finite(const Tensor& t) {
  if (t.dtype() != DType::Float32 && t.dtype() != DType::Float64) return true;
  std::vector<double> v = t.detach().to(Device::cpu()).to(DType::Float64).to_vector<double>();
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

// The first model or optimizer tensor of m (by checkpoint name) that holds a
// non-finite value, or "" when all are finite.
std::string first_nonfinite(models::Model& m) {
  for (auto& [mname, mod] : m.modules())
    for (auto& [n, t] : mod->state_dict())
      if (!all_finite(t)) return str("model.", mname, ".", n);
  for (auto& [oname, opt] : m.optimizers())
    for (auto& [n, t] : opt->state_dict())
      if (!all_finite(t)) return str("optim.", oname, ".", n);
  return "";
}

NamedTensors checkpoint_tensors(models::Model& m, const RngState& rng) {
  NamedTensors out;
  for (auto& [mname, mod] : m.modules())
    for (auto& [n, t] : mod->state_dict()) out.emplace_back(str("model.", mname, ".", n), t);
  for (auto& [oname, opt] : m.optimizers())
    for (auto& [n, t] : opt->state_dict()) out.emplace_back(str("optim.", oname, ".", n), t);
  const Generator& d = default_generator();
  auto u64 = [](uint64_t v) { return static_cast<int64_t>(v); };
  out.emplace_back("rng.default", from_vector(std::vector<int64_t>{u64(d.seed()), u64(d.offset())}, {2}));
  out.emplace_back("rng.trainer",
                   from_vector(std::vector<int64_t>{u64(rng.trainer.seed()), u64(rng.trainer.offset())}, {2}));
  return out;
}

// The entries of s under "<prefix>", with the prefix removed.
std::map<std::string, Tensor> with_prefix(const Safetensors& s, const std::string& prefix) {
  std::map<std::string, Tensor> out;
  for (auto& [n, t] : s.tensors)
    if (n.rfind(prefix, 0) == 0) out.emplace(n.substr(prefix.size()), t);
  return out;
}

// Loads the checkpoint ck (read from path) into m and rng: first the checked
// loader (names, dtypes, shapes), then finite values, then each module and
// optimizer; every error is one line naming the file.
void restore(models::Model& m, RngState& rng, const Safetensors& file, const std::string& path) {
  const Safetensors s = check_safetensors(file, path, expected_tensors(m));
  for (auto& [n, t] : s.tensors)
    LOOM_CHECK(all_finite(t), "checkpoint ", path, ": tensor '", n, "' holds non-finite values");
  for (auto& [mname, mod] : m.modules()) {
    try {
      mod->load_state_dict(with_prefix(s, str("model.", mname, ".")));
    } catch (const Error& e) {
      throw Error(str("checkpoint ", path, ": module '", mname, "': ", e.what()));
    }
  }
  for (auto& [oname, opt] : m.optimizers()) {
    try {
      opt->load_state_dict(with_prefix(s, str("optim.", oname, ".")));
    } catch (const Error& e) {
      throw Error(str("checkpoint ", path, ": optimizer '", oname, "': ", e.what()));
    }
  }
  auto gen = [&](const std::string& name) {
    std::vector<int64_t> v = s.at(name).to_vector<int64_t>();
    return std::make_pair(static_cast<uint64_t>(v[0]), static_cast<uint64_t>(v[1]));
  };
  auto [ds, doff] = gen("rng.default");
  default_generator().set_state(ds, doff);
  auto [ts, toff] = gen("rng.trainer");
  rng.trainer.set_state(ts, toff);
}

// The positions i..j−1 of a split's images, int64 [j − i] (models::Batch::indices).
Tensor positions(int64_t i, int64_t j) {
  return arange(static_cast<double>(i), static_cast<double>(j), 1, TensorOptions{DType::Int64});
}

// A batch of the loader as the model sees it (data::prepare_images), on its device.
models::Batch prepare(const data::Batch& b, const models::DataSpec& spec, Generator& g, Device device) {
  models::Batch out;
  out.images = data::prepare_images(b.inputs, spec, g).to(device);
  // Binary attributes (data::Dataset::Attributes) come as float labels.
  (b.labels.defined() && b.labels.dtype() == DType::Float32 ? out.attributes : out.labels) = b.labels.to(device);
  out.indices = b.indices.to(device);
  return out;
}

// What a model of points in the plane (DataSpec::Toy2d) is judged by, on points
// [n, 2] of its test split against n samples drawn in one call from a fixed
// stream (Generator(0): every evaluation of a checkpoint compares alike), each
// metric of the whole sample: "fd_2d", the Fréchet distance in the plane, and on
// the Gaussian mixtures "modes_covered" (a whole number) and "high_quality"
// (models::mode_coverage). A metric averaged over chunks of the sample would
// count modes per chunk and report fractions of modes.
models::Losses plane_metrics(models::Model& m, const std::string& toy, const Tensor& points) {
  Generator g(0);
  const Tensor fake = m.sample(points.size(0), {}, g);
  models::Losses l{{"fd_2d", models::frechet_distance(fake, points)}};
  const data::Toy2d kind = data::parse_toy_2d(toy);
  if (!data::toy_2d_modes(kind).centres.empty()) {
    const models::ModeCoverage c = models::mode_coverage(fake, kind);
    l["modes_covered"] = c.modes_covered;
    l["high_quality"] = c.high_quality;
  }
  return l;
}

// The model's held-out metrics (Model::evaluate) on the first n test images, in
// chunks weighted by their size; for points in the plane, plane_metrics besides.
models::Losses run_eval(models::Model& m, const data::LabeledImages& test, int64_t n, Device device, Generator& g,
                        const models::EvalOptions& eo = {}) {
  n = std::min(n, test.images.size(0));
  // A second domain: as many of its images beside them (n is the smaller count).
  if (test.images_b.defined()) n = std::min(n, test.images_b.size(0));
  if (n <= 0) return {};
  m.train(false);
  NoGrad ng;
  models::Losses totals;
  const models::DataSpec spec = m.data_spec();
  const int64_t chunk = 500;
  for (int64_t i = 0; i < n; i += chunk) {
    const int64_t j = std::min(n, i + chunk);
    models::Batch b = prepare({slice(test.images, 0, i, j), slice(test.labels, 0, i, j), positions(i, j)}, spec, g, device);
    if (test.images_b.defined()) b.images_b = data::prepare_images(slice(test.images_b, 0, i, j), spec, g).to(device);
    models::Losses l = m.evaluate(b, eo);
    for (auto& [k, v] : l) totals[k] += v * static_cast<double>(j - i) / static_cast<double>(n);
  }
  if (spec.dataset == data::Dataset::Toy2d)
    for (auto& [k, v] : plane_metrics(m, spec.toy, slice(test.images, 0, 0, n).to(device))) totals[k] = v;
  m.train(true);
  return totals;
}

// Points [N, 2] as a scatter series.
plot::Series scatter_series(const std::string& label, const Tensor& xy) {
  const std::vector<float> v = xy.to(Device::cpu()).to(DType::Float32).to_vector<float>();
  plot::Series out{label, {}, {}, false, true};
  for (size_t i = 0; i + 1 < v.size(); i += 2) out.x.push_back(v[i]), out.y.push_back(v[i + 1]);
  return out;
}

// How write_samples lays out `count` images `columns` to a row (0: square), twice their size.
GridOptions sample_grid_options(int64_t count, int64_t columns) {
  GridOptions go;
  go.nrow = columns > 0 ? columns : static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(count))));
  go.upscale = 2;
  return go;
}

// The progress of a sampler's steps (Model::set_sample_progress) for the life of this object, a bar
// per batch it draws: made at a batch's first step, which it counts as done before it started (else
// the rate shown would be that of one step in no time). The model's callback is removed at the end.
class SampleBar {
 public:
  SampleBar(models::Model& m, ProgressBar::Style style, std::FILE* out) : m_(m) {
    m_.set_sample_progress([this, style, out](int64_t done, int64_t total) {
      if (done == 1 || !bar_) {
        if (bar_) bar_->finish();
        bar_.emplace(ProgressBar::Options{.label = "sampling", .total = total, .initial = done, .out = out,
                                          .style = style});
        return;
      }
      bar_->update(done);
    });
  }
  ~SampleBar() {
    m_.set_sample_progress({});
    if (bar_) bar_->finish();
  }
  SampleBar(const SampleBar&) = delete;
  SampleBar& operator=(const SampleBar&) = delete;

 private:
  models::Model& m_;
  std::optional<ProgressBar> bar_;
};

// Samples as a picture: the model's grid (Model::sample_grid) of n images, or
// for points in the plane a scatter of max(n, 1000) samples over (up to 2000
// points of) the data.
// With trajectory_columns > 0: the model's reverse process instead (Model::trajectory),
// n rows of that many frames.
void write_samples(models::Model& m, int64_t n, const std::string& path, Generator& g,
                   const models::Condition& c = {}, const Tensor& data_points = {}, bool bar = true,
                   int64_t trajectory_columns = 0) {
  const models::DataSpec spec = m.data_spec();  // samples come in the range of the data the model sees
  const bool points = spec.dataset == data::Dataset::Toy2d;
  m.train(false);
  models::SampleGrid s;
  {
    // A model that samples step by step (a pass per pixel) shows a bar with it/s.
    const SampleBar progress(m, bar ? ProgressBar::Style::Auto : ProgressBar::Style::Lines, stdout);
    NoGrad ng;
    s = trajectory_columns > 0 ? m.trajectory(n, trajectory_columns, c, g)
                               : m.sample_grid(points ? std::max<int64_t>(n, 1000) : n, c, g);
  }
  m.train(true);
  if (points) {
    plot::Chart chart;
    chart.title = str("samples over the data (", spec.toy, ")");
    if (data_points.defined())
      chart.series.push_back(
          scatter_series("data", slice(data_points, 0, 0, std::min<int64_t>(2000, data_points.size(0)))));
    chart.series.push_back(scatter_series("samples", s.images));
    chart.width = chart.height = 720;
    plot::write_png(chart, path);
    return;
  }
  save_image_grid(s.images, path, {spec.lo, spec.hi}, sample_grid_options(s.images.size(0), s.columns));
}

// For a model with a 2-D latent code (the AAE): the codes of up to 2000 test
// images, one colour per class, beside as many draws from the prior. Nothing
// for other models. Class k is always the chart's series k, so it has the
// palette's k-th colour whichever classes the images hold (a class with no
// image is an empty series without a legend entry), and the prior the eleventh.
void write_latent_codes(models::Model& m, const data::LabeledImages& test, const std::string& path, Device device) {
  const int64_t n = std::min<int64_t>(2000, test.images.size(0));
  if (n == 0) return;
  Generator g(0);
  const models::DataSpec spec = m.data_spec();
  models::Batch b = prepare({slice(test.images, 0, 0, n), slice(test.labels, 0, 0, n), positions(0, n)}, spec, g, device);
  m.train(false);
  models::LatentCodes codes;
  {
    NoGrad ng;
    codes = m.latent_codes(b.images, g);
  }
  m.train(true);
  if (!codes.codes.defined()) return;
  plot::Chart chart;
  chart.title = "latent codes of the test images by class, and the prior";
  const std::vector<int64_t> labels = slice(test.labels, 0, 0, n).to_vector<int64_t>();
  const Tensor xy = codes.codes.to(Device::cpu());
  for (int64_t k = 0; k < 10; ++k) {
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < n; ++i)
      if (labels[i] == k) rows.push_back(i);
    if (rows.empty()) {
      chart.series.push_back({"", {}, {}, false, true});
      continue;
    }
    chart.series.push_back(scatter_series(std::string(data::fashion_mnist_classes()[k]),
                                          index_select(xy, 0, from_vector(rows, {static_cast<int64_t>(rows.size())}))));
  }
  chart.series.push_back(scatter_series("prior", codes.prior));  // the eleventh colour: near-black
  chart.width = chart.height = 720;
  plot::write_png(chart, path);
}

// loom's classifier from its checkpoint, in eval mode, for `what` (named in the error when it is missing).
std::unique_ptr<models::Model> load_classifier(const std::string& checkpoint, Device device, const std::string& what) {
  std::error_code ec;
  LOOM_CHECK(fs::exists(checkpoint, ec), "eval: ", what, " needs a trained classifier: ", checkpoint,
             " does not exist (train one with 'loom train classifier --epochs 3', or give --classifier CKPT)");
  std::unique_ptr<models::Model> loaded = load_model(models::find_model("classifier"), checkpoint, device);
  loaded->train(false);
  return loaded;
}

// Images in spec's range mapped to the classifier's [-1, 1].
Tensor classifier_range(const Tensor& x, const models::DataSpec& spec) {
  return (x - spec.lo) * (2.0 / (spec.hi - spec.lo)) - 1.0;
}

// The class loom's classifier (a models::Classifier, as load_classifier gives it)
// assigns each image x [n, C, H, W] in spec's range: images of another size resized
// to its 28 × 28 (bilinear), RGB ones averaged to grey.
std::vector<int64_t> classify(models::Model& classifier, Tensor x, const models::DataSpec& spec) {
  if (x.size(1) != 1) x = mean(x, {1}, true);
  if (x.size(2) != 28) x = upsample_bilinear2d(x, 28, 28);
  auto& clf = dynamic_cast<models::Classifier&>(classifier);
  return argmax(clf.net->forward(classifier_range(x, spec)), 1).to(Device::cpu()).to_vector<int64_t>();
}

// Runs `each` on the first min(n, images.size(0)) of images (in the data set's [0, 1])
// in chunks of at most 500, each mapped to m's data range (data::prepare_images,
// drawing from g) on `device`, with the index of its first image; m in eval mode
// and under NoGrad meanwhile, back in training mode after.
void for_each_test_chunk(models::Model& m, const Tensor& images, int64_t n, Device device, Generator& g,
                         const std::function<void(const Tensor& x, int64_t first)>& each) {
  const models::DataSpec spec = m.data_spec();
  m.train(false);
  {
    NoGrad ng;
    const int64_t count = std::min(n, images.size(0)), chunk = 500;
    for (int64_t i = 0; i < count; i += chunk)
      each(data::prepare_images(slice(images, 0, i, std::min(count, i + chunk)), spec, g).to(device), i);
  }
  m.train(true);
}

// What `loom eval` measures of a two-domain translation model on two Fashion-MNIST
// classes (data::DataSpec::classes): for each direction, the fraction of the first n
// test images of the source domain that loom's classifier assigns to the target
// domain's class after translation ("a2b_accuracy", "b2a_accuracy"; Zhu et al. 2017
// score translations with a pretrained classifier in the same way, §5.1.1's FCN
// score) and before it ("a2b_accuracy_untranslated", ...: what translating adds).
// Images of another size are resized to the classifier's 28 × 28 (bilinear), RGB
// ones (Fashion-MNIST repeated) averaged to grey.
models::Losses translation_metrics(models::Model& m, const data::LabeledImages& test, int64_t n,
                                   const std::string& classifier_checkpoint, Device device, Generator& g) {
  const models::DataSpec spec = m.data_spec();
  const std::unique_ptr<models::Model> clf =
      load_classifier(classifier_checkpoint, device, "the target-domain accuracy");
  models::Losses out;
  for (const bool b_to_a : {false, true}) {
    const Tensor& source = b_to_a ? test.images_b : test.images;
    const int64_t target = spec.classes[b_to_a ? 0 : 1], count = std::min(n, source.size(0));
    int64_t translated = 0, untranslated = 0;
    auto hits = [&](const Tensor& x) {
      const std::vector<int64_t> pred = classify(*clf, x, spec);
      return std::count(pred.begin(), pred.end(), target);
    };
    for_each_test_chunk(m, source, n, device, g, [&](const Tensor& x, int64_t) {
      models::Condition c;
      c.images = x;
      c.b_to_a = b_to_a;
      translated += hits(m.sample(x.size(0), c, g));
      untranslated += hits(x);
    });
    const std::string name = b_to_a ? "b2a_accuracy" : "a2b_accuracy";
    out[name] = static_cast<double>(translated) / static_cast<double>(count);
    out[name + "_untranslated"] = static_cast<double>(untranslated) / static_cast<double>(count);
  }
  return out;
}

// What `loom eval` measures of a multi-domain translation model on Fashion-MNIST
// classes (data::DataSpec::domains; test.labels are the domains): each of the first
// n test images translated into every domain t other than its own, the fraction of
// these translations that loom's classifier assigns to t's class ("target_accuracy";
// Choi et al. 2018 judge translations with a classifier in the same way, §5.4's
// classification error on RaFD), and the same fraction for the images as they are
// ("target_accuracy_untranslated": what translating adds).
models::Losses domain_translation_metrics(models::Model& m, const data::LabeledImages& test, int64_t n,
                                          const std::string& classifier_checkpoint, Device device, Generator& g) {
  const models::DataSpec spec = m.data_spec();
  const std::unique_ptr<models::Model> clf =
      load_classifier(classifier_checkpoint, device, "the target-domain accuracy");
  const auto domains = static_cast<int64_t>(spec.domains.size());
  int64_t translated = 0, untranslated = 0, pairs = 0;
  for_each_test_chunk(m, test.images, n, device, g, [&](const Tensor& x, int64_t i) {
    models::Condition c;
    c.images = x;
    const int64_t rows = x.size(0);
    const std::vector<int64_t> source = slice(test.labels, 0, i, i + rows).to_vector<int64_t>();
    const std::vector<int64_t> as_is = classify(*clf, x, spec);
    for (int64_t t = 0; t < domains; ++t) {
      const int64_t target = spec.domains[static_cast<size_t>(t)];
      c.targets = full({rows}, static_cast<double>(t), TensorOptions{DType::Int64});
      const std::vector<int64_t> pred = classify(*clf, m.sample(rows, c, g), spec);
      for (int64_t r = 0; r < rows; ++r) {
        if (source[static_cast<size_t>(r)] == t) continue;
        ++pairs;
        translated += pred[static_cast<size_t>(r)] == target;
        untranslated += as_is[static_cast<size_t>(r)] == target;
      }
    }
  });
  LOOM_CHECK(pairs > 0, "eval: no test image has a domain to be translated into");
  return {{"target_accuracy", static_cast<double>(translated) / static_cast<double>(pairs)},
          {"target_accuracy_untranslated", static_cast<double>(untranslated) / static_cast<double>(pairs)}};
}

// What `loom eval` measures of a model completing images from pieces of them
// (Conditions::pieces, Puzzle-GAN) on Fashion-MNIST: of the first n test images,
// the fraction whose completion loom's classifier assigns to the class it assigns
// to the image itself ("class_agreement"), and the same for the pieces pasted where
// they belong on the mean of the n images ("class_agreement_mean_image", pieces cut at
// positions drawn from a Generator(0) of their own: what generating adds).
models::Losses completion_metrics(models::Model& m, const data::LabeledImages& test, int64_t n,
                                  const std::string& classifier_checkpoint, Device device, Generator& g) {
  const models::DataSpec spec = m.data_spec();
  const std::unique_ptr<models::Model> clf = load_classifier(classifier_checkpoint, device, "the class agreement");
  const int64_t count = std::min(n, test.images.size(0));
  Generator g_pieces(0);
  const Tensor mean_image =
      mean(data::prepare_images(slice(test.images, 0, 0, count), spec, g_pieces), {0}, true).to(device);
  int64_t completed = 0, pasted = 0;
  for_each_test_chunk(m, test.images, n, device, g, [&](const Tensor& x, int64_t) {
    models::Condition c;
    c.images = x;
    const std::vector<int64_t> own = classify(*clf, x, spec);
    const std::vector<int64_t> of_completion = classify(*clf, m.sample(x.size(0), c, g), spec);
    const models::Conditions takes = m.conditions();
    const Tensor mask = models::puzzlegan::cut_pieces(x, takes.pieces, takes.piece_side, &g_pieces).mask;
    const std::vector<int64_t> of_pasted = classify(*clf, mean_image * (1.0 - mask) + x * mask, spec);
    for (size_t r = 0; r < own.size(); ++r) {
      completed += own[r] == of_completion[r];
      pasted += own[r] == of_pasted[r];
    }
  });
  return {{"class_agreement", static_cast<double>(completed) / static_cast<double>(count)},
          {"class_agreement_mean_image", static_cast<double>(pasted) / static_cast<double>(count)}};
}

// What `loom eval` measures of a model's samples in the feature space of loom's
// classifier (both sets mapped to the classifier's [-1, 1]): the Fréchet distance
// and the improved precision and recall between n samples and the first n test
// images; for label-conditional models the classifier's accuracy on samples of
// each requested class (for text-conditional ones, on samples for a prompt naming
// it: "prompt_accuracy"), and for a categorical latent code (InfoGAN) its accuracy
// as a classifier of the samples after the best one-to-one matching of codes to
// classes (models::matched_accuracy).
models::Losses sample_metrics(models::Model& m, const data::LabeledImages& test, int64_t n,
                              const std::string& classifier_checkpoint, Device device, Generator& g) {
  const models::DataSpec spec = m.data_spec();
  LOOM_CHECK(spec.dataset != data::Dataset::Toy2d && spec.size == 28 && spec.channels == 1,
             "eval: the Frechet distance uses the Fashion-MNIST classifier's features: it needs 28x28 grey images");
  std::unique_ptr<models::Model> loaded = load_classifier(classifier_checkpoint, device, "the Frechet distance");
  auto& clf = dynamic_cast<models::Classifier&>(*loaded);
  m.train(false);
  NoGrad ng;
  // A sampler that takes minutes (a diffusion model's 1 000 steps per batch) shows progress on stderr
  // (stdout carries the result): a bar on a terminal, plain lines otherwise, one per batch drawn.
  const SampleBar progress(m, ProgressBar::Style::Auto, stderr);
  auto to_classifier = [&](const Tensor& s) { return classifier_range(s, spec); };
  n = std::min(n, test.images.size(0));
  LOOM_CHECK(n >= 4, "eval: the sample metrics need at least 4 images, got ", n);
  std::vector<Tensor> real, fake;
  const int64_t chunk = 500;
  for (int64_t i = 0; i < n; i += chunk) {
    const int64_t j = std::min(n, i + chunk);
    real.push_back(clf.net->features((slice(test.images, 0, i, j) * 2.0 - 1.0).to(device)));
    fake.push_back(clf.net->features(to_classifier(m.sample(j - i, {}, g))));
  }
  const Tensor rf = concat(real, 0), ff = concat(fake, 0);
  models::Losses out{{"fd", models::frechet_distance(ff, rf)}};
  const models::PrecisionRecall pr = models::precision_recall(rf, ff);
  out["precision"] = pr.precision;
  out["recall"] = pr.recall;
  // The classifier's verdict on samples conditioned on each of `values` values, n in all
  // (`condition` makes the condition of b samples of value v).
  const models::Conditions takes = m.conditions();
  using MakeCondition = std::function<models::Condition(int64_t v, int64_t b)>;
  auto classify_per_value = [&](int64_t values, const MakeCondition& condition, std::vector<int64_t>& asked,
                                std::vector<int64_t>& seen) {
    for (int64_t v = 0; v < values; ++v) {
      const int64_t per = std::max<int64_t>(1, n / values);
      for (int64_t i = 0; i < per; i += chunk) {
        const int64_t b = std::min(per - i, chunk);
        const models::Condition c = condition(v, b);
        const Tensor logits = clf.net->forward(to_classifier(m.sample(b, c, g)));
        const std::vector<int64_t> pred = argmax(logits, 1).to(Device::cpu()).to_vector<int64_t>();
        seen.insert(seen.end(), pred.begin(), pred.end());
        asked.insert(asked.end(), static_cast<size_t>(b), v);
      }
    }
  };
  auto filled = [&](int64_t v, int64_t b) { return full({b}, static_cast<double>(v), TensorOptions{DType::Int64, device}); };
  auto accuracy = [&](const MakeCondition& condition) {
    std::vector<int64_t> asked, seen;
    classify_per_value(10, condition, asked, seen);
    int64_t right = 0;
    for (size_t i = 0; i < asked.size(); ++i) right += asked[i] == seen[i];
    return static_cast<double>(right) / static_cast<double>(asked.size());
  };
  if (takes.labels)
    out["label_accuracy"] = accuracy([&](int64_t v, int64_t b) {
      models::Condition c;
      c.labels = filled(v, b);
      return c;
    });
  // Text-conditional models: samples for a prompt naming each class (Model::class_prompt).
  if (takes.prompt && !m.class_prompt(0).empty())
    out["prompt_accuracy"] = accuracy([&](int64_t v, int64_t) {
      models::Condition c;
      c.prompt = m.class_prompt(v);
      return c;
    });
  if (takes.codes > 0) {
    LOOM_CHECK(takes.codes <= 10, "eval: a categorical code of ", takes.codes, " values cannot be matched to 10 classes");
    std::vector<int64_t> asked, seen;
    classify_per_value(takes.codes, [&](int64_t v, int64_t b) {
      models::Condition c;
      c.codes = filled(v, b);
      return c;
    }, asked, seen);
    out["code_accuracy"] = models::matched_accuracy(asked, seen, 10);
  }
  m.train(true);
  return out;
}

// The model called name, or an Error suggesting the closest registered name.
const models::Registration& resolve_model(const std::string& name) {
  std::vector<std::string> names;
  for (const models::Registration& r : models::registry()) names.push_back(r.name);
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw Error(str("unknown model '", name, "'", cli::suggestion(name, names), "; run 'loom list' to see them"));
  return models::find_model(name);
}

// The model's data set as its spec says, images read within the run's pixel limit.
data::LabeledImages load_data_set(models::DataSpec spec, data::Split split, const std::string& dir,
                                  int64_t max_image_pixels) {
  spec.max_image_pixels = max_image_pixels;
  return data::load_dataset(spec, split, dir);
}

void check_importance_samples(const char* command, const models::EvalOptions& eo) {
  LOOM_CHECK(eo.importance_samples >= 0 && eo.importance_samples <= models::kMaxImportanceSamples, command,
             ": --importance-samples must lie in [0, ", models::kMaxImportanceSamples, "], got ", eo.importance_samples);
  LOOM_CHECK(eo.bound_timesteps >= 0 && eo.bound_timesteps <= models::kMaxImportanceSamples, command,
             ": --bound-timesteps must lie in [0, ", models::kMaxImportanceSamples, "], got ", eo.bound_timesteps);
}

data::LabeledImages load(const TrainOptions& o, const models::DataSpec& spec, data::Split split) {
  return o.load_data ? o.load_data(split) : load_data_set(spec, split, o.data_dir, o.max_image_pixels);
}

// --cuda-graph (TrainOptions::cuda_graph): train_step captured once as a CUDA graph on
// batch tensors of its own, then per step: the batch copied in, the model's host-side
// per-step work (before_replay), a replay, the losses read from the step's device scalars.
// Each phase of the model (Model::graph_phase) runs its first step eagerly (the run's first
// step creates the optimizers' state; a new phase may train new layers), captures its
// second, and replays from then on.
class GraphedSteps {
 public:
  GraphedSteps(models::Model& model, const std::string& name, Device device)
      : model_(model), name_(name), device_(device) {
    LOOM_CHECK(device.is_cuda(), "train: --cuda-graph needs a CUDA device (--device cuda), got ", device);
    LOOM_CHECK(model.cuda_graph_capable(), "train: --cuda-graph: ", name,
               "'s train_step cannot be captured as a CUDA graph (it reads values or draws on the host, or keeps "
               "per-step host state; the README's CUDA section lists the models that can)");
  }

  models::Losses step(const models::Batch& b, models::Step& info) {
    const int64_t phase = model_.graph_phase(info);
    if (phase != phase_) {
      phase_ = phase;
      captured_.reset();  // its tensors, then its graph and memory pool
      return model_.train_step(b, info);
    }
    if (!captured_) {
      captured_ = std::make_unique<Captured>();
      // The step's other batches, drawn as the eager step would (after b, in order), into the
      // graph's own tensors; the captured step's next_batch hands them out.
      for (int64_t k = 1; k < model_.batches_per_step(); ++k) captured_->extra.push_back(clone_of(info.next_batch()));
      capture(b, info);
    } else {
      for (models::Batch& slot : captured_->extra) copy_in(slot, info.next_batch());
    }
    copy_in(captured_->batch, b);
    model_.before_replay(info);
    captured_->graph.replay();
    models::Losses out;
    for (const auto& [k, t] : captured_->losses) out[k] = t.item();
    return out;
  }

 private:
  static constexpr Tensor models::Batch::*kFields[] = {&models::Batch::images,     &models::Batch::labels,
                                                        &models::Batch::images_b,   &models::Batch::attributes,
                                                        &models::Batch::tokens,     &models::Batch::indices};
  static models::Batch clone_of(const models::Batch& b) {
    models::Batch c;
    for (auto field : kFields)
      if ((b.*field).defined()) c.*field = (b.*field).clone();
    return c;
  }
  void capture(const models::Batch& b, const models::Step& info) {
    Captured& c = *captured_;
    c.batch = clone_of(b);
    size_t drawn = 0;
    models::Step captured{.index = info.index, .total = info.total, .next_batch = [this, &c, &drawn]() -> models::Batch {
                            LOOM_CHECK(drawn < c.extra.size(), "train: --cuda-graph: ", name_,
                                       " draws more batches inside its step than its batches_per_step() = ",
                                       model_.batches_per_step());
                            return c.extra[drawn++];
                          }};
    c.graph.capture(device_, [&] { model_.train_step(c.batch, captured); });
    LOOM_CHECK(drawn == c.extra.size(), "train: --cuda-graph: ", name_, " drew ", drawn + 1,
               " batches in its step, not its batches_per_step() = ", model_.batches_per_step());
    c.losses = models::take_captured_losses();
    LOOM_CHECK(!c.losses.empty(), "train: --cuda-graph: ", name_, "'s step reported no losses through step_losses");
  }
  static void copy_in(models::Batch& slot, const models::Batch& b) {
    for (auto field : kFields) {
      const Tensor &from = b.*field, &to = slot.*field;
      LOOM_CHECK(from.defined() == to.defined() && (!from.defined() || from.shape() == to.shape()),
                 "train: --cuda-graph: every batch must have the captured one's fields and shapes (",
                 to.defined() ? str(to.shape()) : std::string("none"), "), got ",
                 from.defined() ? str(from.shape()) : std::string("none"));
      if (to.defined()) (slot.*field).copy_(from);
    }
  }

  // One phase's capture. The graph first: it goes last, after the tensors in its memory.
  struct Captured {
    CudaGraph graph;
    models::Batch batch;
    std::vector<models::Batch> extra;  // the batches after the first, for a model drawing several a step
    std::vector<std::pair<std::string, Tensor>> losses;
  };
  models::Model& model_;
  std::string name_;
  Device device_;
  std::optional<int64_t> phase_;
  std::unique_ptr<Captured> captured_;
};

}  // namespace

// Ctrl-C (SIGINT) or SIGTERM during training: set by the handler, read after each
// step, which then checkpoints and stops (InterruptGuard).
std::atomic<bool> g_interrupted{false};
extern "C" void on_interrupt(int) { g_interrupted = true; }

// For the life of a training loop: SIGINT and SIGTERM ask it to stop after the
// current step; the handlers reset themselves (SA_RESETHAND), so a second signal
// ends the process at once (every file is written atomically: nothing is torn).
class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted = false;
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

TrainResult train(const TrainOptions& o) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const models::Registration& reg = o.registration ? *o.registration : resolve_model(o.model);
  const std::string name = reg.name;
  LOOM_CHECK(o.steps >= 0 && o.epochs >= 0 && (o.steps > 0 || o.epochs > 0),
             "train: give --steps N or --epochs N (N > 0)");
  LOOM_CHECK(!o.limit_train || *o.limit_train >= 1, "train: --limit must be >= 1, got ", o.limit_train.value_or(0));
  LOOM_CHECK(!o.config.device.is_cuda() || cuda_device_count() > o.config.device.index, "train: --device ",
             o.config.device, " requested, but ",
             cuda_device_count() == 0 ? "this build or machine has no CUDA device" : "that device does not exist");

  // Resume: the stored run's options, unless the command line repeats them.
  // The model sees the folder the driver loads (Config::data_dir).
  models::Config given = o.config;
  given.data_dir = o.data_dir;
  std::optional<int64_t> limit = o.limit_train;
  std::optional<Safetensors> ck;
  int64_t step = 0, batches = 0;
  if (!o.resume.empty()) {
    ck = load_safetensors(o.resume);
    check_model(*ck, o.resume, name, "train --resume: ");
    const StoredRun run = read_run(*ck, o.resume, reg);
    step = run.step;
    batches = run.batches;
    auto contradiction = [&](const std::string& flag, const std::string& mine, const std::string& field,
                             const std::string& stored) {
      return Error(str("train --resume: ", flag, " ", mine, " contradicts the checkpoint, which stores ", field,
                       " = ", stored, " (leave the flag out to continue with the stored value)"));
    };
    auto keep = [&](const std::string& flag, const std::string& field, auto& mine, const auto& stored) {
      if (mine && *mine != stored) throw contradiction(flag, exact(*mine), field, exact(stored));
      mine = stored;
    };
    keep("--batch-size", "batch_size", given.batch_size, *run.config.batch_size);
    keep("--seed", "seed", given.seed, *run.config.seed);
    // limit_train 0 in the checkpoint: every image.
    if (run.limit_train == 0) {
      if (limit) throw contradiction("--limit", exact(*limit), "limit_train", "0 (every image)");
    } else {
      keep("--limit", "limit_train", limit, run.limit_train);
    }
    for (auto& [name, stored] : run.config.options) {
      auto mine = given.options.find(name);
      if (mine != given.options.end()) {
        const models::OptionSpec& spec = *models::find_option(reg, name);
        if (spec.canonical(mine->second) != stored) throw contradiction(spec.flag(), mine->second, name, stored);
      }
      given.options[name] = stored;
    }
  }
  models::Config config;
  try {
    given.given.clear();
    for (auto& [name, value] : o.config.options) given.given.insert(name);
    config = models::resolve_config(reg, given);
  } catch (const Error& e) {
    throw Error(str("train: ", e.what()));
  }

  manual_seed(*config.seed);
  RngState rng{Generator(*config.seed ^ 0x9E3779B97F4A7C15ull)};
  std::unique_ptr<models::Model> model = reg.make(config);
  const models::DataSpec spec = model->data_spec();
  data::LabeledImages train_set = load(o, spec, data::Split::Train);
  if (limit && *limit < train_set.images.size(0)) {
    train_set.images = slice(train_set.images, 0, 0, *limit);
    train_set.labels = slice(train_set.labels, 0, 0, *limit);
  }
  if (limit && train_set.images_b.defined() && *limit < train_set.images_b.size(0))
    train_set.images_b = slice(train_set.images_b, 0, 0, *limit);
  const bool two_domains = spec.dataset == data::Dataset::TwoDomains;
  LOOM_CHECK(!two_domains || train_set.images_b.defined(), "train: model '", name,
             "' translates between two domains, but its data has one");
  const int64_t batch_size = *config.batch_size;
  const int64_t per_epoch = train_set.images.size(0) / batch_size;  // the loader drops the last partial batch
  LOOM_CHECK(per_epoch > 0, "train: ", train_set.images.size(0), " training images do not fill one batch of ",
             batch_size);
  LOOM_CHECK(o.steps > 0 || o.epochs <= kMax / per_epoch, "train: --epochs ", o.epochs, " is too many (",
             per_epoch, " steps each)");
  const int64_t total = o.steps > 0 ? o.steps : o.epochs * per_epoch;
  LOOM_CHECK(!ck || total > step, "train --resume: ", o.resume, " is already at step ", step, "; ",
             o.steps > 0 ? str("--steps ", o.steps) : str("--epochs ", o.epochs, " (", total, " steps)"),
             " would train nothing (the total must exceed ", step, "; nothing was written)");
  if (ck) restore(*model, rng, *ck, o.resume);

  // The data order continues exactly: epoch batches / per_epoch, from its batch
  // batches % per_epoch (the order of an epoch depends only on the seed and the epoch).
  data::DataLoaderOptions lo;
  lo.batch_size = batch_size;
  lo.drop_last = true;
  lo.seed = *config.seed;
  lo.first_epoch = batches / per_epoch;
  lo.first_batch = batches % per_epoch;
  data::DataLoader loader(train_set.images, train_set.labels, lo);
  // A second domain has a loader of its own, one batch of it per batch of the
  // first (so `batches` places it too), its order from its own seed.
  std::optional<data::DataLoader> loader_b;
  if (two_domains) {
    const int64_t per_epoch_b = train_set.images_b.size(0) / batch_size;
    LOOM_CHECK(per_epoch_b > 0, "train: ", train_set.images_b.size(0), " training images of domain B do not fill ",
               "one batch of ", batch_size);
    data::DataLoaderOptions lb = lo;
    lb.seed = *config.seed ^ 0xB0B0B0B0ull;
    lb.first_epoch = batches / per_epoch_b;
    lb.first_batch = batches % per_epoch_b;
    loader_b.emplace(train_set.images_b, Tensor(), lb);
  }
  auto next_batch = [&] {
    ++batches;
    data::Batch a = loader.next();
    a.inputs = data::augment(a.inputs, spec, rng.trainer);
    models::Batch out = prepare(a, spec, rng.trainer, config.device);
    if (loader_b)
      out.images_b =
          data::prepare_images(data::augment(loader_b->next().inputs, spec, rng.trainer), spec, rng.trainer)
              .to(config.device);
    model->prepare_batch(out);
    return out;
  };
  // A translation model's sample grids translate the first test images (with
  // their own generator, so that the run's draws do not depend on them).
  std::optional<data::LabeledImages> test_set;
  models::Condition frames;
  if (model->conditions().images) {
    test_set = load(o, spec, data::Split::Test);
    Generator g(0);
    frames.images = data::prepare_images(slice(test_set->images, 0, 0, std::min(o.n_samples, test_set->images.size(0))),
                                         spec, g)
                        .to(config.device);
  }
  const int64_t n_frames = frames.images.defined() ? frames.images.size(0) : o.n_samples;

  fs::create_directories(o.out_dir);
  remove_stale_temporaries(o.out_dir);  // left by runs killed while writing a file
  MetricsLog metrics((fs::path(o.out_dir) / "metrics.jsonl").string(),
                     ck ? std::optional<int64_t>(step) : std::nullopt);
  ProgressBar::Options po;
  po.label = name;
  po.total = total;
  po.initial = step;
  po.style = o.progress ? ProgressBar::Style::Auto : ProgressBar::Style::Lines;
  po.out = o.progress_out;
  ProgressBar bar(po);
  const std::string ckpt_path = (fs::path(o.out_dir) / "checkpoint.safetensors").string();

  // Divergence: the last good state is the latest checkpoint of this run (each is
  // written only when every parameter and optimizer state is finite), else the
  // checkpoint it resumed from. Nothing is written once the state is bad.
  std::string last_good = o.resume;
  int64_t last_good_step = step;
  auto diverged = [&](const std::string& what) {
    return Error(str("train: diverged at step ", step, ": ", what, " (lower --lr); ",
                     last_good.empty()
                         ? std::string("no checkpoint was written: the run diverged before its first one "
                                       "(--checkpoint-every N keeps one)")
                         : str("the last good checkpoint is ", last_good, " (step ", last_good_step, ")")));
  };
  const int64_t limit_train = limit.value_or(0);
  auto save = [&] {
    const std::string bad = first_nonfinite(*model);
    if (!bad.empty()) throw diverged(str("'", bad, "' is not finite"));
    save_safetensors(ckpt_path, checkpoint_tensors(*model, rng),
                     config_metadata(name, config, limit_train, step, total, batches));
    last_good = ckpt_path;
    last_good_step = step;
  };

  // A finite loss that has exploded is divergence too: more than kExploded times
  // the magnitude (at least 1) it had at this run's first step.
  constexpr double kExploded = 1e6;
  std::map<std::string, double> first_loss;
  TrainResult result;
  const Generator frame_noise(*config.seed ^ 0xF4A3E5ull);
  model->train(true);
  std::optional<GraphedSteps> graphed;
  if (o.cuda_graph) graphed.emplace(*model, name, config.device);
  InterruptGuard interrupts;
  while (step < total) {
    const double started = o.on_step ? steady_seconds() : 0;
    models::Batch b = next_batch();
    models::Step info{.index = step, .total = total, .next_batch = next_batch};
    // --cuda-graph: each phase's first step eagerly (the run's creates the optimizers' state), then replays.
    models::Losses l = graphed ? graphed->step(b, info) : model->train_step(b, info);
    ++step;
    if (o.on_step) o.on_step(step, steady_seconds() - started);
    Losses shown(l.begin(), l.end());
    MetricsRecord r;
    r.step = step;
    r.losses = shown;
    r.it_per_s = bar.rate();
    for (auto& [oname, opt] : model->optimizers()) {
      std::vector<double> lrs;
      for (size_t g = 0; g < opt->group_count(); ++g) lrs.push_back(opt->group_lr(g));
      r.lrs.emplace_back(oname, lrs);
    }
    metrics.write(r);  // the diverged step too (its losses as null)
    for (auto& [k, v] : l) {
      if (!std::isfinite(v)) throw diverged(str("loss '", k, "' became ", std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"));
      const double scale = std::max(1.0, std::abs(first_loss.emplace(k, v).first->second));
      if (std::abs(v) > kExploded * scale)
        throw diverged(str("loss '", k, "' exploded to ", v, " (from ", first_loss[k], " at the run's first step)"));
    }
    bar.update(step, shown);
    result.last = l;
    if (o.sample_every > 0 && step % o.sample_every == 0 && step < total) {
      Generator fixed = frame_noise;  // the same noise every frame: progress, not new draws
      write_samples(*model, n_frames, (fs::path(o.out_dir) / str("samples_", step, ".png")).string(), fixed, frames,
                    train_set.images, o.progress);
    }
    if (o.checkpoint_every > 0 && step % o.checkpoint_every == 0) save();
    if (g_interrupted) {
      bar.finish();
      if (last_good != ckpt_path || last_good_step != step) save();
      // The whole continuation: a resumed run needs its length again, and writes to --out (default
      // out/MODEL), which need not be this run's folder.
      throw Error(str("train: interrupted at step ", step, " of ", total, "; checkpoint ", ckpt_path,
                      " (continue with --resume ", ckpt_path, " --steps ", total, " --out ", o.out_dir, ")"));
    }
  }
  bar.finish();
  if (last_good != ckpt_path || last_good_step != step) save();
  result.steps = step;
  result.checkpoint = ckpt_path;
  if (o.eval_size > 0) {
    const data::LabeledImages test = test_set ? *test_set : load(o, spec, data::Split::Test);
    result.eval = run_eval(*model, test, o.eval_size, config.device, rng.trainer, o.eval_options);
    write_latent_codes(*model, test, (fs::path(o.out_dir) / "codes.png").string(), config.device);
  }
  if (o.n_samples > 0) {
    result.samples = (fs::path(o.out_dir) / "samples.png").string();
    write_samples(*model, n_frames, result.samples, rng.trainer, frames, train_set.images, o.progress);
  }
  return result;
}

std::unique_ptr<models::Model> load_model(const std::string& name, const std::string& checkpoint, Device device,
                                          const std::string& data_dir) {
  return load_model(resolve_model(name), checkpoint, device, data_dir);
}

std::unique_ptr<models::Model> load_model(const models::Registration& reg, const std::string& checkpoint, Device device,
                                          const std::string& data_dir) {
  Safetensors ck = load_safetensors(checkpoint);
  check_model(ck, checkpoint, reg.name, "");
  models::Config c = read_run(ck, checkpoint, reg).config;
  c.device = device;
  c.data_dir = data_dir;
  std::unique_ptr<models::Model> m = reg.make(models::resolve_config(reg, c));
  RngState rng;
  restore(*m, rng, ck, checkpoint);
  return m;
}

int64_t parse_label(const std::string& label) {
  const auto& names = data::fashion_mnist_classes();
  int64_t v = -1;
  auto [end, ec] = std::from_chars(label.data(), label.data() + label.size(), v);
  if (ec == std::errc() && end == label.data() + label.size()) {
    LOOM_CHECK(v >= 0 && v < static_cast<int64_t>(names.size()), "sample: --label ", label,
               " is not a class index in [0, ", names.size(), ")");
    return v;
  }
  const int64_t k = data::fashion_mnist_class(label);
  if (k >= 0) return k;
  std::vector<std::string> all;  // every name a class answers to, lower case
  for (int64_t i = 0; i < static_cast<int64_t>(names.size()); ++i) {
    const std::vector<std::string> own = data::fashion_mnist_class_names(i);
    all.insert(all.end(), own.begin(), own.end());
  }
  std::string lower = label;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  throw Error(str("sample: --label '", label, "' is not a Fashion-MNIST class", cli::suggestion(lower, all),
                  " (names or indices 0-9: T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, "
                  "Ankle boot)"));
}

namespace {

// The index of the domain `text` names among `domains`: its index, or its name in
// any case with '_' for ' '; an Error listing the domains otherwise.
int64_t parse_domain(const std::string& text, const std::vector<std::string>& domains) {
  auto plain = [](std::string name) {
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return ch == '_' ? ' ' : static_cast<char>(std::tolower(ch)); });
    return name;
  };
  int64_t k = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), k);
  if (ec == std::errc() && end == text.data() + text.size() && k >= 0 && k < static_cast<int64_t>(domains.size()))
    return k;
  for (size_t i = 0; i < domains.size(); ++i)
    if (plain(domains[i]) == plain(text)) return static_cast<int64_t>(i);
  std::string all;
  for (size_t i = 0; i < domains.size(); ++i) all += str(i == 0 ? "" : ", ", i, " ", domains[i]);
  throw Error(str("sample: --target '", text, "' is not one of the model's domains (", all, ")"));
}

// The condition sc asks for; `inputs` gets the files of --input, in the order of c.images.
models::Condition condition_for(models::Model& m, const std::string& model, const SampleCondition& sc, int64_t n,
                                std::vector<std::string>& inputs) {
  const models::Conditions takes = m.conditions();
  models::Condition c;
  if (!sc.label.empty()) {
    LOOM_CHECK(takes.labels, "sample: model '", model, "' takes no --label (its samples are not class-conditional)");
    c.labels = full({n}, static_cast<double>(parse_label(sc.label)), TensorOptions{DType::Int64});
  }
  if (!sc.prompt.empty()) {
    LOOM_CHECK(takes.prompt, "sample: model '", model, "' takes no --prompt (it is not conditioned on text)");
    c.prompt = sc.prompt;
  }
  if (!sc.code.empty()) {
    LOOM_CHECK(takes.codes > 0, "sample: model '", model, "' takes no --code (it has no categorical latent code)");
    int64_t k = -1;
    auto [end, ec] = std::from_chars(sc.code.data(), sc.code.data() + sc.code.size(), k);
    LOOM_CHECK(ec == std::errc() && end == sc.code.data() + sc.code.size() && k >= 0 && k < takes.codes,
               "sample: --code ", sc.code, " is not a code in [0, ", takes.codes, ")");
    c.codes = full({n}, static_cast<double>(k), TensorOptions{DType::Int64});
  }
  if (sc.interpolate) {
    LOOM_CHECK(takes.interpolate, "sample: model '", model, "' takes no --interpolate (it has no latent noise to walk)");
    c.interpolate = true;
  }
  if (!sc.direction.empty()) {
    LOOM_CHECK(takes.directions, "sample: model '", model, "' takes no --direction (it does not translate between ",
               "two domains)");
    LOOM_CHECK(sc.direction == "a2b" || sc.direction == "b2a", "sample: --direction must be a2b or b2a, got '",
               sc.direction, "'");
    c.b_to_a = sc.direction == "b2a";
  }
  if (!sc.input.empty()) {
    LOOM_CHECK(takes.images, "sample: model '", model, "' takes no --input (it does not translate images)");
    const models::DataSpec spec = m.data_spec();
    data::ImageFiles files = data::load_images(sc.input, spec.size, spec.channels, sc.max_image_pixels);
    c.images = files.images;
    inputs = std::move(files.paths);
    Generator g(0);
    c.images = data::prepare_images(c.images, spec, g);
  }
  if (sc.patches != 0) {
    LOOM_CHECK(takes.pieces > 0, "sample: model '", model, "' takes no --patches (it does not complete images from ",
               "pieces of them)");
    LOOM_CHECK(sc.patches >= 1, "sample: --patches must be at least 1, got ", sc.patches);
    LOOM_CHECK(!sc.input.empty(), "sample: --patches cuts pieces from --input images: give them with --input PATH|DIR");
    c.pieces = sc.patches;
  }
  if (!sc.target.empty()) {
    LOOM_CHECK(!takes.domains.empty(), "sample: model '", model, "' takes no --target (it does not translate into ",
               "named domains)");
    c.targets = full({c.images.defined() ? c.images.size(0) : n}, static_cast<double>(parse_domain(sc.target, takes.domains)),
                     TensorOptions{DType::Int64});
  }
  return c;
}

// A translation model's translation of each --input image as a PNG of its own:
// <grid path without .png>/<input file name>.png beside the grid at grid_path.
void write_translations(models::Model& m, const models::Condition& c, const std::vector<std::string>& inputs,
                        const std::string& grid_path) {
  const models::DataSpec spec = m.data_spec();
  fs::path folder(grid_path);
  folder.replace_extension();
  fs::create_directories(folder);
  m.train(false);
  Generator g(0);
  Tensor translated;
  {
    NoGrad ng;
    translated = m.sample(c.images.size(0), c, g);
  }
  // Each as NAME.png; inputs that would share that name (a.jpg and a.png) keep their whole
  // file name (a.jpg.png, a.png.png), so none overwrites another.
  std::map<std::string, int> uses;
  for (const std::string& in : inputs) ++uses[fs::path(in).stem().string()];
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto row = static_cast<int64_t>(i);
    const fs::path name = fs::path(inputs[i]).filename();
    const std::string file = uses[name.stem().string()] > 1 ? name.string() + ".png" : name.stem().string() + ".png";
    save_image_grid(slice(translated, 0, row, row + 1), (folder / file).string(), {spec.lo, spec.hi},
                    {.nrow = 1, .padding = 0, .upscale = 1});
  }
}

// The sampler settings of `loom sample|eval` (--sampler, --sample-steps, --eta,
// --guidance) given to m; an Error naming the command when m has no iterative sampler.
void set_sampler(models::Model& m, const std::string& name, const char* command, const models::SamplerSettings& s) {
  if (s.empty()) return;
  LOOM_CHECK(m.conditions().sampler, command, ": model '", name,
             "' takes no --sampler, --sample-steps, --eta or --guidance (it has no iterative sampler)");
  m.set_sampler(s);
}

}  // namespace

void sample(const std::string& name, const std::string& checkpoint, int64_t n, const std::string& out, Device device,
            uint64_t seed, const std::string& data_dir, const SampleCondition& sc) {
  LOOM_CHECK(n > 0, "sample: -n must be positive, got ", n);
  std::unique_ptr<models::Model> m = load_model(name, checkpoint, device, data_dir);
  set_sampler(*m, name, "sample", sc.sampler);
  LOOM_CHECK(sc.trajectory.empty() || m->conditions().sampler, "sample: model '", name,
             "' takes no --save-trajectory (it has no iterative sampler)");
  const models::DataSpec spec = m->data_spec();
  // What would not fit the picture is an error before anything is sampled (or n labels made).
  auto check_fits = [&](int64_t count, const models::Condition& given) {
    const models::GridLayout layout = m->grid_layout(count, given);
    check_grid_size(str("sample: ", out), layout.count, spec.size, spec.size,
                    sample_grid_options(layout.count, layout.columns));
  };
  if (spec.dataset == data::Dataset::Toy2d) {
    LOOM_CHECK(n <= kMaxScatterPoints, "sample: -n ", n, " is more points than a scatter takes (at most ",
               kMaxScatterPoints, ")");
  } else if (sc.input.empty()) {
    // grid_layout asks only which conditions are given: one-element stand-ins for the tensors.
    models::Condition given;
    if (!sc.label.empty()) given.labels = zeros({1}, TensorOptions{DType::Int64});
    if (!sc.code.empty()) given.codes = zeros({1}, TensorOptions{DType::Int64});
    given.prompt = sc.prompt;
    given.interpolate = sc.interpolate;
    check_fits(n, given);
  }
  std::vector<std::string> inputs;
  const models::Condition c = condition_for(*m, name, sc, n, inputs);
  if (c.images.defined() && spec.dataset != data::Dataset::Toy2d) check_fits(c.images.size(0), c);
  Generator g(seed);
  const Tensor data_points =
      spec.dataset == data::Dataset::Toy2d ? data::load_dataset(spec, data::Split::Test, data_dir).images : Tensor();
  write_samples(*m, c.images.defined() ? c.images.size(0) : n, out, g, c, data_points);
  if (m->conditions().directions || c.targets.defined()) write_translations(*m, c, inputs, out);
  if (!sc.trajectory.empty()) {
    // At most kTrajectoryRows samples, each from noise to image (their labels the first of c's).
    const int64_t rows = std::min(n, kTrajectoryRows);
    models::Condition first = c;
    if (c.labels.defined()) first.labels = slice(c.labels, 0, 0, rows);
    write_samples(*m, rows, sc.trajectory, g, first, {}, true, kTrajectoryColumns);
  }
}

Evaluation evaluate(const std::string& name, const EvalRequest& r) {
  const models::Registration& reg = r.registration ? *r.registration : resolve_model(name);
  LOOM_CHECK(r.images >= 1, "eval: -n must be at least 1 (held-out images to evaluate), got ", r.images);
  check_importance_samples("eval", r.options);
  std::unique_ptr<models::Model> m = load_model(reg, r.checkpoint, r.device, r.data_dir);
  LOOM_CHECK(r.options.importance_samples == 0 || (m->kind() == models::ModelKind::LatentVariable &&
                                                   !m->conditions().sampler),
             "eval: --importance-samples applies to latent-variable models, not to '", reg.name, "' (",
             models::kind_name(m->kind()), m->conditions().sampler ? ": its bound takes --bound-timesteps" : "", ")");
  LOOM_CHECK(r.options.bound_timesteps == 0 || m->conditions().sampler, "eval: --bound-timesteps applies to diffusion "
             "models, not to '", reg.name, "'");
  set_sampler(*m, reg.name, "eval", r.sampler);
  Evaluation e;
  e.kind = m->kind();
  e.parameters = m->parameter_count();
  Generator g(1);
  const models::DataSpec spec = m->data_spec();
  const data::LabeledImages test = r.load_data ? r.load_data(data::Split::Test)
                                               : load_data_set(spec, data::Split::Test, r.data_dir, r.max_image_pixels);
  e.metrics = run_eval(*m, test, r.images, r.device, g, r.options);
  // The classifier's features exist for 28×28 grey images only (sample_metrics says so when --fd asks for more).
  const bool fashion_shaped = spec.dataset != data::Dataset::Toy2d && spec.size == 28 && spec.channels == 1;
  if (m->conditions().pieces > 0) {
    // A completion of the test images, not a sample: the classifier judges whether it keeps the image's class.
    LOOM_CHECK(!r.fd, "eval: --fd does not apply to '", reg.name, "': it completes images rather than sampling them");
    if (spec.dataset == data::Dataset::FashionMnist)
      for (auto& [k, v] : completion_metrics(*m, test, r.images, r.classifier, r.device, g)) e.metrics[k] = v;
  } else if (spec.dataset == data::Dataset::TwoDomains || !m->conditions().domains.empty()) {
    // Translation models sample nothing without an input: the classifier judges their translations.
    LOOM_CHECK(!r.fd, "eval: --fd does not apply to '", reg.name, "': it translates images rather than sampling them");
    if (spec.dataset == data::Dataset::TwoDomains && data::two_domains_from_fashion_mnist(spec, r.data_dir))
      for (auto& [k, v] : translation_metrics(*m, test, r.images, r.classifier, r.device, g)) e.metrics[k] = v;
    if (!spec.domains.empty())
      for (auto& [k, v] : domain_translation_metrics(*m, test, r.images, r.classifier, r.device, g)) e.metrics[k] = v;
  } else if (r.fd || (m->kind() == models::ModelKind::Sampler && fashion_shaped)) {
    for (auto& [k, v] : sample_metrics(*m, test, r.images, r.classifier, r.device, g)) e.metrics[k] = v;
  }
  return e;
}

std::vector<Score> score(const std::string& name, const std::string& checkpoint, Device device,
                         const std::string& input, const models::EvalOptions& eo, int64_t max_image_pixels) {
  check_importance_samples("score", eo);
  std::unique_ptr<models::Model> m = load_model(name, checkpoint, device, data::kFashionMnistDir);
  const models::DataSpec spec = m->data_spec();
  data::ImageFiles files = data::load_images(input, spec.size, spec.channels, max_image_pixels);
  // Scoring is deterministic: binary models see the image thresholded at 1/2.
  Tensor x = files.images;
  if (spec.binarize) x = ge(x, full(x.shape(), 0.5)).to(DType::Float32);
  models::DataSpec mapped = spec;
  mapped.binarize = false;
  Generator g(0);
  x = data::prepare_images(x, mapped, g).to(device);
  m->train(false);
  NoGrad ng;
  std::vector<double> lp;
  const int64_t chunk = 256;
  for (int64_t i = 0; i < x.size(0); i += chunk) {
    const std::vector<double> part =
        m->score(slice(x, 0, i, std::min(x.size(0), i + chunk)), eo).to(Device::cpu()).to(DType::Float64).to_vector<double>();
    lp.insert(lp.end(), part.begin(), part.end());
  }
  const double dims = static_cast<double>(x.numel() / x.size(0));
  std::vector<Score> out;
  for (size_t i = 0; i < lp.size(); ++i) out.push_back({files.paths[i], lp[i], -lp[i] / (dims * std::log(2.0))});
  return out;
}

}  // namespace loom::tools
