// An image file (PNG, JPEG, BMP) as an image folder or --input brings it,
// decoded and resized to 32 × 32 RGB as the models take it.
//
// The pixel limit is 2^20 here, not the default 2^26: a 4 KB PNG of 1-bit grey
// can declare 33 megapixels, which decode and resize correctly but take ~20 s
// under ASan, and libFuzzer would report that as a hang. Above the limit the
// reader's path is the same header check (tested in test_hostile_input), so the
// fuzzer loses nothing but time by not decoding them.
#include "models/data/data.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    loom::data::load_images(loom::fuzz::input_file(data, size, ".png"), 32, 3, int64_t(1) << 20);
  } catch (const loom::Error&) {
  }
  return 0;
}
