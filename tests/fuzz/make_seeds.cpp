// Writes the fuzz targets' seed corpora, one folder per target under argv[1]:
// small valid files of each kind, made by loom's own writers where it has them
// (save_safetensors, save_png) and by the libraries otherwise (stb_image_write
// for BMP, libjpeg for baseline and progressive JPEG through tests/jpeg_bytes.h, zlib for gzip). The fuzzer
// mutates from these, so it starts past each format's magic numbers and length checks.
#include <stb_image_write.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "autograd/loom.h"
#include "models/image_grid.h"
#include "tests/jpeg_bytes.h"

namespace fs = std::filesystem;
using namespace loom;

namespace {

fs::path root;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(root / target);
  std::ofstream f(root / target / name, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  LOOM_CHECK(f.good(), "make_seeds: cannot write ", (root / target / name).string());
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::string gzip(const std::string& bytes) {
  const fs::path tmp = root / "gzip.tmp";
  gzFile f = gzopen(tmp.c_str(), "wb");
  LOOM_CHECK(f && gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()) &&
                 gzclose(f) == Z_OK,
             "make_seeds: gzip failed");
  std::string out = slurp(tmp);
  fs::remove(tmp);
  return out;
}

// An IDX array of unsigned bytes: 0x00 0x00 0x08 <ndims>, big-endian dims, the bytes.
std::string idx(const std::vector<uint32_t>& dims) {
  std::string out{0, 0, 8, static_cast<char>(dims.size())};
  size_t n = 1;
  for (uint32_t d : dims) {
    for (int s = 24; s >= 0; s -= 8) out += static_cast<char>(d >> s);
    n *= d;
  }
  for (size_t i = 0; i < n; ++i) out += static_cast<char>(i * 37 % 256);
  return out;
}

void append(void* out, void* data, int n) { static_cast<std::string*>(out)->append(static_cast<char*>(data), n); }

void safetensors_seeds() {
  const NamedTensors small = {
      {"model.enc.w", from_vector(std::vector<double>{1.5, -2.25, 3e-8, 4e30, -0.0, 7}, {2, 3})},
      {"model.enc.b", from_vector(std::vector<double>{3.14, -1e-300}, {2}, TensorOptions{DType::Float64})},
      {"optim.step", from_vector(std::vector<int64_t>{-5, 7}, {2}, TensorOptions{DType::Int32})},
      {"rng.state", from_vector(std::vector<int64_t>{INT64_MIN, 1}, {1, 2}, TensorOptions{DType::Int64})},
      {"empty", zeros({2, 0})},
      {"scalar \xC3\xA9", scalar(2.5)},
  };
  const SafetensorsMetadata meta = {{"model", "vae"}, {"step", "3"}, {"total_steps", "6"}, {"seed", "5"}};
  const fs::path tmp = root / "seed.safetensors";
  const std::vector<std::pair<NamedTensors, SafetensorsMetadata>> files = {{small, meta}, {small, {}}, {{}, meta}};
  for (size_t i = 0; i < files.size(); ++i) {
    save_safetensors(tmp.string(), files[i].first, files[i].second);
    const std::string bytes = slurp(tmp);
    put("safetensors", str("file", i, ".safetensors"), bytes);
    uint64_t n = 0;
    for (int b = 0; b < 8; ++b) n |= uint64_t(static_cast<unsigned char>(bytes[b])) << (8 * b);
    put("json", str("header", i, ".json"), bytes.substr(8, n));
  }
  fs::remove(tmp);
  put("json", "metrics.json",
      "{\"step\":100,\"losses\":{\"d\":0.6931,\"g\":null},\"lr\":{\"g\":0.0002,\"d\":[0.0004,1e-4]},\"it_per_s\":35.1}");
  put("json", "escapes.json", "[\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\", -0, 1.5e-3, -9223372036854775808, {}]");
}

void idx_seeds() {
  for (const auto& [name, dims] : std::vector<std::pair<std::string, std::vector<uint32_t>>>{
           {"images-idx3-ubyte", {3, 5, 4}}, {"labels-idx1-ubyte", {3}}, {"idx4-ubyte", {2, 1, 2, 3}}}) {
    put("idx", name, idx(dims));
    put("idx", name + ".gz", gzip(idx(dims)));
  }
}

// A JPEG of h rows of w pixels of c (1 or 3) channels; progressive: several scans.
std::string jpeg(const std::vector<uint8_t>& px, int w, int h, int c, bool progressive) {
  const std::vector<uint8_t> b = testing::jpeg_bytes(w, h, c, px, progressive);
  return std::string(b.begin(), b.end());
}

void image_seeds() {
  Generator g(7);
  const Tensor grid = rand({2, 3, 5, 6}, {}, &g);
  save_image_grid(grid, (root / "image" / "rgb.png").string(), {0, 1}, {.nrow = 2, .padding = 1});
  save_image_grid(slice(grid, 1, 0, 1), (root / "image" / "grey.png").string(), {0, 1}, {.nrow = 1, .padding = 0});
  std::vector<uint8_t> px(7 * 5 * 4);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 29);
  save_png((root / "image" / "rgba.png").string(), px.data(), 7, 5, 4, "make_seeds");
  for (int c : {1, 3, 4}) {
    std::string bmp;
    LOOM_CHECK(stbi_write_bmp_to_func(append, &bmp, 7, 5, c, px.data()), "make_seeds: stb_image_write failed");
    put("image", str("c", c, ".bmp"), bmp);
  }
  put("image", "grey.jpg", jpeg(px, 7, 5, 1, false));
  put("image", "rgb.jpg", jpeg(px, 7, 5, 3, false));  // 4:2:0 chroma, libjpeg's default
  put("image", "progressive.jpg", jpeg(px, 7, 5, 3, true));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  root = argv[1];
  fs::create_directories(root / "image");
  safetensors_seeds();
  idx_seeds();
  image_seeds();
  put("captions", "captions.tsv",
      "a.png\ta dark ankle boot\r\nb.png\tthis is a plain shirt that fills the frame\n\n"
      "c d.jpg\tA LARGE light pullover, with a pattern!\t(tab inside)\n");
  put("attributes", "list_attr.txt",
      "3\r\n5_o_Clock_Shadow Black_Hair Blond_Hair Male \r\n000001.jpg -1  1 -1  1\r\n"
      "000002.jpg  1 -1  1 -1\n000003.jpg -1 -1 -1 -1\n\n");
  put("cli", "vae", "vae\n--steps\n100\n--latent-dim=20\n--lr\n2e-4\n--seed=3");
  put("cli", "dcgan", "dcgan\n--batch_size=128\n--n_steps\n3\n--image-size\n64\n--features=8\n--out\nout dir");
  put("cli", "infogan", "infogan\n--learn-std\n--lambda-cont\n0.5\n--iters=2000");
  put("cli", "typo", "gna\n--stesp\n5\n--hiden\n7");
  return 0;
}
