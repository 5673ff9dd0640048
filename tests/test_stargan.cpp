// StarGAN (models/gan/stargan.h) and its multi-domain data: the critic and
// domain-classification losses against hand-computed values, the tiling of the
// target domain into input planes, the shapes and ranges of translations and the
// domain grid, n_critic batches per step, the Fashion-MNIST domains and the domain
// folders, `loom sample --target`, `loom eval`'s target-domain accuracy, a bit-exact
// resume through the driver, and a short run whose discriminator learns the domains.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "models/classifier/classifier.h"
#include "models/gan/stargan.h"
#include "models/image_grid.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"
#include "tests/train_fixture.h"
#include "tools/train.h"

using namespace loom;
using namespace loom::testing;
namespace stargan = loom::models::stargan;

namespace {

std::unique_ptr<models::Model> make(const models::OptionValues& options, const std::string& data_dir = "") {
  return make_model("stargan", options, data_dir);
}

const models::OptionValues kTiny{{"features", "4"}, {"blocks", "1"}, {"d_layers", "2"}, {"d_steps", "2"}};

// n synthetic images with domains i mod 3 (the three default domains).
data::LabeledImages three_domains(data::Split split, int64_t n) {
  data::LabeledImages d = synthetic_images(split, n);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(i % 3);
  d.labels = from_vector(labels, {n});
  return d;
}

}  // namespace

TEST(StarGan, LossesMatchHandComputedValues) {
  // PatchGAN scores [B, 1, h, w]: the mean over samples and patches.
  const Tensor real = from_vector(std::vector<float>{1, 2, 3, 6}, {2, 1, 1, 2});
  const Tensor fake = from_vector(std::vector<float>{-1, 0.5f, 0.5f}, {3, 1, 1, 1});
  EXPECT_NEAR(stargan::critic_loss(real, fake).item(), 0.0 - 3.0, 1e-6);
  // −log softmax(logits)[domain], averaged: row 0 of domain 0, row 1 of domain 2.
  const Tensor logits = from_vector(std::vector<float>{1, 0, 0, 0, 0, 2}, {2, 3});
  const Tensor domains = from_vector(std::vector<int64_t>{0, 2}, {2});
  const double expected = ((std::log(std::exp(1.0) + 2) - 1) + (std::log(2 + std::exp(2.0)) - 2)) / 2;
  EXPECT_NEAR(stargan::domain_classification_loss(logits, domains).item(), expected, 1e-6);
  expect_error([&] { stargan::domain_classification_loss(logits, from_vector(std::vector<int64_t>{0}, {1})); },
               {"domain_classification_loss", "[B, K]"});
}

