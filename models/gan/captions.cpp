#include "models/gan/captions.h"

#include "autograd/io/input_file.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>
#include <set>

namespace loom::models::captions {
namespace {

// The properties a caption's adjectives are cut from (see the header).
struct Measures {
  double tone = 0, fill = 0, texture = 0;
};
Measures measure(const float* x, int64_t n) {
  double sum = 0, sum2 = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i)
    if (x[i] > kObjectThreshold) sum += x[i], sum2 += static_cast<double>(x[i]) * x[i], ++count;
  if (count == 0) return {};  // a blank frame: small, dark and plain
  const double mean = sum / static_cast<double>(count);
  return {mean, static_cast<double>(count) / static_cast<double>(n),
          std::sqrt(std::max(0.0, sum2 / static_cast<double>(count) - mean * mean))};
}

void check_label(int64_t label) {
  LOOM_CHECK(label >= 0 && label < 10, "captions: label ", label, " is not a Fashion-MNIST class (0-9)");
}

int64_t tercile(double v, const std::array<double, 2>& cuts) { return v < cuts[0] ? 0 : v < cuts[1] ? 1 : 2; }

// The words of one caption before the articles are fixed: "a" stands before every noun phrase.
std::string render(const Attributes& a, int64_t variant) {
  static const char* const tone[] = {"dark", "grey", "light"};
  static const char* const size[] = {"small", "medium", "large"};
  static const char* const fills[] = {"is small in the frame", "fills half the frame", "fills the frame"};
  const std::vector<std::string>& words = class_words(a.label);
  const std::string cls = words[static_cast<size_t>((variant / kTemplates) % static_cast<int64_t>(words.size()))];
  const std::string t = tone[static_cast<int>(a.tone)], s = size[static_cast<int>(a.size)];
  const bool plain = a.texture == Texture::Plain;
  switch (variant % kTemplates) {
    case 0: return str("a ", t, " ", cls);
    case 1: return plain ? str("a ", s, " ", t, " plain ", cls) : str("a ", s, " ", t, " ", cls, " with a pattern");
    case 2: return str("this is a ", plain ? "plain" : "patterned", " ", cls, " that ", fills[static_cast<int>(a.size)]);
    case 3: return str("a ", cls, ", ", t, " and ", plain ? "plain" : "patterned");
    case 4: return str("a picture of a ", s, " ", cls);
    default: return str("a ", cls);
  }
}

// "a" becomes "an" before a vowel.
std::string fix_articles(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    out += text[i];
    const bool lone_a = text[i] == 'a' && (i == 0 || text[i - 1] == ' ') && i + 2 < text.size() && text[i + 1] == ' ';
    if (lone_a && std::string("aeiou").find(text[i + 2]) != std::string::npos) out += 'n';
  }
  return out;
}

}  // namespace

const Thresholds& fashion_mnist_thresholds() {
  // Measured by fit_thresholds on the training split: {tone terciles}, {fill terciles}, texture median.
  static const Thresholds t = {{
      {{0.522554465, 0.725866622}, {0.516581633, 0.566326531}, 0.156790503},
      {{0.63113896, 0.751476851}, {0.304846939, 0.332908163}, 0.201845668},
      {{0.526458207, 0.741999177}, {0.576530612, 0.642857143}, 0.16544513},
      {{0.597786237, 0.760937882}, {0.353316327, 0.426020408}, 0.182311146},
      {{0.655381807, 0.770337496}, {0.543367347, 0.602040816}, 0.164856353},
      {{0.471322638, 0.569167404}, {0.206632653, 0.284438776}, 0.21939974},
      {{0.462211899, 0.688558951}, {0.549744898, 0.62244898}, 0.157236377},
      {{0.534325198, 0.633523128}, {0.261479592, 0.304846939}, 0.226679959},
      {{0.62611451, 0.729430534}, {0.487244898, 0.581632653}, 0.181066525},
      {{0.6577688, 0.738365059}, {0.399234694, 0.465561224}, 0.193147309},
  }};
  return t;
}

