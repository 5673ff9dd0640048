// Command-line parsing shared by every `loom` subcommand: aliases, the
// PyTorch scripts' underscore spellings, typed values and suggestions.
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
