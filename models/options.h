// Model options: each model declares the hyper-parameters it takes (name, kind,
// default, accepted range, help) in options_<name>(). The command line offers
// them as flags (`loom train MODEL --help` lists them), the checkpoint stores
// them whole, and sample, eval and --resume restore them: nothing lists a
// model's options by hand anywhere else.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace loom::models {

// The interval a number must lie in, with open or closed ends.
struct Range {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  static Range positive() { return {0, std::numeric_limits<double>::infinity(), true, false}; }  // (0, ∞)
  static Range at_least(double lo) { return {lo, std::numeric_limits<double>::infinity(), false, false}; }
  static Range closed(double lo, double hi) { return {lo, hi, false, false}; }
  static Range right_open(double lo, double hi) { return {lo, hi, false, true}; }  // [lo, hi): Adam's betas
  bool contains(double v) const;
  std::string bounds() const;    // "> 0", "in [0, 1)"
  std::string describe() const;  // "must be > 0", "must be in [0, 1)"
};

struct OptionSpec {
  enum class Kind { Real, Integer, Switch, Choice, Text };
  std::string name;  // "latent_dim": the flag --latent-dim and the checkpoint's metadata key
  Kind kind = Kind::Real;
  std::string default_value;  // canonical text: "0.001", "20", "false", "gd", "" (Text: any string, itself)
  std::string help;
  Range range{};                     // Real and Integer
  std::vector<std::string> choices;  // Choice: the accepted words (which may be numbers: levels 2 or 256)

  std::string flag() const;  // "--latent-dim"
  // The canonical text of value (numbers written so they read back exactly), or
  // an Error "<flag> must ..., got <value>" naming the flag and what it accepts.
  std::string canonical(const std::string& value) const;
};

OptionSpec real_option(std::string name, double dflt, Range range, std::string help);
OptionSpec integer_option(std::string name, int64_t dflt, Range range, std::string help);
OptionSpec switch_option(std::string name, std::string help);  // off unless given
OptionSpec choice_option(std::string name, std::string dflt, std::vector<std::string> choices, std::string help);
// Any text (a path, a name), stored as given; "" as a default usually means "not given".
OptionSpec text_option(std::string name, std::string dflt, std::string help);

// Adam's learning rate and betas (Kingma & Ba 2015, Algorithm 1: α, β₁, β₂) with a model's defaults.
std::vector<OptionSpec> adam_options(double lr, double b1, double b2);
inline constexpr int64_t kMaxLatentDim = 65536;
OptionSpec latent_dim_option(int64_t dflt);

// The shortest text that reads back as exactly v.
std::string exact_text(double v);

// Option values by name, as canonical text.
using OptionValues = std::map<std::string, std::string>;

}  // namespace loom::models
