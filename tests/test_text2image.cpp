// The text-to-image GAN (models/gan/text2image.cpp): the generated captions and
// their tokens (models/gan/captions.h), GAN-CLS's matching-aware loss against
// hand-computed values, and the model through the driver (resume, prompts, learning).
#include <cmath>
#include <filesystem>
#include <fstream>

#include "models/gan/adversarial.h"
#include "models/gan/captions.h"
#include "models/image_grid.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"
#include "tests/train_fixture.h"
#include "tools/train.h"

using namespace loom;
using namespace loom::testing;
namespace cap = loom::models::captions;
namespace gan = loom::models::gan;

namespace {

// A 28×28 frame in [0, 1]: `count` object pixels from the top left, alternating
// between values a and b (a = b: a plain object), the rest 0.
std::vector<float> frame(int64_t count, float a, float b) {
  std::vector<float> x(784, 0.0f);
  for (int64_t i = 0; i < count; ++i) x[static_cast<size_t>(i)] = i % 2 ? b : a;
  return x;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

double softplus_ref(double x) { return std::log1p(std::exp(x)); }

}  // namespace

TEST(Text2Image, CaptionsDescribeToneSizeAndTextureAgainstTheClassThresholds) {
  // An ankle boot (class 9: tone terciles 0.658, 0.738; fill terciles 0.399, 0.466; texture median 0.193).
  const std::vector<float> light_large_plain = frame(392, 0.9f, 0.9f);     // mean 0.9, fills 1/2, σ 0
  const std::vector<float> dark_small_patterned = frame(200, 0.2f, 0.8f);  // mean 0.5, fills 0.255, σ 0.3
  const cap::Attributes a = cap::describe(light_large_plain.data(), 784, 9);
  EXPECT_EQ(a.tone, cap::Tone::Light);
  EXPECT_EQ(a.size, cap::Size::Large);
  EXPECT_EQ(a.texture, cap::Texture::Plain);
  const cap::Attributes b = cap::describe(dark_small_patterned.data(), 784, 9);
  EXPECT_EQ(b.tone, cap::Tone::Dark);
  EXPECT_EQ(b.size, cap::Size::Small);
  EXPECT_EQ(b.texture, cap::Texture::Patterned);
  // The grey middle: mean 0.7 (between the terciles), 340/784 = 0.434 of the frame.
  const std::vector<float> mid = frame(340, 0.7f, 0.7f);
  const cap::Attributes m = cap::describe(mid.data(), 784, 9);
  EXPECT_EQ(m.tone, cap::Tone::Grey);
  EXPECT_EQ(m.size, cap::Size::Medium);

  // The templates (variant % 6) and synonyms (variant / 6), articles fixed.
  EXPECT_EQ(cap::caption(a, 0), "a light ankle boot");
  EXPECT_EQ(cap::caption(a, 1), "a large light plain ankle boot");
  EXPECT_EQ(cap::caption(a, 2), "this is a plain ankle boot that fills the frame");
  EXPECT_EQ(cap::caption(a, 3), "an ankle boot, light and plain");
  EXPECT_EQ(cap::caption(a, 4), "a picture of a large ankle boot");
  EXPECT_EQ(cap::caption(a, 5), "an ankle boot");
  EXPECT_EQ(cap::caption(a, 6), "a light boot");
  EXPECT_EQ(cap::caption(a, 12), "a light ankle boot");  // a class of two synonyms wraps around
  EXPECT_EQ(cap::caption(b, 1), "a small dark ankle boot with a pattern");
  EXPECT_EQ(cap::caption(b, 2), "this is a patterned ankle boot that is small in the frame");
  EXPECT_EQ(cap::caption(b, cap::kVariants + 1), cap::caption(b, 1));
  EXPECT_EQ(cap::class_prompt(0), "a t-shirt");
  EXPECT_EQ(cap::class_prompt(1), "a pair of trousers");
  EXPECT_EQ(cap::class_prompt(9), "an ankle boot");
  expect_error([] { cap::describe(nullptr, 0, 10); }, {"label 10", "0-9"});
}

TEST(Text2Image, CaptionsAreDeterministicAndNameTheClass) {
  const data::LabeledImages d = synthetic_images(data::Split::Test, 40);
  std::vector<int64_t> variants;
  for (int64_t i = 0; i < 40; ++i) variants.push_back(i * 7);
  const std::vector<std::string> first = cap::describe_batch(d.images * 2.0 - 1.0, d.labels, -1, 1, variants);
  EXPECT_EQ(cap::describe_batch(d.images * 2.0 - 1.0, d.labels, -1, 1, variants), first);
  // In [0, 1] the same images give the same captions.
  EXPECT_EQ(cap::describe_batch(d.images, d.labels, 0, 1, variants), first);
  const std::vector<int64_t> labels = d.labels.to_vector<int64_t>();
  for (size_t i = 0; i < first.size(); ++i) {
    const std::vector<std::string>& words = cap::class_words(labels[i]);
    EXPECT_TRUE(std::any_of(words.begin(), words.end(), [&](const std::string& w) { return contains(first[i], w); }))
        << first[i] << " (class " << labels[i] << ")";
  }
  // Every caption any class, attribute and variant gives is in the vocabulary.
  const cap::Vocabulary& v = cap::caption_vocabulary();
  for (int64_t label = 0; label < 10; ++label)
    for (int64_t variant = 0; variant < cap::kVariants; ++variant)
      for (int tone = 0; tone < 3; ++tone)
        for (const std::string& w : cap::tokenize(
                 cap::caption({label, static_cast<cap::Tone>(tone), cap::Size::Large, cap::Texture::Patterned}, variant)))
          EXPECT_NE(v.id(w), cap::Vocabulary::kUnk) << w;
}

TEST(Text2Image, TokenizerAndVocabulary) {
  EXPECT_EQ(cap::tokenize("A  T-shirt, DARK!"), (std::vector<std::string>{"a", "t", "shirt", "dark"}));
  EXPECT_TRUE(cap::tokenize(" 42 -- ").empty());
  const cap::Vocabulary& v = cap::caption_vocabulary();
  EXPECT_EQ(v.word(cap::Vocabulary::kPad), "<pad>");
  EXPECT_EQ(v.word(cap::Vocabulary::kUnk), "<unk>");
  EXPECT_EQ(v.word(v.id("boot")), "boot");
  EXPECT_EQ(v.id("velvet"), cap::Vocabulary::kUnk);
  // Sorted after the two specials, each word once.
  for (int64_t i = 3; i < v.size(); ++i) EXPECT_LT(v.word(i - 1), v.word(i));
  EXPECT_GT(v.size(), 40);

  const cap::Tokens t = cap::encode({"a dark ankle boot", "a velvet coat", ""});
  EXPECT_EQ(t.ids.shape(), (Shape{3, 4}));
  EXPECT_EQ(t.ids.dtype(), DType::Int64);
  EXPECT_EQ(t.ids.to_vector<int64_t>(),
            (std::vector<int64_t>{v.id("a"), v.id("dark"), v.id("ankle"), v.id("boot"),   //
                                  v.id("a"), cap::Vocabulary::kUnk, v.id("coat"), 0,      //
                                  cap::Vocabulary::kUnk, 0, 0, 0}));
  EXPECT_EQ(t.lengths.to_vector<int64_t>(), (std::vector<int64_t>{4, 3, 1}));
}

TEST(Text2Image, APromptWithNoKnownWordIsAnError) {
  const std::string e = error_of([] { cap::encode_prompt("velvet tuxedo"); });
  for (const char* part : {"prompt 'velvet tuxedo'", "no word the model knows", "dark", "sneaker", "an ankle boot"})
    EXPECT_TRUE(contains(e, part)) << e;
  expect_error([] { cap::encode_prompt(""); }, {"prompt ''"});
  // One known word is enough; the others become <unk>.
  const cap::Tokens t = cap::encode_prompt("velvet sneaker");
  EXPECT_EQ(t.ids.to_vector<int64_t>(),
            (std::vector<int64_t>{cap::Vocabulary::kUnk, cap::caption_vocabulary().id("sneaker")}));
}

TEST(Text2Image, TheThresholdsAreFashionMnistsTerciles) {
  if (!std::filesystem::exists(data::kFashionMnistDir)) GTEST_SKIP() << "no Fashion-MNIST at " << data::kFashionMnistDir;
  const data::LabeledImages train = data::load_mnist(data::Split::Train);
  const cap::Thresholds fitted = cap::fit_thresholds(train.images, train.labels);
  const cap::Thresholds& stored = cap::fashion_mnist_thresholds();
  for (size_t k = 0; k < 10; ++k) {
    for (size_t j = 0; j < 2; ++j) {
      EXPECT_NEAR(stored[k].tone[j], fitted[k].tone[j], 1e-8) << k;
      EXPECT_NEAR(stored[k].fill[j], fitted[k].fill[j], 1e-8) << k;
    }
    EXPECT_NEAR(stored[k].texture, fitted[k].texture, 1e-8) << k;
  }
  // On the held-out split each adjective is about equally frequent (thirds, halves).
  const data::LabeledImages test = data::load_mnist(data::Split::Test);
  const std::vector<float> x = test.images.to_vector<float>();
  const std::vector<int64_t> y = test.labels.to_vector<int64_t>();
  std::array<double, 3> tones{}, sizes{};
  double patterned = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const cap::Attributes a = cap::describe(x.data() + 784 * i, 784, y[i]);
    tones[static_cast<size_t>(a.tone)] += 1.0 / static_cast<double>(y.size());
    sizes[static_cast<size_t>(a.size)] += 1.0 / static_cast<double>(y.size());
    patterned += a.texture == cap::Texture::Patterned ? 1.0 / static_cast<double>(y.size()) : 0;
  }
  for (size_t j = 0; j < 3; ++j) {
    EXPECT_NEAR(tones[j], 1.0 / 3, 0.03);
    EXPECT_NEAR(sizes[j], 1.0 / 3, 0.03);
  }
  EXPECT_NEAR(patterned, 0.5, 0.03);
}

