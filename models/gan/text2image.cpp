// Text-to-image GAN (Reed et al. 2016, "Generative Adversarial Text to Image
// Synthesis"): GAN-CLS with GAN-INT, on Fashion-MNIST 28×28 with generated
// captions (models/gan/captions.h: "a dark ankle boot", "a large light pullover
// with a pattern").
//
// Text. A caption t is a sequence of word ids; the text encoder φ embeds each
// word (--word-dim) and runs a GRU over them (masked at each caption's length),
// φ(t) = its last state, --embed-dim numbers. The paper pre-trains a char-CNN-RNN
// with a structured joint embedding and freezes it; here φ is trained jointly with
// the discriminator, by D's loss alone (G's loss does not reach it, so G cannot
// bend the text space to its convenience). The matching term below makes φ carry
// what distinguishes one caption's image from another's, which is what the
// conditioning needs, with no separate objective.
//
// Captions reach the model through the images: the driver's batches hold images
// and labels, and prepare_batch writes each image's caption as the batch is drawn
// (deterministic in the image, its label and a wording variant drawn per image from
// the default generator, so a run resumes bit-exactly), as token ids padded to the
// longest caption there can be, so that a step can be captured as a CUDA graph.
//
// Your own captions (--captions FILE with --data DIR): the model trains on the
// image folder DIR (28×28 grey; its train/ and test/ sub-folders when it has
// both), FILE holding one `name<TAB>caption` line per image (captions::read_captions),
// name being the image's path relative to DIR ("train/cats/001.png") or its bare
// file name ("001.png"). The driver's batches carry each image's position in its
// split (Batch::indices), which the model maps to its file (data::image_folder_files,
// the loader's order: unreadable images are an Error here, not passed over) and so
// to its caption. An image without a caption is an Error naming it; a caption of no
// image is a warning (a caption file may cover more than a curated folder).
// The vocabulary is the words of FILE only: the generated captions describe
// Fashion-MNIST classes, which a user's folder need not hold. So that a checkpoint
// samples without FILE (and a changed FILE cannot silently re-map words), the
// vocabulary has a fixed capacity (--max-words rows of the embedding) and is stored
// in the checkpoint as a buffer of word hashes: row k ≥ 2 holds the 64-bit FNV-1a
// hash of its word, 0 when free. Training gives each word of FILE not yet in the
// table the next free row, in sorted order (a resumed run with an edited FILE
// keeps every learned row and appends new words); sampling only looks words up.
// Without --prompt, samples are conditioned on captions drawn from FILE's lines
// (which then must be readable); there is no prompt_accuracy (the texts need not
// name Fashion-MNIST classes).
//
// Networks (DCGAN-style, Radford et al. 2016, at 28×28; the paper's §4 layout):
//   G(z, φ(t)): φ → Linear → leaky ReLU(0.2) to --text-dim (the compressed text),
//     concatenated with z ~ N(0, I) (--latent-dim) → Linear → BN → ReLU → [2g, 7, 7]
//     → ConvT 4/2 → BN → ReLU → [g, 14, 14] → ConvT 4/2 → tanh → [1, 28, 28] in [−1, 1];
//   D(x, φ(t)): x → Conv 4/2 → leaky → [d, 14, 14] → Conv 4/2 → BN → leaky → [2d, 7, 7];
//     the compressed text (Linear → leaky, --text-dim) replicated over the 7×7 grid
//     and concatenated in depth → 1×1 Conv → BN → leaky → 7×7 Conv → the logit of D.
// g = --g-width, d = --d-width; weights as DCGAN (N(0, 0.02), BN scales N(1, 0.02)).
// The default sizes (g = d = 32, word vectors 32, φ 64, compressed text 64) are
// half or less of the paper's and DCGAN's so a run trains in minutes on a CPU.
//
// Training (Algorithm 1, one D and one G update per step, Adam lr 2e-4, β₁ 0.5,
// batch 64 as the paper): with h = φ(t) of each image's caption, ĥ = φ of a
// mismatched caption (the batch's captions rolled by one) and x̂ = G(z, h),
//   L_D = −[log D(x, h) + (log(1 − D(x, ĥ)) + log(1 − D(x̂, h))) / 2]   (GAN-CLS)
//   L_G = −log D(G(z, h), h) − λ log D(G(z', h_β), h_β),  h_β = β h + (1 − β) ĥ
// (non-saturating, §3 of Goodfellow et al. 2014; the second term is GAN-INT, §4.3:
// β = --beta, 0.5 in the paper; λ = --int-weight, 0 for GAN-CLS alone). D never sees
// interpolated texts: there is no real image for them, and GAN-INT asks only that
// G's samples for text between two captions look real.
//
// Sampling: --prompt TEXT conditions every sample on that text; without one,
// sample() draws captions from the caption distribution (uniform class, attributes
// and wording), and the picture the trainer draws is one column per class, each
// conditioned on its plain prompt ("a sneaker"). `loom eval` adds prompt_accuracy:
// the classifier's accuracy on samples for each class's prompt.
#include <algorithm>
#include <array>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <unordered_map>

