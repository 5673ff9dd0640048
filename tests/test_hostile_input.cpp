// What loom reads from outside, given what an attacker or an accident would give
// it: images that broke a decoder or declare absurd sizes, FIFOs where files are
// expected, IDX headers that lie about their size. Every input here once hung,
// crashed or allocated gigabytes; each must now be a loom::Error naming it (the
// sanitizer build runs these too). tests/data/reliability holds the files found
// by fuzzing and by hand.
#include <stb_image_write.h>
#include <sys/stat.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>


#include "autograd/io/input_file.h"
#include "autograd/loom.h"
#include "models/data/data.h"
#include "models/data/image.h"
#include "models/gan/captions.h"
#include "tests/gradcheck.h"
#include "tests/jpeg_bytes.h"
#include "tests/temp_dir.h"
#include "tests/train_fixture.h"
#include "tools/commands.h"

using namespace loom;
using namespace loom::data;
using namespace loom::testing;

namespace {

const std::string kCases = std::string(LOOM_TEST_DATA_DIR) + "/reliability/";

std::vector<uint8_t> bytes_of(const std::string& path) {
  const std::string s = read_bytes(path);
  return std::vector<uint8_t>(s.begin(), s.end());
}
void put_bytes(const std::string& path, const std::vector<uint8_t>& b) { write_bytes(path, std::string(b.begin(), b.end())); }

void put_be32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void put_le32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

// width × height pixels of one colour, interleaved.
std::vector<uint8_t> solid(int w, int h, std::vector<uint8_t> colour) {
  std::vector<uint8_t> px;
  for (int i = 0; i < w * h; ++i) px.insert(px.end(), colour.begin(), colour.end());
  return px;
}

void make_fifo(const std::string& path) { ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0) << path; }

