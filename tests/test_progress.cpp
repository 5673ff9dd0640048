// Progress display and the metrics log, driven by a fake clock.
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "autograd/io/json.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"
#include "tools/progress.h"

using namespace loom;
using namespace loom::testing;
using namespace loom::tools;
namespace fs = std::filesystem;

namespace {
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}
}  // namespace

TEST(Progress, PlainLinesWhenNotATerminal) {
  TempDir dir;
  std::string path = dir / "out.txt";
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_TRUE(f);
  double now = 0;
  {
    ProgressBar bar({.label = "train", .total = 100, .out = f, .clock = [&] { return now; }});
    for (int64_t step = 1; step <= 100; ++step) {
      now += 0.5;  // 2 it/s
      bar.update(step, {{"d", 0.693147}, {"g", 1.5 / step}});
    }
    EXPECT_DOUBLE_EQ(bar.rate(), 2.0);
    bar.finish();
  }
  std::fclose(f);
  std::vector<std::string> lines = lines_of(read_bytes(path));
  ASSERT_EQ(lines.size(), 20u) << "a line every 5% of the total";
  EXPECT_EQ(lines[0], "train 5/100 (5%) 2.0 it/s eta 00:48 d=0.6931 g=0.3");
  EXPECT_EQ(lines[9], "train 50/100 (50%) 2.0 it/s eta 00:25 d=0.6931 g=0.03");
  EXPECT_EQ(lines[19], "train 100/100 (100%) 2.0 it/s eta 00:00 d=0.6931 g=0.015");
}

TEST(Progress, BarRedrawsInPlaceAtMostEveryInterval) {
  TempDir dir;
  std::string path = dir / "out.txt";
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_TRUE(f);
  double now = 0;
  {
    ProgressBar bar({.label = "gan", .total = 40, .out = f, .style = ProgressBar::Style::Bar, .redraw_s = 0.125,
                     .clock = [&] { return now; }});
    for (int64_t step = 1; step <= 40; ++step) {
      now += 0.0625;  // 16 it/s: updates 1, 3, ..., 39 are drawn, and the last
      bar.update(step, {{"loss", 0.25}});
    }
    bar.finish();
  }
  std::fclose(f);
  std::string text = read_bytes(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\r'), 21);
  EXPECT_EQ(text.back(), '\n');
  std::string last = text.substr(text.rfind('\r') + 1);
  EXPECT_EQ(last, "gan 100% |##############################| 40/40 [00:03<00:00, 16.0 it/s] loss=0.25\x1b[K\n");
  std::string first = text.substr(1, text.find('\r', 1) - 1);
  EXPECT_EQ(first, "gan   2% |                              | 1/40 [00:00<00:02, 16.0 it/s] loss=0.25\x1b[K");
}

TEST(Progress, ResumedRunsAndLongTimes) {
  TempDir dir;
  std::string path = dir / "out.txt";
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_TRUE(f);
  double now = 0;
  ProgressBar bar({.total = 10000, .initial = 5000, .out = f, .line_every = 1000, .clock = [&] { return now; }});
  now = 1000;
  bar.update(6000);  // 1 it/s since the start, 4000 steps left
  std::fclose(f);
  EXPECT_EQ(lines_of(read_bytes(path)), std::vector<std::string>{"6000/10000 (60%) 1.0 it/s eta 1:06:40"});
  expect_error([] { ProgressBar({.total = 0}); }, {"ProgressBar: total must be positive"});
}

TEST(MetricsLog, WritesOneFlushedJsonObjectPerLine) {
  TempDir dir;
  std::string path = dir / "metrics.jsonl";
  {
    MetricsLog log(path);
    log.write({.step = 1, .losses = {{"d", 0.5}, {"g \"x\"", 1.25}}, .lr = 2e-4, .it_per_s = 35.5,
               .device_mem_bytes = 123456789});
    EXPECT_EQ(read_bytes(path), "{\"step\":1,\"losses\":{\"d\":0.5,\"g \\\"x\\\"\":1.25},\"lr\":0.0002,"
                                "\"it_per_s\":35.5,\"device_mem_bytes\":123456789}\n")
        << "flushed before the log is closed";
    log.write({.step = 2, .losses = {{"nll", NAN}, {"kl", INFINITY}, {"tiny", 1e-12}}});
  }
  {
    MetricsLog again(path, /*resume_step=*/2);
    again.write({.step = 3});
  }
  std::vector<std::string> lines = lines_of(read_bytes(path));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1], "{\"step\":2,\"losses\":{\"nll\":null,\"kl\":null,\"tiny\":1e-12}}");
  EXPECT_EQ(lines[2], "{\"step\":3,\"losses\":{}}");
  // Each line is JSON: the engine's strict reader (integers only) accepts step 3's.
  EXPECT_EQ(parse_json(lines[2], "metrics").find("step")->integer, 3);

  expect_error([&] { MetricsLog(dir / "no/dir/m.jsonl"); },
               {"MetricsLog: ", "no/dir/m.jsonl", "cannot open for writing", "No such file"});
  MetricsLog full("/dev/full");
  expect_error([&] { full.write({.step = 1}); }, {"MetricsLog: writing /dev/full failed", "No space left"});
}

