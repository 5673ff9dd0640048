// `loom bench train MODEL`: the time of a whole training step of a registered
// model, as `loom train` runs it (drawing the batch, forward, backward, every
// optimizer update the model's train_step makes), on its real data. What a user
// waits for, where loom-bench times one kernel. Issue #15's measure: the same
// row for a PyTorch twin (tools/peers/) gives the ratio.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <system_error>

#include "kernels/gemm.h"
#include "kernels/memory.h"
#include "tools/commands.h"
#include "tools/train.h"

namespace loom::cli {
namespace {

namespace fs = std::filesystem;

// The q-quantile of sorted values, linearly interpolated (numpy's default, "linear").
double quantile(const std::vector<double>& sorted, double q) {
  const double at = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(at)), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (at - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

// The run's checkpoint, metrics and grids go to a folder of their own, removed afterwards.
struct ScratchDir {
  fs::path path = fs::temp_directory_path() / ("loom-bench-" + std::to_string(getpid()));
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

int64_t positive(const Args& a, const std::string& flag, int64_t fallback, int64_t max) {
  if (!a.has(flag)) return fallback;
  const uint64_t v = a.unsigned_value(flag, 0);
  if (v < 1 || v > static_cast<uint64_t>(max))
    throw UsageError("bench: " + flag + " must lie in [1, " + std::to_string(max) + "], got " + a.value(flag));
  return static_cast<int64_t>(v);
}

}  // namespace

int bench_command(const std::vector<std::string>& args) {
  std::vector<FlagSpec> flags{
      {"--steps", "N", "timed steps (default 20)"},
      {"--warmup", "N", "untimed steps first (default 3): first-touch allocations, BLAS and OpenMP start-up"},
      {"--batch-size", "N", "batch size (default: the model's)"},
      {"--device", "DEV", "cpu (default), cuda or cuda:N"},
      {"--threads", "N", "CPU threads for loom's loops and OpenBLAS (default: OMP_NUM_THREADS, else every core)"},
      {"--seed", "N", "random seed (default 0)"},
      {"--data", "DIR", "the model's data (default " + std::string(data::kFashionMnistDir) + ")", {"--data-dir"}},
      kCudaGraph,
      {"--json", "", "print one JSON object instead of the table"},
      {"--help", "", "show this help", {"-h"}},
  };
  const size_t common = flags.size();
  for (FlagSpec& f : model_option_flags(nullptr)) flags.push_back(std::move(f));
  const std::string usage =
      "usage: loom bench train MODEL [flags] [model options]\n\n"
      "The median time of whole training steps of MODEL (as loom train runs them, on its data),\n"
      "images per second and peak memory.\n\n" +
      describe(std::vector<FlagSpec>(flags.begin(), flags.begin() + static_cast<std::ptrdiff_t>(common))) +
      "\nThe model's own options are those of loom train MODEL --help.\n";
  Args a = parse("bench", args, flags);
  if (a.has("--help")) {
    std::cout << usage;
    return 0;
  }
  if (a.positional.size() != 2 || a.positional[0] != "train")
    throw UsageError("bench: expected 'train MODEL'\n" + usage);

  tools::TrainOptions o;
  o.model = a.positional[1];
  const int64_t warmup = a.has("--warmup") ? static_cast<int64_t>(a.unsigned_value("--warmup", 0)) : 3;
  const int64_t timed = positive(a, "--steps", 20, 1'000'000);
  if (warmup > 1'000'000) throw UsageError("bench: --warmup must lie in [0, 1000000], got " + a.value("--warmup"));
  if (a.has("--threads")) kernels::set_cpu_threads(static_cast<int>(positive(a, "--threads", 1, 1024)));
  if (a.has("--batch-size")) o.config.batch_size = positive(a, "--batch-size", 64, 1 << 20);
  for (size_t i = common; i < flags.size(); ++i) {
    if (!a.has(flags[i].name)) continue;
    std::string field = flags[i].name.substr(2);
    std::replace(field.begin(), field.end(), '-', '_');
    o.config.options[field] = flags[i].value_name.empty() ? "true" : a.value(flags[i].name);
  }
  o.config.device = Device::parse(a.value("--device", "cpu"));
  if (a.has("--seed")) o.config.seed = a.unsigned_value("--seed", 0);
  o.config.data_dir = o.data_dir = a.value("--data", data::kFashionMnistDir);
  o.steps = warmup + timed;
  o.cuda_graph = a.has("--cuda-graph");
  o.eval_size = 0;
  o.n_samples = 0;
  o.progress_out = stderr;  // stdout carries the result
  const ScratchDir scratch;
  o.out_dir = scratch.path.string();
  std::vector<double> seconds;
  o.on_step = [&](int64_t step, double s) {
    if (step > warmup) seconds.push_back(s);
  };
  tools::train(o);

  std::sort(seconds.begin(), seconds.end());
  const double median = quantile(seconds, 0.5);
  const models::Registration& reg = models::find_model(o.model);
  const int64_t batch = *models::resolve_config(reg, o.config).batch_size;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double rss_mib = static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
  const kernels::MemoryStats mem = kernels::memory_stats(o.config.device);
  const double loom_mib = static_cast<double>(mem.peak_allocated_bytes) / (1 << 20);
  // What the allocator holds from the system, live blocks and its cache of freed ones (never
  // returned during training, so this is its peak too; on the host, blocks ≥ 128 KiB only).
  const double reserved_mib = static_cast<double>(mem.reserved_bytes) / (1 << 20);
  const int threads = kernels::cpu_threads();
  const double q1 = quantile(seconds, 0.25), q3 = quantile(seconds, 0.75);
  if (a.has("--json")) {
    JsonObject j;
    j.add("model", reg.name).add("device", str(o.config.device)).add("threads", int64_t{threads});
    j.add("batch_size", batch).add("warmup", warmup).add("steps", timed);
    j.add("median_ms", 1e3 * median).add("q1_ms", 1e3 * q1).add("q3_ms", 1e3 * q3).add("min_ms", 1e3 * seconds.front());
    j.add("images_per_s", static_cast<double>(batch) / median);
    j.add("peak_rss_mib", rss_mib).add("peak_loom_alloc_mib", loom_mib).add("loom_reserved_mib", reserved_mib);
    std::cout << j.str() << "\n";
  } else {
    std::cout << "loom bench train " << reg.name << ": " << o.config.device << ", " << threads << " thread"
              << (threads == 1 ? "" : "s") << ", batch " << batch << ", " << timed << " steps after " << warmup
              << " warm-up\n"
              << "  step    median " << fmt(1e3 * median, "%.2f") << " ms (quartiles "
              << fmt(1e3 * q1, "%.2f") << "-" << fmt(1e3 * q3, "%.2f")
              << ", min " << fmt(1e3 * seconds.front(), "%.2f") << ")\n"
              << "  images  " << fmt(static_cast<double>(batch) / median, "%.1f") << " /s\n"
              << "  memory  peak RSS " << fmt(rss_mib, "%.0f") << " MiB (the process, data set included); "
              << "loom's " << (o.config.device.is_cuda() ? "device" : "host") << " allocator peak "
              << fmt(loom_mib, "%.0f") << " MiB, reserved " << fmt(reserved_mib, "%.0f") << " MiB\n";
  }
  return 0;
}

}  // namespace loom::cli