TEST(Text2Image, CaptionFilesAreParsedWithErrorsNamingTheLine) {
  TempDir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return dir / name;
  };
  const auto good = cap::read_captions(write("good.tsv", "a.png\ta dark dress\r\n\nb.png\tthis is a bag\n"));
  EXPECT_EQ(good, (std::map<std::string, std::string>{{"a.png", "a dark dress"}, {"b.png", "this is a bag"}}));
  expect_error([&] { cap::read_captions(dir / "nowhere.tsv"); }, {"captions file: " + (dir / "nowhere.tsv"), "cannot open"});
  expect_error([&] { cap::read_captions(write("notab.tsv", "a.png\tfine\nb.png a coat\n")); },
               {"notab.tsv, line 2", "no tab", "b.png a coat"});
  expect_error([&] { cap::read_captions(write("noname.tsv", "\ta coat\n")); }, {"noname.tsv, line 1", "file name"});
  expect_error([&] { cap::read_captions(write("empty.tsv", "a.png\t  \n")); }, {"empty.tsv, line 1", "'a.png'", "empty"});
  expect_error([&] { cap::read_captions(write("twice.tsv", "a.png\tx\n\na.png\ty\n")); },
               {"twice.tsv, line 3", "'a.png' already has a caption"});
}

TEST(Text2Image, MatchingAwareLossIsGanClsAlgorithmOne) {
  auto logits = [](std::vector<double> v) { return from_vector(v, {static_cast<int64_t>(v.size())}, {DType::Float64}); };
  const Tensor right = logits({0.3, -1.2}), wrong = logits({1.5, -0.4}), fake = logits({2.0, -0.5});
  // −[log D(x, h) + (log(1 − D(x, ĥ)) + log(1 − D(x̂, h))) / 2] averaged, D = σ(l).
  auto sigma = [](double l) { return 1 / (1 + std::exp(-l)); };
  double expected = 0;
  const double r[] = {0.3, -1.2}, w[] = {1.5, -0.4}, f[] = {2.0, -0.5};
  for (int i = 0; i < 2; ++i)
    expected -= (std::log(sigma(r[i])) + (std::log(1 - sigma(w[i])) + std::log(1 - sigma(f[i]))) / 2) / 2;
  EXPECT_NEAR(gan::matching_aware_discriminator_loss(right, wrong, fake).item(), expected, 1e-14);
  EXPECT_NEAR(gan::matching_aware_discriminator_loss(right, wrong, fake).item(),
              (softplus_ref(-0.3) + softplus_ref(1.2)) / 2 +
                  ((softplus_ref(1.5) + softplus_ref(-0.4)) / 2 + (softplus_ref(2.0) + softplus_ref(-0.5)) / 2) / 2,
              1e-14);
  // At D = 1/2 everywhere: log 2 + (log 2 + log 2) / 2 = 2 log 2, as the plain GAN's log 4.
  const Tensor z = zeros({3}, {DType::Float64});
  EXPECT_NEAR(gan::matching_aware_discriminator_loss(z, z, z).item(), 2 * std::log(2.0), 1e-14);
  // The mismatched pair and the fake pair each weigh half of the real pair.
  Tensor lr = logits({0.0}).requires_grad_(), lw = logits({0.0}).requires_grad_(), lf = logits({0.0}).requires_grad_();
  backward(gan::matching_aware_discriminator_loss(lr, lw, lf));
  EXPECT_NEAR(lr.grad().item(), -0.5, 1e-15);
  EXPECT_NEAR(lw.grad().item(), 0.25, 1e-15);
  EXPECT_NEAR(lf.grad().item(), 0.25, 1e-15);
}