#include "models/gan/adversarial.h"
#include "models/gan/captions.h"

namespace loom::models {
namespace {

namespace cap = captions;

Tensor leaky(const Tensor& x) { return leaky_relu(x, 0.2); }

// φ(t) compressed to a few numbers: Linear → leaky ReLU (the paper's text projection, in G and in D).
std::shared_ptr<nn::Sequential> text_projection(int64_t embed_dim, int64_t text_dim) {
  return std::make_shared<nn::Sequential>(
      std::vector<nn::ModulePtr>{std::make_shared<nn::Linear>(embed_dim, text_dim), std::make_shared<nn::LeakyReLU>(0.2)});
}

nn::ConvOptions stride2() { return {.params = {.stride = {2, 2}, .padding = {1, 1}}, .bias = true, .tensors = {}}; }

class TextGenerator : public nn::Module {
 public:
  TextGenerator(int64_t latent, int64_t embed_dim, int64_t text_dim, int64_t g)
      : text_(register_module("text", text_projection(embed_dim, text_dim))),
        fc_(register_module("fc", std::make_shared<nn::Linear>(latent + text_dim, 2 * g * 49))),
        bn0_(register_module("bn0", std::make_shared<nn::BatchNorm1d>(2 * g * 49))),
        up1_(register_module("up1", std::make_shared<nn::ConvTranspose2d>(2 * g, g, 4, stride2()))),
        bn1_(register_module("bn1", std::make_shared<nn::BatchNorm2d>(g))),
        up2_(register_module("up2", std::make_shared<nn::ConvTranspose2d>(g, 1, 4, stride2()))),
        g_(g) {}
  // z float32 [B, latent], φ [B, embed_dim] → images float32 [B, 1, 28, 28] in [−1, 1].
  Tensor generate(const Tensor& z, const Tensor& phi) {
    Tensor h = relu((*bn0_)((*fc_)(concat({z, (*text_)(phi)}, 1))));
    h = relu((*bn1_)((*up1_)(reshape(h, {z.size(0), 2 * g_, 7, 7}))));
    return tanh((*up2_)(h));
  }
  std::string name() const override { return "TextGenerator"; }