Thresholds fit_thresholds(const Tensor& images, const Tensor& labels) {
  LOOM_CHECK(images.dim() == 4 && images.size(1) == 1 && labels.dim() == 1 && labels.size(0) == images.size(0),
             "fit_thresholds: expected images [N, 1, H, W] and labels [N], got ", images.shape(), " and ", labels.shape());
  const std::vector<float> x = images.to(Device::cpu()).to(DType::Float32).to_vector<float>();
  const std::vector<int64_t> y = labels.to(Device::cpu()).to_vector<int64_t>();
  const int64_t n = images.size(0), d = images.numel() / std::max<int64_t>(1, n);
  std::array<std::array<std::vector<double>, 3>, 10> seen;
  for (int64_t i = 0; i < n; ++i) {
    check_label(y[static_cast<size_t>(i)]);
    const Measures m = measure(x.data() + i * d, d);
    auto& s = seen[static_cast<size_t>(y[static_cast<size_t>(i)])];
    s[0].push_back(m.tone), s[1].push_back(m.fill), s[2].push_back(m.texture);
  }
  Thresholds t;
  for (size_t k = 0; k < 10; ++k) {
    LOOM_CHECK(!seen[k][0].empty(), "fit_thresholds: class ", k, " has no image");
    for (auto& v : seen[k]) std::sort(v.begin(), v.end());
    auto q = [&](size_t which, double p) {
      const std::vector<double>& v = seen[k][which];
      return v[static_cast<size_t>(std::floor(p * static_cast<double>(v.size() - 1)))];
    };
    t[k] = {{q(0, 1.0 / 3), q(0, 2.0 / 3)}, {q(1, 1.0 / 3), q(1, 2.0 / 3)}, q(2, 0.5)};
  }
  return t;
}

Attributes describe(const float* pixels, int64_t n, int64_t label, const Thresholds& t) {
  check_label(label);
  const Measures m = measure(pixels, n);
  const ClassThresholds& c = t[static_cast<size_t>(label)];
  return {label, static_cast<Tone>(tercile(m.tone, c.tone)), static_cast<Size>(tercile(m.fill, c.fill)),
          m.texture < c.texture ? Texture::Plain : Texture::Patterned};
}

const std::vector<std::string>& class_words(int64_t label) {
  check_label(label);
  static const std::array<std::vector<std::string>, 10> words = {{
      {"t-shirt", "top", "tee"},
      {"pair of trousers", "pair of pants", "pair of jeans"},
      {"pullover", "sweater", "jumper"},
      {"dress", "gown"},
      {"coat", "jacket"},
      {"sandal"},
      {"shirt", "blouse"},
      {"sneaker", "trainer", "shoe"},
      {"bag", "handbag", "purse"},
      {"ankle boot", "boot"},
  }};
  return words[static_cast<size_t>(label)];
}

std::string caption(const Attributes& a, int64_t variant) {
  check_label(a.label);
  LOOM_CHECK(variant >= 0, "captions: variant ", variant, " must be >= 0");
  return fix_articles(render(a, variant % kVariants));
}

std::string class_prompt(int64_t label) { return caption(Attributes{.label = label}, kTemplates - 1); }

std::vector<std::string> describe_batch(const Tensor& images, const Tensor& labels, double lo, double hi,
                                        const std::vector<int64_t>& variants, const Thresholds& t) {
  LOOM_CHECK(images.dim() == 4 && labels.dim() == 1 && labels.size(0) == images.size(0) &&
                 static_cast<int64_t>(variants.size()) == images.size(0),
             "describe_batch: expected images [B, 1, H, W], labels [B] and B variants, got ", images.shape(), ", ",
             labels.shape(), " and ", variants.size());
  const Tensor unit = (images.to(Device::cpu()).to(DType::Float32) - lo) * (1.0 / (hi - lo));
  const std::vector<float> x = unit.to_vector<float>();
  const std::vector<int64_t> y = labels.to(Device::cpu()).to_vector<int64_t>();
  const int64_t d = images.numel() / std::max<int64_t>(1, images.size(0));
  std::vector<std::string> out;
  for (size_t i = 0; i < y.size(); ++i)
    out.push_back(caption(describe(x.data() + static_cast<int64_t>(i) * d, d, y[i], t), variants[i]));
  return out;
}

