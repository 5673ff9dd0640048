// CycleGAN (models/gan/cyclegan.h) and its two-domain data: the least-squares,
// cycle and identity losses against hand-computed values, the image pool's
// replacement rule replayed draw by draw, the constant-then-linear lr, the shapes
// and ranges of translations, the two-domain data sets (Fashion-MNIST classes,
// folders, augmentation), a bit-exact resume through the driver, and a short run
// whose translations an independent judge assigns to the target domain.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "models/gan/adversarial.h"
#include "models/gan/cyclegan.h"
#include "models/image_grid.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"
#include "tests/train_fixture.h"
#include "tools/train.h"

using namespace loom;
using namespace loom::testing;
namespace gan = loom::models::gan;
namespace cyclegan = loom::models::cyclegan;

namespace {

std::unique_ptr<models::Model> make(const models::OptionValues& options) {
  const models::Registration& r = models::find_model("cyclegan");
  models::Config c;
  for (const auto& [k, v] : options) c.set(k, v);
  return r.make(models::resolve_config(r, c));
}

const models::OptionValues kTiny{{"features", "4"}, {"blocks", "1"}, {"pool", "4"}};

// n "images" [n, 1, s, s] each filled with one value: values[i].
Tensor filled(const std::vector<float>& values, int64_t s) {
  std::vector<float> px;
  for (float v : values) px.insert(px.end(), static_cast<size_t>(s * s), v);
  return from_vector(px, {static_cast<int64_t>(values.size()), 1, s, s});
}
// The value each image of images [n, 1, s, s] is filled with (its first pixel).
std::vector<float> fills(const Tensor& images) {
  const std::vector<float> px = images.to_vector<float>();
  const int64_t per = images.numel() / images.size(0);
  std::vector<float> out;
  for (int64_t i = 0; i < images.size(0); ++i) out.push_back(px[static_cast<size_t>(i * per)]);
  return out;
}

}  // namespace

TEST(CycleGan, LeastSquaresLossesMatchHandComputedValues) {
  const Tensor real = from_vector(std::vector<float>{0.5f, 2.0f}, {2, 1});
  const Tensor fake = from_vector(std::vector<float>{0.0f, -1.0f, 3.0f}, {3, 1});
  // ½ [((0.5 − 1)² + (2 − 1)²) / 2 + (0² + 1² + 3²) / 3] = ½ [0.625 + 10/3].
  EXPECT_NEAR(gan::least_squares_discriminator_loss(real, fake).item(), 0.5 * (0.625 + 10.0 / 3.0), 1e-6);
  // ((0 − 1)² + (−1 − 1)² + (3 − 1)²) / 3 = 3.
  EXPECT_NEAR(gan::least_squares_generator_loss(fake).item(), 3.0, 1e-6);
  // |0.5 − 0| + |1 − 1| + |0 − (−1)| + |−0.5 − 0.5| = 2.5 over 4 elements.
  const Tensor x = from_vector(std::vector<float>{0, 1, -1, 0.5f}, {1, 1, 2, 2});
  const Tensor r = from_vector(std::vector<float>{0.5f, 1, 0, -0.5f}, {1, 1, 2, 2});
  EXPECT_NEAR(cyclegan::cycle_consistency_loss(x, r).item(), 0.625, 1e-7);
  expect_error([&] { cyclegan::cycle_consistency_loss(x, real); }, {"cycle_consistency_loss", "differ in shape"});
}