TEST(StarGan, TranslationsKeepShapesAndRangesAndFillTheDomainGrid) {
  for (const auto& [size, channels] : {std::pair<int64_t, int64_t>{28, 1}, {32, 3}}) {
    SCOPED_TRACE(size);
    models::OptionValues o = kTiny;
    o["image_size"] = std::to_string(size);
    if (channels == 3) o["rgb"] = "true";
    auto m = make(o);
    m->train(false);
    EXPECT_EQ(m->data_spec().size, size);
    EXPECT_EQ(m->data_spec().channels, channels);
    EXPECT_EQ(m->data_spec().domains, (std::vector<int64_t>{5, 7, 9}));
    EXPECT_EQ(m->conditions().domains, (std::vector<std::string>{"Sandal", "Sneaker", "Ankle boot"}));
    EXPECT_TRUE(m->conditions().images);
    EXPECT_FALSE(m->conditions().directions);
    Generator g(3);
    models::Condition c;
    c.images = rand({4, channels, size, size}, {}, &g) * 2.0 - 1.0;
    std::vector<std::vector<float>> into;
    for (int64_t k = 0; k < 3; ++k) {
      c.targets = full({4}, static_cast<double>(k), TensorOptions{DType::Int64});
      const Tensor y = m->sample(4, c, g);
      ASSERT_EQ(y.shape(), (Shape{4, channels, size, size}));
      into.push_back(y.to_vector<float>());
      EXPECT_LE(*std::max_element(into.back().begin(), into.back().end()), 1.0f);
      EXPECT_GE(*std::min_element(into.back().begin(), into.back().end()), -1.0f);
    }
    EXPECT_NE(into[0], into[1]);  // the target domain is an input of G
    // With a target: input | translation per row.
    const models::SampleGrid pair = m->sample_grid(4, c, g);
    EXPECT_EQ(pair.images.shape(), (Shape{8, channels, size, size}));
    EXPECT_EQ(pair.columns, 2);
    EXPECT_EQ(m->grid_layout(4, c).count, 8);
    // Without: the input, then one column per domain.
    c.targets = Tensor();
    const models::SampleGrid grid = m->sample_grid(4, c, g);
    EXPECT_EQ(grid.images.shape(), (Shape{16, channels, size, size}));
    EXPECT_EQ(grid.columns, 4);
    EXPECT_EQ(m->grid_layout(4, c).columns, 4);
    const int64_t px = channels * size * size;
    const std::vector<float> cells = grid.images.to_vector<float>(), inputs = c.images.to_vector<float>();
    for (int64_t row = 0; row < 4; ++row)
      for (int64_t col = 0; col < 4; ++col) {
        const auto at = cells.begin() + (row * 4 + col) * px;
        const std::vector<float> cell(at, at + px);
        const std::vector<float>& source = col == 0 ? inputs : into[static_cast<size_t>(col - 1)];
        EXPECT_EQ(cell, std::vector<float>(source.begin() + row * px, source.begin() + (row + 1) * px)) << row << col;
      }
    // No target: domains drawn from the generator.
    const Tensor drawn = m->sample(4, c, g);
    EXPECT_EQ(drawn.shape(), (Shape{4, channels, size, size}));
  }
  auto m = make(kTiny);
  Generator g(0);
  expect_error([&] { m->sample(2, {}, g); }, {"stargan", "--input"});
  models::Condition c;
  c.images = zeros({2, 1, 28, 28});
  c.targets = full({2}, 3, TensorOptions{DType::Int64});
  expect_error([&] { m->sample(2, c, g); }, {"stargan", "domain 3", "3 domains"});
  c.images = zeros({2, 1, 32, 32});
  expect_error([&] { m->sample(2, c, g); }, {"stargan", "[n, 1, 28, 28]"});
  expect_error([&] { make({{"domains", "sneaker"}}); }, {"--domains", "at least two"});
  expect_error([&] { make({{"domains", "sneaker,boots"}}); }, {"--domains", "'boots'"});
  expect_error([&] { make({{"domains", "7,sneaker"}}); }, {"--domains", "twice"});
  expect_error([&] { make({{"d_layers", "5"}}); }, {"--d-layers 5", "28-pixel"});
  EXPECT_EQ(make({{"domains", "T-shirt,9,coat,bag"}})->data_spec().domains, (std::vector<int64_t>{0, 9, 4, 8}));
}

// n_critic: d_steps updates of D per step, each on a batch of its own (the first the
// step's, the others through Step::next_batch), then one of G.
TEST(StarGan, TakesOneBatchPerCriticUpdate) {
  manual_seed(1);
  models::OptionValues o = kTiny;
  o["d_steps"] = "3";
  auto m = make(o);
  const data::LabeledImages d = three_domains(data::Split::Train, 4);
  int64_t drawn = 0;
  models::Step step;
  step.next_batch = [&] {
    ++drawn;
    return batch(d.images * 2.0 - 1.0, d.labels);
  };
  const models::Losses l = m->train_step(batch(d.images * 2.0 - 1.0, d.labels), step);
  EXPECT_EQ(drawn, 2);
  for (const char* key : {"d_loss", "d_cls", "gradient_penalty", "wasserstein", "g_loss", "g_adv", "g_cls", "g_rec"})
    ASSERT_TRUE(l.count(key) && std::isfinite(l.at(key))) << key;
  // G's loss is its terms with λ_cls = 1 and λ_rec = 10.
  EXPECT_NEAR(l.at("g_loss"), l.at("g_adv") + l.at("g_cls") + 10 * l.at("g_rec"), 1e-4 * (1 + std::abs(l.at("g_loss"))));
  // Each image's domain is checked against the K domains.
  expect_error([&] { train_step(*m, d.images, full({4}, 3, TensorOptions{DType::Int64})); }, {"stargan", "domain 3"});
}

