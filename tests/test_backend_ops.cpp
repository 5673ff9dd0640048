// The op test table on the CPU: every case of tests/backend_ops.cpp in the grad
// and gradgrad modes, and the check that every op in ops.def has a case. The
// value mode (CUDA against the CPU) is tests/cuda/test_cuda_backend_ops.cpp.
#include <array>

#include "tests/backend_ops.h"

using namespace loom;
using namespace loom::testing;

namespace {

class BackendOps : public ::testing::TestWithParam<size_t> {
 protected:
  const OpCase& c() const { return backend_op_cases()[GetParam()]; }
  // Runs a mode's check, reporting it in the summary (unsupported when the case says so).
  void run(const char* mode, void (*check)(const Fn&, const std::vector<Tensor>&, GradCheckOptions)) {
    SCOPED_TRACE(c().name);
    if (!c().unsupported.empty()) {
      report(c(), mode, Outcome::Unsupported);
      GTEST_SKIP() << mode << " unsupported: " << c().unsupported;
    }
    const ReportOnExit reporter(c(), mode);
    check(c().f, c().inputs, c().grad_options);
  }
};

TEST_P(BackendOps, Grad) { run("grad", expect_gradients); }
TEST_P(BackendOps, GradGrad) { run("gradgrad", expect_second_gradients); }

std::string case_name(const ::testing::TestParamInfo<size_t>& info) {
  std::string n = std::to_string(info.param) + "_";
  for (char ch : backend_op_cases()[info.param].name) n += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Table, BackendOps, ::testing::Range<size_t>(0, backend_op_cases().size()), case_name);

// No op without its checks: a new X(...) line in ops.def fails here until it has a case.
TEST(BackendOpsTable, EveryOpInOpsDefHasACase) {
  std::array<bool, static_cast<size_t>(OpId::Count)> covered{};
  for (const OpCase& c : backend_op_cases())
    if (c.op) covered[static_cast<size_t>(*c.op)] = true;
  for (size_t i = 0; i < covered.size(); ++i)
    EXPECT_TRUE(covered[i]) << "op '" << op_name(static_cast<OpId>(i)) << "' in autograd/ops.def has no case in "
                            << "tests/backend_ops.cpp";
}

// The per-op summary after the run: op | grad | gradgrad.
class Summary : public ::testing::Environment {
 public:
  void TearDown() override { print_summary({"grad", "gradgrad"}); }
};
const auto* const kSummary = ::testing::AddGlobalTestEnvironment(new Summary);

}  // namespace