// The step's cycle and identity terms are λ and λ_idt·λ times the L1 distances
// that the generators' translations (before the update) give.
TEST(CycleGan, TrainStepWeighsCycleAndIdentityLosses) {
  models::OptionValues o = kTiny;
  o["lambda_cycle"] = "3";
  o["lambda_identity"] = "0.25";
  manual_seed(4);
  auto m = make(o);
  Generator g(1);
  const Tensor a = rand({2, 1, 28, 28}, {}, &g) * 2.0 - 1.0, b = rand({2, 1, 28, 28}, {}, &g) * 2.0 - 1.0;
  double cycle_a = 0, idt_a = 0, idt_b = 0;
  {
    models::Condition to_b, to_a;
    to_b.images = a;
    to_a.images = a;
    to_a.b_to_a = true;
    Generator unused(0);
    const Tensor fake_b = m->sample(2, to_b, unused);
    models::Condition back;
    back.images = fake_b;
    back.b_to_a = true;
    cycle_a = mean(abs(m->sample(2, back, unused) - a)).item();
    idt_a = mean(abs(m->sample(2, to_a, unused) - a)).item();  // F(a) against a
    models::Condition keep_b;
    keep_b.images = b;
    idt_b = mean(abs(m->sample(2, keep_b, unused) - b)).item();  // G(b) against b
  }
  models::Batch batch;
  batch.images = a;
  batch.images_b = b;
  models::Step step;
  const models::Losses l = m->train_step(batch, step);
  EXPECT_NEAR(l.at("cycle_A"), 3 * cycle_a, 1e-5);
  EXPECT_NEAR(l.at("idt_A"), 0.25 * 3 * idt_a, 1e-5);
  EXPECT_NEAR(l.at("idt_B"), 0.25 * 3 * idt_b, 1e-5);
  for (const char* k : {"D_A", "D_B", "G_A2B", "G_B2A", "cycle_B"}) EXPECT_TRUE(std::isfinite(l.at(k))) << k;
  // Without the identity loss its terms are not reported.
  o["lambda_identity"] = "0";
  EXPECT_EQ(make(o)->train_step(batch, step).count("idt_A"), 0u);
}

// The pool against the rule replayed on the same draws: the images are numbered
// by the value they are filled with.
TEST(CycleGan, ImagePoolFollowsTheReplacementRule) {
  constexpr int64_t kCapacity = 3;
  std::unique_ptr<cyclegan::ImagePool> fresh;
  int64_t returned_stored = 0, returned_total = 0, returned_from_same_query = 0, filled_then_replaced = 0;
  std::set<float> slots_replaced;
  // Four pools from four seeds: each fills its last slot in its second query, which then
  // replaces with probability 3/4.
  for (uint64_t seed : {7, 8, 9, 10}) {
    fresh = std::make_unique<cyclegan::ImagePool>(kCapacity, 1, 2);
    cyclegan::ImagePool& pool = *fresh;
    manual_seed(seed);
    std::vector<float> stored;  // the reference pool
    float next = 1;
    for (int q = 0; q < 60; ++q) {
      // Batches of 2 to 8: more images than slots, so that the second query fills the buffer part
      // way and then replaces (and returns) images stored by that same query, and several images
      // take one slot.
      const int64_t n = 2 + q % 7;
      std::vector<float> batch;
      for (int64_t i = 0; i < n; ++i) batch.push_back(next++);
      // The reference draws the same two uniforms per image, one rand([n, 2]) per query.
      const Generator before = default_generator();
      const std::vector<double> u = rand({n, 2}, TensorOptions{DType::Float64}).to_vector<double>();
      default_generator() = before;
      std::vector<float> expected;
      bool filled_here = false;
      for (int64_t i = 0; i < n; ++i) {
        if (static_cast<int64_t>(stored.size()) < kCapacity) {
          stored.push_back(batch[i]);
          expected.push_back(batch[i]);
          filled_here = true;
        } else if (u[2 * i] > 0.5) {
          if (filled_here) ++filled_then_replaced;
          const auto j =
              static_cast<size_t>(std::min<int64_t>(kCapacity - 1, static_cast<int64_t>(u[2 * i + 1] * kCapacity)));
          expected.push_back(stored[j]);
          if (stored[j] >= batch[0]) ++returned_from_same_query;
          stored[j] = batch[i];
          slots_replaced.insert(static_cast<float>(j));
          ++returned_stored;
        } else {
          expected.push_back(batch[i]);
        }
      }
      returned_total += n;
      ASSERT_EQ(fills(pool.query(filled(batch, 2))), expected) << "seed " << seed << ", query " << q;
      ASSERT_EQ(fills(slice(pool.images, 0, 0, static_cast<int64_t>(stored.size()))), stored)
          << "seed " << seed << ", query " << q;
      EXPECT_EQ(pool.count.item(), static_cast<double>(stored.size()));
    }
  }
  cyclegan::ImagePool& pool = *fresh;
  // Both branches and every slot were exercised (the draws are fixed by the seed).
  EXPECT_GT(returned_stored, 10);
  EXPECT_LT(returned_stored, returned_total - 10);
  EXPECT_EQ(slots_replaced.size(), 3u);
  EXPECT_GT(returned_from_same_query, 3) << "images stored and returned within one query";
  EXPECT_GT(filled_then_replaced, 0) << "a query that fills the buffer's last slots and then replaces";
  // A pool restored from another's state answers alike.
  cyclegan::ImagePool copy(kCapacity, 1, 2);
  copy.load_state_dict(pool.state_dict());
  const Generator g = default_generator();
  const std::vector<float> a = fills(pool.query(filled({100, 101, 102, 103}, 2)));
  default_generator() = g;
  EXPECT_EQ(fills(copy.query(filled({100, 101, 102, 103}, 2))), a);
  // Capacity 0 passes the batch through; a batch of another shape is an error.
  cyclegan::ImagePool none(0, 1, 2);
  EXPECT_EQ(fills(none.query(filled({5, 6}, 2))), (std::vector<float>{5, 6}));
  expect_error([&] { pool.query(filled({1}, 3)); }, {"ImagePool", "[B, 1, 2, 2]"});
}

