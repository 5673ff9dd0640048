// Checkpoint files: safetensors round trips, the byte layout, every corruption
// the loader must refuse with a loom::Error (never a crash), atomic saving, and
// the strict JSON reader underneath.
#include <cstring>
#include <filesystem>

#include "autograd/io/json.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"

using namespace loom;
using namespace loom::testing;

namespace {

// A file from a header string and raw data, with the length prefix computed.
std::string file_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return out + header + data;
}

void expect_same_tensor(const Tensor& actual, const Tensor& expected) {
  ASSERT_EQ(actual.shape(), expected.shape());
  ASSERT_EQ(actual.dtype(), expected.dtype());
  EXPECT_TRUE(actual.device().is_cpu());
  size_t n = static_cast<size_t>(expected.numel()) * dtype_size(expected.dtype());
  EXPECT_EQ(std::memcmp(actual.data_ptr(), expected.data_ptr(), n), 0) << "bytes differ for " << expected;
}

std::vector<std::string> temp_leftovers(const TempDir& dir) {
  std::vector<std::string> left;
  for (const std::string& name : dir.entries())
    if (name.find(".tmp.") != std::string::npos) left.push_back(name);
  return left;
}

}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeAndShapeInOrder) {
  TempDir dir;
  NamedTensors tensors = {
      {"w", from_vector(std::vector<double>{1.5, -2.25, 3e-8, 4e30, -0.0, 7}, {2, 3})},
      {"f64", from_vector(std::vector<double>{3.141592653589793, -1e-300}, {2, 1}, TensorOptions{DType::Float64})},
      {"i32", from_vector(std::vector<int64_t>{-2147483647 - 1, 2147483647, 5}, {3}, TensorOptions{DType::Int32})},
      {"i64", from_vector(std::vector<int64_t>{INT64_MIN, INT64_MAX, -1}, {1, 3}, TensorOptions{DType::Int64})},
      {"scalar", scalar(2.5, TensorOptions{DType::Float64})},
      {"empty", zeros({0})},
      {"empty3d", zeros({2, 0, 3}, TensorOptions{DType::Int64})},
      {"unicode \xC3\xA9 \"quoted\"\n", ones({1})},
  };
  SafetensorsMetadata meta = {{"format", "pt"}, {"step", "1200"}, {"note", "tab\there \xE2\x9C\x93"}};
  std::string path = dir / "ckpt.safetensors";
  save_safetensors(path, tensors, meta);
  Safetensors loaded = load_safetensors(path);
  EXPECT_EQ(loaded.metadata, meta);
  ASSERT_EQ(loaded.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(loaded.tensors[i].first, tensors[i].first) << "file order follows the order given";
    expect_same_tensor(loaded.tensors[i].second, tensors[i].second);
  }
  EXPECT_EQ(loaded.at("scalar").dim(), 0);
  EXPECT_DOUBLE_EQ(loaded.at("scalar").item(), 2.5);
  EXPECT_TRUE(temp_leftovers(dir).empty());
}

TEST(Safetensors, SavingOverwritesAndAcceptsAMap) {
  TempDir dir;
  std::string path = dir / "m.safetensors";
  save_safetensors(path, NamedTensors{{"old", ones({4})}});
  std::map<std::string, Tensor> by_name = {{"zeta", ones({2})}, {"alpha", zeros({3})}};
  save_safetensors(path, by_name);
  Safetensors loaded = load_safetensors(path);
  ASSERT_EQ(loaded.tensors.size(), 2u);
  EXPECT_EQ(loaded.tensors[0].first, "alpha");
  EXPECT_EQ(loaded.tensors[1].first, "zeta");
  EXPECT_TRUE(loaded.metadata.empty());
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.safetensors"});
}

