// `loom train | sample | eval | list | plot`: the model toolkit's command line.
// Flag names follow the PyTorch GAN/VAE example scripts where they exist;
// their --n_epochs / --batch_size spellings are accepted as aliases.
#include <algorithm>
#include <iostream>
#include <sstream>

#include "autograd/io/input_file.h"
#include "autograd/io/json.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/plot.h"
#include "tools/train.h"

namespace loom::cli {
namespace {

const FlagSpec kHelp{"--help", "", "show this help", {"-h"}};
const FlagSpec kDevice{"--device", "DEV", "cpu (default), cuda or cuda:N"};
const FlagSpec kData{"--data", "DIR", "the model's data (default: the Fashion-MNIST IDX folder " +
                                        std::string(data::kFashionMnistDir) + ")", {"--data-dir", "--dataroot"}};
const FlagSpec kSeed{"--seed", "N", "random seed (default 0)"};
const FlagSpec kCkpt{"--ckpt", "FILE", "a checkpoint written by loom train", {"--checkpoint"}};
const FlagSpec kMaxImagePixels{"--max-image-pixels", "N",
                                "refuse image files declaring more pixels (width x height; default " +
                                    std::to_string(data::kDefaultMaxImagePixels) + " = 2^26, at most 2^32)"};
const FlagSpec kImportanceSamples{"--importance-samples", "K",
                                  "latent-variable models: K samples per image for log p(x) (default: the model's)"};

// How an iterative sampler (diffusion models) draws the samples of `loom sample` and `loom eval --fd`.
const std::vector<FlagSpec> kSamplerFlags{
    {"--sampler", "NAME", "diffusion models: ancestral (all T steps) or ddim (default: the model's)"},
    {"--sample-steps", "S", "diffusion models: DDIM's number of steps"},
    {"--eta", "ETA", "diffusion models: DDIM's eta (0: deterministic)"},
    {"--guidance", "W", "conditional diffusion models: classifier-free guidance weight w"}};

Device device_of(const Args& a) {
  const Device d = Device::parse(a.value("--device", "cpu"));
  if (d.is_cuda() && cuda_device_count() <= d.index)
    throw UsageError(a.command + ": --device " + a.value("--device") + " requested, but " +
                     (cuda_device_count() == 0 ? "this build or machine has no CUDA device" : "that device does not exist"));
  return d;
}

std::string model_arg(const Args& a, const std::string& usage) {
  if (a.positional.size() != 1) throw UsageError(a.command + ": expected one MODEL argument\n" + usage);
  return a.positional[0];
}

bool help(const Args& a, const std::string& usage) {
  if (!a.has("--help")) return false;
  std::cout << usage;
  return true;
}

// A non-negative integer flag that fits int64 (0 when absent).
int64_t count(const Args& a, const std::string& flag) {
  const uint64_t v = a.unsigned_value(flag, 0);
  if (v > static_cast<uint64_t>(INT64_MAX))
    throw UsageError(a.command + ": " + flag + " " + a.value(flag) + " is too large (at most " +
                     std::to_string(INT64_MAX) + ")");
  return static_cast<int64_t>(v);
}

models::SamplerSettings sampler_settings(const Args& a) {
  models::SamplerSettings s;
  s.sampler = a.value("--sampler");
  if (a.has("--sample-steps")) s.steps = count(a, "--sample-steps");
  if (a.has("--eta")) s.eta = a.number("--eta", 0);
  if (a.has("--guidance")) s.guidance = a.number("--guidance", 0);
  return s;
}

// Flags a command takes: `base` with `more` inserted before its last entry (--help).
std::vector<FlagSpec> with(std::vector<FlagSpec> base, const std::vector<FlagSpec>& more) {
  base.insert(base.end() - 1, more.begin(), more.end());
  return base;
}

// --max-image-pixels, in [1, data::kMaxImagePixelsLimit] (the default when absent).
int64_t max_image_pixels(const Args& a) {
  if (!a.has(kMaxImagePixels.name)) return data::kDefaultMaxImagePixels;
  const int64_t v = count(a, kMaxImagePixels.name);
  if (v < 1 || v > data::kMaxImagePixelsLimit)
    throw UsageError(a.command + ": --max-image-pixels must lie in [1, " + std::to_string(data::kMaxImagePixelsLimit) +
                     "], got " + a.value(kMaxImagePixels.name));
  return v;
}

std::string join_losses(const models::Losses& l) {
  std::string out;
  for (auto& [k, v] : l) out += str(out.empty() ? "" : "  ", k, " ", fmt(v, "%.5g"));
  return out;
}

}  // namespace

// The flag of each model option, over every registered model (an option has one
// kind wherever it is declared): the train command parses all of them, then
// resolve_config refuses one the chosen model does not take, naming the model.
std::vector<FlagSpec> model_option_flags(const models::Registration* only) {
  std::vector<FlagSpec> out;
  for (const models::Registration& r : models::registry()) {
    if (only && only != &r) continue;
    for (const models::OptionSpec& o : r.options) {
      if (std::any_of(out.begin(), out.end(), [&](const FlagSpec& f) { return f.name == o.flag(); })) continue;
      std::string value_name = "X", help = o.help;
      if (o.kind == models::OptionSpec::Kind::Integer) value_name = "N";
      if (o.kind == models::OptionSpec::Kind::Switch) value_name = "";
      if (o.kind == models::OptionSpec::Kind::Text) value_name = "TEXT";
      if (o.kind == models::OptionSpec::Kind::Choice) {
        value_name.clear();
        for (const std::string& c : o.choices) value_name += (value_name.empty() ? "" : "|") + c;
      }
      if (o.kind == models::OptionSpec::Kind::Real || o.kind == models::OptionSpec::Kind::Integer)
        help += ", " + o.range.bounds();
      if (only && o.kind != models::OptionSpec::Kind::Switch && !o.default_value.empty())
        help += " (default " + o.default_value + ")";
      out.push_back({o.flag(), value_name, help});
    }
  }
  return out;
}

int train_command(const std::vector<std::string>& args) {
  std::vector<FlagSpec> flags{
      {"--epochs", "N", "passes over the training set", {"--n-epochs"}},
      {"--steps", "N", "optimizer steps (wins over --epochs)", {"--n-steps", "--iters"}},
      {"--batch-size", "N", "batch size, >= 1 (default 64)"},
      kDevice,
      kSeed,
      {"--sample-every", "N", "write a sample grid every N steps", {"--sample-interval"}},
      {"--checkpoint-every", "N", "also checkpoint every N steps"},
      {"--out", "DIR", "output folder (default out/MODEL)", {"--out-dir"}},
      {"--resume", "CKPT", "continue a run from its checkpoint, with its stored options"},
      {"--data", "DIR", "the model's data: the Fashion-MNIST IDX folder (default " + std::string(data::kFashionMnistDir) +
                            ") or, for image-folder models, the image folder", {"--data-dir", "--dataroot"}},
      {"--limit", "N", "train on the first N >= 1 images only"},
      kMaxImagePixels,
      kCudaGraph,
      kHelp,
  };
  const size_t common = flags.size();
  for (FlagSpec& f : model_option_flags(nullptr)) {
    for (size_t i = 0; i < common; ++i)
      LOOM_CHECK(flags[i].name != f.name && std::find(flags[i].aliases.begin(), flags[i].aliases.end(), f.name) ==
                                                flags[i].aliases.end(),
                 "a model declares the option ", f.name, ", which is a flag of loom train itself: rename the option");
    flags.push_back(std::move(f));
  }
  Args a = parse("train", args, flags);
  if (a.has("--help")) {
    const std::vector<FlagSpec> mine(flags.begin(), flags.begin() + static_cast<std::ptrdiff_t>(common));
    if (a.positional.size() == 1) {
      const models::Registration& r = models::find_model(a.positional[0]);
      std::cout << "usage: loom train " << r.name << " [flags]\n\n" << r.summary << "\n\n" << describe(mine)
                << "\nOptions of " << r.name << ":\n"
                << (r.options.empty() ? "  (none)\n" : describe(model_option_flags(&r)));
    } else {
      std::cout << "usage: loom train MODEL [flags]\n\n" << describe(mine)
                << "\nEach model has options of its own: loom train MODEL --help. Models: loom list\n";
    }
    return 0;
  }
  const std::string usage = "usage: loom train MODEL [flags]   (loom train MODEL --help lists the model's options)\n";
  tools::TrainOptions o;
  o.model = model_arg(a, usage);
  o.epochs = count(a, "--epochs");
  o.steps = count(a, "--steps");
  if (o.epochs == 0 && o.steps == 0) throw UsageError("train: give --epochs N or --steps N\n" + usage);
  // Options not given stay unset: the model's default, or the checkpoint's value on --resume.
  if (a.has("--batch-size")) o.config.batch_size = count(a, "--batch-size");
  for (size_t i = common; i < flags.size(); ++i) {
    if (!a.has(flags[i].name)) continue;
    const std::string name = flags[i].name.substr(2);
    std::string field = name;
    std::replace(field.begin(), field.end(), '-', '_');
    o.config.options[field] = flags[i].value_name.empty() ? "true" : a.value(flags[i].name);
  }
  o.config.device = device_of(a);
  if (a.has("--seed")) o.config.seed = a.unsigned_value("--seed", 0);
  o.config.data_dir = a.value("--data", data::kFashionMnistDir);
  o.data_dir = o.config.data_dir;
  o.sample_every = count(a, "--sample-every");
  o.checkpoint_every = count(a, "--checkpoint-every");
  o.out_dir = a.value("--out", "out/" + o.model);
  o.resume = a.value("--resume");
  if (a.has("--limit")) o.limit_train = count(a, "--limit");
  o.max_image_pixels = max_image_pixels(a);
  o.cuda_graph = a.has("--cuda-graph");
  tools::TrainResult r = tools::train(o);
  std::cout << "trained " << o.model << " for " << r.steps << " steps\n"
            << "  last step: " << join_losses(r.last) << "\n";
  if (!r.eval.empty()) std::cout << "  held-out:  " << join_losses(r.eval) << "\n";
  std::cout << "  checkpoint " << r.checkpoint << "\n  samples    " << r.samples << "\n  metrics    " << o.out_dir
            << "/metrics.jsonl\n";
  return 0;
}

int sample_command(const std::vector<std::string>& args) {
  const std::vector<FlagSpec> flags{kCkpt,
                                    {"-n", "N", "number of samples (default 64)", {"--n"}},
                                    {"--out", "FILE", "PNG to write (default samples.png)", {"-o"}},
                                    {"--label", "CLASS", "class-conditional models: the class (name or index 0-9)"},
                                    {"--prompt", "TEXT", "text-conditional models: the text"},
                                    {"--input", "PATH", "translation models: an image file or a folder of images"},
                                    {"--direction", "a2b|b2a", "two-domain translation models (cyclegan): translate "
                                                               "domain A's images into B (a2b, default) or B's into A"},
                                    {"--target", "DOMAIN", "multi-domain translation models (stargan): the domain to "
                                                           "translate into (name or index; default: a column for each)"},
                                    {"--patches", "K", "models completing images from pieces (puzzlegan): the "
                                                       "pieces cut from each --input image (default: the model's)"},
                                    {"--code", "K", "models with a categorical latent code (infogan): its value"},
                                    {"--interpolate", "", "a grid of walks through the latent space (slerp)"},
                                    {"--save-trajectory", "FILE", "diffusion models: also a PNG of the reverse process, "
                                                                  "rows from pure noise to the sample"},
                                    kMaxImagePixels,
                                    kDevice,
                                    kSeed,
                                    kData,
                                    kHelp};
  const std::vector<FlagSpec> all = with(flags, kSamplerFlags);
  const std::string usage = "usage: loom sample MODEL --ckpt FILE [-n 64] [--out grid.png]\n\n" + describe(all);
  Args a = parse("sample", args, all);
  if (help(a, usage)) return 0;
  const std::string model = model_arg(a, usage);
  if (!a.has("--ckpt")) throw UsageError("sample: --ckpt FILE is required\n" + usage);
  const std::string out = a.value("--out", "samples.png");
  if (a.has("--patches") && count(a, "--patches") == 0)
    throw UsageError("sample: --patches must be at least 1\n" + usage);
  tools::sample(model, a.value("--ckpt"), a.has("-n") ? count(a, "-n") : 64, out, device_of(a),
                a.unsigned_value("--seed", 0), a.value("--data", data::kFashionMnistDir),
                {a.value("--label"), a.value("--prompt"), a.value("--input"), a.value("--code"), a.has("--interpolate"),
                 max_image_pixels(a), a.value("--direction"), a.value("--target"), sampler_settings(a),
                 a.value("--save-trajectory"), count(a, "--patches")});
  std::cout << "wrote " << out << "\n";
  return 0;
}

int eval_command(const std::vector<std::string>& args) {
  const std::vector<FlagSpec> flags{
      kCkpt,
      {"-n", "N", "held-out images to evaluate (default all 10000)", {"--n"}},
      kImportanceSamples,
      {"--bound-timesteps", "K", "diffusion models: time steps drawn per image for the bound (default 4; T - 1: exact)"},
      {"--fd", "", "also the Frechet distance of samples (always for models that only sample)"},
      {"--classifier", "CKPT", "the classifier whose features the Frechet distance uses (default "
                               "out/classifier/checkpoint.safetensors)"},
      {"--json", "", "print one JSON object"},
      kDevice,
      kData,
      kMaxImagePixels,
      kHelp};
  const std::vector<FlagSpec> all = with(flags, kSamplerFlags);
  const std::string usage = "usage: loom eval MODEL --ckpt FILE [--json]\n\n" + describe(all);
  Args a = parse("eval", args, all);
  if (help(a, usage)) return 0;
  const std::string model = model_arg(a, usage);
  if (!a.has("--ckpt")) throw UsageError("eval: --ckpt FILE is required\n" + usage);
  const int64_t n = count(a, "-n");
  tools::EvalRequest r;
  r.checkpoint = a.value("--ckpt");
  r.device = device_of(a);
  r.data_dir = a.value("--data", data::kFashionMnistDir);
  if (a.has("-n")) r.images = n;
  r.options.importance_samples = count(a, "--importance-samples");
  r.options.bound_timesteps = count(a, "--bound-timesteps");
  r.sampler = sampler_settings(a);
  r.fd = a.has("--fd");
  r.classifier = a.value("--classifier", r.classifier);
  r.max_image_pixels = max_image_pixels(a);
  const tools::Evaluation e = tools::evaluate(model, r);
  if (a.has("--json")) {
    JsonObject j;
    j.add("model", model).add("kind", models::kind_name(e.kind)).add("parameters", e.parameters);
    for (auto& [k, v] : e.metrics) j.add(k, v);
    std::cout << j.str() << "\n";
    return 0;
  }
  TextTable t({"metric", "value"});
  t.add({"kind", models::kind_name(e.kind)});
  t.add({"parameters", std::to_string(e.parameters)});
  for (auto& [k, v] : e.metrics) t.add({k, fmt(v, "%.6g")});
  t.print(std::cout);
  return 0;
}

int score_command(const std::vector<std::string>& args) {
  const std::vector<FlagSpec> flags{
      kCkpt,
      {"--input", "PATH", "an image file or a folder of images"},
      kImportanceSamples,
      {"--json", "", "print one JSON object per image"},
      kMaxImagePixels,
      kDevice,
      kHelp};
  const std::string usage = "usage: loom score MODEL --ckpt FILE --input PATH|DIR [--json]\n\n" + describe(flags);
  Args a = parse("score", args, flags);
  if (help(a, usage)) return 0;
  const std::string model = model_arg(a, usage);
  if (!a.has("--ckpt")) throw UsageError("score: --ckpt FILE is required\n" + usage);
  if (!a.has("--input")) throw UsageError("score: --input PATH|DIR is required\n" + usage);
  const std::vector<tools::Score> scores = tools::score(model, a.value("--ckpt"), device_of(a), a.value("--input"),
                                                       {.importance_samples = count(a, "--importance-samples")},
                                                       max_image_pixels(a));
  if (a.has("--json")) {
    for (const tools::Score& s : scores)
      std::cout << JsonObject().add("path", s.path).add("log_px", s.log_px).add("bits_per_dim", s.bits_per_dim).str()
                << "\n";
    return 0;
  }
  TextTable t({"image", "log p(x) (nats)", "bits/dim"});
  for (const tools::Score& s : scores) t.add({s.path, fmt(s.log_px, "%.3f"), fmt(s.bits_per_dim, "%.4f")});
  t.print(std::cout);
  return 0;
}

int list_command(const std::vector<std::string>& args) {
  Args a = parse("list", args, {kHelp});
  if (help(a, "usage: loom list\n")) return 0;
  TextTable t({"model", "what it is"});
  for (const models::Registration& r : models::registry()) t.add({r.name, r.summary});
  t.print(std::cout);
  return 0;
}

int plot_command(const std::vector<std::string>& args) {
  const std::vector<FlagSpec> flags{{"-o", "FILE", "PNG to write (default curves.png)", {"--out"}},
                                    {"--log-y", "", "logarithmic loss axis"},
                                    kHelp};
  const std::string usage = "usage: loom plot metrics.jsonl [-o curves.png]\n\n" + describe(flags);
  Args a = parse("plot", args, flags);
  if (help(a, usage)) return 0;
  if (a.positional.size() != 1) throw UsageError("plot: expected one metrics.jsonl file\n" + usage);
  const std::string path = a.positional[0];
  // A regular file (a FIFO would block), whole: a metrics log is a few MB.
  std::istringstream in(read_file(path, "plot", uint64_t(1) << 30));
  // One series per loss name, in order of first appearance.
  plot::Chart chart;
  chart.title = "training curves: " + path;
  chart.xlabel = "step";
  chart.ylabel = "loss";
  chart.log_y = a.has("--log-y");
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    const Json rec = parse_json(line, str("plot: ", path, ": line ", n));
    const Json* step = rec.find("step");
    const Json* losses = rec.find("losses");
    LOOM_CHECK(step && step->kind == Json::Kind::Integer && losses && losses->kind == Json::Kind::Object, "plot: ", path,
               ": line ", n, " is not a loom metrics record (needs \"step\" and \"losses\")");
    for (size_t k = 0; k < losses->keys.size(); ++k) {
      const Json& v = losses->values[k];
      if (v.kind != Json::Kind::Integer && v.kind != Json::Kind::Number) continue;  // null: a non-finite loss
      auto s = std::find_if(chart.series.begin(), chart.series.end(),
                            [&](const plot::Series& x) { return x.label == losses->keys[k]; });
      if (s == chart.series.end()) s = chart.series.insert(chart.series.end(), plot::Series{losses->keys[k], {}, {}});
      s->x.push_back(step->number);
      s->y.push_back(v.number);
    }
  }
  LOOM_CHECK(!chart.series.empty(), "plot: ", path, " holds no losses");
  const std::string out = a.value("-o", "curves.png");
  plot::write_png(chart, out);
  std::cout << "wrote " << out << "\n";
  return 0;
}

}  // namespace loom::cli
