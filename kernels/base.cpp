#include "kernels/base.h"

#include <ostream>

namespace loom {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
  }
  return "?";
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    try {
      size_t used = 0;
      int i = std::stoi(s.substr(5), &used);
      if (used == s.size() - 5 && i >= 0) return cuda(i);
    } catch (const std::exception&) {
    }
  }
  throw Error(str("Device: cannot parse '", s, "' (expected cpu, cuda or cuda:N)"));
}

std::ostream& operator<<(std::ostream& os, Device d) {
  if (d.is_cpu()) return os << "cpu";
  return os << "cuda:" << d.index;
}

std::ostream& operator<<(std::ostream& os, const Shape& s) {
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  return os << ']';
}

int64_t numel(const Shape& s, const char* op) {
  int64_t n = 1, bound = 1;  // bound: the product with zeros counted as 1 (≥ every partial product)
  for (int64_t d : s) {
    LOOM_CHECK(d >= 0, op, ": negative dimension in shape ", s);
    LOOM_CHECK(!__builtin_mul_overflow(bound, d > 0 ? d : 1, &bound), op, ": shape ", s,
               " has more elements than int64 counts (2^63 - 1)");
    n *= d;  // n ≤ bound: cannot overflow
  }
  return n;
}

int64_t checked_mul(const char* op, const Shape& shape, int64_t a, int64_t b) {
  int64_t out = 0;
  LOOM_CHECK(!__builtin_mul_overflow(a, b, &out), op, ": a size computed for input ", shape, " overflows int64 (", a,
             " x ", b, ")");
  return out;
}

int64_t checked_add(const char* op, const Shape& shape, int64_t a, int64_t b) {
  int64_t out = 0;
  LOOM_CHECK(!__builtin_add_overflow(a, b, &out), op, ": a size computed for input ", shape, " overflows int64 (", a,
             " + ", b, ")");
  return out;
}

}  // namespace loom
