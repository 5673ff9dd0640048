// Data sets: IDX reading (synthetic files and the real Fashion-MNIST), binarization,
// image folders, the 2-D toy sets and the DataLoader.
#include <stb_image_write.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <numbers>
#include <set>
#include <thread>

#include "models/data/data.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"

using namespace loom;
using namespace loom::data;
using namespace loom::testing;

namespace {

// An IDX file: magic 00 00 <type> <ndims>, big-endian u32 dims, then data.
std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data, uint8_t type = 0x08) {
  std::string out = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((d >> s) & 0xFF);
  return out + std::string(data.begin(), data.end());
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_TRUE(f);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// A 5-image 3×2 training split: pixel i of image k is 10k + i (+ 200 for k = 4),
// labels 9, 0, 3, 7, 1.
void write_small_split(const TempDir& dir, bool gz = true) {
  std::vector<uint8_t> pixels;
  for (int k = 0; k < 5; ++k)
    for (int i = 0; i < 6; ++i) pixels.push_back(static_cast<uint8_t>(10 * k + i + (k == 4 ? 200 : 0)));
  std::string images = idx_bytes({5, 3, 2}, pixels), labels = idx_bytes({5}, {9, 0, 3, 7, 1});
  if (gz) {
    write_gz(dir / "train-images-idx3-ubyte.gz", images);
    write_gz(dir / "train-labels-idx1-ubyte.gz", labels);
  } else {
    write_bytes(dir / "train-images-idx3-ubyte", images);
    write_bytes(dir / "train-labels-idx1-ubyte", labels);
  }
}

}  // namespace

// ---- IDX ------------------------------------------------------------------------------------

TEST(Idx, ReadsGzipAndPlainFiles) {
  for (bool gz : {true, false}) {
    SCOPED_TRACE(gz ? "gzip" : "plain");
    TempDir dir;
    write_small_split(dir, gz);
    LabeledImages d = load_mnist(Split::Train, dir.path());
    EXPECT_EQ(d.images.shape(), (Shape{5, 1, 3, 2}));
    EXPECT_EQ(d.images.dtype(), DType::Float32);
    EXPECT_EQ(d.labels.dtype(), DType::Int64);
    EXPECT_EQ(d.labels.to_vector<int64_t>(), (std::vector<int64_t>{9, 0, 3, 7, 1}));
    std::vector<float> px = d.images.to_vector<float>();
    EXPECT_FLOAT_EQ(px[0], 0.0f);
    EXPECT_FLOAT_EQ(px[6 + 5], 15.0f / 255);  // image 1, pixel 5
    EXPECT_FLOAT_EQ(px[4 * 6 + 5], 245.0f / 255);

    LabeledImages sym = load_mnist(Split::Train, dir.path(), PixelRange::MinusOneOne);
    std::vector<float> ps = sym.images.to_vector<float>();
    EXPECT_FLOAT_EQ(ps[0], -1.0f);
    EXPECT_NEAR(ps[6 + 5], 2 * 15.0 / 255 - 1, 1e-6);
  }
  TempDir dir;
  write_gz(dir / "raw.gz", idx_bytes({2, 2, 1, 1}, {1, 2, 3, 4}));
  IdxArray a = read_idx(dir / "raw.gz");
  EXPECT_EQ(a.dims, (Shape{2, 2, 1, 1}));
  EXPECT_EQ(a.bytes, (std::vector<uint8_t>{1, 2, 3, 4}));
}

