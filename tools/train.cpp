#include "tools/train.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>

#include "models/image_grid.h"
#include "tools/cli.h"
#include "tools/progress.h"

namespace loom::tools {
namespace fs = std::filesystem;

namespace {

// The generator the trainer owns (binarization, sampling); the model's own noise
// comes from the default generator. Both are saved in the checkpoint.
struct RngState {
  Generator trainer;
};

// The shortest text that reads back as exactly v.
std::string exact(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}
std::string exact(int64_t v) { return std::to_string(v); }
std::string exact(uint64_t v) { return std::to_string(v); }
std::string exact(const std::string& v) { return v; }
std::string exact(bool v) { return v ? "true" : "false"; }

// What a training checkpoint's metadata says about its run, every number checked.
struct StoredRun {
  int64_t step = 0, total = 0, limit_train = 0;  // limit_train 0: all images
  models::Config config;                          // batch_size, seed and every option the model takes
};

SafetensorsMetadata config_metadata(const std::string& model, const models::Config& c, int64_t limit_train,
                                    int64_t step, int64_t total) {
  SafetensorsMetadata m{{"model", model},
                        {"step", exact(step)},
                        {"total_steps", exact(total)},
                        {"batch_size", exact(*c.batch_size)},
                        {"seed", exact(*c.seed)},
                        {"limit_train", exact(limit_train)}};
  // Only the options the model takes (resolve_config leaves the others unset).
  if (c.lr) m["lr"] = exact(*c.lr);
  if (c.b1) m["b1"] = exact(*c.b1);
  if (c.b2) m["b2"] = exact(*c.b2);
  if (c.latent_dim) m["latent_dim"] = exact(*c.latent_dim);
  if (c.fit) m["fit"] = *c.fit;
  if (c.alpha) m["alpha"] = exact(*c.alpha);
  if (c.conditional) m["conditional"] = exact(*c.conditional);
  if (c.levels) m["levels"] = exact(*c.levels);
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
  // An option's value, in the range the command line allows for it.
  double option(const std::string& key) const {
    const std::string& v = text(key);
    double out = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    LOOM_CHECK(!v.empty() && ec == std::errc() && end == v.data() + v.size() && std::isfinite(out), "checkpoint ",
               path_, ": metadata '", key, "' = '", v, "' is not a finite number");
    const std::string problem = models::option_range_problem(key, out);
    LOOM_CHECK(problem.empty(), "checkpoint ", path_, ": metadata '", key, "' = '", v, "' is out of range (",
               models::option_flag(key), " ", problem, ")");
    return out;
  }
  // A fitting method ("gd" or "counts").
  const std::string& fit(const std::string& key) const {
    const std::string& v = text(key);
    const std::string problem = models::fit_problem(v);
    LOOM_CHECK(problem.empty(), "checkpoint ", path_, ": metadata '", key, "' = '", v, "' is out of range (",
               models::option_flag(key), " ", problem, ")");
    return v;
  }
  bool boolean(const std::string& key) const {
    const std::string& v = text(key);
    LOOM_CHECK(v == "true" || v == "false", "checkpoint ", path_, ": metadata '", key, "' = '", v,
               "' is not true or false");
    return v == "true";
  }

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
  // Only the options the model takes; others (from older checkpoints) mean nothing to it.
  if (reg.options.lr) r.config.lr = m.option("lr");
  if (reg.options.b1) r.config.b1 = m.option("b1");
  if (reg.options.b2) r.config.b2 = m.option("b2");
  if (reg.options.latent_dim) r.config.latent_dim = static_cast<int64_t>(m.option("latent_dim"));
  if (reg.options.fit) r.config.fit = m.fit("fit");
  if (reg.options.alpha) r.config.alpha = m.option("alpha");
  if (reg.options.conditional) r.config.conditional = m.boolean("conditional");
  if (reg.options.levels) r.config.levels = static_cast<int64_t>(m.option("levels"));
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

// The batch as the model wants it: on its device, in its pixel range, binarized
// when it models binary pixels. Loader images are in [0, 1].
Tensor prepare(const Tensor& images01, const models::DataSpec& spec, Generator& g, Device device) {
  NoGrad ng;
  Tensor x = spec.binarize ? data::binarize(images01, g) : images01;
  if (spec.lo != 0 || spec.hi != 1) x = x * (spec.hi - spec.lo) + spec.lo;
  return x.to(device);
}

models::Losses run_eval(models::Model& m, const data::LabeledImages& test, int64_t n, Device device, Generator& g) {
  n = std::min(n, test.images.size(0));
  if (n <= 0) return {};
  m.train(false);
  NoGrad ng;
  models::Losses totals;
  const int64_t chunk = 500;
  for (int64_t i = 0; i < n; i += chunk) {
    const int64_t j = std::min(n, i + chunk);
    Tensor x = prepare(slice(test.images, 0, i, j), m.data_spec(), g, device);
    models::Losses l = m.evaluate(x, slice(test.labels, 0, i, j).to(device));
    for (auto& [k, v] : l) totals[k] += v * static_cast<double>(j - i) / static_cast<double>(n);
  }
  m.train(true);
  return totals;
}

void write_samples(models::Model& m, int64_t n, const std::string& path, Generator& g) {
  m.train(false);
  Tensor s;
  {
    NoGrad ng;
    s = m.sample(n, g);
  }
  m.train(true);
  const models::DataSpec spec = m.data_spec();  // samples come in the range of the data the model sees
  GridOptions go;
  go.nrow = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  go.upscale = 2;
  save_image_grid(s, path, {spec.lo, spec.hi}, go);
}

// The model called name, or an Error suggesting the closest registered name.
const models::Registration& resolve_model(const std::string& name) {
  std::vector<std::string> names;
  for (const models::Registration& r : models::registry()) names.push_back(r.name);
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw Error(str("unknown model '", name, "'", cli::suggestion(name, names), "; run 'loom list' to see them"));
  return models::find_model(name);
}

data::LabeledImages load(const TrainOptions& o, data::Split split) {
  return o.load_data ? o.load_data(split) : data::load_mnist(split, o.data_dir);
}

}  // namespace

TrainResult train(const TrainOptions& o) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const models::Registration& reg = resolve_model(o.model);
  LOOM_CHECK(o.steps >= 0 && o.epochs >= 0 && (o.steps > 0 || o.epochs > 0),
             "train: give --steps N or --epochs N (N > 0)");
  LOOM_CHECK(!o.limit_train || *o.limit_train >= 1, "train: --limit must be >= 1, got ", o.limit_train.value_or(0));
  LOOM_CHECK(!o.config.device.is_cuda() || cuda_device_count() > o.config.device.index, "train: --device ",
             o.config.device, " requested, but ",
             cuda_device_count() == 0 ? "this build or machine has no CUDA device" : "that device does not exist");

