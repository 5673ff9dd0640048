// An attribute file (CelebA's list_attr_celeba.txt format) as stargan's
// --attr-file brings it: read, and every table it returns consistent.
#include <cstdlib>

#include "models/data/data.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  loom::data::AttributeTable t;
  try {
    t = loom::data::read_attribute_file(loom::fuzz::input_file(data, size, ".txt"));
  } catch (const loom::Error&) {
    return 0;
  }
  // What read_attribute_file promises: N files, A ≥ 1 names, N × A values in {0, 1}.
  if (t.names.empty() || t.files.empty() || t.values.size() != t.files.size() * t.names.size()) std::abort();
  for (uint8_t v : t.values)
    if (v > 1) std::abort();
  return 0;
}