// The message of what fn throws (a loom::Error or a command line's UsageError); "" when nothing.
std::string thrown(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// ---- images: decoding what the libraries write -------------------------------------------

TEST(HostileImages, DecodesPngJpegAndBmpByTheirContent) {
  TempDir dir;
  // 3×2 RGB with distinct pixels; PNG and BMP are lossless.
  const std::vector<uint8_t> rgb = {255, 0, 51, 0, 128, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90, 200, 210, 220};
  ASSERT_NE(stbi_write_png((dir / "a.png").c_str(), 3, 2, 3, rgb.data(), 9), 0);
  ASSERT_NE(stbi_write_bmp((dir / "a.bmp").c_str(), 3, 2, 3, rgb.data()), 0);
  // Named .jpg but holding a PNG: the content decides.
  std::filesystem::copy_file(dir / "a.png", dir / "png-named.jpg");
  for (const std::string name : {"a.png", "a.bmp", "png-named.jpg"}) {
    const Image img = read_image(dir / name, 3);
    EXPECT_EQ(img.width, 3) << name;
    EXPECT_EQ(img.height, 2) << name;
    EXPECT_EQ(img.pixels, rgb) << name;
    // Grey: (77 R + 150 G + 29 B) >> 8 for each pixel.
    const Image grey = read_image(dir / name, 1);
    ASSERT_EQ(grey.pixels.size(), 6u);
    for (size_t i = 0; i < 6; ++i)
      EXPECT_EQ(grey.pixels[i], (77 * rgb[3 * i] + 150 * rgb[3 * i + 1] + 29 * rgb[3 * i + 2]) >> 8) << name << " " << i;
  }
  // A grey PNG with alpha: the alpha is dropped, grey repeated into RGB.
  const std::vector<uint8_t> ga = {7, 0, 99, 255};
  ASSERT_NE(stbi_write_png((dir / "ga.png").c_str(), 2, 1, 2, ga.data(), 4), 0);
  EXPECT_EQ(read_image(dir / "ga.png", 3).pixels, (std::vector<uint8_t>{7, 7, 7, 99, 99, 99}));

  // JPEG is lossy: a solid 16×16 colour comes back within a few levels.
  const std::vector<uint8_t> colour = {200, 30, 40};
  put_bytes(dir / "c.jpg", jpeg_bytes(16, 16, 3, solid(16, 16, colour)));
  const Image jpg = read_image(dir / "c.jpg", 3);
  ASSERT_EQ(jpg.width, 16);
  ASSERT_EQ(jpg.height, 16);
  for (size_t i = 0; i < jpg.pixels.size(); ++i) EXPECT_NEAR(jpg.pixels[i], colour[i % 3], 3) << i;
  // From memory, as the fuzz target calls it.
  const std::vector<uint8_t> b = bytes_of(dir / "c.jpg");
  EXPECT_EQ(decode_image(b.data(), b.size(), "c.jpg", 3).pixels, jpg.pixels);
}

// ---- images: what must be refused ------------------------------------------------------------

// Found by libFuzzer: a JPEG whose Huffman table (DHT) declares more than 256
// codes. Debian's stb_image 2.27 wrote past its table; libjpeg-turbo refuses it.
TEST(HostileImages, StbsOutOfBoundsJpegIsRefusedByLibjpeg) {
  const std::string path = kCases + "image-stb-dht-oob.jpg";
  expect_error([&] { read_image(path, 3); }, {path, "damaged JPEG"});
  const std::vector<uint8_t> b = bytes_of(path);
  expect_error([&] { decode_image(b.data(), b.size(), "fuzz-case", 1); }, {"fuzz-case: damaged JPEG"});
}

// Found by libFuzzer: 369 bytes of JPEG declaring 32775 × 1541 pixels, its
// entropy-coded data cut short by a marker. libjpeg warns "premature end of data
// segment" and fills 50 megapixels with grey (the fuzz target timed out resizing
// them); loom calls it damaged, as a file cut short.
TEST(HostileImages, AJpegWhoseDataEndsEarlyIsDamagedNotFilledWithGrey) {
  const std::string path = kCases + "image-jpeg-369-bytes-50-megapixels.jpg";
  expect_error([&] { read_image(path, 3); }, {path, "damaged JPEG", "premature end of data segment"});
}

// 158 bytes declaring 16 × 16775440 pixels: refused from the header, before any
// allocation for the pixels (it took 12 s and 2.2 GB through stb).
TEST(HostileImages, AHugeDeclaredImageIsRefusedFromItsHeader) {
  const std::string path = kCases + "image-bmp-16x16775440.bmp";
  expect_error([&] { read_image(path, 3); },
               {path, "a 16 x 16775440 BMP image (268407040 pixels) is over the limit of 67108864 pixels",
                "--max-image-pixels"});
  // Within a raised limit it is still refused: the file holds almost none of its pixels.
  expect_error([&] { read_image(path, 3, int64_t(1) << 30); }, {path, "needs 1073628160 bytes of pixels", "158 bytes"});

  TempDir dir;
  const std::vector<uint8_t> px = solid(8, 8, {1, 2, 3});
  // A PNG whose IHDR (CRC recomputed) declares 100000 × 100000.
  ASSERT_NE(stbi_write_png((dir / "x.png").c_str(), 8, 8, 3, px.data(), 24), 0);
  std::vector<uint8_t> png = bytes_of(dir / "x.png");
  put_be32(png, 16, 100000);
  put_be32(png, 20, 100000);
  put_be32(png, 29, static_cast<uint32_t>(crc32(0, png.data() + 12, 17)));
  put_bytes(dir / "huge.png", png);
  expect_error([&] { read_image(dir / "huge.png", 3); }, {dir / "huge.png", "a 100000 x 100000 PNG image"});
  // A JPEG whose frame header (SOF0) declares 60000 × 60000 (libjpeg's own limit is 65500).
  std::vector<uint8_t> jpg = jpeg_bytes(8, 8, 3, px);
  size_t sof = 2;
  while (sof + 9 < jpg.size() && !(jpg[sof] == 0xFF && jpg[sof + 1] == 0xC0)) ++sof;
  ASSERT_LT(sof + 9, jpg.size());
  for (size_t i : {sof + 5, sof + 7}) jpg[i] = 60000 >> 8;
  for (size_t i : {sof + 6, sof + 8}) jpg[i] = 60000 & 0xFF;
  put_bytes(dir / "huge.jpg", jpg);
  expect_error([&] { read_image(dir / "huge.jpg", 3); }, {dir / "huge.jpg", "a 60000 x 60000 JPEG image"});
  // The limit is the caller's: 63 pixels refuses an 8 × 8 image, 64 takes it.
  expect_error([&] { read_image(dir / "x.png", 3, 63); }, {"a 8 x 8 PNG image (64 pixels) is over the limit of 63"});
  EXPECT_EQ(read_image(dir / "x.png", 3, 64).pixels, px);
  expect_error([&] { read_image(dir / "x.png", 3, 0); }, {"the pixel limit must be in [1, 4294967296], got 0"});
}

TEST(HostileImages, DamagedTruncatedAndUnknownFilesAreErrors) {
  TempDir dir;
  std::vector<uint8_t> jpg = jpeg_bytes(32, 32, 3, solid(32, 32, {9, 99, 199}));
  jpg.resize(jpg.size() / 2);
  put_bytes(dir / "cut.jpg", jpg);
  // libjpeg would fill the missing half with grey; a cut file is not an image.
  expect_error([&] { read_image(dir / "cut.jpg", 3); }, {dir / "cut.jpg", "damaged JPEG", "Premature end of JPEG file"});
  write_bytes(dir / "x.png", "\x89PNG\r\n\x1a\n this is not a png");
  expect_error([&] { read_image(dir / "x.png", 3); }, {dir / "x.png", "not a readable PNG"});
  write_bytes(dir / "x.gif", "GIF89a....");
  expect_error([&] { read_image(dir / "x.gif", 3); }, {dir / "x.gif", "not a PNG, JPEG or BMP image"});
  write_bytes(dir / "empty.png", "");
  expect_error([&] { read_image(dir / "empty.png", 3); }, {"not a PNG, JPEG or BMP image"});

  // A 1×1 BMP with bit fields of 10 bits per channel: stb_image asserts (aborts)
  // on masks wider than 8 bits, so they never reach it.
  std::vector<uint8_t> bmp(14 + 40 + 12 + 4, 0);
  bmp[0] = 'B', bmp[1] = 'M';
  put_le32(bmp, 2, static_cast<uint32_t>(bmp.size()));
  put_le32(bmp, 10, 14 + 40 + 12);
  put_le32(bmp, 14, 40);
  put_le32(bmp, 18, 1);           // width
  put_le32(bmp, 22, 1);           // height
  bmp[26] = 1, bmp[28] = 32;      // planes, bits per pixel
  put_le32(bmp, 30, 3);           // BI_BITFIELDS
  put_le32(bmp, 54, 0x3FF00000);  // red, green, blue masks
  put_le32(bmp, 58, 0x000FFC00);
  put_le32(bmp, 62, 0x000003FF);
  put_bytes(dir / "wide.bmp", bmp);
  expect_error([&] { read_image(dir / "wide.bmp", 3); }, {dir / "wide.bmp", "a channel mask of 10 bits (at most 8)"});
  // The same with 8-bit masks decodes: pixel 0x00AABBCC is (R, G, B) = (AA, BB, CC).
  put_le32(bmp, 54, 0x00FF0000);
  put_le32(bmp, 58, 0x0000FF00);
  put_le32(bmp, 62, 0x000000FF);
  put_le32(bmp, 66, 0x00AABBCC);
  put_bytes(dir / "ok.bmp", bmp);
  EXPECT_EQ(read_image(dir / "ok.bmp", 3).pixels, (std::vector<uint8_t>{0xAA, 0xBB, 0xCC}));
  // Run-length compression (1) is not taken.
  put_le32(bmp, 30, 1);
  put_bytes(dir / "rle.bmp", bmp);
  expect_error([&] { read_image(dir / "rle.bmp", 3); }, {dir / "rle.bmp", "compression 1"});
}

// A progressive JPEG of a 16×16 grey ramp in 1 + 63 · 10 = 631 scans: the DC
// coefficient, then each AC coefficient on its own, first at 2^-9 of its value
// and refined one bit per scan (JPEG's spectral selection and successive
// approximation, ITU-T T.81 G.1). Legal, and thousands of such scans take
// libjpeg minutes.
TEST(HostileImages, AJpegOfTooManyScansIsRefused) {
  std::vector<jpeg_scan_info> scans;
  scans.push_back({1, {0, 0, 0, 0}, 0, 0, 0, 0});
  for (int k = 1; k < 64; ++k) {
    scans.push_back({1, {0, 0, 0, 0}, k, k, 0, 9});
    for (int al = 8; al >= 0; --al) scans.push_back({1, {0, 0, 0, 0}, k, k, al + 1, al});
  }
  std::vector<uint8_t> ramp;
  for (int i = 0; i < 256; ++i) ramp.push_back(static_cast<uint8_t>(16 * (i % 16)));
  const std::vector<uint8_t> jpg = jpeg_bytes(16, 16, 1, ramp, false, scans);
  expect_error([&] { decode_image(jpg.data(), jpg.size(), "scans.jpg", 1); },
               {"scans.jpg: damaged JPEG: a progressive JPEG of more than 500 scans"});
}

// ---- paths that are not regular files --------------------------------------------------------

// open() on a FIFO blocks until a writer appears: each reader must refuse it
// unopened (these calls would hang, not fail, before).
TEST(HostileFiles, FifosAreRefusedNotOpened) {
  TempDir dir;
  make_fifo(dir / "pipe");
  expect_error([&] { load_safetensors(dir / "pipe"); }, {"load_safetensors: " + (dir / "pipe"), "is a FIFO"});
  expect_error([&] { read_idx(dir / "pipe"); }, {"read_idx: " + (dir / "pipe"), "is a FIFO"});
  expect_error([&] { read_image(dir / "pipe", 3); }, {"read_image: " + (dir / "pipe"), "is a FIFO"});
  expect_error([&] { read_file(dir / "pipe", "captions", 100); }, {"captions: " + (dir / "pipe"), "is a FIFO"});
  expect_error([&] { models::captions::read_captions(dir / "pipe"); }, {"captions file: " + (dir / "pipe"), "is a FIFO"});
  expect_error([&] { load_safetensors(dir.path()); }, {dir.path(), "is a directory, not a regular file"});
  expect_error([&] { check_directory(dir / "pipe", "load_image_folder"); }, {dir / "pipe", "not a directory"});

  // In an image folder, a FIFO with an image's name is an unreadable image, named.
  std::filesystem::create_directories(dir / "set/a");
  ASSERT_NE(stbi_write_png((dir / "set/a/0.png").c_str(), 1, 1, 1, std::vector<uint8_t>{5}.data(), 1), 0);
  make_fifo(dir / "set/a/1.png");
  const ImageFolder f = load_image_folder(dir / "set", {.size = 1, .channels = 1});
  EXPECT_EQ(f.paths, std::vector<std::string>{dir / "set/a/0.png"});
  ASSERT_EQ(f.skipped.size(), 1u);
  EXPECT_NE(f.skipped[0].find(dir / "set/a/1.png"), std::string::npos) << f.skipped[0];
  EXPECT_NE(f.skipped[0].find("is a FIFO"), std::string::npos) << f.skipped[0];
  expect_error([&] { load_images(dir / "set/a/1.png", 4, 1); }, {"load_images: cannot read image", "is a FIFO"});
  // A file larger than the reader takes is refused before it is read.
  write_bytes(dir / "big", std::string(101, 'x'));
  expect_error([&] { read_file(dir / "big", "captions", 100); }, {"the file is 101 bytes, more than the 100"});
}

// ---- IDX headers that lie ------------------------------------------------------------------------

// 17 bytes declaring [1, 4096, 4096] (16 MiB): the file's length refuses it
// before the data is allocated. A gzip file can inflate at most 1032-fold.
TEST(HostileFiles, IdxSizesAreCheckedAgainstTheFileLength) {
  TempDir dir;
  const std::string header = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0x10, 0, 0, 0, 0x10, 0, 'x'};
  ASSERT_EQ(header.size(), 17u);
  write_bytes(dir / "lie", header);
  expect_error([&] { read_idx(dir / "lie"); },
               {"read_idx: " + (dir / "lie"), "truncated: dimensions [1, 4096, 4096] need 16777216 bytes of data, found 1"});
  gzFile f = gzopen((dir / "lie.gz").c_str(), "wb");
  ASSERT_TRUE(f);
  ASSERT_EQ(gzwrite(f, header.data(), 17), 17);
  ASSERT_EQ(gzclose(f), Z_OK);
  const auto gz_bytes = std::filesystem::file_size(dir / "lie.gz");
  expect_error([&] { read_idx(dir / "lie.gz"); },
               {"need 16777216 bytes of data, more than a gzip file of " + std::to_string(gz_bytes) + " bytes can hold"});
}