TEST(Safetensors, ByteLayoutMatchesPythonSafetensors) {
  // Exactly what Python's safetensors (0.8, safetensors.numpy.save) writes for
  // {"a": float32 [1, -2], "b": int64 scalar 5} with metadata {"format": "pt"}:
  // compact JSON, the header padded with spaces to 144 bytes (a multiple of 8),
  // then raw little-endian data. Python orders by alignment, so we pass b first.
  std::string header =
      "{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}      ";
  ASSERT_EQ(header.size(), 144u);
  const char data[] = {5, 0, 0, 0, 0, 0, 0, 0,                                      // int64 5
                       0, 0, static_cast<char>(0x80), 0x3F, 0, 0, 0, static_cast<char>(0xC0)};  // 1.0f, -2.0f
  std::string expected = std::string("\x90\0\0\0\0\0\0\0", 8) + header + std::string(data, sizeof data);

  TempDir dir;
  std::string path = dir / "tiny.safetensors";
  save_safetensors(path, NamedTensors{{"b", scalar(5, TensorOptions{DType::Int64})},
                                      {"a", from_vector(std::vector<double>{1, -2}, {2})}},
                   {{"format", "pt"}});
  EXPECT_EQ(read_bytes(path), expected);

  // And the hand-built bytes load back.
  write_bytes(path, expected);
  Safetensors loaded = load_safetensors(path);
  expect_values(loaded.at("a"), {1, -2});
  EXPECT_EQ(loaded.at("b").to_vector<int64_t>(), std::vector<int64_t>{5});
  EXPECT_EQ(loaded.metadata.at("format"), "pt");
}

TEST(Safetensors, ReadsHeadersWrittenDifferently) {
  // Whitespace, another key order, __metadata__ last, escapes, no padding.
  TempDir dir;
  std::string path = dir / "other.safetensors";
  std::string data(12, '\0');
  float v[3] = {0.5f, 1.5f, -3};
  std::memcpy(data.data(), v, sizeof v);
  write_bytes(path, file_bytes("{ \"x\\u00e9\" : { \"data_offsets\" : [ 0 , 12 ] , \"shape\" : [ 3 ], "
                               "\"dtype\" : \"F32\" } ,\n \"__metadata__\": {\"k\\n\": \"\\ud83d\\ude00\"} }\t",
                               data));
  Safetensors loaded = load_safetensors(path);
  expect_values(loaded.at("x\xC3\xA9"), {0.5, 1.5, -3});
  EXPECT_EQ(loaded.metadata.at("k\n"), "\xF0\x9F\x98\x80");
}

TEST(Safetensors, RefusesTruncatedFilesEverywhere) {
  TempDir dir;
  std::string good = dir / "good.safetensors";
  save_safetensors(good, NamedTensors{{"a", ones({3, 5})}, {"b", zeros({7}, TensorOptions{DType::Int64})}});
  std::string bytes = read_bytes(good);
  std::string bad = dir / "cut.safetensors";
  uint64_t header_end = 8 + static_cast<uint8_t>(bytes[0]);
  for (size_t cut : std::vector<size_t>{0, 1, 7, 8, 9, 20, header_end - 1, header_end, header_end + 1,
                                        header_end + 60, bytes.size() - 1}) {
    SCOPED_TRACE(cut);
    write_bytes(bad, bytes.substr(0, cut));
    expect_error([&] { load_safetensors(bad); }, {"load_safetensors", bad});
  }
  write_bytes(bad, bytes.substr(0, 5));
  expect_error([&] { load_safetensors(bad); }, {"5 bytes, too short"});
  write_bytes(bad, bytes.substr(0, header_end - 1));
  expect_error([&] { load_safetensors(bad); }, {"runs past the end"});
  write_bytes(bad, bytes.substr(0, bytes.size() - 1));
  expect_error([&] { load_safetensors(bad); }, {"tensor \"b\"", "run past the end", "truncated file?"});
  expect_error([&] { load_safetensors(dir / "absent.safetensors"); }, {"absent.safetensors", "cannot open"});
  expect_error([&] { load_safetensors(dir.path()); }, {"not a regular file"});
}

TEST(Safetensors, RefusesImplausibleHeaderLengths) {
  TempDir dir;
  std::string path = dir / "bad.safetensors";
  std::string bytes = file_bytes("{}", "");
  bytes[0] = 50;  // more than the 2 header bytes that follow
  write_bytes(path, bytes);
  expect_error([&] { load_safetensors(path); }, {"header length 50 runs past the end of the 10-byte file"});
  bytes[0] = 0;
  bytes[7] = static_cast<char>(0x80);  // 2^63
  write_bytes(path, bytes);
  expect_error([&] { load_safetensors(path); }, {"is not plausible", "not a safetensors file?"});
  write_bytes(path, std::string(8, '\0') + "{}");
  expect_error([&] { load_safetensors(path); }, {"header length 0 is not plausible"});
  // An empty checkpoint is fine.
  write_bytes(path, file_bytes("{}", ""));
  EXPECT_TRUE(load_safetensors(path).tensors.empty());
}

