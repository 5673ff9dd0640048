// tools/: the command-line helpers and the PNG plotter.
#include <cmath>
#include <filesystem>

#include <stb_image.h>

#include "tests/gradcheck.h"
#include "tests/temp_dir.h"
#include "tools/cli.h"
#include "tools/plot.h"

using namespace loom;
using namespace loom::testing;

namespace {
const std::vector<cli::FlagSpec> kSpecs = {{"--json", "", ""}, {"--plots", "DIR", ""}, {"--seed", "N", ""}};

std::string usage_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const cli::UsageError& e) {
    return e.what();
  }
  return "(no UsageError)";
}
}  // namespace

TEST(Cli, ClosestNameSuggestsOnlyPlausibleTypos) {
  EXPECT_EQ(cli::closest("deriv", {"derive"}), "derive");
  EXPECT_EQ(cli::closest("jds", {"jsd", "elbo", "params"}), "jsd");
  EXPECT_EQ(cli::closest("parmas", {"jsd", "elbo", "params"}), "params");
  EXPECT_EQ(cli::closest("train", {"jsd", "elbo", "params"}), "");
  EXPECT_EQ(cli::suggestion("--jsn", {"--json", "--plots"}), " (did you mean '--json'?)");
  EXPECT_EQ(cli::suggestion("--verbose", {"--json", "--plots"}), "");
}

TEST(Cli, ParsesSwitchesValuesAndPositionals) {
  cli::Args a = cli::parse("derive", {"jsd", "--json", "--seed=7", "--plots", "out dir"}, kSpecs);
  EXPECT_EQ(a.positional, (std::vector<std::string>{"jsd"}));
  EXPECT_TRUE(a.has("--json"));
  EXPECT_EQ(a.unsigned_value("--seed", 0), 7u);
  EXPECT_EQ(a.value("--plots"), "out dir");
  EXPECT_EQ(cli::parse("derive", {}, kSpecs).unsigned_value("--seed", 3), 3u);
}

TEST(Cli, MistakesAreUsageErrorsThatSaySo) {
  EXPECT_EQ(usage_error([] { cli::parse("derive", {"--jsn"}, kSpecs); }),
            "derive: unknown flag '--jsn' (did you mean '--json'?)");
  EXPECT_EQ(usage_error([] { cli::parse("derive", {"--plots"}, kSpecs); }),
            "derive: --plots needs a value (--plots DIR)");
  EXPECT_EQ(usage_error([] { cli::parse("derive", {"--json=1"}, kSpecs); }), "derive: --json takes no value");
  EXPECT_EQ(usage_error([] { cli::parse("derive", {"--seed", "-1"}, kSpecs).unsigned_value("--seed", 0); }),
            "derive: --seed needs a non-negative integer, got '-1'");
}

TEST(Cli, JsonObjectEscapesStringsAndNullsNonFiniteNumbers) {
  cli::JsonObject o;
  o.add("s", "a \"q\"\n").add("x", 0.5).add("n", int64_t{-3}).add("ok", true).add("bad", std::nan(""));
  o.add("k", std::vector<int64_t>{1, 5000}).add("v", std::vector<double>{0.25, INFINITY});
  cli::JsonObject inner;
  inner.add("n", int64_t{1});
  o.add("rows", std::vector<cli::JsonObject>{inner});
  EXPECT_EQ(o.str(),
            "{\"s\": \"a \\\"q\\\"\\n\", \"x\": 0.5, \"n\": -3, \"ok\": true, \"bad\": null, \"k\": [1, 5000], "
            "\"v\": [0.25, null], \"rows\": [{\"n\": 1}]}");
}

TEST(Cli, TextTableAlignsNumbersRightAndWordsLeft) {
  cli::TextTable t({"name", "x"});
  t.add({"ab", "1.5"});
  t.add({"σσσ", "-10"});
  std::ostringstream os;
  t.print(os, "");
  EXPECT_EQ(os.str(), "name    x\n---------\nab    1.5\nσσσ   -10\n");
}

TEST(Plot, NiceTicksAreRoundNumbers) {
  EXPECT_EQ(plot::nice_ticks(0, 1), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  EXPECT_EQ(plot::nice_ticks(-3.2, 7.9), (std::vector<double>{-2, 0, 2, 4, 6}));
  EXPECT_EQ(plot::nice_ticks(100, 3000).front(), 500);
  expect_error([] { plot::nice_ticks(1, 1); }, {"nice_ticks", "bad range"});
}

TEST(Plot, WritesAPngWithTheSeriesDrawn) {
  plot::Chart c{"title", "x", "y", {}, false, true, 320, 200};
  plot::Series line{"line", {1, 2, 3, 4}, {1, 10, 100, 1000}};
  plot::Series bars{"bars", {1, 2, 3}, {5, 50, 0}, true};  // the 0 is dropped on the log axis
  c.series = {line, bars};
  const std::string path = (std::filesystem::temp_directory_path() / "loom_test_plot.png").string();
  plot::write_png(c, path);
  int w = 0, h = 0, channels = 0;
  unsigned char* px = stbi_load(path.c_str(), &w, &h, &channels, 3);
  ASSERT_NE(px, nullptr);
  EXPECT_EQ(w, 320);
  EXPECT_EQ(h, 200);
  EXPECT_EQ(px[0], 255) << "white background";
  bool has_first_colour = false;  // the palette's first colour, (31, 119, 180)
  for (int i = 0; i < w * h; ++i) has_first_colour |= px[3 * i] == 31 && px[3 * i + 1] == 119 && px[3 * i + 2] == 180;
  EXPECT_TRUE(has_first_colour);
  stbi_image_free(px);
  std::filesystem::remove(path);
}

TEST(Plot, AFailedWriteKeepsThePreviousPlot) {
  // `loom plot` on a full disk wrote 0 bytes and exited 0; now it is an error and the old plot stays.
  TempDir dir;
  const std::string path = dir / "curves.png";
  write_bytes(path, "the previous plot");
  const plot::Chart c{"t", "", "", {{"s", {1, 2, 3}, {1, 3, 2}}}};
  expect_error([&] { with_file_size_limit(512, [&] { plot::write_png(c, path); }); },
               {"plot: " + path, "writing", "File too large", "is untouched"});
  EXPECT_EQ(read_bytes(path), "the previous plot");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"curves.png"});
}

TEST(Plot, RefusesWhatItCannotDraw) {
  plot::Chart c{"t", "", "", {{"s", {1, 2}, {1}}}};
  expect_error([&] { plot::write_png(c, "/tmp/x.png"); }, {"plot", "series 's'", "2 x values", "1 y values"});
  c.series = {{"s", {1, 2}, {-1, 0}}};
  c.log_y = true;
  expect_error([&] { plot::write_png(c, "/tmp/x.png"); }, {"plot", "no finite point", "log axis"});
  c.series = {{"s", {1, 2}, {1, 2}}};
  expect_error([&] { plot::write_png(c, "/nonexistent-dir/x.png"); },
               {"plot", "cannot create the temporary file", "/nonexistent-dir/x.png", "No such file"});
  c.width = 10;
  expect_error([&] { plot::write_png(c, "/tmp/x.png"); }, {"plot", "10x600", "too small"});
}
