#include <algorithm>
#include <cmath>
#include <utility>

#include "models/model.h"

namespace loom::models {

Config& Config::set(const std::string& name, const std::string& value) {
  options[name] = value;
  return *this;
}
Config& Config::set(const std::string& name, double value) { return set(name, exact_text(value)); }
Config& Config::set(const std::string& name, int64_t value) { return set(name, std::to_string(value)); }
Config& Config::set(const std::string& name, bool value) { return set(name, std::string(value ? "true" : "false")); }

const std::string& Config::text(const std::string& name) const {
  auto it = options.find(name);
  LOOM_CHECK(it != options.end(), "model option '", name, "' is not set (the model does not declare it)");
  return it->second;
}
double Config::real(const std::string& name) const { return std::stod(text(name)); }
int64_t Config::integer(const std::string& name) const { return std::stoll(text(name)); }
bool Config::flag(const std::string& name) const { return text(name) == "true"; }

const char* kind_name(ModelKind k) {
  switch (k) {
    case ModelKind::Classifier: return "classifier";
    case ModelKind::Likelihood: return "exact likelihood";
    case ModelKind::LatentVariable: return "latent variable (bound)";
    case ModelKind::Sampler: return "sampler";
  }
  return "?";
}

void Model::train(bool on) {
  for (auto& [name, m] : modules()) m->train(on);
}

Tensor Model::score(const Tensor&, const EvalOptions&) {
  throw Error(str("score: a ", kind_name(kind()), " model has no density to score images with"));
}

LatentCodes Model::latent_codes(const Tensor&, Generator&) { return {}; }

std::string Model::class_prompt(int64_t) const {
  throw Error("class_prompt: this model takes no text prompt");
}

void Model::set_sampler(const SamplerSettings&) {
  throw Error("sample: this model has no iterative sampler (--sampler, --sample-steps, --eta, --guidance)");
}

SampleGrid Model::trajectory(int64_t, int64_t, const Condition&, Generator&) {
  throw Error("sample: this model has no iterative sampler to draw the trajectory of (--save-trajectory)");
}

namespace {
thread_local std::vector<std::pair<std::string, Tensor>> g_captured_losses;
}

Losses step_losses(const std::vector<std::pair<std::string, Tensor>>& scalars) {
  if (CudaGraph::capturing()) {
    g_captured_losses.clear();
    for (const auto& [name, t] : scalars) g_captured_losses.emplace_back(name, t.detach());
    return {};
  }
  Losses out;
  for (const auto& [name, t] : scalars) out[name] = t.item();
  return out;
}

std::vector<std::pair<std::string, Tensor>> take_captured_losses() { return std::exchange(g_captured_losses, {}); }

Tensor cycling_labels(int64_t n, int64_t run, int64_t classes) {
  LOOM_CHECK(n >= 0 && run >= 1 && classes >= 1, "cycling_labels: need n >= 0, run >= 1 and classes >= 1, got ", n,
             ", ", run, ", ", classes);
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = i / run % classes;
  return from_vector(y, {n});
}

int64_t Model::parameter_count() {
  int64_t n = 0;
  for (auto& [name, m] : modules())
    for (const Tensor& p : m->parameters()) n += p.numel();
  return n;
}

const std::vector<Registration>& registry() {
  static const std::vector<Registration> all{
#define X(name, summary) Registration{#name, summary, &make_##name, options_##name()},
#include "models/models.def"
#undef X
  };
  return all;
}

const Registration& find_model(const std::string& name) {
  std::string names;
  for (const Registration& r : registry()) {
    if (name == r.name) return r;
    names += str(names.empty() ? "" : ", ", r.name);
  }
  throw Error(str("unknown model '", name, "'; models: ", names));
}

const OptionSpec* find_option(const Registration& r, const std::string& name) {
  for (const OptionSpec& s : r.options)
    if (s.name == name) return &s;
  return nullptr;
}

Config resolve_config(const Registration& r, Config c) {
  for (auto& [name, value] : c.options) {
    const OptionSpec* spec = find_option(r, name);
    if (!spec) {
      std::string takes;
      for (const OptionSpec& s : r.options) takes += (takes.empty() ? "" : ", ") + s.flag();
      OptionSpec unknown;
      unknown.name = name;
      throw Error(str(unknown.flag(), " does not apply to model '", r.name, "' (it takes ",
                      takes.empty() ? "no model options" : takes, ")"));
    }
    value = spec->canonical(value);
  }
  for (const OptionSpec& s : r.options) c.options.emplace(s.name, s.default_value);
  if (!c.batch_size) c.batch_size = 64;
  LOOM_CHECK(*c.batch_size >= 1, "--batch-size must be >= 1, got ", *c.batch_size);
  if (!c.seed) c.seed = 0;
  return c;
}

}  // namespace loom::models
