// Training-loop feedback: a progress bar for people and a JSON Lines metrics
// log for programs (plots, regression checks).
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace loom::tools {

using Losses = std::vector<std::pair<std::string, double>>;  // name, latest value

// Seconds on a monotonic clock; ProgressBar takes any such function so tests can drive time.
using Clock = std::function<double()>;
double steady_seconds();

// On a terminal, one line redrawn in place (at most every `redraw_s`):
//   train  42% |############                 | 420/1000 [00:12<00:16, 35.1 it/s] d=0.6931 g=1.204
// Elsewhere (a log file, CI), a plain line every `line_every` steps and at the end:
//   train 420/1000 (42%) 35.1 it/s eta 00:16 d=0.6931 g=1.204
// it/s is averaged since the bar was created; ETA = steps left / it/s.
class ProgressBar {
 public:
  enum class Style { Auto, Bar, Lines };  // Auto: Bar when `out` is a terminal
  struct Options {
    std::string label{};
    int64_t total = 1;
    int64_t initial = 0;  // steps already done when the bar starts (a resumed run)
    std::FILE* out = stdout;
    Style style = Style::Auto;
    int64_t line_every = 0;  // Lines style: 0 means every 5% of total
    double redraw_s = 0.1;   // Bar style: the shortest interval between redraws
    Clock clock = steady_seconds;
  };
  explicit ProgressBar(Options o);

  // `done` of `total` steps are complete; `losses` are the latest values.
  void update(int64_t done, const Losses& losses = {});
  // Ends the bar's line (Bar style); a no-op for Lines.
  void finish();
  double rate() const;  // steps per second since the bar was created

 private:
  std::string line(int64_t done, const Losses& losses, bool bar) const;

  Options o_;
  bool bar_;
  double start_ = 0, last_draw_ = 0;
  bool drawn_ = false;
  int64_t done_ = 0;
};

// One JSON object per line, flushed as written so a crash loses nothing:
//   {"step":100,"losses":{"d":0.6931,"g":1.204},"lr":0.0002,"it_per_s":35.1,"device_mem_bytes":123456}
// lr, it_per_s and device_mem_bytes are omitted when unset; a non-finite loss is null.
// With `lrs` set, "lr" is an object with every optimizer's learning rate: a
// number when all its parameter groups share one, else one per group:
//   "lr":{"g":0.0002,"d":[0.0004,0.0001]}
struct MetricsRecord {
  int64_t step = 0;
  Losses losses{};
  double lr = -1;                 // unset when negative (and ignored when lrs is set)
  std::vector<std::pair<std::string, std::vector<double>>> lrs{};  // per optimizer, its groups' lrs
  double it_per_s = -1;           // unset when negative
  int64_t device_mem_bytes = -1;  // unset when negative
};

// Every write is flushed and checked: a failure (ENOSPC, EFBIG, ...) is a
// loom::Error naming the file and the cause.
class MetricsLog {
 public:
  // A new log at path (an existing file is emptied); with resume_step, the log
  // of a run resumed from its checkpoint at that step: the existing file keeps
  // its lines up to that step (lines of later steps, written after the
  // checkpoint by the run that stopped, are dropped, as is an unterminated last
  // line from a write cut short) and grows from there, so every step appears once.
  // The file is rewritten atomically (write_file_atomically) when lines are dropped.
  explicit MetricsLog(const std::string& path, std::optional<int64_t> resume_step = std::nullopt);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const MetricsRecord& r);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace loom::tools
