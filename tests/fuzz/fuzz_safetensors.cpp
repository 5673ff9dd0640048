// A whole checkpoint file from outside: load_safetensors must answer any bytes
// with the tensors or a loom::Error, never a crash, a leak or undefined behaviour.
#include "autograd/loom.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    loom::load_safetensors(loom::fuzz::input_file(data, size, ".safetensors"));
  } catch (const loom::Error&) {
  }
  return 0;
}