TEST(Safetensors, RefusesMalformedJson) {
  TempDir dir;
  std::string path = dir / "bad.safetensors";
  const std::string entry = "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}";
  struct Case {
    std::string header, fragment;
  };
  std::vector<Case> cases = {
      {"{\"a\":" + entry, "expected '}' but the text ended"},
      {"{\"a\" " + entry + "}", "expected ':'"},
      {"{\"a\":" + entry + ",}", "expected a string key"},
      {"{\"a\":" + entry + "} x", "unexpected text after the JSON value"},
      {"[1,2]", "the header is not a JSON object"},
      {"{\"a\":" + entry + ",\"a\":" + entry + "}", "duplicate key \"a\""},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", "shape holds something other than"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", "leading zero"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", "out of the int64 range"},
      {"{\"a\":{\"dtype\":true,\"shape\":[1],\"data_offsets\":[0,4]}}", "unsupported value"},
      {"{\"a\\q\":" + entry + "}", "unknown escape"},
      {"{\"a\\ud800\":" + entry + "}", "high surrogate not followed by a low surrogate"},
      {"{\"a\\udc00\":" + entry + "}", "lone low surrogate"},
      {"{\"a\\u12\":" + entry + "}", "bad hex digit"},
      {"{\"a\xFF\":" + entry + "}", "invalid UTF-8"},
      {"{\"a\xC0\xAF\":" + entry + "}", "invalid UTF-8"},  // overlong '/'
      {"{\"a\nb\":" + entry + "}", "unescaped control character"},
      {"{\"a", "unterminated string"},
      {std::string(5000, '[') + std::string(5000, ']'), "nesting deeper than 64"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header.substr(0, 80));
    write_bytes(path, file_bytes(c.header, std::string(4, '\0')));
    expect_error([&] { load_safetensors(path); }, {"load_safetensors", path, c.fragment});
  }
}

TEST(Safetensors, RefusesInconsistentEntries) {
  TempDir dir;
  std::string path = dir / "bad.safetensors";
  struct Case {
    std::string header;
    size_t data_bytes;
    std::string fragment;
  };
  auto e = [](const std::string& name, const std::string& dtype, const std::string& shape, int b, int end) {
    return str("\"", name, "\":{\"dtype\":\"", dtype, "\",\"shape\":", shape, ",\"data_offsets\":[", b, ",", end, "]}");
  };
  std::vector<Case> cases = {
      {"{" + e("a", "F16", "[2]", 0, 4) + "}", 4, "tensor \"a\": unsupported dtype \"F16\""},
      {"{" + e("a", "BOOL", "[2]", 0, 2) + "}", 2, "unsupported dtype \"BOOL\""},
      {"{" + e("a", "F32", "[2,3]", 0, 20) + "}", 20,
       "shape [2,3] F32 needs 24 bytes but data_offsets [0, 20] span 20"},
      {"{" + e("a", "F32", "[2]", 0, 8) + "}", 4, "run past the end of the 4-byte data section"},
      {"{" + e("a", "F32", "[1]", 8, 4) + "}", 8, "are not an ordered pair"},
      {"{" + e("a", "F32", "[1]", -4, 0) + "}", 8, "are not an ordered pair"},
      {"{" + e("a", "F32", "[-1]", 0, 0) + "}", 8, "non-negative integer"},
      {"{" + e("a", "F32", "[2]", 0, 8) + "," + e("b", "F32", "[2]", 4, 12) + "}", 12,
       "tensor \"b\" (bytes 4..12) overlaps tensor \"a\" (bytes 0..8)"},
      {"{" + e("a", "F32", "[1]", 0, 4) + "," + e("b", "F32", "[1]", 8, 12) + "}", 12,
       "bytes 4..8 of the data section belong to no tensor"},
      {"{" + e("a", "F32", "[1]", 4, 8) + "}", 8, "bytes 0..4 of the data section belong to no tensor"},
      {"{" + e("a", "F32", "[1]", 0, 4) + "}", 9, "the last 5 bytes of the 9-byte data section belong to no tensor"},
      {"{" + e("a", "F32", "[4611686018427387904,4611686018427387904]", 0, 4) + "}", 4, "more elements than fit"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "needs the fields dtype, shape and data_offsets"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, "unexpected field \"x\""},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "not a pair of integers"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, "shape is not an array"},
      {"{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype is not a string"},
      {"{\"a\":[]}", 0, "entry is not a JSON object"},
      {"{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ value of \"k\" is not a string"},
      {"{\"__metadata__\":[]}", 0, "__metadata__ is not a JSON object"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header);
    write_bytes(path, file_bytes(c.header, std::string(c.data_bytes, '\0')));
    expect_error([&] { load_safetensors(path); }, {"load_safetensors: " + path, c.fragment});
  }
}