namespace {
tools::TrainOptions tiny_text2image(const std::string& out, int64_t steps) {
  tools::TrainOptions o = tiny_run("text2image", out, steps, 64, 3);
  o.config.set("g_width", 4).set("d_width", 4).set("latent_dim", 8);
  o.config.set("word_dim", 8).set("embed_dim", 8).set("text_dim", 4);
  return o;
}
}  // namespace

TEST(Text2Image, ResumesBitExactlyAndSamplesForAPrompt) {
  TempDir dir;
  const auto [straight, resumed] =
      straight_and_resumed([&](const std::string& tag, int64_t steps) { return tiny_text2image(dir / tag, steps); }, 6);
  const auto tensors = model_tensors(straight.checkpoint);
  EXPECT_EQ(model_tensors(resumed.checkpoint), tensors);
  EXPECT_EQ(tensors.count("model.text_encoder.gru.weight_hh_l0"), 1u);
  for (const char* k : {"d_loss", "g_loss", "D(x,t)", "D(x,t_wrong)", "D(G(z),t)"})
    EXPECT_EQ(straight.last.count(k), 1u) << k;
  for (const char* k : {"d_loss", "match_accuracy"}) EXPECT_EQ(straight.eval.count(k), 1u) << k;

  std::unique_ptr<models::Model> m = tools::load_model("text2image", straight.checkpoint, Device::cpu());
  EXPECT_TRUE(m->conditions().prompt);
  EXPECT_EQ(m->class_prompt(7), "a sneaker");
  m->train(false);
  models::Condition c;
  c.prompt = "a dark ankle boot";
  Generator g(5), same(5);
  const Tensor x = m->sample(5, c, g);
  EXPECT_EQ(x.shape(), (Shape{5, 1, 28, 28}));
  EXPECT_LE(max(abs(x)).item(), 1.0);
  EXPECT_EQ(m->sample(5, c, same).to_vector<float>(), x.to_vector<float>());  // all noise from g
  const models::SampleGrid grid = m->sample_grid(25, {}, g);  // a column per class
  EXPECT_EQ(grid.images.shape(), (Shape{20, 1, 28, 28}));
  EXPECT_EQ(grid.columns, 10);
  EXPECT_EQ(m->sample(3, {}, g).shape(), (Shape{3, 1, 28, 28}));
  c.prompt = "velvet tuxedo";
  expect_error([&] { m->sample(2, c, g); }, {"prompt 'velvet tuxedo'"});
  // `loom sample --prompt` writes the grid.
  tools::SampleCondition sc;
  sc.prompt = "a light sneaker";
  tools::sample("text2image", straight.checkpoint, 4, dir / "prompt.png", Device::cpu(), 0, data::kFashionMnistDir, sc);
  EXPECT_TRUE(std::filesystem::exists(dir / "prompt.png"));

  tools::TrainOptions one = tiny_text2image(dir / "b1", 1);
  one.config.batch_size = 1;
  expect_error([&] { tools::train(one); }, {"--batch-size must be at least 2"});
}