TEST(CycleGan, LearningRateIsConstantThenLinear) {
  // 10 steps, decay from step 5: 1 through step 5, then (10 − t) / 5.
  for (int64_t t = 0; t <= 5; ++t) EXPECT_EQ(cyclegan::lr_factor(t, 10, 0.5), 1.0) << t;
  EXPECT_DOUBLE_EQ(cyclegan::lr_factor(6, 10, 0.5), 0.8);
  EXPECT_DOUBLE_EQ(cyclegan::lr_factor(9, 10, 0.5), 0.2);
  EXPECT_DOUBLE_EQ(cyclegan::lr_factor(3, 10, 0.0), 0.7);
  EXPECT_EQ(cyclegan::lr_factor(9, 10, 1.0), 1.0);
}

TEST(CycleGan, TranslationsKeepShapesAndRanges) {
  for (const auto& [size, channels] : {std::pair<int64_t, int64_t>{28, 1}, {32, 3}}) {
    SCOPED_TRACE(size);
    models::OptionValues o = kTiny;
    o["image_size"] = std::to_string(size);
    if (channels == 3) o["rgb"] = "true";
    auto m = make(o);
    m->train(false);
    EXPECT_EQ(m->data_spec().size, size);
    EXPECT_EQ(m->data_spec().channels, channels);
    EXPECT_TRUE(m->conditions().images && m->conditions().directions);
    Generator g(3);
    models::Condition c;
    c.images = rand({5, channels, size, size}, {}, &g) * 2.0 - 1.0;
    for (bool b_to_a : {false, true}) {
      c.b_to_a = b_to_a;
      const Tensor y = m->sample(5, c, g);
      EXPECT_EQ(y.shape(), (Shape{5, channels, size, size}));
      const std::vector<float> px = y.to_vector<float>();
      EXPECT_LE(*std::max_element(px.begin(), px.end()), 1.0f);
      EXPECT_GE(*std::min_element(px.begin(), px.end()), -1.0f);
      // The grid: input | translated | reconstructed, two triples to a row for 5 inputs.
      const models::SampleGrid grid = m->sample_grid(5, c, g);
      EXPECT_EQ(grid.images.shape(), (Shape{15, channels, size, size}));
      EXPECT_EQ(grid.columns, 6);
      EXPECT_EQ(slice(grid.images, 0, 3, 4).to_vector<float>(), slice(c.images, 0, 1, 2).to_vector<float>());
      EXPECT_EQ(slice(grid.images, 0, 4, 5).to_vector<float>(), slice(y, 0, 1, 2).to_vector<float>());
    }
    // The two directions are different networks.
    c.b_to_a = false;
    const std::vector<float> ab = m->sample(5, c, g).to_vector<float>();
    c.b_to_a = true;
    EXPECT_NE(m->sample(5, c, g).to_vector<float>(), ab);
  }
  auto m = make(kTiny);
  Generator g(0);
  expect_error([&] { m->sample(2, {}, g); }, {"cyclegan", "--input"});
  expect_error([&] { make({{"image_size", "30"}}); }, {"--image-size", "28, 32"});
  expect_error([&] { make({{"domains", "sneaker"}}); }, {"--domains", "A,B"});
  expect_error([&] { make({{"domains", "sneaker,boots"}}); }, {"--domains", "'boots'"});
  expect_error([&] { make({{"domains", "7,sneaker"}}); }, {"--domains", "different"});
  expect_error([&] { make({{"data_a", "/x"}}); }, {"--data-a", "--data-b"});
  EXPECT_EQ(make({{"domains", "T-shirt,9"}})->data_spec().classes, (std::array<int64_t, 2>{0, 9}));
}

