// An IDX file (MNIST's format), plain or gzip-compressed, as --data brings it.
#include "models/data/data.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    loom::data::read_idx(loom::fuzz::input_file(data, size, "-ubyte"));
  } catch (const loom::Error&) {
  }
  return 0;
}