 private:
  std::shared_ptr<nn::Sequential> text_;
  std::shared_ptr<nn::Linear> fc_;
  std::shared_ptr<nn::BatchNorm1d> bn0_;
  std::shared_ptr<nn::ConvTranspose2d> up1_;
  std::shared_ptr<nn::BatchNorm2d> bn1_;
  std::shared_ptr<nn::ConvTranspose2d> up2_;
  int64_t g_;
};

class MatchingDiscriminator : public nn::Module {
 public:
  MatchingDiscriminator(int64_t embed_dim, int64_t text_dim, int64_t d)
      : conv1_(register_module("conv1", std::make_shared<nn::Conv2d>(1, d, 4, stride2()))),
        conv2_(register_module("conv2", std::make_shared<nn::Conv2d>(d, 2 * d, 4, stride2()))),
        bn2_(register_module("bn2", std::make_shared<nn::BatchNorm2d>(2 * d))),
        text_(register_module("text", text_projection(embed_dim, text_dim))),
        joint_(register_module("joint", std::make_shared<nn::Conv2d>(2 * d + text_dim, 2 * d, 1))),
        bn3_(register_module("bn3", std::make_shared<nn::BatchNorm2d>(2 * d))),
        out_(register_module("out", std::make_shared<nn::Conv2d>(2 * d, 1, 7))) {}
  // The image's features, [B, 2d, 7, 7], from x [B, 1, 28, 28]: computed once per
  // image and scored with each text by score().
  Tensor features(const Tensor& x) { return leaky((*bn2_)((*conv2_)(leaky((*conv1_)(x))))); }
  // The logit of D(x, φ) [B], from features(x) and φ [B, embed_dim].
  Tensor score(const Tensor& features, const Tensor& phi) {
    const int64_t b = features.size(0);
    const Tensor t = (*text_)(phi);
    const Tensor grid = expand(reshape(t, {b, t.size(1), 1, 1}), {b, t.size(1), 7, 7});
    return reshape((*out_)(leaky((*bn3_)((*joint_)(concat({features, grid}, 1))))), {b});
  }
  std::string name() const override { return "MatchingDiscriminator"; }

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::BatchNorm2d> bn2_;
  std::shared_ptr<nn::Sequential> text_;
  std::shared_ptr<nn::Conv2d> joint_;
  std::shared_ptr<nn::BatchNorm2d> bn3_;
  std::shared_ptr<nn::Conv2d> out_;
};

class Text2Image : public gan::AdversarialModel {
 public:
  explicit Text2Image(const Config& c)
      : AdversarialModel(c),
        beta_(c.real("beta")),
        int_weight_(c.real("int_weight")),
        captions_path_(c.text("captions")),
        data_dir_(c.data_dir),
        encoder_(std::make_shared<cap::TextEncoder>(
            captions_path_.empty() ? cap::caption_vocabulary().size() : c.integer("max_words") + 2,
            c.integer("word_dim"), c.integer("embed_dim"), !captions_path_.empty())),
        generator_(std::make_shared<TextGenerator>(latent_, c.integer("embed_dim"), c.integer("text_dim"),
                                                   c.integer("g_width"))),
        discriminator_(std::make_shared<MatchingDiscriminator>(c.integer("embed_dim"), c.integer("text_dim"),
                                                               c.integer("d_width"))) {
    LOOM_CHECK(!c.batch_size || *c.batch_size >= 2, "text2image: --batch-size must be at least 2 (an image's ",
               "mismatched text is another image's caption), got ", *c.batch_size);
    LOOM_CHECK(!captions_path_.empty() || !c.given.count("max_words"),
               "text2image: --max-words sizes the vocabulary of your own captions: it needs --captions FILE");
    gan::dcgan_init(*generator_);
    gan::dcgan_init(*discriminator_);
    encoder_->to(device_);
    // φ learns from D's loss: the encoder's parameters are updated with D's.
    adopt(*generator_, *discriminator_, adam_from(c), adam_from(c), encoder_->parameters());
    add_module("text_encoder", *encoder_);
  }

  // Generated captions: Fashion-MNIST; your own: the image folder --data DIR, 28×28 grey in [−1, 1],
  // every image read (a skipped one would shift the positions captions are matched by).
  DataSpec data_spec() const override {
    DataSpec s;
    if (!user_captions()) return s;
    s.dataset = Dataset::ImageFolder;
    s.skip_unreadable = false;
    return s;
  }
  Conditions conditions() const override {
    return {.labels = false, .prompt = true, .images = false, .interpolate = false, .codes = 0};
  }
  std::string class_prompt(int64_t k) const override { return user_captions() ? "" : cap::class_prompt(k); }