std::vector<std::string> tokenize(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  for (char ch : text + " ") {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lower >= 'a' && lower <= 'z') {
      word += lower;
    } else if (!word.empty()) {
      out.push_back(word);
      word.clear();
    }
  }
  return out;
}

Vocabulary::Vocabulary(std::vector<std::string> words) : words_{"<pad>", "<unk>"} {
  for (std::string& w : words) {
    LOOM_CHECK(!ids_.count(w) && w != "<pad>" && w != "<unk>", "Vocabulary: word '", w, "' given twice");
    ids_[w] = static_cast<int64_t>(words_.size());
    words_.push_back(std::move(w));
  }
}

int64_t Vocabulary::id(const std::string& word) const {
  auto it = ids_.find(word);
  return it == ids_.end() ? kUnk : it->second;
}

namespace {
// Every caption there can be (each class, attribute combination and variant), tokenized, once.
const std::vector<std::vector<std::string>>& every_caption() {
  static const std::vector<std::vector<std::string>> all = [] {
    std::vector<std::vector<std::string>> out;
    for (int64_t label = 0; label < 10; ++label)
      for (Tone tone : {Tone::Dark, Tone::Grey, Tone::Light})
        for (Size size : {Size::Small, Size::Medium, Size::Large})
          for (Texture texture : {Texture::Plain, Texture::Patterned})
            for (int64_t variant = 0; variant < kVariants; ++variant)
              out.push_back(tokenize(caption({label, tone, size, texture}, variant)));
    return out;
  }();
  return all;
}
}  // namespace

const Vocabulary& caption_vocabulary() {
  static const Vocabulary v = [] {
    std::set<std::string> words;
    for (const std::vector<std::string>& c : every_caption()) words.insert(c.begin(), c.end());
    return Vocabulary(std::vector<std::string>(words.begin(), words.end()));
  }();
  return v;
}

Tokens encode(const std::vector<std::string>& texts, const Vocabulary& v, int64_t length) {
  return encode(texts, [&](const std::string& w) { return v.id(w); }, length);
}

Tokens encode(const std::vector<std::string>& texts, const WordIds& id, int64_t length) {
  LOOM_CHECK(!texts.empty(), "encode: no texts");
  std::vector<std::vector<int64_t>> ids;
  size_t longest = static_cast<size_t>(std::max<int64_t>(1, length));
  for (const std::string& text : texts) {
    std::vector<int64_t> row;
    for (const std::string& w : tokenize(text)) row.push_back(id(w));
    if (row.empty()) row.push_back(Vocabulary::kUnk);
    longest = std::max(longest, row.size());
    ids.push_back(std::move(row));
  }
  std::vector<int64_t> flat, lengths;
  for (std::vector<int64_t>& row : ids) {
    lengths.push_back(static_cast<int64_t>(row.size()));
    row.resize(longest, Vocabulary::kPad);
    flat.insert(flat.end(), row.begin(), row.end());
  }
  const int64_t b = static_cast<int64_t>(texts.size());
  return {from_vector(flat, {b, static_cast<int64_t>(longest)}), from_vector(lengths, {b})};
}

int64_t longest_caption() {
  static const int64_t longest = [] {
    size_t n = 1;
    for (const std::vector<std::string>& c : every_caption()) n = std::max(n, c.size());
    return static_cast<int64_t>(n);
  }();
  return longest;
}