TEST(Idx, RefusesDamagedFiles) {
  TempDir dir;
  std::string p = dir / "f.gz";
  struct Case {
    std::string bytes, fragment;
  };
  std::vector<Case> cases = {
      {"", "shorter than the 4-byte IDX magic number"},
      {std::string("\x00\x00\x08", 3), "shorter than the 4-byte IDX magic number"},
      {std::string("\x1f\x00\x08\x01", 4) + std::string(5, '\0'), "bad magic number 0x1f000801"},
      {idx_bytes({2}, {1, 2}, 0x0D), "element type 0x0d is not unsigned byte"},
      {std::string("\x00\x00\x08\x00", 4), "declares 0 dimensions"},
      {idx_bytes({3, 2}, {}).substr(0, 9), "truncated inside the dimension list"},
      {idx_bytes({3, 0}, {}), "dimension 1 is 0"},
      {idx_bytes({3, 2}, {1, 2, 3, 4, 5}), "need 6 bytes of data, found 5"},
      {idx_bytes({2}, {1, 2, 3}), "more data than the dimensions [2] describe"},
      {idx_bytes({65536, 65536, 65536}, {}), "describe more than 64 GiB"},
      {idx_bytes({1 << 16, 1 << 20, 1u << 31}, {}), "describe more than 64 GiB"},  // 2^67 wraps to 0 in u64
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fragment);
    write_gz(p, c.bytes);
    expect_error([&] { read_idx(p); }, {"read_idx: " + p, c.fragment});
  }
  // A gzip stream cut short, and one with a damaged CRC.
  write_gz(p, idx_bytes({4000}, std::vector<uint8_t>(4000, 7)));
  std::string gz = read_bytes(p);
  write_bytes(p, gz.substr(0, gz.size() - 6));
  expect_error([&] { read_idx(p); }, {"read_idx: " + p, "corrupt or truncated gzip data"});
  gz[gz.size() - 6] ^= 0x55;
  write_bytes(p, gz);
  expect_error([&] { read_idx(p); }, {"corrupt or truncated gzip data"});
  expect_error([&] { read_idx(dir / "absent.gz"); }, {"cannot open", "absent.gz"});
}

TEST(Idx, MnistChecksItsFilesAgreeAndExist) {
  TempDir dir;
  expect_error([&] { load_mnist(Split::Test, dir.path()); },
               {dir.path() + "/t10k-images-idx3-ubyte.gz not found", "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                "install Debian's dataset-fashion-mnist package"});
  write_small_split(dir);
  write_gz(dir / "train-labels-idx1-ubyte.gz", idx_bytes({4}, {1, 2, 3, 4}));
  expect_error([&] { load_mnist(Split::Train, dir.path()); }, {"has 5 images but", "has 4 labels"});
  write_gz(dir / "train-labels-idx1-ubyte.gz", idx_bytes({5}, {1, 2, 10, 4, 5}));
  expect_error([&] { load_mnist(Split::Train, dir.path()); }, {"label 10 at index 2 is outside 0..9"});
  write_gz(dir / "train-labels-idx1-ubyte.gz", idx_bytes({5, 1}, {1, 2, 3, 4, 5}));
  expect_error([&] { load_mnist(Split::Train, dir.path()); }, {"shape [5, 1], not labels [N]"});
  write_gz(dir / "train-images-idx3-ubyte.gz", idx_bytes({5, 6}, std::vector<uint8_t>(30)));
  expect_error([&] { load_mnist(Split::Train, dir.path()); }, {"shape [5, 6], not images [N, rows, cols]"});
}

TEST(Idx, RealFashionMnist) {
  if (!std::filesystem::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST is not installed (apt install dataset-fashion-mnist)";
  LabeledImages train = load_mnist(Split::Train);
  EXPECT_EQ(train.images.shape(), (Shape{60000, 1, 28, 28}));
  EXPECT_EQ(train.labels.shape(), (Shape{60000}));
  std::vector<int64_t> labels = train.labels.to_vector<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(labels.begin(), labels.begin() + 10),
            (std::vector<int64_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));
  EXPECT_EQ(fashion_mnist_classes()[labels[0]], "Ankle boot");
  std::vector<int64_t> per_class(10);
  for (int64_t l : labels) ++per_class[l];
  EXPECT_EQ(per_class, std::vector<int64_t>(10, 6000)) << "Fashion-MNIST's training split is balanced";
  LabeledImages test = load_mnist(Split::Test);
  EXPECT_EQ(test.images.shape(), (Shape{10000, 1, 28, 28}));
  EXPECT_EQ(test.labels.to_vector<int64_t>()[0], 9);
  EXPECT_DOUBLE_EQ(min(test.images).item(), 0.0);
  EXPECT_DOUBLE_EQ(max(test.images).item(), 1.0);
}

// ---- binarization -------------------------------------------------------------------------

TEST(Binarize, DrawsBernoulliWithTheIntensityAsMean) {
  Tensor p = full({100, 100}, 0.3);
  Generator g(5);
  Tensor a = binarize(p, g), b = binarize(p, g);
  for (const Tensor& x : {a, b}) {
    EXPECT_EQ(x.shape(), p.shape());
    std::vector<float> v = x.to_vector<float>();
    EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](float e) { return e == 0 || e == 1; }));
    // Mean of 10⁴ Bernoulli(0.3): σ = √(0.3·0.7/10⁴) ≈ 0.0046; allow 5σ.
    EXPECT_NEAR(mean(x).item(), 0.3, 0.023);
  }
  EXPECT_GT(sum(abs(a - b)).item(), 1000) << "dynamic binarization redraws on each call";
  Tensor edges = from_vector(std::vector<double>{0, 1, 0, 1}, {4});
  expect_values(binarize(edges, g), {0, 1, 0, 1});

  Tensor s1 = binarize_static(p, 42), s2 = binarize_static(p, 42), s3 = binarize_static(p, 43);
  EXPECT_EQ(s1.to_vector<float>(), s2.to_vector<float>()) << "static binarization is a fixed draw";
  EXPECT_NE(s1.to_vector<float>(), s3.to_vector<float>());
  EXPECT_NEAR(mean(s1).item(), 0.3, 0.023);

  expect_error([&] { binarize(full({3}, 1.5), g); }, {"binarize", "span [1.5, 1.5], not [0, 1]"});
  expect_error([&] { binarize_static(full({3}, -1), 1); }, {"binarize_static", "not [0, 1]"});
  expect_error([&] { binarize(zeros({3}, TensorOptions{DType::Int64}), g); }, {"needs floating intensities"});
}

