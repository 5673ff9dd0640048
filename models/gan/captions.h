// Captions for Fashion-MNIST, which has none, and the word-level text pipeline of
// the text-conditional models (models/gan/text2image.cpp).
//
// A caption is made reproducibly from an image's label and three properties
// measured on its pixels (intensities x in [0, 1], shown as loom draws them:
// white object on black):
//   tone    the mean x of the object's pixels (x > kObjectThreshold): dark, grey
//           or light, by the terciles of its class on the training set;
//   size    the fraction of the frame the object fills: small, medium or large,
//           by the class's terciles;
//   texture the standard deviation of x within the object: plain or patterned,
//           by the class's median.
// Thresholds are per class, so "a large sandal" is large for a sandal and each
// adjective is about as frequent in every class. The wording (one of
// kTemplates sentence templates and one of the class's synonyms) is picked by a
// variant number: the same (image, label, variant) gives the same caption.
//
// Text becomes token ids over a fixed word vocabulary: every word a caption can
// contain, plus <pad> (id 0) and <unk> (id 1); tokenizing lower-cases and splits
// on every non-letter ("t-shirt" → t, shirt).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "autograd/loom.h"

namespace loom::models::captions {

inline constexpr double kObjectThreshold = 0.1;  // a pixel x > 0.1 belongs to the object

enum class Tone { Dark, Grey, Light };
enum class Size { Small, Medium, Large };
enum class Texture { Plain, Patterned };

// What a caption says about one image.
struct Attributes {
  int64_t label = 0;  // the Fashion-MNIST class, 0-9
  Tone tone = Tone::Dark;
  Size size = Size::Small;
  Texture texture = Texture::Plain;
};

// The per-class cut points of the three properties: tone and fill at their
// terciles, texture at its median.
struct ClassThresholds {
  std::array<double, 2> tone{}, fill{};
  double texture = 0;
};
using Thresholds = std::array<ClassThresholds, 10>;

// The thresholds measured on Fashion-MNIST's 60000 training images
// (fit_thresholds(load_mnist(Split::Train)); tests/test_text2image.cpp re-measures them).
const Thresholds& fashion_mnist_thresholds();
// The thresholds of a labelled set: images float32 [N, 1, H, W] in [0, 1], labels
// int64 [N] in 0-9 with every class present; a quantile q is the sorted value at
// index floor(q (n − 1)). An Error for other shapes, labels or an absent class.
Thresholds fit_thresholds(const Tensor& images, const Tensor& labels);

// The attributes of the image `pixels` (n intensities in [0, 1]) of class label
// (0-9, else an Error) against t.
Attributes describe(const float* pixels, int64_t n, int64_t label, const Thresholds& t = fashion_mnist_thresholds());

inline constexpr int64_t kTemplates = 6;
inline constexpr int64_t kSynonyms = 3;                   // the most any class has
inline constexpr int64_t kVariants = kTemplates * kSynonyms;  // variant v: template v % kTemplates, synonym v / kTemplates
// The caption of a, worded by variant (any integer ≥ 0; taken mod kVariants, a
// class with fewer synonyms wrapping around its own): "a dark ankle boot", "a large
// light pullover with a pattern", "this is a plain shirt that fills the frame".
std::string caption(const Attributes& a, int64_t variant);
// The class's words: its synonyms ("ankle boot", "boot"), the first its usual name.
const std::vector<std::string>& class_words(int64_t label);
// "a t-shirt", "a pair of trousers", "an ankle boot": the class's plain prompt
// (template 5 with the first synonym), a caption the model trains on.
std::string class_prompt(int64_t label);

// Captions of a batch: images float32 [B, 1, H, W] (any device) in [lo, hi],
// labels int64 [B] in 0-9, variants one per image.
std::vector<std::string> describe_batch(const Tensor& images, const Tensor& labels, double lo, double hi,
                                        const std::vector<int64_t>& variants,
                                        const Thresholds& t = fashion_mnist_thresholds());

// Lower-cased words of text, split on every character that is not a letter a-z.
std::vector<std::string> tokenize(const std::string& text);

// The fixed word vocabulary: <pad> = 0, <unk> = 1, then every word any caption
// can contain, sorted.
class Vocabulary {
 public:
  static constexpr int64_t kPad = 0, kUnk = 1;
  explicit Vocabulary(std::vector<std::string> words);  // words without <pad>/<unk>, distinct
  int64_t size() const { return static_cast<int64_t>(words_.size()); }
  int64_t id(const std::string& word) const;  // kUnk for a word it does not know
  const std::string& word(int64_t id) const { return words_.at(static_cast<size_t>(id)); }