// It learns to match text and image: after 100 steps on 1024 Fashion-MNIST images, D
// scores most held-out images higher with their own caption than with another's
// (an untrained D: about half).
TEST(Text2ImageLearning, TheDiscriminatorLearnsWhichCaptionIsTheImages) {
  if (!std::filesystem::exists(data::kFashionMnistDir)) GTEST_SKIP() << "no Fashion-MNIST at " << data::kFashionMnistDir;
  TempDir dir;
  auto run = [&](const std::string& out, int64_t steps) {
    tools::TrainOptions o;
    o.model = "text2image";
    o.out_dir = dir / out;
    o.steps = steps;
    o.progress = false;
    o.limit_train = 1024;
    o.eval_size = 500;
    o.n_samples = 10;
    o.config.batch_size = 32;
    o.config.seed = 1;
    o.config.set("g_width", 8).set("d_width", 8).set("lr", 1e-3);
    return tools::train(o);
  };
  const double before = run("before", 1).eval.at("match_accuracy"), after = run("after", 100).eval.at("match_accuracy");
  EXPECT_NEAR(before, 0.5, 0.1);
  EXPECT_GT(after, 0.7) << "before: " << before;
}

// ---- your own captions for an image folder (--captions FILE --data DIR) --------------------------
namespace {

// A folder with train/ and test/ splits of two kinds of 28×28 image (bright and
// dim squares), and a captions file naming the train images by their path under
// the folder and the test images by their file name, plus one caption of no image.
struct CaptionedFolder {
  std::string images, captions;
};
CaptionedFolder captioned_folder(const std::string& root) {
  namespace fs = std::filesystem;
  CaptionedFolder f{root + "/images", root + "/captions.tsv"};
  Generator g(3);
  fs::create_directories(root);
  std::ofstream out(f.captions);
  for (const char* split : {"train", "test"})
    for (const char* kind : {"bright", "dim"}) {
      const std::string folder = str(f.images, "/", split, "/", kind);
      fs::create_directories(folder);
      const bool train = std::string(split) == "train", bright = std::string(kind) == "bright";
      for (int i = 0; i < (train ? 4 : 2); ++i) {
        const std::string name = train ? str(i, ".png") : str(kind, "_", i, ".png");
        const Tensor x = uniform({1, 1, 28, 28}, 0, 0.1, {}, &g) + (bright ? 0.85 : 0.3);
        save_image_grid(x, folder + "/" + name, {0, 1}, {.nrow = 1, .padding = 0, .upscale = 1});
        out << (train ? str(split, "/", kind, "/", name) : name) << '\t'
            << (bright ? "a bright zorblax square" : "a dim quokka blob") << (i % 2 ? ", large" : "") << "\n";
      }
    }
  out << "ghost.png\ta caption of no image\n";
  return f;
}

tools::TrainOptions captioned_run(const CaptionedFolder& f, const std::string& out, int64_t steps) {
  tools::TrainOptions o = tiny_text2image(out, steps);
  o.load_data = nullptr;  // the driver reads the folder, as `loom train --data DIR`
  o.data_dir = f.images;
  o.config.batch_size = 4;
  o.config.set("captions", f.captions).set("max_words", 16);
  o.eval_size = 4;
  return o;
}

}  // namespace

