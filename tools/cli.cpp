#include "tools/cli.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace loom::cli {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

size_t display_width(const std::string& s) {
  // UTF-8 continuation bytes (10xxxxxx) do not start a new character.
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string number(double v) { return std::isfinite(v) ? fmt(v, "%.17g") : "null"; }

template <class T, class Encode>
std::string list(const std::vector<T>& v, Encode encode) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + encode(v[i]);
  return out + "]";
}

}  // namespace

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  // A typo is a few edits, not a different word: at most a third of the longer name.
  const size_t limit = std::max<size_t>(2, std::max(word.size(), best.size()) / 3);
  return best_d <= limit ? best : "";
}

std::string suggestion(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string c = closest(word, candidates);
  return c.empty() ? "" : " (did you mean '" + c + "'?)";
}

std::string Args::value(const std::string& flag, const std::string& fallback) const {
  auto it = flags.find(flag);
  return it == flags.end() ? fallback : it->second;
}

uint64_t Args::unsigned_value(const std::string& flag, uint64_t fallback) const {
  if (!has(flag)) return fallback;
  const std::string v = value(flag);
  if (v.empty() || v.size() > 19 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw UsageError(command + ": " + flag + " needs a non-negative integer, got '" + v + "'");
  return std::stoull(v);
}

double Args::number(const std::string& flag, double fallback) const {
  if (!has(flag)) return fallback;
  const std::string v = value(flag);
  size_t used = 0;
  double d = 0;
  try {
    d = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (v.empty() || used != v.size() || !std::isfinite(d))
    throw UsageError(command + ": " + flag + " needs a number, got '" + v + "'");
  return d;
}

Args parse(const std::string& command, const std::vector<std::string>& args, const std::vector<FlagSpec>& specs) {
  std::vector<std::string> names;
  for (const FlagSpec& s : specs) names.push_back(s.name);
  Args out;
  out.command = command;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 2 || a[0] != '-') {
      out.positional.push_back(a);
      continue;
    }
    const size_t eq = a.find('=');
    std::string name = a.substr(0, eq);
    // '_' reads as '-' after the leading "--"; "-=x" leaves the name "-", one character.
    std::replace(name.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(2, name.size())), name.end(), '_', '-');
    auto spec = std::find_if(specs.begin(), specs.end(), [&](const FlagSpec& s) {
      return s.name == name || std::find(s.aliases.begin(), s.aliases.end(), name) != s.aliases.end();
    });
    if (spec == specs.end())
      throw UsageError(command + ": unknown flag '" + name + "'" + suggestion(name, names));
    if (spec->value_name.empty()) {
      if (eq != std::string::npos) throw UsageError(command + ": " + name + " takes no value");
      out.flags[spec->name] = "";
    } else {
      if (eq == std::string::npos && i + 1 >= args.size())
        throw UsageError(command + ": " + name + " needs a value (" + name + " " + spec->value_name + ")");
      const std::string value = eq != std::string::npos ? a.substr(eq + 1) : args[++i];
      // `--resume=` would otherwise read as not given: a run started from scratch.
      if (value.empty())
        throw UsageError(command + ": " + name + " needs a value (" + name + " " + spec->value_name +
                         "), got an empty one");
      out.flags[spec->name] = value;
    }
  }
  return out;
}

std::string describe(const std::vector<FlagSpec>& specs) {
  std::vector<std::string> left;
  size_t width = 0;
  for (const FlagSpec& s : specs) {
    left.push_back(s.name + (s.value_name.empty() ? "" : " " + s.value_name));
    width = std::max(width, left.back().size());
  }
  std::string out;
  for (size_t i = 0; i < specs.size(); ++i)
    out += "  " + left[i] + std::string(width - left[i].size() + 3, ' ') + specs[i].help + "\n";
  return out;
}

void TextTable::print(std::ostream& os, const std::string& indent) const {
  std::vector<size_t> width(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t j = 0; j < row.size() && j < width.size(); ++j) width[j] = std::max(width[j], display_width(row[j]));
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);
  // Columns of numbers align right, columns of words left.
  std::vector<bool> numeric(width.size(), true);
  for (const auto& r : rows_)
    for (size_t j = 0; j < r.size() && j < width.size(); ++j)
      numeric[j] = numeric[j] && !r[j].empty() && std::string("0123456789+-.").find(r[j][0]) != std::string::npos;
  auto line = [&](const std::vector<std::string>& row) {
    std::string out = indent;
    for (size_t j = 0; j < width.size(); ++j) {
      const std::string cell = j < row.size() ? row[j] : "";
      const std::string pad(width[j] - display_width(cell), ' ');
      out += (numeric[j] ? pad + cell : cell + pad) + (j + 1 < width.size() ? "  " : "");
    }
    os << out.substr(0, out.find_last_not_of(' ') + 1) << "\n";
  };
  line(header_);
  size_t total = 0;
  for (size_t w : width) total += w;
  os << indent << std::string(total + 2 * (width.size() - 1), '-') << "\n";
  for (const auto& r : rows_) line(r);
}

std::string fmt(double v, const char* spec) {
  char buf[64];
  std::snprintf(buf, sizeof buf, spec, v);
  return buf;
}

JsonObject& JsonObject::raw(const std::string& key, const std::string& json) {
  fields_.emplace_back(key, json);
  return *this;
}
JsonObject& JsonObject::add(const std::string& key, double v) { return raw(key, number(v)); }
JsonObject& JsonObject::add(const std::string& key, int64_t v) { return raw(key, std::to_string(v)); }
JsonObject& JsonObject::add(const std::string& key, bool v) { return raw(key, v ? "true" : "false"); }
JsonObject& JsonObject::add(const std::string& key, const std::string& v) { return raw(key, quote(v)); }
JsonObject& JsonObject::add(const std::string& key, const char* v) { return raw(key, quote(v)); }
JsonObject& JsonObject::add(const std::string& key, const std::vector<double>& v) { return raw(key, list(v, number)); }
JsonObject& JsonObject::add(const std::string& key, const std::vector<int64_t>& v) {
  return raw(key, list(v, [](int64_t i) { return std::to_string(i); }));
}
JsonObject& JsonObject::add(const std::string& key, const std::vector<std::string>& v) { return raw(key, list(v, quote)); }
JsonObject& JsonObject::add(const std::string& key, const std::vector<JsonObject>& v) {
  return raw(key, list(v, [](const JsonObject& o) { return o.str(); }));
}

JsonObject& JsonObject::extend(const JsonObject& other) {
  fields_.insert(fields_.end(), other.fields_.begin(), other.fields_.end());
  return *this;
}

std::string JsonObject::str() const {
  std::string out = "{";
  for (size_t i = 0; i < fields_.size(); ++i) out += (i ? ", " : "") + quote(fields_[i].first) + ": " + fields_[i].second;
  return out + "}";
}

}  // namespace loom::cli
