// The `loom` flag parser, one argument per line of the input: loom train's
// flags and every model's options (aliases, --flag=value, '_' for '-', the
// "did you mean" search), the typed values, and the model's option checks
// (resolve_config). Any arguments give a result or a usage error, never a crash.
#include "tools/commands.h"

namespace {
using loom::cli::FlagSpec;

const std::vector<FlagSpec>& flags() {
  static const std::vector<FlagSpec> all = [] {
    std::vector<FlagSpec> f{{"--steps", "N", "", {"--n-steps", "--iters"}}, {"--seed", "N", ""},
                            {"--out", "DIR", "", {"--out-dir"}}, {"--help", "", "", {"-h"}}};
    for (FlagSpec& o : loom::cli::model_option_flags(nullptr)) f.push_back(std::move(o));
    return f;
  }();
  return all;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\n')
      args.emplace_back();
    else
      args.back() += static_cast<char>(data[i]);
  }
  try {
    const loom::cli::Args a = loom::cli::parse("train", args, flags());
    for (const auto& [flag, value] : a.flags) {
      try {
        a.unsigned_value(flag, 0);
      } catch (const loom::cli::UsageError&) {
      }
      try {
        a.number(flag, 0);
      } catch (const loom::cli::UsageError&) {
      }
    }
    if (a.positional.size() != 1) return 0;
    const loom::models::Registration& r = loom::models::find_model(a.positional[0]);
    loom::models::Config c;
    for (const loom::models::OptionSpec& o : r.options)
      if (a.has(o.flag()))
        c.options[o.name] = o.kind == loom::models::OptionSpec::Kind::Switch ? "true" : a.value(o.flag());
    loom::models::resolve_config(r, c);
  } catch (const loom::cli::UsageError&) {
  } catch (const loom::Error&) {
  }
  return 0;
}
