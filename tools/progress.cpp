#include "tools/progress.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "autograd/io/atomic_file.h"
#include "autograd/io/input_file.h"
#include "autograd/io/json.h"
#include "kernels/base.h"

namespace loom::tools {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

namespace {

// "mm:ss", or "h:mm:ss" from an hour on; "?" when unknown.
std::string clock_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  int64_t t = std::llround(seconds);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60), static_cast<long long>(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  return buf;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string short_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// JSON has no NaN or infinity: those become null.
std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

ProgressBar::ProgressBar(Options o) : o_(std::move(o)) {
  LOOM_CHECK(o_.total >= 1, "ProgressBar: total must be positive, got ", o_.total);
  LOOM_CHECK(o_.out, "ProgressBar: no output stream");
  bar_ = o_.style == Style::Bar || (o_.style == Style::Auto && ::isatty(::fileno(o_.out)));
  if (o_.line_every <= 0) o_.line_every = std::max<int64_t>(1, o_.total / 20);
  start_ = o_.clock();
  done_ = o_.initial;
}

double ProgressBar::rate() const {
  double elapsed = o_.clock() - start_;
  return elapsed > 0 ? (done_ - o_.initial) / elapsed : 0;
}

std::string ProgressBar::line(int64_t done, const Losses& losses, bool bar) const {
  const double elapsed = o_.clock() - start_, r = rate();
  const double eta = r > 0 ? (o_.total - done) / r : NAN;
  const int64_t pct = 100 * std::clamp<int64_t>(done, 0, o_.total) / o_.total;
  std::string s = o_.label.empty() ? std::string() : str(o_.label, " ");
  if (bar) {
    constexpr int64_t width = 30;
    const int64_t filled = width * std::clamp<int64_t>(done, 0, o_.total) / o_.total;
    s += str(pct < 10 ? "  " : pct < 100 ? " " : "", pct, "% |", std::string(filled, '#'),
             std::string(width - filled, ' '), "| ", done, "/", o_.total, " [", clock_text(elapsed), "<",
             clock_text(eta), ", ", fixed(r, 1), " it/s]");
  } else {
    s += str(done, "/", o_.total, " (", pct, "%) ", fixed(r, 1), " it/s eta ", clock_text(eta));
  }
  for (const auto& [name, value] : losses) s += str(" ", name, "=", short_number(value));
  return s;
}

void ProgressBar::update(int64_t done, const Losses& losses) {
  done_ = done;
  const bool last = done >= o_.total;
  if (bar_) {
    const double now = o_.clock();
    if (drawn_ && !last && now - last_draw_ < o_.redraw_s) return;
    last_draw_ = now;
    drawn_ = true;
    // \r returns to the line start, ESC[K clears what a longer previous line left.
    std::fputs(str("\r", line(done, losses, true), "\x1b[K").c_str(), o_.out);
  } else {
    if (!last && done % o_.line_every != 0) return;
    std::fputs((line(done, losses, false) + "\n").c_str(), o_.out);
  }
  std::fflush(o_.out);
}

void ProgressBar::finish() {
  if (bar_ && drawn_) {
    std::fputs("\n", o_.out);
    std::fflush(o_.out);
    drawn_ = false;
  }
}

namespace {

// The log at path without the lines of steps after `step` and without an
// unterminated last line. A line that does not parse is kept: it is the
// reader's (loom plot's) to report, with its line number.
void truncate_metrics(const std::string& path, int64_t step) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return;  // resuming into a new folder: a new log
  const std::string text = read_file(path, "MetricsLog", uint64_t{1} << 30);
  std::string kept;
  size_t begin = 0, end;
  while ((end = text.find('\n', begin)) != std::string::npos) {
    const std::string_view line(text.data() + begin, end - begin);
    bool later = false;
    try {
      const Json rec = parse_json(line, path);
      const Json* s = rec.kind == Json::Kind::Object ? rec.find("step") : nullptr;
      later = s && s->kind == Json::Kind::Integer && s->integer > step;
    } catch (const Error&) {
    }
    if (!later) kept.append(line).push_back('\n');
    begin = end + 1;
  }
  if (kept.size() != text.size()) write_file_atomically(path, kept, "MetricsLog: " + path);
}

}  // namespace

MetricsLog::MetricsLog(const std::string& path, std::optional<int64_t> resume_step) : path_(path) {
  if (resume_step) truncate_metrics(path, *resume_step);
  f_ = open_log_file(path, "MetricsLog", resume_step.has_value());
}

MetricsLog::~MetricsLog() { std::fclose(f_); }

void MetricsLog::write(const MetricsRecord& r) {
  std::string s = str("{\"step\":", r.step, ",\"losses\":{");
  for (size_t i = 0; i < r.losses.size(); ++i)
    s += str(i ? "," : "", json_quote(r.losses[i].first), ":", json_number(r.losses[i].second));
  s += "}";
  if (!r.lrs.empty()) {
    s += ",\"lr\":{";
    for (size_t i = 0; i < r.lrs.size(); ++i) {
      const std::vector<double>& g = r.lrs[i].second;
      s += str(i ? "," : "", json_quote(r.lrs[i].first), ":");
      if (!g.empty() && std::all_of(g.begin(), g.end(), [&](double v) { return v == g[0]; })) {
        s += json_number(g[0]);
      } else {
        s += "[";
        for (size_t j = 0; j < g.size(); ++j) s += str(j ? "," : "", json_number(g[j]));
        s += "]";
      }
    }
    s += "}";
  } else if (r.lr >= 0) {
    s += ",\"lr\":" + json_number(r.lr);
  }
  if (r.it_per_s >= 0) s += ",\"it_per_s\":" + json_number(r.it_per_s);
  if (r.device_mem_bytes >= 0) s += str(",\"device_mem_bytes\":", r.device_mem_bytes);
  s += "}\n";
  LOOM_CHECK(std::fputs(s.c_str(), f_) >= 0 && std::fflush(f_) == 0, "MetricsLog: writing ", path_,
             " failed: ", std::strerror(errno));
}

}  // namespace loom::tools