  // Resume: the stored run's options, unless the command line repeats them.
  models::Config given = o.config;
  std::optional<int64_t> limit = o.limit_train;
  std::optional<Safetensors> ck;
  int64_t step = 0;
  if (!o.resume.empty()) {
    ck = load_safetensors(o.resume);
    check_model(*ck, o.resume, o.model, "train --resume: ");
    const StoredRun run = read_run(*ck, o.resume, reg);
    step = run.step;
    auto keep = [&](const std::string& field, auto& mine, const auto& stored) {
      if (!stored) return;  // an option the model does not take: resolve_config refuses it if given
      LOOM_CHECK(!mine || *mine == *stored, "train --resume: ",
                 field == "limit_train" ? std::string("--limit") : models::option_flag(field), " ", exact(*mine),
                 " contradicts the checkpoint, which stores ", field, " = ", exact(*stored),
                 " (leave the flag out to continue with the stored value)");
      mine = stored;
    };
    keep("lr", given.lr, run.config.lr);
    keep("b1", given.b1, run.config.b1);
    keep("b2", given.b2, run.config.b2);
    keep("latent_dim", given.latent_dim, run.config.latent_dim);
    keep("fit", given.fit, run.config.fit);
    keep("alpha", given.alpha, run.config.alpha);
    keep("conditional", given.conditional, run.config.conditional);
    keep("levels", given.levels, run.config.levels);
    keep("batch_size", given.batch_size, run.config.batch_size);
    keep("seed", given.seed, run.config.seed);
    // limit_train 0 in the checkpoint: every image.
    const std::optional<int64_t> stored_limit = run.limit_train;
    if (run.limit_train == 0) {
      LOOM_CHECK(!limit, "train --resume: --limit ", *limit,
                 " contradicts the checkpoint, which stores limit_train = 0 (every image; leave the flag out to "
                 "continue with the stored value)");
    } else {
      keep("limit_train", limit, stored_limit);
    }
  }
  models::Config config;
  try {
    config = models::resolve_config(reg, given);
  } catch (const Error& e) {
    throw Error(str("train: ", e.what()));
  }

