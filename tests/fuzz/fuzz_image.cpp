// An image file (PNG, JPEG, BMP) as an image folder or --input brings it,
// decoded and resized to 32 × 32 RGB as the models take it.
#include "models/data/data.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    loom::data::load_images(loom::fuzz::input_file(data, size, ".png"), 32, 3);
  } catch (const loom::Error&) {
  }
  return 0;
}
