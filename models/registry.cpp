#include <algorithm>
#include <cmath>
#include <type_traits>

#include "models/model.h"

namespace loom::models {

void Model::train(bool on) {
  for (auto& [name, m] : modules()) m->train(on);
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

std::string option_flag(const std::string& field) {
  std::string f = "--" + field;
  std::replace(f.begin(), f.end(), '_', '-');
  return f;
}

std::string option_range_problem(const std::string& field, double v) {
  if (field == "lr") return std::isfinite(v) && v > 0 ? "" : "must be > 0";
  if (field == "b1" || field == "b2") return v >= 0 && v < 1 ? "" : "must lie in [0, 1)";
  if (field == "latent_dim")
    return v >= 1 && v <= kMaxLatentDim && v == std::floor(v) ? "" : str("must lie in [1, ", kMaxLatentDim, "]");
  if (field == "alpha") return std::isfinite(v) && v >= 0 ? "" : "must be >= 0";
  if (field == "levels") return v == 2 || v == 256 ? "" : "must be 2 or 256";
  if (field == "batch_size") return v >= 1 && v <= 9.0e18 && v == std::floor(v) ? "" : "must be >= 1";
  throw Error(str("option_range_problem: unknown option '", field, "'"));
}

std::string fit_problem(const std::string& fit) {
  return fit == "gd" || fit == "counts" ? "" : "must be gd or counts";
}

Config resolve_config(const Registration& r, Config c) {
  std::string takes;
  auto note = [&](const char* field, bool taken) {
    if (taken) takes += (takes.empty() ? "" : ", ") + option_flag(field);
  };
  note("lr", r.options.lr.has_value());
  note("b1", r.options.b1.has_value());
  note("b2", r.options.b2.has_value());
  note("latent_dim", r.options.latent_dim.has_value());
  note("fit", r.options.fit.has_value());
  note("alpha", r.options.alpha.has_value());
  note("conditional", r.options.conditional.has_value());
  note("levels", r.options.levels.has_value());
  auto resolve = [&](const char* field, auto& given, const auto& dflt) {
    if (!given) {
      given = dflt;
      return;
    }
    LOOM_CHECK(dflt.has_value(), option_flag(field), " does not apply to model '", r.name, "' (it takes ",
               takes.empty() ? "no model options" : takes, ")");
    using T = std::decay_t<decltype(*given)>;
    if constexpr (std::is_same_v<T, std::string>) {
      const std::string problem = fit_problem(*given);
      LOOM_CHECK(problem.empty(), option_flag(field), " ", problem, ", got '", *given, "'");
    } else if constexpr (!std::is_same_v<T, bool>) {
      const std::string problem = option_range_problem(field, static_cast<double>(*given));
      LOOM_CHECK(problem.empty(), option_flag(field), " ", problem, ", got ", *given);
    }
  };
  resolve("lr", c.lr, r.options.lr);
  resolve("b1", c.b1, r.options.b1);
  resolve("b2", c.b2, r.options.b2);
  resolve("latent_dim", c.latent_dim, r.options.latent_dim);
  resolve("fit", c.fit, r.options.fit);
  resolve("alpha", c.alpha, r.options.alpha);
  resolve("conditional", c.conditional, r.options.conditional);
  resolve("levels", c.levels, r.options.levels);
  if (!c.batch_size) c.batch_size = 64;
  const std::string problem = option_range_problem("batch_size", static_cast<double>(*c.batch_size));
  LOOM_CHECK(problem.empty(), "--batch-size ", problem, ", got ", *c.batch_size);
  if (!c.seed) c.seed = 0;
  return c;
}

}  // namespace loom::models
