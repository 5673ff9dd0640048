// What every `loom` subcommand shares: flag parsing with "did you mean"
// suggestions, plain-text tables and a JSON object writer.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace loom::cli {

// A mistake on the command line: main prints it with the command's usage hint
// and exits with status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The candidate nearest to `word` by edit distance, or "" when none is close
// enough to be a plausible typo.
std::string closest(const std::string& word, const std::vector<std::string>& candidates);
// " (did you mean 'X'?)" when closest() finds one, else "".
std::string suggestion(const std::string& word, const std::vector<std::string>& candidates);

struct FlagSpec {
  std::string name;        // "--json"
  std::string value_name;  // "DIR" for a flag that takes a value, "" for a switch
  std::string help;
  std::vector<std::string> aliases{};  // other spellings, e.g. "--n-epochs" for "--epochs"
};

struct Args {
  std::string command;  // for error messages
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;  // switches map to ""
  bool has(const std::string& flag) const { return flags.count(flag) != 0; }
  std::string value(const std::string& flag, const std::string& fallback = "") const;
  uint64_t unsigned_value(const std::string& flag, uint64_t fallback) const;  // a UsageError if not a number
  double number(const std::string& flag, double fallback) const;              // a UsageError if not a finite number
};

// Parses `args` (after the subcommand) against `specs`; accepts "--flag VALUE" and
// "--flag=VALUE", any alias of a flag, and '_' for '-' inside flag names (so the
// PyTorch example scripts' --batch_size spelling works). Values are stored under
// the canonical name; an empty value ("--resume=", "--out ''") is a UsageError,
// never taken for a flag not given. `command` names the subcommand in error messages.
Args parse(const std::string& command, const std::vector<std::string>& args, const std::vector<FlagSpec>& specs);
// The flags part of a usage text, one aligned line per flag.
std::string describe(const std::vector<FlagSpec>& specs);

// A table printed with aligned columns (width counted in UTF-8 code points).
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& os, const std::string& indent = "  ") const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// printf-style formatting of one number.
std::string fmt(double v, const char* spec = "%.6g");

// One JSON object, fields in insertion order; non-finite numbers become null.
class JsonObject {
 public:
  JsonObject& add(const std::string& key, double v);
  JsonObject& add(const std::string& key, int64_t v);
  JsonObject& add(const std::string& key, bool v);
  JsonObject& add(const std::string& key, const std::string& v);
  JsonObject& add(const std::string& key, const char* v);  // else a literal would pick the bool overload
  JsonObject& add(const std::string& key, const std::vector<double>& v);
  JsonObject& add(const std::string& key, const std::vector<int64_t>& v);
  JsonObject& add(const std::string& key, const std::vector<std::string>& v);
  JsonObject& add(const std::string& key, const std::vector<JsonObject>& v);
  JsonObject& extend(const JsonObject& other);  // appends other's fields
  std::string str() const;

 private:
  JsonObject& raw(const std::string& key, const std::string& json);
  std::vector<std::pair<std::string, std::string>> fields_;  // key, encoded value
};

}  // namespace loom::cli
