#include "tools/train.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

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

SafetensorsMetadata config_metadata(const TrainOptions& o, int64_t step, int64_t total) {
  const models::Config& c = o.config;
  return {{"model", o.model},
          {"step", std::to_string(step)},
          {"total_steps", std::to_string(total)},
          {"batch_size", std::to_string(c.batch_size)},
          {"lr", str(c.lr)},
          {"b1", str(c.b1)},
          {"b2", str(c.b2)},
          {"latent_dim", std::to_string(c.latent_dim)},
          {"seed", std::to_string(c.seed)},
          {"limit_train", std::to_string(o.limit_train)}};
}

int64_t meta_int(const Safetensors& s, const std::string& key) {
  auto it = s.metadata.find(key);
  LOOM_CHECK(it != s.metadata.end(), "checkpoint: metadata has no '", key, "' (not a loom training checkpoint?)");
  try {
    return std::stoll(it->second);
  } catch (const std::exception&) {
    throw Error(str("checkpoint: metadata '", key, "' = '", it->second, "' is not an integer"));
  }
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

void restore(models::Model& m, RngState& rng, const Safetensors& s) {
  for (auto& [mname, mod] : m.modules()) mod->load_state_dict(with_prefix(s, str("model.", mname, ".")));
  for (auto& [oname, opt] : m.optimizers()) opt->load_state_dict(with_prefix(s, str("optim.", oname, ".")));
  auto gen = [&](const std::string& name) {
    std::vector<int64_t> v = s.at(name).to_vector<int64_t>();
    LOOM_CHECK(v.size() == 2, "checkpoint: '", name, "' must hold (seed, offset)");
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
  const models::Registration& reg = resolve_model(o.model);
  LOOM_CHECK(o.config.batch_size > 0, "train: --batch-size must be positive, got ", o.config.batch_size);
  LOOM_CHECK(o.steps > 0 || o.epochs > 0, "train: give --steps N or --epochs N (N > 0)");
  LOOM_CHECK(!o.config.device.is_cuda() || cuda_device_count() > o.config.device.index, "train: --device ",
             o.config.device, " requested, but ",
             cuda_device_count() == 0 ? "this build or machine has no CUDA device" : "that device does not exist");

  data::LabeledImages train_set = load(o, data::Split::Train);
  if (o.limit_train > 0 && o.limit_train < train_set.images.size(0)) {
    train_set.images = slice(train_set.images, 0, 0, o.limit_train);
    train_set.labels = slice(train_set.labels, 0, 0, o.limit_train);
  }
  manual_seed(o.config.seed);
  RngState rng{Generator(o.config.seed ^ 0x9E3779B97F4A7C15ull)};
  std::unique_ptr<models::Model> model = reg.make(o.config);

  int64_t step = 0;
  if (!o.resume.empty()) {
    Safetensors ck = load_safetensors(o.resume);
    auto it = ck.metadata.find("model");
    LOOM_CHECK(it != ck.metadata.end() && it->second == o.model, "train --resume: ", o.resume, " is a checkpoint of '",
               it == ck.metadata.end() ? "?" : it->second, "', not of '", o.model, "'");
    restore(*model, rng, ck);
    step = meta_int(ck, "step");
  }

  data::DataLoaderOptions lo;
  lo.batch_size = o.config.batch_size;
  lo.drop_last = true;
  lo.seed = o.config.seed;
  data::DataLoader loader(train_set.images, train_set.labels, lo);
  LOOM_CHECK(loader.batches_per_epoch() > 0, "train: ", train_set.images.size(0), " training images do not fill one batch of ",
             o.config.batch_size);
  const int64_t total = o.steps > 0 ? o.steps : o.epochs * loader.batches_per_epoch();
  // Resume: skip the batches already consumed so the data order continues exactly.
  for (int64_t i = 0; i < step; ++i) loader.next();

  fs::create_directories(o.out_dir);
  MetricsLog metrics((fs::path(o.out_dir) / "metrics.jsonl").string(), /*append=*/!o.resume.empty());
  ProgressBar::Options po;
  po.label = o.model;
  po.total = total;
  po.initial = step;
  po.style = o.progress ? ProgressBar::Style::Auto : ProgressBar::Style::Lines;
  ProgressBar bar(po);
  const std::string ckpt_path = (fs::path(o.out_dir) / "checkpoint.safetensors").string();
  auto save = [&] {
    save_safetensors(ckpt_path, checkpoint_tensors(*model, rng), config_metadata(o, step, total));
  };

  TrainResult result;
  model->train(true);
  while (step < total) {
    data::Batch b = loader.next();
    Tensor x = prepare(b.inputs, model->data_spec(), rng.trainer, o.config.device);
    models::Losses l = model->train_step(x, b.labels.to(o.config.device));
    ++step;
    for (auto& [k, v] : l)
      LOOM_CHECK(std::isfinite(v), "train: loss '", k, "' became ", v, " at step ", step,
                 " (diverged: lower --lr; the last checkpoint is ", ckpt_path, ")");
    Losses shown(l.begin(), l.end());
    bar.update(step, shown);
    MetricsRecord r;
    r.step = step;
    r.losses = shown;
    r.it_per_s = bar.rate();
    if (!model->optimizers().empty()) r.lr = model->optimizers()[0].second->lr();
    metrics.write(r);
    result.last = l;
    if (o.sample_every > 0 && step % o.sample_every == 0 && step < total)
      write_samples(*model, o.n_samples, (fs::path(o.out_dir) / str("samples_", step, ".png")).string(), rng.trainer);
    if (o.checkpoint_every > 0 && step % o.checkpoint_every == 0) save();
  }
  bar.finish();
  save();
  result.steps = step;
  result.checkpoint = ckpt_path;
  if (o.eval_size > 0) {
    data::LabeledImages test = load(o, data::Split::Test);
    result.eval = run_eval(*model, test, o.eval_size, o.config.device, rng.trainer);
  }
  result.samples = (fs::path(o.out_dir) / "samples.png").string();
  write_samples(*model, o.n_samples, result.samples, rng.trainer);
  return result;
}

std::unique_ptr<models::Model> load_model(const std::string& name, const std::string& checkpoint, Device device,
                                          const std::string& data_dir) {
  Safetensors ck = load_safetensors(checkpoint);
  auto it = ck.metadata.find("model");
  LOOM_CHECK(it != ck.metadata.end() && it->second == name, checkpoint, " is a checkpoint of '",
             it == ck.metadata.end() ? "?" : it->second, "', not of '", name, "'");
  models::Config c;
  c.batch_size = meta_int(ck, "batch_size");
  c.latent_dim = meta_int(ck, "latent_dim");
  c.seed = static_cast<uint64_t>(meta_int(ck, "seed"));
  c.device = device;
  c.data_dir = data_dir;
  std::unique_ptr<models::Model> m = resolve_model(name).make(c);
  RngState rng;
  restore(*m, rng, ck);
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