TEST(StarGan, DomainsFromFashionMnistClasses) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  data::DataSpec spec;
  spec.domains = {9, 5};
  const data::LabeledImages test = data::load_dataset(spec, data::Split::Test, data::kFashionMnistDir);
  // The test split holds 1000 images of each class, in their order there.
  ASSERT_EQ(test.images.shape(), (Shape{2000, 1, 28, 28}));
  const data::LabeledImages all = data::load_mnist(data::Split::Test);
  const std::vector<int64_t> labels = all.labels.to_vector<int64_t>(), domains = test.labels.to_vector<int64_t>();
  std::vector<int64_t> rows;
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] == 9 || labels[i] == 5) rows.push_back(static_cast<int64_t>(i));
  for (size_t j : {size_t(0), size_t(1), size_t(1234), size_t(1999)}) {
    EXPECT_EQ(domains[j], labels[static_cast<size_t>(rows[j])] == 9 ? 0 : 1) << j;
    EXPECT_EQ(slice(test.images, 0, static_cast<int64_t>(j), static_cast<int64_t>(j) + 1).to_vector<float>(),
              slice(all.images, 0, rows[j], rows[j] + 1).to_vector<float>());
  }
  spec.domains = {5, 5};
  expect_error([&] { data::load_dataset(spec, data::Split::Test, data::kFashionMnistDir); }, {"class 5", "two domains"});
}

