// The op test table (the idea of ggml's test-backend-ops): one or more cases per
// OpId in autograd/ops.def, plus the composite layers and losses built from them.
// Every case runs in three modes:
//   grad      float64 central differences of the first derivative (CPU)
//   gradgrad  float64 central differences of the second derivative (CPU)
//   value     CUDA against the CPU: outputs and gradients, float32 and float64,
//             every allocation NaN-poisoned (tests/cuda, emulated in CI)
// A mode a case cannot run in is reported as unsupported with its reason, never
// as a pass. A start-up check fails the suite when an op in ops.def has no case.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "tests/gradcheck.h"

namespace loom::testing {

struct OpCase {
  std::optional<OpId> op;  // the op this case covers; empty for a composite layer or loss
  std::string name;        // e.g. "conv2d stride 2, groups 2"
  Fn f;                    // built only from its inputs (their dtype and device), so it runs on any backend
  std::vector<Tensor> inputs;  // float64 CPU (inputs to differentiate) and int64 (indices)
  GradCheckOptions grad_options = {};
  // Why no mode can run on this build (empty: they can), e.g. no CUDA device for `to`.
  std::string unsupported = {};
};

const std::vector<OpCase>& backend_op_cases();

// "sum", "conv2d", … for an op; the case name for a composite.
std::string case_label(const OpCase& c);

// Results of one mode per case label, printed as the summary table at the end.
enum class Outcome { Pass, Fail, Unsupported };
void report(const OpCase& c, const char* mode, Outcome o);
// Reports the mode when the scope ends: a failure if the test has failed or is
// leaving through an exception (gtest records that after this scope), else a pass.
class ReportOnExit {
 public:
  ReportOnExit(const OpCase& c, const char* mode) : c_(c), mode_(mode) {}
  ~ReportOnExit() {
    report(c_, mode_, ::testing::Test::HasFailure() || std::uncaught_exceptions() ? Outcome::Fail : Outcome::Pass);
  }
  ReportOnExit(const ReportOnExit&) = delete;
  ReportOnExit& operator=(const ReportOnExit&) = delete;

 private:
  const OpCase& c_;
  const char* mode_;
};
// op | grad | gradgrad | cuda: one line per op (composites after), to stdout.
void print_summary(const std::vector<const char*>& modes);

}  // namespace loom::testing