  // The captions of a training batch's images as token ids (Batch::tokens), padded to the
  // longest caption there can be (generated: cap::longest_caption; your own: the file's
  // longest), so that every batch has one shape. Generated captions are worded by a
  // variant drawn per image from the default generator.
  void prepare_batch(Batch& batch) override {
    if (!user_captions()) {
      batch.tokens = tokenize_captions(batch, nullptr, cap::longest_caption()).ids;
      return;
    }
    if (!words_added_) {
      // Every word of the file, sorted: the same rows on every run over the same file.
      std::set<std::string> words;
      for (const auto& [name, text] : captions_file()) {
        const std::vector<std::string> line = cap::tokenize(text);
        longest_line_ = std::max(longest_line_, static_cast<int64_t>(line.size()));
        words.insert(line.begin(), line.end());
      }
      encoder_->add_words({words.begin(), words.end()}, "captions file " + captions_path_);
      words_added_ = true;
    }
    batch.tokens = encode_user(folder_captions(batch, data::Split::Train), longest_line_).ids;
  }

  // Capturable as a CUDA graph: the captions come composed and padded with the batch
  // (prepare_batch), their lengths are counted on the device.
  bool cuda_graph_capable() const override { return true; }
  Losses train_step(const Batch& given, Step&) override {
    const Batch batch = prepared(given);
    const Tensor& x = batch.images;
    const int64_t b = x.size(0);
    const cap::Tokens tokens = cap::from_ids(batch.tokens);
    // D (and φ) on GAN-CLS's three pairs.
    const Tensor h = encoder_->encode(tokens), wrong = mismatched(h);
    Tensor fake;
    {
      NoGrad ng;  // D's update does not reach G
      fake = generator_->generate(noise(b, nullptr), h);
    }
    const Tensor real_features = discriminator_->features(x);
    const Tensor s_right = discriminator_->score(real_features, h), s_wrong = discriminator_->score(real_features, wrong),
                 s_fake = discriminator_->score(discriminator_->features(fake), h);
    const Tensor d_loss = gan::matching_aware_discriminator_loss(s_right, s_wrong, s_fake);
    gan::descend(*d_opt_, d_loss);
    // G on the right texts (GAN-CLS) and on interpolated ones (GAN-INT), with the updated φ held fixed.
    Tensor hg;
    {
      NoGrad ng;
      hg = encoder_->encode(tokens);
    }
    Tensor g_loss = generator_loss(hg);
    if (int_weight_ > 0) g_loss = g_loss + int_weight_ * generator_loss(beta_ * hg + (1 - beta_) * mismatched(hg));
    gan::descend(*g_opt_, g_loss);
    NoGrad ng;
    return step_losses({{"d_loss", d_loss},
                        {"g_loss", g_loss},
                        {"D(x,t)", mean(sigmoid(s_right))},
                        {"D(x,t_wrong)", mean(sigmoid(s_wrong))},
                        {"D(G(z),t)", mean(sigmoid(s_fake))}});
  }