// A folder of domain sub-folders through the driver: the sub-folders are the
// domains, --target names them, and --domains means nothing to a folder.
TEST(StarGan, TrainsOnDomainFolders) {
  TempDir dir;
  Generator g(5);
  for (const char* domain : {"blond", "brown", "dark"}) {
    std::filesystem::create_directories(dir / (std::string("faces/") + domain));
    for (int i = 0; i < 2; ++i) write_noise(dir / str("faces/", domain, "/", i, ".png"), 40, 30, g);
  }
  EXPECT_EQ(data::image_folder_classes(dir / "faces"), (std::vector<std::string>{"blond", "brown", "dark"}));
  tools::TrainOptions o = rgb_folder_run("stargan", kTiny, dir / "run", dir / "faces", 2);
  o.eval_size = 4;
  const tools::TrainResult r = tools::train(o);
  EXPECT_EQ(r.steps, 2);
  EXPECT_GT(r.eval.at("cycle_l1"), 0);
  EXPECT_LT(r.eval.at("cycle_l1"), 1);
  const auto m = tools::load_model("stargan", r.checkpoint, Device::cpu(), dir / "faces");
  EXPECT_EQ(m->conditions().domains, (std::vector<std::string>{"blond", "brown", "dark"}));
  EXPECT_TRUE(m->data_spec().flip);
  EXPECT_EQ(m->data_spec().dataset, data::Dataset::ImageFolder);
  tools::SampleCondition sc;
  sc.input = dir / "faces/dark/0.png";
  sc.target = "BROWN";
  tools::sample("stargan", r.checkpoint, 1, dir / "grid.png", Device::cpu(), 0, dir / "faces", sc);
  EXPECT_TRUE(std::filesystem::exists(dir / "grid.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "grid/0.png"));  // the translation itself
  sc.target = "red";
  expect_error([&] { tools::sample("stargan", r.checkpoint, 1, dir / "g.png", Device::cpu(), 0, dir / "faces", sc); },
               {"--target 'red'", "0 blond, 1 brown, 2 dark"});
  o.config.set("domains", "bag,coat");
  o.config.given.insert("domains");
  expect_error([&] { tools::train(o); }, {"--domains", "sub-folders"});
  std::filesystem::remove_all(dir / "faces/brown");
  std::filesystem::remove_all(dir / "faces/dark");
  expect_error([&] { make(kTiny, dir / "faces"); }, {"stargan", "one sub-folder (blond)"});
}

TEST(StarGan, ResumesBitExactlyThroughTheDriver) {
  TempDir dir;
  auto run = [&](const std::string& tag, int64_t steps) {
    tools::TrainOptions o = tiny_run("stargan", dir / tag, steps, 0, 3);
    o.load_data = [](data::Split s) { return three_domains(s, 24); };
    o.config.batch_size = 4;
    for (const auto& [k, v] : kTiny) o.config.set(k, v);
    return o;
  };
  const auto [straight, resumed] = straight_and_resumed(run, 6);
  const auto tensors = model_tensors(straight.checkpoint);
  EXPECT_EQ(model_tensors(resumed.checkpoint), tensors);
  EXPECT_EQ(tensors.count("model.discriminator.cls.weight"), 1u);
  EXPECT_TRUE(std::filesystem::exists(straight.samples));
  const double l1 = straight.eval.at("cycle_l1");
  EXPECT_GT(l1, 0);
  EXPECT_LT(l1, 1);

  // `loom sample --target`: a grid of input | translation, and the translation itself.
  save_image_grid(slice(three_domains(data::Split::Test, 1).images, 0, 0, 1), dir / "x.png", {0, 1},
                  {.nrow = 1, .padding = 0});
  tools::SampleCondition sc;
  sc.input = dir / "x.png";
  sc.target = "ankle_boot";
  tools::sample("stargan", straight.checkpoint, 1, dir / "grid.png", Device::cpu(), 0, data::kFashionMnistDir, sc);
  EXPECT_TRUE(std::filesystem::exists(dir / "grid/x.png"));
  sc.target = "3";
  expect_error([&, checkpoint = straight.checkpoint] {  // clang 14 cannot capture a structured binding
    tools::sample("stargan", checkpoint, 1, dir / "g.png", Device::cpu(), 0, data::kFashionMnistDir, sc);
  }, {"--target '3'", "0 Sandal, 1 Sneaker, 2 Ankle boot"});

  // `loom eval`: the target-domain accuracy in a (barely trained) classifier's
  // verdicts; untranslated, the fraction of (image, other domain) pairs whose image
  // it already assigns to that domain's class.
  tools::EvalRequest er;
  er.checkpoint = straight.checkpoint;
  er.classifier = tools::train(tiny_run("classifier", dir / "clf", 2, 64, 1)).checkpoint;
  er.images = 12;
  er.load_data = [](data::Split s) { return three_domains(s, 24); };
  const tools::Evaluation e = tools::evaluate("stargan", er);
  const data::LabeledImages test = three_domains(data::Split::Test, 12);
  const auto clf = tools::load_model("classifier", er.classifier, Device::cpu());
  clf->train(false);
  NoGrad ng;
  const std::vector<int64_t> pred =
      argmax(dynamic_cast<models::Classifier&>(*clf).net->forward(test.images * 2.0 - 1.0), 1).to_vector<int64_t>();
  const std::vector<int64_t> classes{5, 7, 9};
  int64_t hits = 0;
  for (int64_t i = 0; i < 12; ++i)
    for (int64_t t = 0; t < 3; ++t)
      if (t != i % 3) hits += pred[static_cast<size_t>(i)] == classes[static_cast<size_t>(t)];
  EXPECT_DOUBLE_EQ(e.metrics.at("target_accuracy_untranslated"), static_cast<double>(hits) / 24);
  EXPECT_GE(e.metrics.at("target_accuracy"), 0);
  EXPECT_LE(e.metrics.at("target_accuracy"), 1);
  EXPECT_EQ(e.metrics.count("cycle_l1"), 1u);
  er.fd = true;
  expect_error([&] { tools::evaluate("stargan", er); }, {"--fd", "stargan"});
}

// A short run on the built-in domains (sandal, sneaker, ankle boot) teaches D_cls
// the domains and G to translate test images into each other domain so that an
// independent judge assigns them to it: the nearest of the three classes' mean
// training images in pixel space. As they are, the judge assigns 9.3 % of the
// (image, other domain) pairs of 300 test images to the other domain; after 40
// steps (f = 8, one residual block, batch 16, n_critic 5, lr 1e-3: 10 s of CPU) it
// assigned 94.5-100 % of their translations to the target with seeds 1, 2 and 3
// (96-100 % after 30 steps), and D_cls 84-85 % of the images to their own domain
// (chance: 1/3).
TEST(StarGanLearning, LearnsToTranslateBetweenFootwearClasses) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  TempDir dir;
  tools::TrainOptions o = tiny_run("stargan", dir / "run", 40, 0, 1);
  o.load_data = {};  // the built-in domains
  o.limit_train = 3000;
  o.eval_size = 300;
  o.n_samples = 0;
  o.config.batch_size = 16;
  o.config.set("features", 8).set("blocks", 1).set("lr", 1e-3);
  const tools::TrainResult r = tools::train(o);

  data::DataSpec spec;
  spec.domains = {5, 7, 9};
  const data::LabeledImages train = data::load_dataset(spec, data::Split::Train, data::kFashionMnistDir);
  const data::LabeledImages test = data::load_dataset(spec, data::Split::Test, data::kFashionMnistDir);
  // The judge's class means, in [−1, 1]: row k domain k.
  std::vector<Tensor> rows;
  const std::vector<int64_t> labels = train.labels.to_vector<int64_t>();
  for (int64_t k = 0; k < 3; ++k) {
    std::vector<int64_t> of;
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == k) of.push_back(static_cast<int64_t>(i));
    rows.push_back(mean(flatten(index_select(train.images, 0, from_vector(of, {static_cast<int64_t>(of.size())})), 1),
                        {0}, true));
  }
  const Tensor means = concat(rows, 0) * 2.0 - 1.0;
  auto judged = [&](const Tensor& images) {
    const Tensor d2 = reshape(sum(square(means), {1}), {1, 3}) - 2.0 * matmul(flatten(images, 1), transpose(means, 0, 1));
    return argmax(-d2, 1).to_vector<int64_t>();
  };
  const auto m = tools::load_model("stargan", r.checkpoint, Device::cpu());
  m->train(false);
  NoGrad ng;
  Generator g(0);
  const int64_t n = 300;
  models::Condition c;
  c.images = slice(test.images, 0, 0, n) * 2.0 - 1.0;
  const std::vector<int64_t> source = slice(test.labels, 0, 0, n).to_vector<int64_t>(), as_is = judged(c.images);
  int64_t before = 0, after = 0, pairs = 0;
  for (int64_t t = 0; t < 3; ++t) {
    c.targets = full({n}, static_cast<double>(t), TensorOptions{DType::Int64});
    const std::vector<int64_t> verdict = judged(m->sample(n, c, g));
    for (int64_t i = 0; i < n; ++i) {
      if (source[static_cast<size_t>(i)] == t) continue;
      ++pairs;
      before += as_is[static_cast<size_t>(i)] == t;
      after += verdict[static_cast<size_t>(i)] == t;
    }
  }
  const double b = static_cast<double>(before) / static_cast<double>(pairs),
               a = static_cast<double>(after) / static_cast<double>(pairs);
  std::printf("judged the target domain: %.3f of the test images, %.3f of their translations; D_cls accuracy %.3f, cycle L1 %.3f\n",
              b, a, r.eval.at("d_cls_accuracy"), r.eval.at("cycle_l1"));
  EXPECT_LT(b, 0.2);
  EXPECT_GT(a, 0.7);
  EXPECT_GT(r.eval.at("d_cls_accuracy"), 0.7);
}