TEST(CycleGan, TwoDomainDataFromFashionMnistClasses) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  data::DataSpec spec;
  spec.dataset = data::Dataset::TwoDomains;
  spec.classes = {7, 9};
  const data::LabeledImages test = data::load_dataset(spec, data::Split::Test, data::kFashionMnistDir);
  // The test split holds 1000 images of each class.
  EXPECT_EQ(test.images.shape(), (Shape{1000, 1, 28, 28}));
  EXPECT_EQ(test.images_b.shape(), (Shape{1000, 1, 28, 28}));
  const data::LabeledImages all = data::load_mnist(data::Split::Test);
  const std::vector<int64_t> labels = all.labels.to_vector<int64_t>();
  const auto first = [&](int64_t k) {
    return static_cast<int64_t>(std::find(labels.begin(), labels.end(), k) - labels.begin());
  };
  EXPECT_EQ(slice(test.images, 0, 0, 1).to_vector<float>(), slice(all.images, 0, first(7), first(7) + 1).to_vector<float>());
  EXPECT_EQ(slice(test.images_b, 0, 0, 1).to_vector<float>(), slice(all.images, 0, first(9), first(9) + 1).to_vector<float>());
  EXPECT_TRUE(data::two_domains_from_fashion_mnist(spec, data::kFashionMnistDir));
}