  // Conditioned on c.prompt (an Error when it has no known word), else on captions
  // drawn from the caption distribution (your own: uniformly from the captions
  // file's lines); all randomness from g.
  Tensor sample(int64_t n, const Condition& c, Generator& g) override {
    NoGrad ng;
    if (!c.prompt.empty()) {
      const Tensor phi = encoder_->encode(to_device(user_captions() ? encode_user_prompt(c.prompt)
                                                                    : cap::encode_prompt(c.prompt)));
      return generator_->generate(noise(n, &g), expand(phi, {n, phi.size(1)}));
    }
    if (user_captions()) {
      const std::vector<std::string>& lines = caption_lines();
      const int64_t count = static_cast<int64_t>(lines.size());
      std::vector<std::string> texts;
      for (float u : rand({n}, {}, &g).to_vector<float>())
        texts.push_back(lines[static_cast<size_t>(std::min(count - 1, static_cast<int64_t>(u * static_cast<float>(count))))]);
      return generator_->generate(noise(n, &g), encoder_->encode(encode_user(texts)));
    }
    const std::vector<float> u = rand({n, 5}, {}, &g).to_vector<float>();
    auto pick = [&](int64_t i, int64_t j, int64_t values) {
      return std::min(values - 1, static_cast<int64_t>(u[static_cast<size_t>(5 * i + j)] * static_cast<float>(values)));
    };
    std::vector<std::string> texts;
    for (int64_t i = 0; i < n; ++i)
      texts.push_back(cap::caption({pick(i, 0, 10), static_cast<cap::Tone>(pick(i, 1, 3)),
                                    static_cast<cap::Size>(pick(i, 2, 3)), static_cast<cap::Texture>(pick(i, 3, 2))},
                                   pick(i, 4, cap::kVariants)));
    return generator_->generate(noise(n, &g), encoder_->encode(to_device(cap::encode(texts))));
  }

  // With a prompt (or your own captions), n samples in a square grid; without,
  // one column per class (its plain prompt, "a sneaker") and max(1, n / 10) rows.
  GridLayout grid_layout(int64_t n, const Condition& c) const override {
    if (!c.prompt.empty() || user_captions()) return {n, 0};
    return {std::max<int64_t>(1, n / 10) * 10, 10};
  }
  SampleGrid sample_grid(int64_t n, const Condition& c, Generator& g) override {
    if (!c.prompt.empty() || user_captions()) return {sample(n, c, g), 0};
    NoGrad ng;
    const int64_t count = grid_layout(n, c).count;
    std::vector<std::string> texts;
    for (int64_t i = 0; i < count; ++i) texts.push_back(cap::class_prompt(i % 10));
    return {generator_->generate(noise(count, &g), encoder_->encode(to_device(cap::encode(texts)))), 10};
  }

  // Held-out images with their captions (wording from a fixed stream, so every
  // evaluation compares alike) against as many samples for the same captions:
  // L_D, D's mean on each pair, and match_accuracy, the fraction of images D
  // scores higher with their own caption than with the mismatched one, among those
  // whose mismatched caption is another text (in a folder sorted by class the next
  // image's caption is often the same; a tie says nothing).
  static double match_accuracy(const Tensor& s_right, const Tensor& s_wrong, const Tensor& h, const Tensor& wrong) {
    const Tensor distance = sum(abs(h - wrong), {1});
    const Tensor differs = gt(distance, zeros(distance.shape(), TensorOptions{distance.dtype(), distance.device()}))
                               .to(DType::Float32);
    const double n = sum(differs).item();
    return n > 0 ? sum(gt(s_right, s_wrong).to(DType::Float32) * reshape(differs, s_right.shape())).item() / n : 0.5;
  }

  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    Generator g(0);
    const int64_t b = batch.images.size(0);
    const Tensor h = encoder_->encode(user_captions() ? encode_user(folder_captions(batch, data::Split::Test))
                                                      : tokenize_captions(batch, &g)),
                 wrong = mismatched(h);
    const Tensor real_features = discriminator_->features(batch.images);
    const Tensor s_right = discriminator_->score(real_features, h), s_wrong = discriminator_->score(real_features, wrong),
                 s_fake = discriminator_->score(discriminator_->features(generator_->generate(noise(b, &g), h)), h);
    return {{"d_loss", gan::matching_aware_discriminator_loss(s_right, s_wrong, s_fake).item()},
            {"D(x,t)", mean(sigmoid(s_right)).item()},
            {"D(x,t_wrong)", mean(sigmoid(s_wrong)).item()},
            {"D(G(z),t)", mean(sigmoid(s_fake)).item()},
            {"match_accuracy", match_accuracy(s_right, s_wrong, h, wrong)}};
  }