// ---- image folders -------------------------------------------------------------------------

namespace {
void write_png(const std::string& path, int w, int h, int c, const std::vector<uint8_t>& px) {
  ASSERT_EQ(static_cast<int>(px.size()), w * h * c);
  ASSERT_NE(stbi_write_png(path.c_str(), w, h, c, px.data(), w * c), 0) << path;
}
float to_unit(double byte) { return static_cast<float>(byte / 127.5 - 1); }
}  // namespace

TEST(ImageFolder, LoadsSortedClassesResizesAndHandlesCorruptFiles) {
  TempDir dir;
  std::filesystem::create_directories(dir / "b_dogs");
  std::filesystem::create_directories(dir / "a_cats");
  std::filesystem::create_directories(dir / ".hidden");
  // a_cats/1.png: solid RGB (255, 0, 51) 5×3; a_cats/2.PNG: 4×4 grey ramp by column.
  std::vector<uint8_t> solid;
  for (int i = 0; i < 15; ++i) solid.insert(solid.end(), {255, 0, 51});
  write_png(dir / "a_cats/1.png", 5, 3, 3, solid);
  std::vector<uint8_t> ramp;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) ramp.push_back(static_cast<uint8_t>(x < 2 ? 0 : 255));
  write_png(dir / "a_cats/2.PNG", 4, 4, 1, ramp);
  write_png(dir / "b_dogs/0.png", 2, 2, 1, {10, 20, 30, 40});
  write_bytes(dir / "b_dogs/broken.png", "\x89PNG\r\n\x1a\n this is not a png");
  write_bytes(dir / "b_dogs/notes.txt", "ignored");
  write_png(dir / ".hidden/x.png", 1, 1, 1, {0});

  ImageFolder f = load_image_folder(dir.path(), {.size = 2, .channels = 3});
  EXPECT_EQ(f.classes, (std::vector<std::string>{"a_cats", "b_dogs"}));
  EXPECT_EQ(f.images.shape(), (Shape{3, 3, 2, 2}));
  EXPECT_EQ(f.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1}));
  ASSERT_EQ(f.paths.size(), 3u);
  EXPECT_EQ(f.paths[1], dir / "a_cats/2.PNG");
  ASSERT_EQ(f.skipped.size(), 1u);
  EXPECT_NE(f.skipped[0].find("broken.png"), std::string::npos);

  std::vector<float> px = f.images.to_vector<float>();
  // A solid image stays solid through any resize: channel planes 255, 0, 51.
  for (int i = 0; i < 4; ++i) {
    EXPECT_FLOAT_EQ(px[i], 1.0f);
    EXPECT_FLOAT_EQ(px[4 + i], -1.0f);
    EXPECT_NEAR(px[8 + i], to_unit(51), 1e-6);
  }
  // The 4→2 shrink of the half-black, half-white ramp: output column 0 centres
  // at source x = 1 with support 2, taps x = 0, 1, 2 weighted ¾, ¾, ¼:
  // (¾·0 + ¾·0 + ¼·255) / 1.75; column 1 mirrors it. Grey is replicated to RGB.
  const float dark = to_unit(0.25 * 255 / 1.75), light = to_unit((0.25 * 0 + 1.5 * 255) / 1.75);
  const float* img2 = px.data() + 12;
  for (int ch = 0; ch < 3; ++ch)
    for (int y = 0; y < 2; ++y) {
      EXPECT_NEAR(img2[ch * 4 + y * 2 + 0], dark, 1e-5);
      EXPECT_NEAR(img2[ch * 4 + y * 2 + 1], light, 1e-5);
    }
  // Same size: an exact copy (10, 20, 30, 40).
  const float* img3 = px.data() + 24;
  EXPECT_NEAR(img3[0], to_unit(10), 1e-6);
  EXPECT_NEAR(img3[3], to_unit(40), 1e-6);

  ImageFolder grey = load_image_folder(dir.path(), {.size = 4, .channels = 1});
  EXPECT_EQ(grey.images.shape(), (Shape{3, 1, 4, 4}));
  // Solid (255, 0, 51) to grey by stb's luma weights (77r + 150g + 29b) >> 8 = 82.
  EXPECT_NEAR(grey.images.to_vector<float>()[0], to_unit(82), 1e-6);

  expect_error([&] { load_image_folder(dir.path(), {.size = 2, .channels = 3, .skip_unreadable = false}); },
               {"load_image_folder: " + dir.path(), "cannot read image " + (dir / "b_dogs/broken.png")});
}