// The CycleGAN folder layout, --data-a/--data-b folders, augmentation, and the errors naming folder and file.
TEST(CycleGan, TwoDomainDataFromImageFolders) {
  TempDir dir;
  // Images 6 × 4 (w × h), RGB, filled with one value per image.
  auto write = [&](const std::string& path, uint8_t v) {
    const std::vector<uint8_t> px(6 * 4 * 3, v);
    save_png(path, px.data(), 6, 4, 3, "test");
  };
  for (const char* sub : {"trainA", "trainB", "testA", "testB"}) std::filesystem::create_directories(dir / sub);
  write(dir / "trainA/1.png", 0);
  write(dir / "trainA/2.png", 255);
  write(dir / "trainB/1.png", 51);
  write(dir / "testA/1.png", 102);
  write(dir / "testB/x.png", 204);
  write(dir / "testB/y.png", 153);
  data::DataSpec spec;
  spec.dataset = data::Dataset::TwoDomains;
  spec.size = 4;
  spec.load_size = 5;
  spec.channels = 3;
  EXPECT_FALSE(data::two_domains_from_fashion_mnist(spec, dir.path()));
  const data::LabeledImages train = data::load_dataset(spec, data::Split::Train, dir.path());
  EXPECT_EQ(train.images.shape(), (Shape{2, 3, 5, 5}));  // training images at the load size
  EXPECT_EQ(train.images_b.shape(), (Shape{1, 3, 5, 5}));
  EXPECT_NEAR(train.images.to_vector<float>().back(), 1.0f, 1e-6);
  const data::LabeledImages test = data::load_dataset(spec, data::Split::Test, dir.path());
  EXPECT_EQ(test.images.shape(), (Shape{1, 3, 4, 4}));  // test images center-cropped
  EXPECT_EQ(test.images_b.shape(), (Shape{2, 3, 4, 4}));
  EXPECT_NEAR(test.images_b.to_vector<float>().front(), 204.0f / 255, 1e-6);  // sorted: x.png first
  // --data-a / --data-b: the same folders for both splits.
  spec.dirs = {dir / "testB", dir / "trainA"};
  const data::LabeledImages flat = data::load_dataset(spec, data::Split::Test, "");
  EXPECT_EQ(flat.images.size(0), 2);
  EXPECT_EQ(flat.images_b.size(0), 2);
  // A folder without images, a damaged image and a missing test folder are errors naming them.
  std::filesystem::create_directories(dir / "empty");
  spec.dirs = {dir / "empty", dir / "trainA"};
  expect_error([&] { data::load_dataset(spec, data::Split::Train, ""); }, {dir / "empty", "no .png"});
  std::FILE* f = std::fopen((dir / "trainB/broken.png").c_str(), "wb");
  std::fputs("\x89PNG\r\n\x1a\n not a png", f);
  std::fclose(f);
  spec.dirs = {};
  expect_error([&] { data::load_dataset(spec, data::Split::Train, dir.path()); }, {"broken.png"});
  std::filesystem::remove_all(dir / "testB");
  expect_error([&] { data::load_dataset(spec, data::Split::Test, dir.path()); }, {dir.path(), "testB/"});
}

// Each augmented image is a crop of its source at one of the offsets, mirrored or not, and every crop and both
// orientations occur.
TEST(CycleGan, AugmentCropsAndFlips) {
  data::DataSpec spec;
  spec.size = 2;
  spec.load_size = 3;
  spec.flip = true;
  // 200 copies of one 3 × 3 image with pixels 0..8.
  std::vector<float> px;
  for (int i = 0; i < 200; ++i)
    for (int v = 0; v < 9; ++v) px.push_back(static_cast<float>(v));
  Generator g(2);
  const std::vector<float> out = data::augment(from_vector(px, {200, 1, 3, 3}), spec, g).to_vector<float>();
  std::set<std::vector<float>> seen;
  for (int i = 0; i < 200; ++i) seen.insert(std::vector<float>(out.begin() + 4 * i, out.begin() + 4 * i + 4));
  std::set<std::vector<float>> all;
  for (float top : {0.f, 1.f})
    for (float left : {0.f, 1.f}) {
      const float p = 3 * top + left;
      all.insert({p, p + 1, p + 3, p + 4});
      all.insert({p + 1, p, p + 4, p + 3});
    }
  EXPECT_EQ(seen, all);
  // Without crop or flip the batch passes unchanged, drawing nothing.
  data::DataSpec plain;
  const Generator before = g;
  const Tensor x = from_vector(px, {200, 1, 3, 3});
  plain.size = 3;
  EXPECT_EQ(data::augment(x, plain, g).to_vector<float>(), px);
  EXPECT_EQ(g.offset(), before.offset());
}