TEST(Text2Image, TrainsOnYourOwnCaptionsResumesAndSamplesWithoutTheFile) {
  TempDir dir;
  const CaptionedFolder f = captioned_folder(dir / "data");
  const auto [straight, resumed] = straight_and_resumed(
      [&](const std::string& tag, int64_t steps) { return captioned_run(f, dir / tag, steps); }, 4);
  const auto tensors = model_tensors(straight.checkpoint);
  EXPECT_EQ(model_tensors(resumed.checkpoint), tensors);
  EXPECT_TRUE(std::isfinite(straight.eval.at("match_accuracy")));
  // The vocabulary: 16 rows + <pad>, <unk>; the file's 12 distinct words (the caption of
  // no image's too) hold rows 2..13.
  EXPECT_EQ(tensors.at("model.text_encoder.words.weight").size(), 18u * 8u);
  const std::vector<double>& hashes = tensors.at("model.text_encoder.word_hashes");
  ASSERT_EQ(hashes.size(), 18u);
  for (size_t k = 0; k < 18; ++k) EXPECT_EQ(hashes[k] != 0, k >= 2 && k < 14) << "row " << k;
  EXPECT_EQ(load_safetensors(straight.checkpoint).metadata.at("captions"), f.captions);

  // The checkpoint carries its vocabulary: a prompt samples with the captions file gone.
  std::filesystem::rename(f.captions, f.captions + ".moved");
  std::unique_ptr<models::Model> m = tools::load_model("text2image", straight.checkpoint, Device::cpu());
  EXPECT_EQ(m->data_spec().dataset, data::Dataset::ImageFolder);
  EXPECT_EQ(m->class_prompt(3), "");  // no prompt_accuracy: the captions need not name Fashion-MNIST classes
  m->train(false);
  models::Condition c;
  c.prompt = "zorblax";  // a word only the user's captions have
  Generator g(5), same(5);
  const Tensor x = m->sample(3, c, g);
  EXPECT_EQ(x.shape(), (Shape{3, 1, 28, 28}));
  EXPECT_EQ(m->sample(3, c, same).to_vector<float>(), x.to_vector<float>());
  c.prompt = "quokka";  // another caption's word: another embedding
  Generator g2(5);
  EXPECT_NE(m->sample(3, c, g2).to_vector<float>(), x.to_vector<float>());
  c.prompt = "an ankle boot";  // generated captions' words are not in this vocabulary
  expect_error([&] { m->sample(2, c, g); }, {"prompt 'an ankle boot'", "no word of the captions", "12 words"});
  expect_error([&] { m->sample(2, {}, g); }, {"captions.tsv", "cannot open"});  // no prompt: draws from the file
  tools::SampleCondition sc;
  sc.prompt = "a large bright zorblax";
  tools::sample("text2image", straight.checkpoint, 4, dir / "prompt.png", Device::cpu(), 0, data::kFashionMnistDir, sc);
  EXPECT_TRUE(std::filesystem::exists(dir / "prompt.png"));
  std::filesystem::rename(f.captions + ".moved", f.captions);
  EXPECT_EQ(m->sample(2, {}, g).shape(), (Shape{2, 1, 28, 28}));
}