// A FIFO where the log goes would block the run until some reader came (and a resumed
// run would block reading it): refused at once, as a directory is, new run or resumed.
TEST(MetricsLog, RefusesAFifoOrADirectoryWithoutBlocking) {
  TempDir dir;
  const std::string fifo = dir / "metrics.jsonl";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_error([&] { MetricsLog log(fifo); }, {"MetricsLog: ", fifo, "is a FIFO (named pipe)"});
  expect_error([&] { MetricsLog log(fifo, /*resume_step=*/3); }, {"MetricsLog: ", fifo, "is a FIFO (named pipe)"});
  const std::string sub = dir / "sub";
  fs::create_directory(sub);
  expect_error([&] { MetricsLog log(sub); }, {"MetricsLog: ", sub, "is a directory"});
}

// A run killed after step 5 with its checkpoint at step 3 logged steps 4 and 5 (and half of
// 6, cut short by a full disk): resuming from step 3 drops them, so no step appears twice.
TEST(MetricsLog, ResumeKeepsTheLinesUpToTheCheckpointsStep) {
  TempDir dir;
  const std::string path = dir / "metrics.jsonl";
  std::string log;
  for (int step = 1; step <= 5; ++step) log += str("{\"step\":", step, ",\"losses\":{\"g\":0.5}}\n");
  write_bytes(path, log + "not json, kept for loom plot to report\n{\"step\":6,\"los");
  {
    MetricsLog resumed(path, /*resume_step=*/3);
    resumed.write({.step = 4});
  }
  EXPECT_EQ(lines_of(read_bytes(path)),
            (std::vector<std::string>{"{\"step\":1,\"losses\":{\"g\":0.5}}", "{\"step\":2,\"losses\":{\"g\":0.5}}",
                                      "{\"step\":3,\"losses\":{\"g\":0.5}}", "not json, kept for loom plot to report",
                                      "{\"step\":4,\"losses\":{}}"}));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"metrics.jsonl"});
  // Resuming into a folder without a log starts one.
  MetricsLog(dir / "new.jsonl", 7).write({.step = 8});
  EXPECT_EQ(read_bytes(dir / "new.jsonl"), "{\"step\":8,\"losses\":{}}\n");
}

TEST(MetricsLog, RecordsEveryOptimizersLearningRatePerGroupWhenTheyDiffer) {
  TempDir dir;
  std::string path = dir / "metrics.jsonl";
  {
    MetricsLog log(path);
    log.write({.step = 1, .losses = {{"d", 0.5}}, .lrs = {{"g", {2e-4}}, {"d", {4e-4, 1e-4}}, {"e", {1e-3, 1e-3}}}});
  }
  EXPECT_EQ(read_bytes(path), "{\"step\":1,\"losses\":{\"d\":0.5},\"lr\":{\"g\":0.0002,\"d\":[0.0004,0.0001],"
                              "\"e\":0.001}}\n");
}
