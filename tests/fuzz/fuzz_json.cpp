// The strict JSON reader under safetensors headers and metrics logs, on its own:
// any text parses or is a loom::Error. What parsed is quoted back (json_quote),
// which must accept every string the reader let through.
#include <string_view>

#include "autograd/io/json.h"
#include "kernels/base.h"

namespace {
void quote_all(const loom::Json& v) {
  for (const std::string& k : v.keys) loom::json_quote(k);
  if (v.kind == loom::Json::Kind::String) loom::json_quote(v.string);
  for (const loom::Json& e : v.values) quote_all(e);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  loom::Json v;
  try {
    v = loom::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const loom::Error&) {
    return 0;
  }
  quote_all(v);  // outside the try: an Error here is a bug (the reader accepted invalid UTF-8)
  return 0;
}
