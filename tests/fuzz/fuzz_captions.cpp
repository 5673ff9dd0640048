// A captions file (`filename<TAB>caption` lines) as --captions brings it, and
// each caption on to token ids as the text-conditional models encode it.
#include "models/gan/captions.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace captions = loom::models::captions;
  std::map<std::string, std::string> read;
  try {
    read = captions::read_captions(loom::fuzz::input_file(data, size, ".tsv"));
  } catch (const loom::Error&) {
    return 0;
  }
  std::vector<std::string> texts;
  for (auto& [name, text] : read) texts.push_back(text);
  if (!texts.empty()) captions::encode(texts);  // every text is an id sequence (unknown words <unk>): no Error
  return 0;
}
