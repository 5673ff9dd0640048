#include "models/options.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "autograd/loom.h"

namespace loom::models {

bool Range::contains(double v) const {
  return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
}

std::string Range::bounds() const {
  const bool low = std::isfinite(lo), high = std::isfinite(hi);
  if (low && high) return str("in ", lo_open ? "(" : "[", lo, ", ", hi, hi_open ? ")" : "]");
  if (low) return str(lo_open ? "> " : ">= ", lo);
  if (high) return str(hi_open ? "< " : "<= ", hi);
  return "any number";
}

std::string Range::describe() const { return (std::isfinite(lo) && std::isfinite(hi) ? "must lie " : "must be ") + bounds(); }

std::string exact_text(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::string OptionSpec::flag() const {
  std::string f = "--" + name;
  std::replace(f.begin(), f.end(), '_', '-');
  return f;
}

std::string OptionSpec::canonical(const std::string& value) const {
  const char* b = value.data();
  const char* e = b + value.size();
  switch (kind) {
    case Kind::Real: {
      double v = 0;
      auto [end, ec] = std::from_chars(b, e, v);
      LOOM_CHECK(!value.empty() && ec == std::errc() && end == e && std::isfinite(v), flag(),
                 " must be a finite number, got '", value, "'");
      LOOM_CHECK(range.contains(v), flag(), " ", range.describe(), ", got ", value);
      return exact_text(v);
    }
    case Kind::Integer: {
      int64_t v = 0;
      auto [end, ec] = std::from_chars(b, e, v);
      LOOM_CHECK(!value.empty() && ec != std::errc::invalid_argument && end == e, flag(),
                 " must be an integer, got '", value, "'");
      LOOM_CHECK(ec == std::errc() && range.contains(static_cast<double>(v)), flag(), " ", range.describe(),
                 ", got ", value);
      return std::to_string(v);
    }
    case Kind::Switch:
      LOOM_CHECK(value == "true" || value == "false", flag(), " is a switch (true or false), got '", value, "'");
      return value;
    case Kind::Choice: {
      std::string list;
      for (const std::string& c : choices) list += (list.empty() ? "" : ", ") + c;
      LOOM_CHECK(std::find(choices.begin(), choices.end(), value) != choices.end(), flag(), " must be one of ", list,
                 ", got '", value, "'");
      return value;
    }
    case Kind::Text:
      return value;
  }
  return value;
}

OptionSpec real_option(std::string name, double dflt, Range range, std::string help) {
  return {std::move(name), OptionSpec::Kind::Real, exact_text(dflt), std::move(help), range, {}};
}
OptionSpec integer_option(std::string name, int64_t dflt, Range range, std::string help) {
  return {std::move(name), OptionSpec::Kind::Integer, std::to_string(dflt), std::move(help), range, {}};
}
OptionSpec switch_option(std::string name, std::string help) {
  return {std::move(name), OptionSpec::Kind::Switch, "false", std::move(help), {}, {}};
}
OptionSpec choice_option(std::string name, std::string dflt, std::vector<std::string> choices, std::string help) {
  return {std::move(name), OptionSpec::Kind::Choice, std::move(dflt), std::move(help), {}, std::move(choices)};
}

OptionSpec text_option(std::string name, std::string dflt, std::string help) {
  return {std::move(name), OptionSpec::Kind::Text, std::move(dflt), std::move(help), {}, {}};
}

std::vector<OptionSpec> adam_options(double lr, double b1, double b2) {
  return {real_option("lr", lr, Range::positive(), "Adam learning rate"),
          real_option("b1", b1, Range::right_open(0, 1), "Adam beta1"),
          real_option("b2", b2, Range::right_open(0, 1), "Adam beta2")};
}

OptionSpec latent_dim_option(int64_t dflt) {
  return integer_option("latent_dim", dflt, Range::closed(1, static_cast<double>(kMaxLatentDim)),
                        "dimension of the latent space");
}

}  // namespace loom::models