TEST(Text2Image, YourOwnCaptionsAreCheckedAgainstTheFolder) {
  TempDir dir;
  const CaptionedFolder f = captioned_folder(dir / "data");
  auto run = [&](const std::string& captions, std::function<void(tools::TrainOptions&)> change = {}) {
    tools::TrainOptions o = captioned_run(f, dir / "run", 1);
    o.config.set("captions", captions);
    o.eval_size = 0;
    if (change) change(o);
    tools::train(o);
  };
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return dir / name;
  };
  // An image without a caption: named, with the lines that would caption it.
  std::ifstream in(f.captions);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string partial = all.substr(all.find('\n') + 1);  // drops train/bright/0.png
  expect_error([&] { run(write("partial.tsv", partial)); },
               {"train/bright/0.png has no caption", "partial.tsv", "'train/bright/0.png<TAB>caption'", "'0.png<TAB>"});
  expect_error([&] { run(dir / "nowhere.tsv"); }, {"captions file: " + (dir / "nowhere.tsv"), "cannot open"});
  expect_error([&] { run(write("bad.tsv", all + "no tab here\n")); }, {"bad.tsv, line 14", "no tab"});
  expect_error([&] { run(f.captions, [](tools::TrainOptions& o) { o.config.set("max_words", 5); }); },
               {"more distinct words than --max-words 5"});
  expect_error([&] { run(f.captions, [](tools::TrainOptions& o) { o.data_dir = data::kFashionMnistDir; }); },
               {"give it with --data DIR"});
  expect_error(
      [&] {
        tools::TrainOptions o = tiny_text2image(dir / "generated", 1);
        o.config.set("max_words", 100);
        tools::train(o);
      },
      {"--max-words", "needs --captions FILE"});
  // Captions match images by position: an unreadable image is an error, not passed over.
  std::ofstream(f.images + "/train/dim/broken.png") << "not a png";
  expect_error([&] { run(write("more.tsv", all + "broken.png\tbroken\n")); }, {"broken.png"});
}