TEST(StarGan, ReadsCelebAAttributeFiles) {
  TempDir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    std::FILE* f = std::fopen((dir / name).c_str(), "wb");
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return dir / name;
  };
  // CelebA's layout: two spaces before a 1, one before a -1, Windows line ends allowed.
  const data::AttributeTable t =
      data::read_attribute_file(write("ok.txt", "3\r\nSmiling Male Young \r\na.png  1 -1  1\nb.png -1 -1  1\nc.png  1  1 -1\n\n"));
  EXPECT_EQ(t.names, (std::vector<std::string>{"Smiling", "Male", "Young"}));
  EXPECT_EQ(t.files, (std::vector<std::string>{"a.png", "b.png", "c.png"}));
  EXPECT_EQ(t.values, (std::vector<uint8_t>{1, 0, 1, 0, 0, 1, 1, 1, 0}));
  const std::vector<std::pair<std::string, std::vector<std::string>>> bad{
      {"x\nA B\n", {"line 1", "number of images"}},
      {"0\nA B\n", {"line 1", "number of images"}},
      {"1\nA A\n", {"line 2", "'A' is named twice"}},
      {"1\nA B\na.png 1 0\n", {"line 3", "1 or -1", "'0'"}},
      {"1\nA B\na.png 1\n", {"line 3", "expected 2 values", "got 1"}},
      {"2\nA B\na.png 1 1\na.png 1 1\n", {"line 4", "'a.png' is listed twice"}},
      {"2\nA B\na.png 1 1\n", {"2 images declared, 1 listed"}},
      {"1\nA B\na.png 1 1\nb.png 1 1\n", {"line 4", "more image lines than the 1 declared"}},
      {"1\n", {"line 2", "attribute names"}},
  };
  for (const auto& [text, expected] : bad) {
    SCOPED_TRACE(text);
    const std::string path = write("bad.txt", text);
    std::vector<std::string> parts{path};
    parts.insert(parts.end(), expected.begin(), expected.end());
    expect_error([&, path = path] { data::read_attribute_file(path); }, parts);
  }
  expect_error([&] { data::read_attribute_file(dir / "none.txt"); }, {"none.txt"});
}