// Training on the CycleGAN layout through the driver: RGB photos of another size,
// loaded at 286/256 of --image-size, cropped and flipped in training, center-cropped
// for the held-out cycle metrics and the sample grid.
TEST(CycleGan, TrainsOnTheFolderLayout) {
  TempDir dir;
  Generator g(5);
  for (const char* sub : {"trainA", "trainB", "testA", "testB"}) {
    std::filesystem::create_directories(dir / sub);
    for (int i = 0; i < 3; ++i) write_noise(dir / (std::string(sub) + "/" + std::to_string(i) + ".png"), 40, 30, g);
  }
  tools::TrainOptions o = rgb_folder_run("cyclegan", kTiny, dir / "run", dir.path(), 2);
  const tools::TrainResult r = tools::train(o);
  EXPECT_EQ(r.steps, 2);
  EXPECT_GT(r.eval.at("cycle_l1_A"), 0);
  EXPECT_LT(r.eval.at("cycle_l1_B"), 1);
  const auto m = tools::load_model("cyclegan", r.checkpoint, Device::cpu(), dir.path());
  EXPECT_EQ(m->data_spec().load_size, 36);  // 32 · 286/256, rounded
  EXPECT_TRUE(m->data_spec().flip);
  EXPECT_EQ(m->data_spec().channels, 3);
  // --domains means nothing to folders.
  o.config.set("domains", "bag,coat");
  expect_error([&] { tools::train(o); }, {"--domains", "no effect"});
}

namespace {
// Two synthetic domains: filled rectangles (A) and uniform noise (B), 28 × 28 in [0, 1].
data::LabeledImages two_domains(data::Split split) {
  data::LabeledImages d = labeled(rectangles(48, split == data::Split::Train ? 1 : 2));
  d.images_b = synthetic_images(split, 40).images;
  return d;
}
}  // namespace