TEST(Safetensors, SurvivesEveryByteCorrupted) {
  // Every single-byte corruption of the length and header of a small file either
  // loads or is a loom::Error (under ASan/UBSan: no out-of-bounds access on any
  // path). The values hit the length (0x00, 0xFF), UTF-8 (0xFF), strings and
  // structure ('"'). Data bytes are opaque, so corrupting them cannot fail.
  TempDir dir;
  std::string path = dir / "f.safetensors";
  save_safetensors(path, NamedTensors{{"w", ones({2, 2})}, {"n", zeros({1}, TensorOptions{DType::Int32})}},
                   {{"k", "v"}});
  const std::string bytes = read_bytes(path);
  const size_t header_end = 8 + static_cast<uint8_t>(bytes[0]);
  int refused = 0;
  for (size_t i = 0; i < header_end; ++i) {
    for (unsigned char v : {0x00, 0x22, 0xFF}) {
      std::string corrupt = bytes;
      if (static_cast<unsigned char>(corrupt[i]) == v) continue;
      corrupt[i] = static_cast<char>(v);
      write_bytes(path, corrupt);
      try {
        load_safetensors(path);
      } catch (const Error& err) {
        ++refused;
        EXPECT_NE(std::string(err.what()).find(path), std::string::npos) << err.what();
      }
    }
  }
  EXPECT_GT(refused, static_cast<int>(header_end));  // most header corruptions cannot survive
}

TEST(Safetensors, SaveRefusesBadInputs) {
  TempDir dir;
  std::string path = dir / "x.safetensors";
  expect_error([&] { save_safetensors(path, NamedTensors{{"a", ones({1})}, {"a", ones({1})}}); },
               {"save_safetensors", path, "\"a\" appears twice"});
  expect_error([&] { save_safetensors(path, NamedTensors{{"__metadata__", ones({1})}}); }, {"reserved"});
  expect_error([&] { save_safetensors(path, NamedTensors{{"a", Tensor()}}); }, {"tensor \"a\" is undefined"});
  expect_error([&] { save_safetensors(path, NamedTensors{{"bad\xFF", ones({1})}}); }, {"not valid UTF-8"});
  expect_error([&] { save_safetensors(path, NamedTensors{}, {{"k", "\xC3"}}); }, {"metadata", "not valid UTF-8"});
  EXPECT_TRUE(dir.entries().empty()) << "nothing is created for refused inputs";
}

TEST(Safetensors, FailedSaveLeavesNoTempFile) {
  TempDir dir;
  // A directory that does not exist: nothing can be created.
  std::string missing = dir / "no/such/dir/x.safetensors";
  expect_error([&] { save_safetensors(missing, NamedTensors{{"a", ones({1})}}); },
               {"save_safetensors", missing, "cannot create the temporary file", "No such file or directory"});

  // The target is a directory: the temp file is written in full, then the rename
  // fails; the temp file must go and the directory stay.
  std::string target = dir / "occupied";
  std::filesystem::create_directory(target);
  write_bytes(target + "/inside", "keep");
  expect_error([&] { save_safetensors(target, NamedTensors{{"a", ones({8})}}); },
               {"renaming over the target", "is untouched"});
  EXPECT_EQ(read_bytes(target + "/inside"), "keep");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"occupied"});
}

TEST(Safetensors, DiskFullKeepsThePreviousCheckpoint) {
  // Simulate a full disk with a file-size limit: writes past it fail with EFBIG
  // (SIGXFSZ ignored), which is the same code path as ENOSPC.
  TempDir dir;
  std::string path = dir / "ckpt.safetensors";
  save_safetensors(path, NamedTensors{{"w", full({4}, 3)}}, {{"step", "1"}});
  const std::string before = read_bytes(path);

  expect_error(
      [&] {
        with_file_size_limit(1000, [&] { save_safetensors(path, NamedTensors{{"w", ones({4096})}}, {{"step", "2"}}); });
      },
      {"save_safetensors: " + path, "writing", "File too large", "is untouched"});
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"ckpt.safetensors"});
  EXPECT_EQ(load_safetensors(path).metadata.at("step"), "1");
}