TEST(StarGan, AttributeLossMatchesHandComputedValues) {
  // Σ_a BCE / B: row 0 (logits 0, 2; attributes 1, 0): ln 2 + ln(1 + e²); row 1 (−1, 3; 0, 1): ln(1 + e⁻¹) + ln(1 + e⁻³).
  const Tensor logits = from_vector(std::vector<float>{0, 2, -1, 3}, {2, 2});
  const Tensor attributes = from_vector(std::vector<float>{1, 0, 0, 1}, {2, 2});
  const double expected =
      (std::log(2.0) + std::log1p(std::exp(2.0)) + std::log1p(std::exp(-1.0)) + std::log1p(std::exp(-3.0))) / 2;
  EXPECT_NEAR(stargan::attribute_classification_loss(logits, attributes).item(), expected, 1e-6);
  expect_error([&] { stargan::attribute_classification_loss(logits, zeros({2, 3})); },
               {"attribute_classification_loss", "one shape"});
}

// The attribute mode's random order: a stable argsort, against hand values with ties and against
// std::stable_sort on random values (float64 and float32), and its refusals.
TEST(StarGan, SortOrderIsAStableArgsort) {
  const Tensor u = from_vector(std::vector<double>{0.5, 0.2, 0.5, 0.1, 0.2}, {5}, TensorOptions{DType::Float64});
  EXPECT_EQ(stargan::sort_order(u).to_vector<int64_t>(), (std::vector<int64_t>{3, 1, 4, 0, 2}));
  for (DType dt : {DType::Float64, DType::Float32}) {
    const Tensor r = rand64({64}, 0, 1, 71).to(dt);
    const std::vector<double> v = r.to(DType::Float64).to_vector<double>();
    std::vector<int64_t> want(v.size());
    for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<int64_t>(i);
    std::stable_sort(want.begin(), want.end(),
                     [&v](int64_t a, int64_t b) { return v[static_cast<size_t>(a)] < v[static_cast<size_t>(b)]; });
    const Tensor got = stargan::sort_order(r);
    EXPECT_EQ(got.dtype(), DType::Int64);
    EXPECT_EQ(got.to_vector<int64_t>(), want);
  }
  EXPECT_EQ(stargan::sort_order(zeros({0}, TensorOptions{DType::Float64})).numel(), 0);
  expect_error([] { stargan::sort_order(zeros({2, 2})); }, {"sort_order", "[n]", "[2, 2]"});
  expect_error([] { stargan::sort_order(zeros({3}, TensorOptions{DType::Int64})); }, {"sort_order", "int64"});
}