  data::LabeledImages train_set = load(o, data::Split::Train);
  if (limit && *limit < train_set.images.size(0)) {
    train_set.images = slice(train_set.images, 0, 0, *limit);
    train_set.labels = slice(train_set.labels, 0, 0, *limit);
  }
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

  manual_seed(*config.seed);
  RngState rng{Generator(*config.seed ^ 0x9E3779B97F4A7C15ull)};
  std::unique_ptr<models::Model> model = o.make_model ? o.make_model(config) : reg.make(config);
  if (ck) restore(*model, rng, *ck, o.resume);

  // The data order continues exactly: epoch step / per_epoch, from its batch
  // step % per_epoch (the order of an epoch depends only on the seed and the epoch).
  data::DataLoaderOptions lo;
  lo.batch_size = batch_size;
  lo.drop_last = true;
  lo.seed = *config.seed;
  lo.first_epoch = step / per_epoch;
  lo.first_batch = step % per_epoch;
  data::DataLoader loader(train_set.images, train_set.labels, lo);

  fs::create_directories(o.out_dir);
  MetricsLog metrics((fs::path(o.out_dir) / "metrics.jsonl").string(), /*append=*/ck.has_value());
  ProgressBar::Options po;
  po.label = o.model;
  po.total = total;
  po.initial = step;
  po.style = o.progress ? ProgressBar::Style::Auto : ProgressBar::Style::Lines;
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
                     config_metadata(o.model, config, limit_train, step, total));
    last_good = ckpt_path;
    last_good_step = step;
  };

  // A finite loss that has exploded is divergence too: more than kExploded times
  // the magnitude (at least 1) it had at this run's first step.
  constexpr double kExploded = 1e6;
  std::map<std::string, double> first_loss;
  TrainResult result;
  model->train(true);
  while (step < total) {
    data::Batch b = loader.next();
    Tensor x = prepare(b.inputs, model->data_spec(), rng.trainer, config.device);
    models::Losses l = model->train_step(x, b.labels.to(config.device));
    ++step;
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
    if (o.sample_every > 0 && step % o.sample_every == 0 && step < total)
      write_samples(*model, o.n_samples, (fs::path(o.out_dir) / str("samples_", step, ".png")).string(), rng.trainer);
    if (o.checkpoint_every > 0 && step % o.checkpoint_every == 0) save();
  }
  bar.finish();
  if (last_good != ckpt_path || last_good_step != step) save();
  result.steps = step;
  result.checkpoint = ckpt_path;
  if (o.eval_size > 0) {
    data::LabeledImages test = load(o, data::Split::Test);
    result.eval = run_eval(*model, test, o.eval_size, config.device, rng.trainer);
  }
  result.samples = (fs::path(o.out_dir) / "samples.png").string();
  write_samples(*model, o.n_samples, result.samples, rng.trainer);
  return result;
}

std::unique_ptr<models::Model> load_model(const std::string& name, const std::string& checkpoint, Device device,
                                          const std::string& data_dir) {
  const models::Registration& reg = resolve_model(name);
  Safetensors ck = load_safetensors(checkpoint);
  check_model(ck, checkpoint, name, "");
  models::Config c = read_run(ck, checkpoint, reg).config;
  c.device = device;
  c.data_dir = data_dir;
  std::unique_ptr<models::Model> m = reg.make(models::resolve_config(reg, c));
  RngState rng;
  restore(*m, rng, ck, checkpoint);
  return m;
}

void sample(const std::string& name, const std::string& checkpoint, int64_t n, const std::string& out, Device device,
            uint64_t seed, const std::string& data_dir) {
  LOOM_CHECK(n > 0, "sample: -n must be positive, got ", n);
  std::unique_ptr<models::Model> m = load_model(name, checkpoint, device, data_dir);
  Generator g(seed);
  write_samples(*m, n, out, g);
}

models::Losses evaluate(const std::string& name, const std::string& checkpoint, Device device,
                        const std::string& data_dir, int64_t eval_size) {
  std::unique_ptr<models::Model> m = load_model(name, checkpoint, device, data_dir);
  Generator g(1);
  return run_eval(*m, data::load_mnist(data::Split::Test, data_dir), eval_size, device, g);
}

}  // namespace loom::tools
