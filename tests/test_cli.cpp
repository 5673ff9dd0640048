// Command-line parsing shared by every `loom` subcommand: aliases, the
// PyTorch scripts' underscore spellings, typed values and suggestions.
#include "tests/gradcheck.h"
#include "tools/cli.h"

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