// Images with binary attributes (--attr-file, --attrs) through the driver: the
// splits, the attributes as the labels, a translation that flips one, and the errors.
TEST(StarGan, TrainsOnBinaryAttributes) {
  TempDir dir;
  Generator g(6);
  std::filesystem::create_directories(dir / "img");
  std::string table = "12\nBlond Male Young\n";
  std::vector<std::vector<float>> chosen;  // Male, Blond of each image
  for (int i = 0; i < 12; ++i) {
    write_noise(dir / str("img/", i, ".png"), 20, 20, g);
    const int blond = i % 2, male = (i / 2) % 2, young = (i / 3) % 2;
    table += str(i, ".png ", blond ? " 1" : "-1", male ? "  1" : " -1", young ? "  1" : " -1", "\n");
    chosen.push_back({static_cast<float>(male), static_cast<float>(blond)});
  }
  std::FILE* f = std::fopen((dir / "attrs.txt").c_str(), "wb");
  std::fputs(table.c_str(), f);
  std::fclose(f);

  data::DataSpec spec;
  spec.dataset = data::Dataset::Attributes;
  spec.size = 16;
  spec.channels = 3;
  spec.attr_file = dir / "attrs.txt";
  spec.attrs = {"Male", "Blond"};
  // 12 images: the last ⌈12 / 10⌉ = 2 held out.
  const data::LabeledImages train = data::load_dataset(spec, data::Split::Train, dir / "img");
  const data::LabeledImages test = data::load_dataset(spec, data::Split::Test, dir / "img");
  EXPECT_EQ(train.images.shape(), (Shape{10, 3, 16, 16}));
  EXPECT_EQ(test.images.shape(), (Shape{2, 3, 16, 16}));
  std::vector<float> expected;
  for (int i = 10; i < 12; ++i) expected.insert(expected.end(), chosen[i].begin(), chosen[i].end());
  EXPECT_EQ(test.labels.to_vector<float>(), expected);
  EXPECT_EQ(slice(test.images, 0, 1, 2).to_vector<float>(),
            data::load_images(dir / "img/11.png", 16, 3).images.to_vector<float>());
  spec.attrs = {"Bald"};
  expect_error([&] { data::load_dataset(spec, data::Split::Test, dir / "img"); },
               {"attribute 'Bald'", "Blond, Male, Young"});

  tools::TrainOptions o = rgb_folder_run("stargan", kTiny, dir / "run", dir / "img", 4);
  o.eval_size = 2;
  o.config.set("attr_file", dir / "attrs.txt").set("attrs", "Male,Blond");
  const tools::TrainResult r = tools::train(o);
  EXPECT_EQ(r.steps, 2);
  EXPECT_GT(r.eval.at("cycle_l1"), 0);
  EXPECT_GE(r.eval.at("d_cls_accuracy"), 0);
  EXPECT_LE(r.eval.at("d_cls_accuracy"), 1);
  const auto m = tools::load_model("stargan", r.checkpoint, Device::cpu(), dir / "img");
  EXPECT_EQ(m->conditions().domains, (std::vector<std::string>{"Male", "Blond"}));
  EXPECT_EQ(m->data_spec().dataset, data::Dataset::Attributes);
  tools::SampleCondition sc;
  sc.input = dir / "img/0.png";
  sc.target = "blond";
  tools::sample("stargan", r.checkpoint, 1, dir / "grid.png", Device::cpu(), 0, dir / "img", sc);
  EXPECT_TRUE(std::filesystem::exists(dir / "grid/0.png"));
  // A batch without its attributes, and half of the two flags, are errors.
  m->train(true);
  expect_error([&] { train_step(*m, zeros({2, 3, 32, 32}), zeros({2}, TensorOptions{DType::Int64})); },
               {"stargan", "2 attributes"});
  o.config.set("attrs", "");
  expect_error([&] { tools::train(o); }, {"--attr-file", "--attrs"});
}