TEST(CycleGan, ResumesBitExactlyThroughTheDriver) {
  TempDir dir;
  auto run = [&](const std::string& tag, int64_t steps) {
    tools::TrainOptions o = tiny_run("cyclegan", dir / tag, steps, 0, 3);
    o.load_data = two_domains;
    o.config.batch_size = 4;
    for (const auto& [k, v] : kTiny) o.config.set(k, v);
    o.config.set("pool", 3);  // full after the first step: the resumed run draws from a filled pool
    // A constant lr: the first half of a split run is a run of its own, whose lr would decay over fewer steps.
    o.config.set("decay_start", 1.0);
    return o;
  };
  const auto [straight, resumed] = straight_and_resumed(run, 6);
  const auto tensors = model_tensors(straight.checkpoint);
  EXPECT_EQ(model_tensors(resumed.checkpoint), tensors);
  EXPECT_EQ(tensors.at("model.pool_a.count"), std::vector<double>{3});
  EXPECT_EQ(tensors.count("model.generator.a2b.1.weight") + tensors.count("model.generator.b2a.1.weight"), 2u);
  EXPECT_EQ(straight.eval.count("cycle_l1_A"), 1u);
  const double l1 = straight.eval.at("cycle_l1_B");
  EXPECT_GT(l1, 0);
  EXPECT_LT(l1, 1);
  EXPECT_TRUE(std::filesystem::exists(straight.samples));
  // `loom sample --input DIR --direction b2a`: a grid of the folder's images; a bad direction is an error.
  save_image_grid(slice(two_domains(data::Split::Test).images_b, 0, 0, 1), dir / "b.png", {0, 1}, {.nrow = 1, .padding = 0});
  tools::SampleCondition from_b;
  from_b.input = dir / "b.png";
  from_b.direction = "b2a";
  tools::sample("cyclegan", straight.checkpoint, 1, dir / "grid.png", Device::cpu(), 0, data::kFashionMnistDir, from_b);
  EXPECT_TRUE(std::filesystem::exists(dir / "grid.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "grid/b.png"));  // the translation itself
  // Inputs that differ only in their extension keep their whole names: neither overwrites the other.
  std::filesystem::create_directories(dir / "in");
  std::filesystem::copy_file(dir / "b.png", dir / "in/c.png");
  std::filesystem::copy_file(dir / "b.png", dir / "in/c.jpg");  // a PNG by its bytes, which is what counts
  std::filesystem::copy_file(dir / "b.png", dir / "in/d.png");
  from_b.input = dir / "in";
  tools::sample("cyclegan", straight.checkpoint, 3, dir / "many.png", Device::cpu(), 0, data::kFashionMnistDir, from_b);
  EXPECT_TRUE(std::filesystem::exists(dir / "many/c.png.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "many/c.jpg.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "many/d.png"));
  from_b.input = dir / "b.png";
  from_b.direction = "up";
  expect_error([&, checkpoint = straight.checkpoint] {  // clang 14 cannot capture a structured binding
    tools::sample("cyclegan", checkpoint, 1, dir / "g.png", Device::cpu(), 0, data::kFashionMnistDir, from_b);
  }, {"--direction", "a2b or b2a"});
}

// A short run on the built-in domains (sneaker → ankle boot and back) turns the
// test images of each domain into images an independent judge assigns to the
// other: the nearer of the two classes' mean training images in pixel space.
// The judge assigns 7.4 % of the test sneakers to the boots and 10.2 % of the
// boots to the sneakers; after 50 steps (f = 8, one residual block, batch 8, lr
// 1e-3, no identity loss: 8 s of CPU) it assigned 98.8-100 % of
// the translations of 500 test images to their target with seeds 1, 2 and 3
// (88-100 % after 80 steps).
TEST(CycleGanLearning, LearnsToTranslateSneakersIntoAnkleBoots) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  TempDir dir;
  tools::TrainOptions o = tiny_run("cyclegan", dir / "run", 50, 0, 1);
  o.load_data = {};  // the built-in domains
  o.limit_train = 1000;
  o.eval_size = 0;
  o.config.batch_size = 8;
  o.config.set("features", 8).set("blocks", 1).set("lambda_identity", 0.0).set("lr", 1e-3);
  const tools::TrainResult r = tools::train(o);

  data::DataSpec spec;
  spec.dataset = data::Dataset::TwoDomains;
  const data::LabeledImages train = data::load_dataset(spec, data::Split::Train, data::kFashionMnistDir);
  const data::LabeledImages test = data::load_dataset(spec, data::Split::Test, data::kFashionMnistDir);
  // The judge's class means, in [−1, 1]: row 0 sneakers (A), row 1 ankle boots (B).
  const Tensor means = concat({mean(flatten(train.images, 1), {0}, true), mean(flatten(train.images_b, 1), {0}, true)}, 0) * 2.0 - 1.0;
  // The fraction of images [n, 1, 28, 28] in [−1, 1] nearer to class `k`'s mean.
  auto judged = [&](const Tensor& images, int64_t k) {
    const Tensor f = flatten(images, 1);
    const Tensor d2 = reshape(sum(square(means), {1}), {1, 2}) - 2.0 * matmul(f, transpose(means, 0, 1));
    return mean(eq(argmax(-d2, 1), full({images.size(0)}, static_cast<double>(k), TensorOptions{DType::Int64}))
                    .to(DType::Float64)).item();
  };
  const auto m = tools::load_model("cyclegan", r.checkpoint, Device::cpu());
  m->train(false);
  NoGrad ng;
  Generator g(0);
  for (const bool b_to_a : {false, true}) {
    SCOPED_TRACE(b_to_a ? "b2a" : "a2b");
    models::Condition c;
    c.images = slice(b_to_a ? test.images_b : test.images, 0, 0, 500) * 2.0 - 1.0;
    c.b_to_a = b_to_a;
    const int64_t target = b_to_a ? 0 : 1;
    const double before = judged(c.images, target), after = judged(m->sample(500, c, g), target);
    std::printf("%s: judged the target domain: %.3f of the test images, %.3f of their translations\n",
                b_to_a ? "b2a" : "a2b", before, after);
    EXPECT_LT(before, 0.2);
    EXPECT_GT(after, 0.7);
  }
}