TEST(Safetensors, CheckedLoadNamesEveryMismatch) {
  TempDir dir;
  std::string path = dir / "model.safetensors";
  save_safetensors(path, NamedTensors{{"enc.w", ones({3, 4})},
                                      {"enc.b", ones({4})},
                                      {"dec.w", ones({4, 3})},
                                      {"extra", ones({1})}},
                   {{"model", "vae"}});
  std::vector<TensorSpec> spec = {{"dec.w", {4, 3}, DType::Float32}, {"enc.w", {3, 4}, DType::Float32},
                                  {"enc.b", {4}, DType::Float32}, {"extra", {1}, DType::Float32}};
  Safetensors ok = load_safetensors_checked(path, spec);
  ASSERT_EQ(ok.tensors.size(), 4u);
  EXPECT_EQ(ok.tensors[0].first, "dec.w") << "result follows the expected order";
  EXPECT_EQ(ok.tensors[1].first, "enc.w");
  EXPECT_EQ(ok.metadata.at("model"), "vae");

  std::vector<TensorSpec> other = {{"enc.w", {4, 4}, DType::Float32},
                                   {"enc.b", {4}, DType::Float64},
                                   {"dec.w", {4, 3}, DType::Float32},
                                   {"prior.mu", {8}, DType::Float32}};
  expect_error([&] { load_safetensors_checked(path, other); },
               {"load_safetensors: " + path, "checkpoint from a different model?",
                "tensor \"enc.w\" is [3, 4] float32 in the file but the model expects [4, 4] float32",
                "tensor \"enc.b\" is [4] float32 in the file but the model expects [4] float64",
                "missing tensor \"prior.mu\"", "unexpected tensor \"extra\""});
  expect_error([&] { ok.at("nope"); }, {"no tensor \"nope\"", "\"dec.w\""});
}

TEST(Json, ParsesTheHeaderSubset) {
  Json v = parse_json(" {\"a\": [1, -2, 0, 9223372036854775807, -9223372036854775808], \"b\": {}, \"c\": \"\\\"\\\\\\/"
                      "\\b\\f\\n\\r\\t\\u0041\"} ",
                      "test");
  ASSERT_EQ(v.kind, Json::Kind::Object);
  EXPECT_EQ(v.keys, (std::vector<std::string>{"a", "b", "c"}));
  const Json* a = v.find("a");
  ASSERT_TRUE(a && a->kind == Json::Kind::Array && a->values.size() == 5);
  EXPECT_EQ(a->values[1].integer, -2);
  EXPECT_EQ(a->values[3].integer, INT64_MAX);
  EXPECT_EQ(a->values[4].integer, INT64_MIN);
  EXPECT_EQ(v.find("c")->string, "\"\\/\b\f\n\r\tA");
  EXPECT_EQ(v.find("missing"), nullptr);
  expect_error([] { parse_json("9223372036854775808", "t"); }, {"t: malformed JSON at byte", "int64 range"});
  expect_error([] { parse_json("", "t"); }, {"expected a value"});
  expect_error([] { parse_json("-", "t"); }, {"expected a digit"});
  expect_error([] { parse_json("true", "t"); }, {"unsupported value"});
  EXPECT_EQ(parse_json("null", "t").kind, Json::Kind::Null);
  EXPECT_DOUBLE_EQ(parse_json("-1.5e-3", "t").number, -1.5e-3);
  EXPECT_EQ(parse_json("12", "t").kind, Json::Kind::Integer);
  expect_error([] { parse_json("1.", "t"); }, {"decimal point"});
  expect_error([] { parse_json("2e+", "t"); }, {"exponent"});
}

TEST(Json, QuoteRoundTripsThroughTheParser) {
  std::string s = "q\"b\\s\x01\x1F\n\t\r \xC3\xA9\xF0\x9F\x98\x80/";
  EXPECT_EQ(json_quote("a\"\n\x01"), "\"a\\\"\\n\\u0001\"");
  EXPECT_EQ(parse_json(json_quote(s), "t").string, s);
  EXPECT_TRUE(is_valid_utf8(s));
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));  // an encoded surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  expect_error([] { json_quote("\xE2\x82"); }, {"json_quote", "invalid UTF-8 at byte 0"});
}