// ---- shape arithmetic ----------------------------------------------------------------------------

// Signed overflow is undefined behaviour (UBSan stops on it): every size the
// engine computes from shapes and op arguments is checked, and too large is an
// Error naming the op and the shape.
TEST(HostileShapes, SizeArithmeticThatWouldOverflowIsAnError) {
  constexpr int64_t kMax = INT64_MAX;
  expect_error([] { empty({kMax, 2}); }, {"empty: shape [9223372036854775807, 2] has more elements than int64 counts"});
  expect_error([] { randn({kMax, 100}); }, {"shape [9223372036854775807, 100]"});
  // 2^61 float64 elements are 2^64 bytes.
  expect_error([] { empty({int64_t(1) << 61}, TensorOptions{DType::Float64}); },
               {"empty: a size computed for input [2305843009213693952] overflows int64"});
  // A zero dimension makes no element, but the other axes' products must still fit.
  expect_error([] { empty({0, int64_t(1) << 40, int64_t(1) << 40}); }, {"empty", "more elements than int64 counts"});
  const Tensor a = empty({0, int64_t(1) << 40, 1}), b = empty({0, 1, int64_t(1) << 40});
  expect_error([&] { add(a, b); }, {"add: shape [0, 1099511627776, 1099511627776] has more elements"});
  expect_error([] { reshape(empty({0}), {kMax, 2, 0}); }, {"reshape: a size computed for input [0] overflows int64"});
  expect_error([] { pad(zeros({2}), {kMax, 1}); }, {"pad: a size computed for input [2] overflows int64"});
  expect_error([] { pad(zeros({2}), {INT64_MIN, 0}); }, {"pad: pads", "must lie in"});
  expect_error([] { upsample_nearest2d(zeros({1, 1, 2, 2}), kMax); },
               {"upsample_nearest2d: a size computed for input [1, 1, 2, 2] overflows int64"});
  expect_error([] { upsample_bilinear2d(zeros({1, 1, 2, 2}), kMax); }, {"upsample_bilinear2d", "overflows int64"});
  ConvParams huge_pad;
  huge_pad.padding = {kMax / 2 + 1, 0};
  expect_error([&] { conv2d(zeros({1, 1, 2, 2}), zeros({1, 1, 1, 1}), {}, huge_pad); },
               {"conv2d: a size computed for input [1, 1, 2, 2] overflows int64"});
  ConvParams huge_stride;
  huge_stride.stride = {kMax, 1};
  expect_error([&] { conv_transpose2d(zeros({1, 1, 3, 3}), zeros({1, 1, 1, 1}), {}, huge_stride); },
               {"conv_transpose2d", "overflows int64"});
  expect_error([] { max_pool2d(zeros({0, 1, kMax - 1, 1}), {4, 1}, {1, 1}, {2, 0}); }, {"max_pool2d", "overflows int64"});
  expect_error([] { arange(0, 1e19); }, {"arange", "more than int64 counts"});
  // Sizes that fit are untouched.
  EXPECT_EQ(pad(zeros({2}), {1, 3}).shape(), (Shape{6}));
  EXPECT_EQ(numel(Shape{0, int64_t(1) << 31, int64_t(1) << 31}), 0);
}

