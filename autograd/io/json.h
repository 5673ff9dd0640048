// A small strict JSON reader and the string quoting every JSON writer in loom
// uses (safetensors headers, metrics logs).
//
// The reader accepts objects, arrays, strings (all escapes, \uXXXX with
// surrogate pairs, UTF-8 validated), integers that fit int64 (Integer), other
// numbers (Number: a fraction or exponent, as metrics logs write them) and null.
// Anything else (true/false, duplicate keys, trailing text, nesting deeper than
// 64) is a loom::Error naming the byte offset, never undefined behaviour: its
// input is an untrusted file. Callers check the kinds they expect.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

struct Json {
  enum class Kind { Object, Array, String, Integer, Number, Null };
  Kind kind = Kind::Object;
  std::vector<std::string> keys;  // Object: keys in file order, unique
  std::vector<Json> values;       // Object: the value of keys[i]; Array: the elements
  std::string string;
  int64_t integer = 0;
  double number = 0;  // Number, and Integer as a double

  // The value under key in an object, or nullptr.
  const Json* find(std::string_view key) const;
};

// Parses the whole of text as one JSON value. `what` prefixes every error
// message (e.g. "load_safetensors: model.safetensors: header").
Json parse_json(std::string_view text, const std::string& what);

// JSON text is UTF-8: json_quote refuses anything else with a loom::Error.
bool is_valid_utf8(std::string_view s);
// s as a quoted JSON string literal.
std::string json_quote(std::string_view s);

}  // namespace loom