 private:
  std::vector<std::string> words_;
  std::map<std::string, int64_t> ids_;
};
// Every word caption() can produce.
const Vocabulary& caption_vocabulary();

// Texts as token ids: ids int64 [B, T], T the longest text's word count (at least
// 1, and at least `length`), padded with kPad after each text's words; lengths int64
// [B], each ≥ 1 (an empty text is one <unk>), for nn::GRU's masked form.
struct Tokens {
  Tensor ids, lengths;
};
Tokens encode(const std::vector<std::string>& texts, const Vocabulary& v = caption_vocabulary(), int64_t length = 0);
// The same with any word → id map (Vocabulary::kUnk for a word it does not know).
using WordIds = std::function<int64_t(const std::string&)>;
Tokens encode(const std::vector<std::string>& texts, const WordIds& id, int64_t length = 0);
// The most words a caption() has, over every class, attribute and wording: the length
// a training batch's captions are padded to (Batch::tokens), one shape for every batch,
// as a step captured as a CUDA graph needs.
int64_t longest_caption();
// Tokens from ids alone (int64 [B, T], each row ≥ 1 word and then kPad, as encode
// makes them): the lengths are counted on the ids' device, nothing read on the host.
Tokens from_ids(const Tensor& ids);
// The tokens of a user's prompt ([1, T]): unknown words become <unk>, but a prompt
// with no known word is an Error naming it and listing some of the known words.
Tokens encode_prompt(const std::string& prompt, const Vocabulary& v = caption_vocabulary());

// A captions file for a folder of images: one `filename<TAB>caption` per line
// (blank lines skipped, a trailing \r dropped). Returns caption by file name. A
// missing file, one that is not a regular file (a FIFO is refused unopened:
// autograd/io/input_file.h) or is over kMaxCaptionsBytes, a line without a tab,
// an empty file name or caption, or a file name given twice is an Error naming
// the file (and the line number).
inline constexpr uint64_t kMaxCaptionsBytes = uint64_t(1) << 30;  // 1 GiB: a few million captions
std::map<std::string, std::string> read_captions(const std::string& path);

// 64-bit FNV-1a of a word, never 0 (0 marks a free row of TextEncoder's word table).
int64_t word_hash(const std::string& word);

// The text encoder φ of the text-conditional models (text2image, ddpm --condition
// text): word embeddings (word_dim) → GRU (embed_dim, nn::GRU masked at each text's
// length) → its state after each text's last word. With `table`, the word of each
// embedding row is a buffer "word_hashes" int64 [vocabulary] (word_hash of the row's
// word, 0 when free; rows 0 and 1 are <pad> and <unk>), so that a checkpoint carries
// the vocabulary of a user's captions (models/gan/text2image.cpp says how);
// without, the ids are caption_vocabulary()'s.
class TextEncoder : public nn::Module {
 public:
  TextEncoder(int64_t vocabulary, int64_t word_dim, int64_t embed_dim, bool table);
  // ids int64 [B, T], lengths int64 [B] (Tokens) → φ float32 [B, embed_dim].
  Tensor encode(const Tokens& t);
  std::string name() const override { return "TextEncoder"; }
  // The table's ids by word hash (its buffer may have been restored since the last call).
  std::unordered_map<int64_t, int64_t> word_ids() const;
  // Gives each word of `words` not yet in the table the next free row, in the
  // order given; an Error naming `source` when the table is full.
  void add_words(const std::vector<std::string>& words, const std::string& source);

 private:
  std::shared_ptr<nn::Embedding> words_;
  std::shared_ptr<nn::GRU> gru_;
  Tensor hashes_;
};

}  // namespace loom::models::captions