TEST(ImageFolder, RefusesBadArguments) {
  TempDir dir;
  expect_error([&] { load_image_folder(dir / "missing"); }, {"missing", "not a directory"});
  expect_error([&] { load_image_folder(dir.path()); }, {"no sub-folders"});
  std::filesystem::create_directories(dir / "a");
  expect_error([&] { load_image_folder(dir.path()); }, {"no .png/.jpg/.jpeg/.bmp files"});
  write_bytes(dir / "a/x.jpg", "garbage");
  expect_error([&] { load_image_folder(dir.path()); }, {"none of its 1 image files could be read", "x.jpg"});
  expect_error([&] { load_image_folder(dir.path(), {.size = 8, .channels = 2}); }, {"channels must be 1 or 3"});
  expect_error([&] { load_image_folder(dir.path(), {.size = 0}); }, {"size must be in 1..4096"});
}

// ---- 2-D toy sets --------------------------------------------------------------------------

namespace {
// For each point, the index of the nearest centre and its distance.
std::vector<std::pair<int, double>> nearest(const std::vector<float>& xy, const std::vector<std::array<double, 2>>& c) {
  std::vector<std::pair<int, double>> out;
  for (size_t i = 0; i < xy.size(); i += 2) {
    std::pair<int, double> best{-1, 1e9};
    for (size_t k = 0; k < c.size(); ++k) {
      double d = std::hypot(xy[i] - c[k][0], xy[i + 1] - c[k][1]);
      if (d < best.second) best = {static_cast<int>(k), d};
    }
    out.push_back(best);
  }
  return out;
}
}  // namespace

TEST(Toy2d, MixturesHitEveryModeWithTheirSpread) {
  const int64_t n = 4000;
  std::vector<std::array<double, 2>> ring, grid;
  constexpr double pi = std::numbers::pi;
  for (int k = 0; k < 8; ++k) ring.push_back({2 * std::cos(k * pi / 4), 2 * std::sin(k * pi / 4)});
  for (int i = -2; i <= 2; ++i)
    for (int j = -2; j <= 2; ++j) grid.push_back({2.0 * i, 2.0 * j});
  struct Case {
    Toy2d kind;
    const std::vector<std::array<double, 2>>& centres;
    double sigma;
  };
  for (const Case& c : {Case{Toy2d::EightGaussians, ring, 0.02}, Case{Toy2d::TwentyFiveGaussians, grid, 0.05}}) {
    Tensor x = make_toy_2d(c.kind, n, 1);
    EXPECT_EQ(x.shape(), (Shape{n, 2}));
    EXPECT_EQ(x.dtype(), DType::Float32);
    std::vector<int64_t> count(c.centres.size());
    double sq = 0;
    for (auto [k, d] : nearest(x.to_vector<float>(), c.centres)) {
      ++count[k];
      sq += d * d;
      EXPECT_LT(d, 6 * c.sigma);
    }
    // Mean squared distance to the centre of a 2-D N(0, σ²I) is 2σ².
    EXPECT_NEAR(sq / n / (2 * c.sigma * c.sigma), 1.0, 0.1);
    const double expected = double(n) / c.centres.size();
    for (int64_t k : count) EXPECT_NEAR(k, expected, 5 * std::sqrt(expected));
    expect_values(mean(x, {0}), {0, 0}, 0.1);
  }
}

