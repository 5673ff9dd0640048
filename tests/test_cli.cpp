// Command-line parsing shared by every `loom` subcommand: aliases, the
// PyTorch scripts' underscore spellings, typed values and suggestions.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "autograd/io/json.h"
#include "kernels/gemm.h"
#include "tests/gradcheck.h"
#include "tools/cli.h"
#include "tools/commands.h"

using namespace loom;
using loom::cli::FlagSpec;
using loom::cli::UsageError;

namespace {
const std::vector<FlagSpec> kSpecs{{"--epochs", "N", "passes", {"--n-epochs"}},
                                   {"--batch-size", "N", "batch"},
                                   {"--lr", "X", "learning rate"},
                                   {"--json", "", "switch"}};

template <class F>
std::string usage_error(F f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Cli, AliasesAndUnderscoreSpellingsMapToTheCanonicalFlag) {
  cli::Args a = cli::parse("train", {"vae", "--n_epochs", "3", "--batch_size=128", "--lr", "2e-4", "--json"}, kSpecs);
  EXPECT_EQ(a.positional, (std::vector<std::string>{"vae"}));
  EXPECT_EQ(a.unsigned_value("--epochs", 0), 3u);
  EXPECT_EQ(a.unsigned_value("--batch-size", 0), 128u);
  EXPECT_DOUBLE_EQ(a.number("--lr", 0), 2e-4);
  EXPECT_TRUE(a.has("--json"));
  EXPECT_DOUBLE_EQ(a.number("--missing", 1.5), 1.5);
}

TEST(Cli, MistakesAreUsageErrorsWithSuggestions) {
  EXPECT_NE(usage_error([] { cli::parse("train", {"--epoch", "3"}, kSpecs); }).find("did you mean '--epochs'"),
            std::string::npos);
  EXPECT_NE(usage_error([] { cli::parse("train", {"--lr"}, kSpecs); }).find("needs a value"), std::string::npos);
  EXPECT_NE(usage_error([] { cli::parse("train", {"--json=1"}, kSpecs); }).find("takes no value"), std::string::npos);
  // Found by fuzz_cli: "-=x" (a one-character name before '=') read past the name's end.
  EXPECT_NE(usage_error([] { cli::parse("train", {"-=latent-dim=20"}, kSpecs); }).find("unknown flag '-'"),
            std::string::npos);
  cli::Args a = cli::parse("train", {"--lr", "fast", "--epochs", "-2"}, kSpecs);
  EXPECT_NE(usage_error([&] { a.number("--lr", 0); }).find("--lr needs a number, got 'fast'"), std::string::npos);
  EXPECT_NE(usage_error([&] { a.unsigned_value("--epochs", 0); }).find("non-negative integer"), std::string::npos);
}

// `loom train` itself: flags out of range or not applicable are refused before any data is read.
TEST(Cli, TrainRefusesOutOfRangeAndInapplicableFlags) {
  auto train_error = [](std::vector<std::string> args) {
    args.insert(args.end(), {"--steps", "1", "--data", "/nonexistent", "--out", "/nonexistent/out"});
    try {
      cli::train_command(args);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(train_error({"vae", "--lr", "-1"}), "train: --lr must be > 0, got -1");
  EXPECT_EQ(train_error({"vae", "--lr", "0"}), "train: --lr must be > 0, got 0");
  EXPECT_EQ(train_error({"vae", "--b1", "1"}), "train: --b1 must lie in [0, 1), got 1");
  EXPECT_EQ(train_error({"vae", "--b2", "2"}), "train: --b2 must lie in [0, 1), got 2");
  EXPECT_EQ(train_error({"vae", "--batch-size", "0"}), "train: --batch-size must be >= 1, got 0");
  EXPECT_EQ(train_error({"vae", "--latent-dim", "100000"}), "train: --latent-dim must lie in [1, 65536], got 100000");
  EXPECT_EQ(train_error({"classifier", "--latent-dim", "8"}),
            "train: --latent-dim does not apply to model 'classifier' (it takes --lr, --b1, --b2)");
  EXPECT_EQ(train_error({"vae", "--limit", "0"}), "train: --limit must be >= 1, got 0");
  EXPECT_EQ(train_error({"vae", "--batch-size", "9999999999999999999"}),
            "train: --batch-size 9999999999999999999 is too large (at most 9223372036854775807)");
}

TEST(Cli, TrainHelpListsTheModelsOwnOptionsWithDefaults) {
  auto help = [](const std::vector<std::string>& args) {
    ::testing::internal::CaptureStdout();
    cli::train_command(args);
    return ::testing::internal::GetCapturedStdout();
  };
  const std::string vae = help({"vae", "--help"});
  EXPECT_NE(vae.find("Options of vae:"), std::string::npos) << vae;
  EXPECT_NE(vae.find("--latent-dim N"), std::string::npos) << vae;
  EXPECT_NE(vae.find("(default 20)"), std::string::npos) << vae;
  EXPECT_NE(vae.find("--arch mlp|conv"), std::string::npos) << vae;
  EXPECT_EQ(vae.find("--fit"), std::string::npos) << "bernoulli's option listed for vae";
  const std::string gan = help({"gan", "--help"});
  EXPECT_NE(gan.find("--d-steps N"), std::string::npos) << gan;
  EXPECT_NE(gan.find("in [1, 100]"), std::string::npos) << gan;
  // Without a model: the common flags and where the model options are.
  const std::string all = help({"--help"});
  EXPECT_NE(all.find("loom train MODEL --help"), std::string::npos) << all;
  EXPECT_EQ(all.find("--latent-dim"), std::string::npos) << all;
  // A model's option given to another model is refused by name, on the command line too.
  EXPECT_THROW(cli::train_command({"markov", "--steps", "1", "--latent-dim", "4"}), Error);
}

// `loom bench train`: the row's fields agree with each other and with the flags
// (times are measured, so only their order is checked), and its scratch folder is gone.
TEST(Cli, BenchTrainReportsTheTimedStepsOfTheModel) {
  const int threads = kernels::cpu_threads();
  std::ostringstream out;
  std::streambuf* const old = std::cout.rdbuf(out.rdbuf());
  try {
    cli::bench_command({"train", "bernoulli", "--steps", "5", "--warmup", "1", "--threads", "1", "--batch-size", "32",
                        "--json"});
  } catch (...) {
    std::cout.rdbuf(old);
    kernels::set_cpu_threads(threads);
    throw;
  }
  std::cout.rdbuf(old);
  kernels::set_cpu_threads(threads);
  const Json j = parse_json(out.str(), "bench");
  EXPECT_EQ(j.find("model")->string, "bernoulli");
  EXPECT_EQ(j.find("threads")->integer, 1);
  EXPECT_EQ(j.find("batch_size")->integer, 32);
  EXPECT_EQ(j.find("steps")->integer, 5);
  EXPECT_EQ(j.find("warmup")->integer, 1);
  const double median = j.find("median_ms")->number, q1 = j.find("q1_ms")->number, q3 = j.find("q3_ms")->number;
  EXPECT_GT(j.find("min_ms")->number, 0);
  EXPECT_LE(j.find("min_ms")->number, q1);
  EXPECT_LE(q1, median);
  EXPECT_LE(median, q3);
  EXPECT_NEAR(j.find("images_per_s")->number, 32 / (median / 1e3), 1e-6 * j.find("images_per_s")->number);
  EXPECT_GT(j.find("peak_rss_mib")->number, 0);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::temp_directory_path() /
                                       ("loom-bench-" + std::to_string(getpid()))));
  EXPECT_NE(usage_error([] { cli::bench_command({"bernoulli"}); }).find("expected 'train MODEL'"), std::string::npos);
  EXPECT_NE(usage_error([] { cli::bench_command({"train", "vae", "--steps", "0"}); }).find("--steps must lie in [1, "),
            std::string::npos);
}
