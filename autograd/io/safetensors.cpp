#include "autograd/io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <set>

#include "autograd/io/atomic_file.h"
#include "autograd/io/input_file.h"
#include "autograd/io/json.h"

namespace loom {

// The data section is raw little-endian; loom copies it byte for byte.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

// Python's safetensors refuses headers above 100 MB; so do we, before allocating.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int32: return "I32";
    case DType::Int64: return "I64";
  }
  return "?";
}

bool parse_safetensors_dtype(const std::string& s, DType& out) {
  for (DType t : {DType::Float32, DType::Float64, DType::Int32, DType::Int64})
    if (s == safetensors_dtype(t)) {
      out = t;
      return true;
    }
  return false;
}

// Closes a file descriptor on every path out of a scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// Reads exactly n bytes at offset or throws (the file shrank, or an I/O error).
std::string shape_json(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += str(i ? "," : "", s[i]);
  return out + "]";
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& name, const Json& v, uint64_t data_bytes, const std::string& what) {
  const std::string where = str(what, ": tensor ", json_quote(name));
  LOOM_CHECK(v.kind == Json::Kind::Object, where, ": entry is not a JSON object");
  for (const std::string& key : v.keys)
    LOOM_CHECK(key == "dtype" || key == "shape" || key == "data_offsets", where, ": unexpected field ",
               json_quote(key));
  const Json* dtype = v.find("dtype");
  const Json* shape = v.find("shape");
  const Json* offsets = v.find("data_offsets");
  LOOM_CHECK(dtype && shape && offsets, where, ": needs the fields dtype, shape and data_offsets");

  Entry e{name, DType::Float32, {}, 0, 0};
  LOOM_CHECK(dtype->kind == Json::Kind::String, where, ": dtype is not a string");
  LOOM_CHECK(parse_safetensors_dtype(dtype->string, e.dtype), where, ": unsupported dtype ",
             json_quote(dtype->string), " (loom reads F32, F64, I32, I64)");

  LOOM_CHECK(shape->kind == Json::Kind::Array, where, ": shape is not an array");
  uint64_t count = 1;
  bool overflow = false;
  for (const Json& d : shape->values) {
    LOOM_CHECK(d.kind == Json::Kind::Integer && d.integer >= 0, where, ": shape holds something other than a "
               "non-negative integer");
    e.shape.push_back(d.integer);
    overflow |= __builtin_mul_overflow(count, static_cast<uint64_t>(d.integer), &count);
  }
  uint64_t nbytes = 0;
  overflow |= __builtin_mul_overflow(count, static_cast<uint64_t>(dtype_size(e.dtype)), &nbytes);
  LOOM_CHECK(!overflow, where, ": shape ", shape_json(e.shape), " has more elements than fit in memory");

  LOOM_CHECK(offsets->kind == Json::Kind::Array && offsets->values.size() == 2 &&
                 offsets->values[0].kind == Json::Kind::Integer && offsets->values[1].kind == Json::Kind::Integer,
             where, ": data_offsets is not a pair of integers");
  int64_t begin = offsets->values[0].integer, end = offsets->values[1].integer;
  LOOM_CHECK(begin >= 0 && begin <= end, where, ": data_offsets [", begin, ", ", end, "] are not an ordered "
             "pair of non-negative offsets");
  e.begin = static_cast<uint64_t>(begin);
  e.end = static_cast<uint64_t>(end);
  LOOM_CHECK(e.end <= data_bytes, where, ": data_offsets [", begin, ", ", end, "] run past the end of the ",
             data_bytes, "-byte data section (truncated file?)");
  LOOM_CHECK(e.end - e.begin == nbytes, where, ": shape ", shape_json(e.shape), " ", dtype->string, " needs ",
             nbytes, " bytes but data_offsets [", begin, ", ", end, "] span ", e.end - e.begin);
  return e;
}

// The tensors must tile the data section: sorted by offset, each begins where
// the previous ended, and the last ends at the end of the file.
void check_tiling(std::vector<Entry>& entries, uint64_t data_bytes, const std::string& what) {
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    LOOM_CHECK(e.begin >= cursor, what, ": tensor ", json_quote(e.name), " (bytes ", e.begin, "..", e.end,
               ") overlaps tensor ", json_quote(previous ? previous->name : ""), " (bytes ",
               previous ? previous->begin : 0, "..", cursor, ")");
    LOOM_CHECK(e.begin == cursor, what, ": bytes ", cursor, "..", e.begin, " of the data section belong to no tensor");
    cursor = e.end;
    previous = &e;
  }
  LOOM_CHECK(cursor == data_bytes, what, ": the last ", data_bytes - cursor, " bytes of the ", data_bytes,
             "-byte data section belong to no tensor");
}

}  // namespace

const Tensor& Safetensors::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  std::string names;
  for (size_t i = 0; i < tensors.size() && i < 20; ++i) names += (i ? ", " : "") + json_quote(tensors[i].first);
  if (tensors.size() > 20) names += ", ...";
  throw Error(str("Safetensors::at: no tensor ", json_quote(name), " (the file holds ", tensors.size(),
                  " tensors: ", names, ")"));
}