TEST(Toy2d, CurvesHaveTheirShape) {
  const int64_t n = 4000;
  std::vector<float> roll = make_toy_2d(Toy2d::SwissRoll, n, 2).to_vector<float>();
  double rmin = 1e9, rmax = 0;
  for (size_t i = 0; i < roll.size(); i += 2) {
    double r = std::hypot(roll[i], roll[i + 1]);
    rmin = std::min(rmin, r);
    rmax = std::max(rmax, r);
  }
  // Radius t/5 for t in [1.5π, 4.5π], blurred by σ = 0.1.
  EXPECT_GT(rmin, 1.5 * std::numbers::pi / 5 - 0.5);
  EXPECT_LT(rmin, 1.5 * std::numbers::pi / 5 + 0.2);
  EXPECT_GT(rmax, 4.5 * std::numbers::pi / 5 - 0.2);
  EXPECT_LT(rmax, 4.5 * std::numbers::pi / 5 + 0.5);

  Tensor moons = make_toy_2d(Toy2d::TwoMoons, n, 3);
  expect_values(mean(moons, {0}), {0, 0}, 0.05);
  std::vector<float> m = moons.to_vector<float>();
  int upper = 0;
  for (size_t i = 0; i < m.size(); i += 2) {
    // Undo the centring; each point lies near one of the two unit half circles.
    double x = m[i] + 0.5, y = m[i + 1] + 0.25;
    double d_upper = std::abs(std::hypot(x, y) - 1), d_lower = std::abs(std::hypot(x - 1, y - 0.5) - 1);
    EXPECT_LT(std::min(d_upper, d_lower), 0.3);
    upper += d_upper < d_lower;
  }
  EXPECT_NEAR(upper, n / 2, 5 * std::sqrt(n / 4.0));
}

TEST(Toy2d, SeedsAndNames) {
  for (Toy2d k : {Toy2d::EightGaussians, Toy2d::TwentyFiveGaussians, Toy2d::SwissRoll, Toy2d::TwoMoons}) {
    EXPECT_EQ(make_toy_2d(k, 50, 9).to_vector<float>(), make_toy_2d(k, 50, 9).to_vector<float>());
    EXPECT_NE(make_toy_2d(k, 50, 9).to_vector<float>(), make_toy_2d(k, 50, 10).to_vector<float>());
  }
  EXPECT_EQ(parse_toy_2d("8gaussians"), Toy2d::EightGaussians);
  EXPECT_EQ(parse_toy_2d("25gaussians"), Toy2d::TwentyFiveGaussians);
  EXPECT_EQ(parse_toy_2d("swissroll"), Toy2d::SwissRoll);
  EXPECT_EQ(parse_toy_2d("moons"), Toy2d::TwoMoons);
  expect_error([] { parse_toy_2d("spiral"); }, {"unknown 2-D data set 'spiral'", "moons"});
  expect_error([] { make_toy_2d(Toy2d::TwoMoons, 0, 1); }, {"make_toy_2d", "n = 0"});
}

// ---- DataLoader ------------------------------------------------------------------------------

namespace {
// Inputs [n, 2, 1] with row i = (i, −i) and labels i, so every row names its sample.
Tensor row_ids(int64_t n) {
  std::vector<float> v(2 * n);
  for (int64_t i = 0; i < n; ++i) {
    v[2 * i] = float(i);
    v[2 * i + 1] = float(-i);
  }
  return from_vector(v, {n, 2, 1});
}

std::vector<std::vector<int64_t>> run(DataLoader& loader, int64_t epochs, bool jitter = false) {
  std::vector<std::vector<int64_t>> out;
  for (int64_t b = 0; b < epochs * loader.batches_per_epoch(); ++b) {
    Batch batch = loader.next();
    std::vector<float> in = batch.inputs.to_vector<float>();
    std::vector<int64_t> ids = batch.labels.to_vector<int64_t>();
    EXPECT_EQ(batch.inputs.shape(), (Shape{static_cast<int64_t>(ids.size()), 2, 1}));
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(in[2 * i], float(ids[i])) << "inputs and labels stay paired";
      EXPECT_EQ(in[2 * i + 1], -float(ids[i]));
    }
    EXPECT_EQ(batch.index, b % loader.batches_per_epoch());
    out.push_back(ids);
    if (jitter) std::this_thread::sleep_for(std::chrono::microseconds((b * 7919) % 3000));
  }
  return out;
}
}  // namespace