// ---- the command line ------------------------------------------------------------------------------

TEST(HostileCommandLine, NumbersAndPathsAreRefusedBeforeAnyWork) {
  TempDir dir;
  make_fifo(dir / "pipe");
  const std::string out = dir / "out";
  // --latent-dim 9223372036854775807 reached 2 * latent (signed overflow) inside the model.
  EXPECT_EQ(thrown([&] { cli::train_command({"vae", "--steps", "1", "--latent-dim", "9223372036854775807", "--out", out}); }),
            "train: --latent-dim must lie in [1, 65536], got 9223372036854775807");
  // `--resume=` read as no --resume: a run from scratch, over the old one's folder.
  EXPECT_EQ(thrown([&] { cli::train_command({"vae", "--steps", "1", "--resume=", "--out", out}); }),
            "train: --resume needs a value (--resume CKPT), got an empty one");
  EXPECT_EQ(thrown([&] { cli::train_command({"vae", "--steps", "1", "--out", ""}); }),
            "train: --out needs a value (--out DIR), got an empty one");
  EXPECT_EQ(thrown([&] { cli::train_command({"vae", "--steps", "1", "--max-image-pixels", "0"}); }),
            "train: --max-image-pixels must lie in [1, 4294967296], got 0");
  EXPECT_NE(thrown([&] { cli::train_command({"vae", "--steps", "1", "--resume", dir / "pipe", "--out", out}); })
                .find("load_safetensors: " + (dir / "pipe") + ": is a FIFO"),
            std::string::npos);
  EXPECT_NE(thrown([&] { cli::train_command({"gan", "--steps", "1", "--data", dir / "pipe", "--out", out}); })
                .find("load_mnist: " + (dir / "pipe") + ": not a directory"),
            std::string::npos);
  EXPECT_NE(thrown([&] {
              cli::train_command({"dcgan", "--image-size", "64", "--steps", "1", "--data", dir / "pipe", "--out", out});
            }).find("load_image_folder: " + (dir / "pipe") + ": not a directory"),
            std::string::npos);
  EXPECT_NE(thrown([&] { cli::sample_command({"gan", "--ckpt", dir / "pipe"}); }).find("is a FIFO"), std::string::npos);
  EXPECT_EQ(thrown([&] { cli::score_command({"nade", "--ckpt", dir / "pipe", "--input", dir / "pipe",
                                             "--max-image-pixels", "4294967297"}); }),
            "score: --max-image-pixels must lie in [1, 4294967296], got 4294967297");

  // With real checkpoints: a GAN (square grids) and a conditional GAN (a row per class).
  for (const std::string model : {"gan", "cgan"}) {
    ::testing::internal::CaptureStdout();
    tools::train(tiny_run(model, dir / model, 1, 32, 0));
    ::testing::internal::GetCapturedStdout();
  }
  const std::string gan = dir / "gan/checkpoint.safetensors", cgan = dir / "cgan/checkpoint.safetensors";
  const std::string png = dir / "s.png";
  // -n 9223372036854775807 overflowed numel; now the grid is measured before sampling.
  EXPECT_EQ(thrown([&] { cli::sample_command({"gan", "--ckpt", gan, "-n", "9223372036854775807", "--out", png}); }),
            "sample: " + png + ": a 1.8222e+11×1.8222e+11 grid of 9223372036854775807 images is too large (at most "
            "32768 pixels on a side)");
  // 6000 samples: a square grid of 28-pixel tiles would fit (78 × 77 tiles, 4684 pixels), but
  // cgan's grid is 10 rows of 600: (600 · 30 + 2) · 2 = 36004 pixels wide.
  EXPECT_EQ(thrown([&] { cli::sample_command({"cgan", "--ckpt", cgan, "-n", "6000", "--out", png}); }),
            "sample: " + png + ": a 36004×604 grid of 6000 images is too large (at most 32768 pixels on a side)");
  EXPECT_EQ(thrown([&] { cli::sample_command({"gan", "--ckpt", gan, "-n", "99999999999999999999"}); }),
            "sample: -n needs a non-negative integer, got '99999999999999999999'");
  EXPECT_FALSE(std::filesystem::exists(png));
  // K importance samples per image, chunked: 2^63 - 1 of them would run for ever.
  EXPECT_EQ(thrown([&] {
              cli::eval_command({"gan", "--ckpt", gan, "--importance-samples", "9223372036854775807"});
            }),
            "eval: --importance-samples must lie in [0, 1000000], got 9223372036854775807");
  EXPECT_EQ(thrown([&] {
              cli::score_command({"gan", "--ckpt", gan, "--input", png, "--importance-samples", "1000001"});
            }),
            "score: --importance-samples must lie in [0, 1000000], got 1000001");
  // eval -n 0 printed an empty table.
  EXPECT_EQ(thrown([&] { cli::eval_command({"gan", "--ckpt", gan, "-n", "0"}); }),
            "eval: -n must be at least 1 (held-out images to evaluate), got 0");
}