 private:
  bool user_captions() const { return !captions_path_.empty(); }
  // The captions file, read once.
  const std::map<std::string, std::string>& captions_file() {
    if (!file_) {
      file_ = cap::read_captions(captions_path_);
      LOOM_CHECK(!file_->empty(), "captions file ", captions_path_, ": holds no caption");
    }
    return *file_;
  }
  // Its captions in file-name order (what sample() draws from without a prompt).
  const std::vector<std::string>& caption_lines() {
    if (lines_.empty())
      for (const auto& [name, text] : captions_file()) lines_.push_back(text);
    return lines_;
  }
  // The caption of each image of both splits of the folder, by position
  // (data::image_folder_files); an Error naming an image without one, a warning
  // for captions of no image.
  void match_folder() {
    namespace fs = std::filesystem;
    const std::map<std::string, std::string>& file = captions_file();
    std::set<std::string> used;
    for (data::Split split : {data::Split::Train, data::Split::Test}) {
      std::vector<std::string>& out = split_captions_[split == data::Split::Train ? 0 : 1];
      for (const std::string& path : data::image_folder_files(data::image_folder_split(data_dir_, split))) {
        const std::string relative = fs::path(path).lexically_relative(data_dir_).generic_string(),
                          name = fs::path(path).filename().string();
        auto it = file.find(relative);
        if (it == file.end()) it = file.find(name);
        LOOM_CHECK(it != file.end(), "text2image: image ", path, " has no caption in captions file ", captions_path_,
                   " (add a line '", relative, "<TAB>caption' or '", name, "<TAB>caption')");
        used.insert(it->first);
        out.push_back(it->second);
      }
    }
    if (used.size() < file.size()) {
      std::string first;
      for (const auto& [name, text] : file)
        if (!used.count(name)) {
          first = name;
          break;
        }
      std::cerr << "text2image: warning: " << file.size() - used.size() << " caption(s) in " << captions_path_
                << " match no image under " << data_dir_ << " (first: '" << first << "')\n";
    }
  }
  // The captions of a batch's images (Batch::indices into split).
  std::vector<std::string> folder_captions(const Batch& batch, data::Split split) {
    if (split_captions_[0].empty()) match_folder();
    const std::vector<std::string>& all = split_captions_[split == data::Split::Train ? 0 : 1];
    LOOM_CHECK(batch.indices.defined(), "text2image: batches need their images' positions (Batch::indices) to find ",
               "their captions");
    std::vector<std::string> out;
    for (int64_t i : batch.indices.to(Device::cpu()).to_vector<int64_t>()) {
      LOOM_CHECK(i >= 0 && i < static_cast<int64_t>(all.size()), "text2image: image position ", i, " is outside the ",
                 all.size(), " images of ", data::image_folder_split(data_dir_, split));
      out.push_back(all[static_cast<size_t>(i)]);
    }
    return out;
  }
  // Texts as tokens of the word table (words it lacks become <unk>), on the device, padded
  // to at least `length` words.
  cap::Tokens encode_user(const std::vector<std::string>& texts, int64_t length = 0) const {
    const std::unordered_map<int64_t, int64_t> ids = encoder_->word_ids();
    return to_device(cap::encode(
        texts,
        [&](const std::string& w) {
          auto it = ids.find(cap::word_hash(w));
          return it == ids.end() ? cap::Vocabulary::kUnk : it->second;
        },
        length));
  }
  // A user's prompt; an Error when none of its words is in the table.
  cap::Tokens encode_user_prompt(const std::string& prompt) const {
    const cap::Tokens t = encode_user({prompt});
    const std::vector<int64_t> ids = t.ids.to(Device::cpu()).to_vector<int64_t>();
    LOOM_CHECK(std::any_of(ids.begin(), ids.end(), [](int64_t id) { return id != cap::Vocabulary::kUnk; }), "prompt '",
               prompt, "' has no word of the captions the model was trained on (", encoder_->word_ids().size(),
               " words, from ", captions_path_, ")");
    return t;
  }
  // The tokens of each image's caption, worded by a variant drawn from g (nullptr: the default
  // generator), padded to at least `length` words.
  cap::Tokens tokenize_captions(const Batch& batch, Generator* g, int64_t length = 0) {
    const int64_t b = batch.images.size(0);
    const std::vector<float> u = rand({b}, {}, g).to_vector<float>();
    std::vector<int64_t> variants;
    for (float v : u) variants.push_back(std::min(cap::kVariants - 1, static_cast<int64_t>(v * cap::kVariants)));
    return to_device(cap::encode(cap::describe_batch(batch.images, batch.labels, -1, 1, variants),
                                 cap::caption_vocabulary(), length));
  }
  cap::Tokens to_device(const cap::Tokens& t) const { return {t.ids.to(device_), t.lengths.to(device_)}; }
  // Each row's mismatched text: the next row's (rolled by one).
  Tensor mismatched(const Tensor& phi) const {
    const int64_t b = phi.size(0);
    return concat({slice(phi, 0, 1, b), slice(phi, 0, 0, 1)}, 0);
  }
  // −log D(G(z, φ), φ) on fresh noise (non-saturating).
  Tensor generator_loss(const Tensor& phi) {
    const Tensor fake = generator_->generate(noise(phi.size(0), nullptr), phi);
    return gan::generator_loss(discriminator_->score(discriminator_->features(fake), phi),
                               gan::GeneratorLoss::NonSaturating);
  }