TEST(DataLoader, EachEpochVisitsEverySampleOnce) {
  const int64_t n = 103;
  DataLoader loader(row_ids(n), arange(0, n, 1, TensorOptions{DType::Int64}), {.batch_size = 10, .seed = 4});
  EXPECT_EQ(loader.num_samples(), n);
  EXPECT_EQ(loader.batches_per_epoch(), 11);
  std::vector<std::vector<int64_t>> batches = run(loader, 3);
  std::vector<std::vector<int64_t>> epochs(3);
  for (size_t b = 0; b < batches.size(); ++b) {
    EXPECT_EQ(batches[b].size(), b % 11 == 10 ? 3u : 10u) << "the last batch holds the remainder";
    epochs[b / 11].insert(epochs[b / 11].end(), batches[b].begin(), batches[b].end());
  }
  for (const auto& e : epochs) {
    EXPECT_EQ(std::set<int64_t>(e.begin(), e.end()).size(), size_t(n));
    EXPECT_EQ(e.size(), size_t(n));
  }
  EXPECT_NE(epochs[0], epochs[1]) << "a fresh order each epoch";
  EXPECT_EQ(epochs[1], loader.epoch_order(1));
}

TEST(DataLoader, OrderDependsOnSeedAndEpochOnly) {
  const int64_t n = 50;
  Tensor x = row_ids(n), y = arange(0, n, 1, TensorOptions{DType::Int64});
  DataLoader fast(x, y, {.batch_size = 8, .seed = 11});
  DataLoader slow(x, y, {.batch_size = 8, .seed = 11});
  DataLoader sync(x, y, {.batch_size = 8, .seed = 11, .prefetch = false});
  auto expected = run(sync, 4);
  EXPECT_EQ(run(fast, 4), expected);
  EXPECT_EQ(run(slow, 4, /*jitter=*/true), expected) << "a slow consumer sees the same batches";

  DataLoader resumed(x, y, {.batch_size = 8, .seed = 11, .first_epoch = 2});
  auto tail = run(resumed, 2);
  EXPECT_EQ(tail, std::vector<std::vector<int64_t>>(expected.begin() + 14, expected.end()));

  DataLoader other(x, y, {.batch_size = 8, .seed = 12});
  EXPECT_NE(run(other, 1), std::vector<std::vector<int64_t>>(expected.begin(), expected.begin() + 7));
  DataLoader ordered(x, y, {.batch_size = 8, .shuffle = false});
  auto in_order = run(ordered, 2);
  EXPECT_EQ(in_order[0], (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(in_order[6], (std::vector<int64_t>{48, 49}));
  EXPECT_EQ(in_order[7], in_order[0]);
}

TEST(DataLoader, DropLastAndUnlabelledInputs) {
  DataLoader loader(row_ids(10), Tensor(), {.batch_size = 3, .drop_last = true, .seed = 1});
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  std::set<float> seen;
  for (int b = 0; b < 6; ++b) {
    Batch batch = loader.next();
    EXPECT_FALSE(batch.labels.defined());
    EXPECT_EQ(batch.inputs.shape(), (Shape{3, 2, 1}));
    EXPECT_EQ(batch.epoch, b / 3);
    if (b < 3)
      for (size_t i = 0; i < 6; i += 2) seen.insert(batch.inputs.to_vector<float>()[i]);
  }
  EXPECT_EQ(seen.size(), 9u) << "one sample is dropped per epoch, none repeated";
  DataLoader single(row_ids(1), Tensor(), {.batch_size = 4});
  EXPECT_EQ(single.next().inputs.shape(), (Shape{1, 2, 1}));
}

TEST(DataLoader, ShutsDownCleanlyAndRefusesBadArguments) {
  for (int i = 0; i < 20; ++i) {
    DataLoader idle(row_ids(30), Tensor(), {.batch_size = 2});  // worker blocked on a full queue
    if (i % 2) idle.next();
  }
  Tensor x = row_ids(5);
  expect_error([&] { DataLoader(x, arange(0, 4), {}); }, {"DataLoader: labels [4] do not match the 5 inputs"});
  expect_error([&] { DataLoader(x, Tensor(), {.batch_size = 0}); }, {"batch_size must be positive"});
  expect_error([&] { DataLoader(x, Tensor(), {.batch_size = 6, .drop_last = true}); }, {"leaves no batch of 5"});
  expect_error([&] { DataLoader(zeros({0, 3}), Tensor(), {}); }, {"at least one sample", "[0, 3]"});
  expect_error([&] { DataLoader(scalar(1), Tensor(), {}); }, {"at least one sample"});
  expect_error([&] { DataLoader(x, Tensor(), {.first_epoch = -1}); }, {"first_epoch"});
}