Tokens from_ids(const Tensor& ids) {
  LOOM_CHECK(ids.dim() == 2 && ids.dtype() == DType::Int64, "captions: token ids must be int64 [B, T], got ", ids.dtype(),
             " ", ids.shape());
  const Tensor words = ne(ids, full({}, static_cast<double>(Vocabulary::kPad), ids.options())).to(DType::Float32);
  return {ids, sum(words, {1}).to(DType::Int64)};
}

Tokens encode_prompt(const std::string& prompt, const Vocabulary& v) {
  const std::vector<std::string> words = tokenize(prompt);
  if (std::none_of(words.begin(), words.end(), [&](const std::string& w) { return v.id(w) != Vocabulary::kUnk; })) {
    std::string known;
    for (int64_t id : {v.id("dark"), v.id("light"), v.id("large"), v.id("plain"), v.id("dress"), v.id("sneaker"),
                       v.id("ankle"), v.id("boot")})
      if (id != Vocabulary::kUnk) known += str(known.empty() ? "" : ", ", v.word(id));
    throw Error(str("prompt '", prompt, "' has no word the model knows (", v.size() - 2, " words, e.g. ", known,
                    "); try \"", class_prompt(9), "\""));
  }
  return encode({prompt}, v);
}

std::map<std::string, std::string> read_captions(const std::string& path) {
  std::istringstream in(read_file(path, "captions file", kMaxCaptionsBytes));
  std::map<std::string, std::string> out;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const size_t tab = line.find('\t');
    const std::string where = str("captions file ", path, ", line ", number, ": ");
    LOOM_CHECK(tab != std::string::npos, where, "expected 'filename<TAB>caption', found no tab in '", line, "'");
    const std::string name = line.substr(0, tab), text = line.substr(tab + 1);
    LOOM_CHECK(!name.empty(), where, "the file name before the tab is empty");
    LOOM_CHECK(text.find_first_not_of(" \t") != std::string::npos, where, "the caption of '", name, "' is empty");
    LOOM_CHECK(out.emplace(name, text).second, where, "'", name, "' already has a caption");
  }
  return out;
}

int64_t word_hash(const std::string& word) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : word) h = (h ^ ch) * 0x100000001b3ull;
  return h == 0 ? 1 : static_cast<int64_t>(h);
}

TextEncoder::TextEncoder(int64_t vocabulary, int64_t word_dim, int64_t embed_dim, bool table)
    : words_(register_module("words", std::make_shared<nn::Embedding>(vocabulary, word_dim))),
      gru_(register_module("gru", std::make_shared<nn::GRU>(word_dim, embed_dim))) {
  if (table) register_buffer("word_hashes", &hashes_, zeros({vocabulary}, TensorOptions{DType::Int64}));
}

Tensor TextEncoder::encode(const Tokens& t) { return gru_->forward((*words_)(t.ids), t.lengths).h_n; }

std::unordered_map<int64_t, int64_t> TextEncoder::word_ids() const {
  const std::vector<int64_t> h = hashes_.to(Device::cpu()).to_vector<int64_t>();
  std::unordered_map<int64_t, int64_t> ids;
  for (size_t k = 2; k < h.size(); ++k)
    if (h[k] != 0) ids.emplace(h[k], static_cast<int64_t>(k));
  return ids;
}

void TextEncoder::add_words(const std::vector<std::string>& words, const std::string& source) {
  std::vector<int64_t> h = hashes_.to(Device::cpu()).to_vector<int64_t>();
  const std::unordered_map<int64_t, int64_t> ids = word_ids();
  size_t next = 2, added = 0;
  for (const std::string& w : words) {
    if (ids.count(word_hash(w))) continue;
    while (next < h.size() && h[next] != 0) ++next;
    LOOM_CHECK(next < h.size(), source, ": its captions hold more distinct words than --max-words ", h.size() - 2,
               " (raise it)");
    h[next] = word_hash(w);
    ++added;
  }
  if (added > 0) {
    NoGrad ng;
    hashes_.copy_(from_vector(h, {static_cast<int64_t>(h.size())}).to(hashes_.device()));
  }
}

}  // namespace loom::models::captions