void save_safetensors(const std::string& path, const NamedTensors& tensors, const SafetensorsMetadata& metadata) {
  const std::string what = "save_safetensors: " + path;
  // Host copies first: nothing is created on disk until every input is known good.
  std::vector<Tensor> host;
  std::set<std::string> seen;
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      LOOM_CHECK(is_valid_utf8(k) && is_valid_utf8(v), what, ": metadata entry is not valid UTF-8");
      header += str(first ? "" : ",", json_quote(k), ":", json_quote(v));
      first = false;
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    LOOM_CHECK(name != "__metadata__", what, ": \"__metadata__\" is reserved and cannot name a tensor");
    LOOM_CHECK(is_valid_utf8(name), what, ": tensor name is not valid UTF-8");
    LOOM_CHECK(seen.insert(name).second, what, ": tensor name ", json_quote(name), " appears twice");
    LOOM_CHECK(t.defined(), what, ": tensor ", json_quote(name), " is undefined");
    host.push_back(t.detach().to(Device::cpu()));
    uint64_t nbytes = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    header += str(header.size() > 1 ? "," : "", json_quote(name), ":{\"dtype\":\"", safetensors_dtype(t.dtype()),
                  "\",\"shape\":", shape_json(t.shape()), ",\"data_offsets\":[", offset, ",", offset + nbytes, "]}");
    offset += nbytes;
  }
  header += "}";
  header.resize((header.size() + 7) / 8 * 8, ' ');  // align the data section to 8 bytes
  uint64_t n = header.size();
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(n >> (8 * i));

  AtomicFile file(path, what);
  file.write(length, sizeof length);
  file.write(header);
  for (const Tensor& t : host) file.write(t.data_ptr(), static_cast<size_t>(t.numel()) * dtype_size(t.dtype()));
  file.commit();
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const SafetensorsMetadata& metadata) {
  save_safetensors(path, NamedTensors(tensors.begin(), tensors.end()), metadata);
}

Safetensors load_safetensors(const std::string& path) {
  const std::string what = "load_safetensors: " + path;
  const InputFile file(path, "load_safetensors");
  const uint64_t file_bytes = file.size();
  LOOM_CHECK(file_bytes >= 8, what, ": the file is ", file_bytes, " bytes, too short for the 8-byte header length");

  unsigned char length[8];
  file.read_at(length, 8, 0);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(length[i]) << (8 * i);
  LOOM_CHECK(n >= 2 && n <= kMaxHeaderBytes, what, ": header length ", n, " is not plausible (a safetensors "
             "header is 2 to ", kMaxHeaderBytes, " bytes of JSON); not a safetensors file?");
  LOOM_CHECK(n <= file_bytes - 8, what, ": header length ", n, " runs past the end of the ", file_bytes,
             "-byte file (truncated?)");
  std::string text(n, '\0');
  file.read_at(text.data(), n, 8);
  Json header = parse_json(text, what + ": header");
  LOOM_CHECK(header.kind == Json::Kind::Object, what, ": the header is not a JSON object");

  const uint64_t data_bytes = file_bytes - 8 - n;
  Safetensors out;
  std::vector<Entry> entries;
  for (size_t i = 0; i < header.keys.size(); ++i) {
    const std::string& key = header.keys[i];
    const Json& v = header.values[i];
    if (key == "__metadata__") {
      LOOM_CHECK(v.kind == Json::Kind::Object, what, ": __metadata__ is not a JSON object");
      for (size_t k = 0; k < v.keys.size(); ++k) {
        LOOM_CHECK(v.values[k].kind == Json::Kind::String, what, ": __metadata__ value of ", json_quote(v.keys[k]),
                   " is not a string");
        out.metadata[v.keys[k]] = v.values[k].string;
      }
    } else {
      entries.push_back(parse_entry(key, v, data_bytes, what));
    }
  }
  check_tiling(entries, data_bytes, what);

  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, TensorOptions{e.dtype, Device::cpu()});
    file.read_at(t.data_ptr(), e.end - e.begin, 8 + n + e.begin);
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

Safetensors load_safetensors_checked(const std::string& path, const std::vector<TensorSpec>& expected) {
  return check_safetensors(load_safetensors(path), path, expected);
}

Safetensors check_safetensors(const Safetensors& file, const std::string& path, const std::vector<TensorSpec>& expected) {
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : file.tensors) by_name[name] = &t;

  std::vector<std::string> problems;
  Safetensors out;
  out.metadata = file.metadata;
  std::set<std::string> wanted;
  for (const TensorSpec& spec : expected) {
    wanted.insert(spec.name);
    auto it = by_name.find(spec.name);
    if (it == by_name.end()) {
      if (!spec.required) continue;
      problems.push_back(str("missing tensor ", json_quote(spec.name), " (", spec.shape, " ", spec.dtype, ")"));
      continue;
    }
    const Tensor& t = *it->second;
    if (t.shape() != spec.shape || t.dtype() != spec.dtype)
      problems.push_back(str("tensor ", json_quote(spec.name), " is ", t.shape(), " ", t.dtype(),
                             " in the file but the model expects ", spec.shape, " ", spec.dtype));
    out.tensors.emplace_back(spec.name, t);
  }
  for (const auto& [name, t] : file.tensors)
    if (!wanted.count(name)) problems.push_back(str("unexpected tensor ", json_quote(name), " (", t.shape(), " ", t.dtype(), ")"));
  if (!problems.empty()) {
    std::string msg = str("load_safetensors: ", path, " does not match the model (checkpoint from a different "
                          "model?): ");
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    throw Error(msg);
  }
  return out;
}

}  // namespace loom