  double beta_, int_weight_;
  std::string captions_path_, data_dir_;  // your own captions (empty: generated ones) and the image folder
  std::optional<std::map<std::string, std::string>> file_;
  std::vector<std::string> lines_;
  std::array<std::vector<std::string>, 2> split_captions_;  // train, test: the caption of each image by position
  bool words_added_ = false;
  int64_t longest_line_ = 1;  // the most words of a line of the captions file
  std::shared_ptr<cap::TextEncoder> encoder_;
  std::shared_ptr<TextGenerator> generator_;
  std::shared_ptr<MatchingDiscriminator> discriminator_;
};

}  // namespace

std::unique_ptr<Model> make_text2image(const Config& c) { return std::make_unique<Text2Image>(c); }
std::vector<OptionSpec> options_text2image() {
  std::vector<OptionSpec> o = adam_options(2e-4, 0.5, 0.999);
  o.push_back(latent_dim_option(100));
  o.push_back(integer_option("word_dim", 32, Range::closed(1, 4096), "size of the text encoder's word embeddings"));
  o.push_back(integer_option("embed_dim", 64, Range::closed(1, 4096), "size of the text embedding phi(t), the GRU's state"));
  o.push_back(integer_option("text_dim", 64, Range::closed(1, 4096), "size phi(t) is compressed to in G and D (paper: 128)"));
  o.push_back(integer_option("g_width", 32, Range::closed(1, 1024), "G's channels g: [2g, 7, 7] -> [g, 14, 14] -> image"));
  o.push_back(integer_option("d_width", 32, Range::closed(1, 1024), "D's channels d: image -> [d, 14, 14] -> [2d, 7, 7]"));
  o.push_back(real_option("beta", 0.5, Range::closed(0, 1),
                          "GAN-INT: G also learns from texts beta phi(t1) + (1 - beta) phi(t2)"));
  o.push_back(real_option("int_weight", 1.0, Range::at_least(0), "weight of G's GAN-INT term (0: GAN-CLS alone)"));
  o.push_back(text_option("captions", "",
                          "your own captions for the image folder --data DIR: a file of 'name<TAB>caption' lines, "
                          "name the image's path under DIR or its file name (default: generated Fashion-MNIST captions)"));
  o.push_back(integer_option("max_words", 4096, Range::closed(1, 65536),
                             "with --captions: the most distinct words the captions may hold (the embedding's rows)"));
  return o;
}

}  // namespace loom::models
