// Puzzle-GAN (Lee, Yun, Choi, Yoo, Yang & Oh 2018, "Unsupervised Holistic Image
// Generation from Key Local Patches", ECCV): given K pieces of an image, cut at
// positions it is not told, the generator draws the whole image ŷ and a mask M̂
// of where the pieces belong; a discriminator judges the images.
//
// The generator (an encoder-decoder, as the paper's; f = --features, h = --code-dim):
//   a part encoder E shared by the K pieces (P × P, P = --patch-size):
//     3×3 conv C → f, LeakyReLU(0.2); 4×4 stride-2 conv f → 2f, BN, LeakyReLU(0.2); linear → h;
//   the K codes summed (the authors' code sums the parts' encodings), then
//     linear h → 4f × S/4 × S/4, BN, ReLU (S = --image-size);
//   two decoders of the same form, one for the image and one for the mask:
//     two 4×4 stride-2 transposed convs 4f → 2f → f, each BN, ReLU; a 3×3 conv to C
//     channels and tanh (the image ŷ) or to 1 channel (the mask's logits, M̂ = σ of them).
// The discriminator sees the image alone, as in the authors' code: 4×4 stride-2
// convs C → f → 2f (LeakyReLU(0.2), BN on the second) and a linear layer to one
// logit. Layers keep their default initialization, as the authors' code does.
//
// The losses (the paper's three, as the authors' code computes them):
//   spatial     L_mask = the binary cross-entropy of M̂ against M, the true mask of
//               the pieces' squares (puzzlegan::mask_loss; the authors' code takes
//               mean |M̂ − M|, see below);
//   appearance  L_appr = mean |ŷ ⊙ M̂ − y ⊙ M|: the pieces restored where they belong;
//   adversarial the log loss on logits, the generator's non-saturating; D also
//               learns that images whose parts come from another image are fake
//               (puzzlegan::discriminator_loss), which makes it judge whether the
//               parts fit the whole;
//   L_G = L_adv + λ_mask L_mask + λ_appr L_appr + λ_rec mean |ŷ − y|.
// The last term, a reconstruction of the whole image, is not the paper's (its
// generator is free outside the pieces, hence "unsupervised"): λ_rec = 0 by
// default (--lambda-rec). The authors' code uses the log loss rather than a
// least-squares or Wasserstein one, and so does this. Adam with β₂ = 0.999 as in
// their code, lr 2e-4 and β₁ 0.5 as DCGAN's (their values are set by a script
// not read here); λ_mask = λ_appr = 10 are this implementation's choice (the same
// script passes them to each step).
//
// Not the paper's: the pieces are squares at uniformly random positions (the
// paper's "key local patches" are informative regions of the object), and the
// generator takes no noise z (the completion of given pieces is deterministic).
// With squares anywhere, where a piece goes is uncertain, and the L1 spatial loss
// of the authors' code is minimized by the per-pixel median: 0 wherever a pixel is
// covered less than half the time, which a sigmoid reaches by saturating, where
// its gradient vanishes. On Fashion-MNIST (f = 8, lr 1e-3, batch 32, 600 steps)
// the L1 mask collapsed to all zeros (mean |M̂ − M| = the squares' coverage, 0.22)
// and the completions' L1 error stayed at 0.32; the cross-entropy, whose gradient
// on the logits does not vanish, learned a mask of where pieces are likely and
// completions with an L1 error of 0.19.
#include "models/gan/puzzlegan.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "models/gan/adversarial.h"

namespace loom::models {
namespace puzzlegan {

Puzzle cut_pieces(const Tensor& images, int64_t pieces, int64_t side, Generator* g) {
  LOOM_CHECK(images.dim() == 4, "cut_pieces: expected images [B, C, H, W], got ", images.shape());
  const int64_t batch = images.size(0), height = images.size(2), width = images.size(3);
  LOOM_CHECK(pieces >= 1, "cut_pieces: expected at least one piece, got ", pieces);
  LOOM_CHECK(side >= 1 && side <= std::min(height, width), "cut_pieces: a piece's side must be in [1, ",
             std::min(height, width), "] for ", height, " x ", width, " images, got ", side);
  // On the images' device, so that a CUDA step reads nothing back (and can be captured as a graph): the corners
  // ⌊u · positions⌋ (the cast truncates u·p ≥ 0), clamped for u = 1; then each piece's pixels gathered by their
  // flat index (top + r)·W + left + c, and the mask scattered from the same indices.
  const TensorOptions i64{DType::Int64, images.device()};
  const Tensor u = rand({batch, pieces, 2}, TensorOptions{DType::Float64, images.device()}, g);
  auto place = [&](int64_t coordinate, int64_t extent) {
    const auto positions = static_cast<double>(extent - side + 1);
    return reshape(clamp(slice(u, 2, coordinate, coordinate + 1) * positions, 0.0, positions - 1).to(DType::Int64),
                   {batch, pieces, 1, 1});
  };
  const Tensor offsets = arange(0, static_cast<double>(side), 1, i64);
  const Tensor index = (place(0, height) + reshape(offsets, {1, 1, side, 1})) * width + place(1, width) +
                       reshape(offsets, {1, 1, 1, side});  // [B, K, side, side]
  const int64_t channels = images.size(1), per_image = pieces * side * side;
  const Tensor flat = reshape(index, {batch, 1, per_image});
  const Tensor cut = gather(reshape(images, {batch, channels, height * width}), 2,
                            expand(flat, {batch, channels, per_image}));
  const TensorOptions f32{DType::Float32, images.device()};
  const Tensor covered =
      scatter_add(zeros({batch, height * width}, f32), 1, reshape(flat, {batch, per_image}), ones({batch, per_image}, f32));
  return {permute(reshape(cut, {batch, channels, pieces, side, side}), {0, 2, 1, 3, 4}),
          reshape(clamp(covered, 0.0, 1.0), {batch, 1, height, width})};
}

Tensor mask_loss(const Tensor& logits, const Tensor& truth) {
  LOOM_CHECK(logits.shape() == truth.shape(), "mask_loss: expected logits and a mask of one shape, got ",
             logits.shape(), " and ", truth.shape());
  return binary_cross_entropy_with_logits(logits, truth);
}

Tensor appearance_loss(const Tensor& generated, const Tensor& predicted_mask, const Tensor& images,
                       const Tensor& mask) {
  LOOM_CHECK(generated.dim() == 4 && generated.shape() == images.shape() && predicted_mask.shape() == mask.shape() &&
                 mask.dim() == 4 && mask.size(0) == images.size(0) && mask.size(1) == 1 &&
                 mask.size(2) == images.size(2) && mask.size(3) == images.size(3),
             "appearance_loss: expected images [B, C, H, W] and masks [B, 1, H, W], got ", generated.shape(), ", ",
             images.shape(), " and masks ", predicted_mask.shape(), ", ", mask.shape());
  return mean(abs(generated * predicted_mask - images * mask));
}

Tensor discriminator_loss(const Tensor& real, const Tensor& fake, const Tensor& swapped_parts,
                          const Tensor& swapped_background) {
  // −mean log(1 − σ(l)) = mean softplus(l).
  return gan::discriminator_loss(real, fake) + mean(softplus(swapped_parts)) + mean(softplus(swapped_background));
}

}  // namespace puzzlegan

namespace {

using nn::ConvOptions;
const ConvOptions kHalve{.params = {.stride = {2, 2}, .padding = {1, 1}}, .bias = true, .tensors = {}};
const ConvOptions kSame{.params = {.padding = {1, 1}}, .bias = true, .tensors = {}};

// One of the generator's two decoders: [B, 4f, S/4, S/4] → [B, out, S, S], squashed by `last` (if any).
std::shared_ptr<nn::Sequential> make_decoder(int64_t f, int64_t out, nn::ModulePtr last) {
  using namespace nn;
  auto d = std::make_shared<Sequential>();
  for (const int64_t width : {2 * f, f}) {
    d->push_back(std::make_shared<ConvTranspose2d>(2 * width, width, 4, kHalve));
    d->push_back(std::make_shared<BatchNorm2d>(width));
    d->push_back(std::make_shared<ReLU>());
  }
  d->push_back(std::make_shared<Conv2d>(f, out, 3, kSame));
  if (last) d->push_back(std::move(last));
  return d;
}

// E, the code's trunk and the two decoders (see the top of the file).
class PuzzleGenerator : public nn::Module {
 public:
  PuzzleGenerator(int64_t channels, int64_t size, int64_t side, int64_t f, int64_t code) {
    using namespace nn;
    const int64_t q = (side + 2 - 4) / 2 + 1, s = size / 4;  // the encoder's map side; the decoders' first
    encoder_ = register_module("encoder", std::make_shared<Sequential>(std::vector<ModulePtr>{
                                              std::make_shared<Conv2d>(channels, f, 3, kSame),
                                              std::make_shared<LeakyReLU>(0.2),
                                              std::make_shared<Conv2d>(f, 2 * f, 4, kHalve),
                                              std::make_shared<BatchNorm2d>(2 * f), std::make_shared<LeakyReLU>(0.2),
                                              std::make_shared<Flatten>(),
                                              std::make_shared<Linear>(2 * f * q * q, code)}));
    trunk_ = register_module("trunk", std::make_shared<Sequential>(std::vector<ModulePtr>{
                                          std::make_shared<Linear>(code, 4 * f * s * s),
                                          std::make_shared<Unflatten>(Shape{4 * f, s, s}),
                                          std::make_shared<BatchNorm2d>(4 * f), std::make_shared<ReLU>()}));
    image_ = register_module("image", make_decoder(f, channels, std::make_shared<Tanh>()));
    mask_ = register_module("mask", make_decoder(f, 1, nullptr));
  }
  // The image ŷ [B, C, S, S] and the mask's logits [B, 1, S, S] of pieces [B, K, C, P, P].
  std::pair<Tensor, Tensor> complete(const Tensor& pieces) {
    const int64_t b = pieces.size(0), k = pieces.size(1);
    const Tensor codes = (*encoder_)(reshape(pieces, {b * k, pieces.size(2), pieces.size(3), pieces.size(4)}));
    const Tensor h = (*trunk_)(sum(reshape(codes, {b, k, codes.size(1)}), {1}));
    return {(*image_)(h), (*mask_)(h)};
  }
  Tensor forward(const Tensor& pieces) override { return complete(pieces).first; }
  std::string name() const override { return "PuzzleGenerator"; }

 private:
  std::shared_ptr<nn::Sequential> encoder_, trunk_, image_, mask_;
};

std::shared_ptr<nn::Sequential> make_discriminator(int64_t channels, int64_t size, int64_t f) {
  using namespace nn;
  const int64_t s = size / 4;
  return std::make_shared<Sequential>(std::vector<ModulePtr>{
      std::make_shared<Conv2d>(channels, f, 4, kHalve), std::make_shared<LeakyReLU>(0.2),
      std::make_shared<Conv2d>(f, 2 * f, 4, kHalve), std::make_shared<BatchNorm2d>(2 * f),
      std::make_shared<LeakyReLU>(0.2), std::make_shared<Flatten>(), std::make_shared<Linear>(2 * f * s * s, 1)});
}

class PuzzleGan : public gan::AdversarialModel {
 public:
  explicit PuzzleGan(const Config& c)
      : AdversarialModel(c),
        size_(std::stoll(c.text("image_size"))),
        channels_(c.flag("rgb") ? 3 : 1),
        pieces_(c.integer("patches")),
        side_(c.integer("patch_size") > 0 ? c.integer("patch_size") : 2 * size_ / 7),
        lambda_mask_(c.real("lambda_mask")),
        lambda_appr_(c.real("lambda_appr")),
        lambda_rec_(c.real("lambda_rec")) {
    LOOM_CHECK(side_ >= 2 && side_ <= size_, "puzzlegan: --patch-size ", side_, " must be in [2, ", size_,
               "] for ", size_, "-pixel images");
    spec_.size = size_;
    spec_.channels = channels_;
    if (data::is_image_folder(c.data_dir)) {
      spec_.dataset = data::Dataset::ImageFolder;
      spec_.flip = true;
    }
    g_ = std::make_shared<PuzzleGenerator>(channels_, size_, side_, c.integer("features"), c.integer("code_dim"));
    d_ = make_discriminator(channels_, size_, c.integer("features"));
    adopt(*g_, *d_, adam_from(c), adam_from(c));
  }

  DataSpec data_spec() const override { return spec_; }

  // One update of D, then one of G, on pieces cut from `batch` (positions drawn
  // from the default generator). Losses: d_loss, g_loss, d_real and d_fake
  // (gan::adversarial_losses), g_adv, mask_bce (L_mask), appearance_l1 (L_appr) and
  // completion_l1 (mean |ŷ − y|, in the data's units).
  Losses train_step(const Batch& batch, Step& step) override {
    schedule_lr(step);
    const Tensor& y = batch.images;
    const int64_t n = y.size(0);
    LOOM_CHECK(n >= 2, "puzzlegan: a batch needs at least two images (D's negatives swap parts between them), got ",
               n);
    const puzzlegan::Puzzle p = puzzlegan::cut_pieces(y, pieces_, side_, nullptr);
    const auto [generated, mask_logits] = g_->complete(p.pieces);
    const Tensor generated_mask = sigmoid(mask_logits);
    // Each image's partner in the swaps: the next one of the batch (image i + 1 mod n).
    const Tensor other = concat({slice(y, 0, 1, n), slice(y, 0, 0, 1)}, 0);
    const Tensor& m = p.mask;
    const Tensor real_logits = (*d_)(y), fake_logits = (*d_)(generated.detach());
    const Tensor d_loss = puzzlegan::discriminator_loss(real_logits, fake_logits, (*d_)(other * m + y * (1.0 - m)),
                                                        (*d_)(y * m + other * (1.0 - m)));
    gan::descend(*d_opt_, d_loss);

    const Tensor g_adv = gan::generator_loss((*d_)(generated), loss_);
    const Tensor l_mask = puzzlegan::mask_loss(mask_logits, m);
    const Tensor l_appr = puzzlegan::appearance_loss(generated, generated_mask, y, m);
    const Tensor l_rec = l1_loss(generated, y);
    Tensor g_loss = g_adv + lambda_mask_ * l_mask + lambda_appr_ * l_appr;
    if (lambda_rec_ > 0) g_loss = g_loss + lambda_rec_ * l_rec;
    gan::descend(*g_opt_, g_loss);
    // The losses are read back only now (step_losses), so a CUDA step waits for its kernels once, at its end.
    return gan::adversarial_losses(d_loss, g_loss, real_logits, fake_logits,
                                   {{"g_adv", g_adv}, {"mask_bce", l_mask}, {"appearance_l1", l_appr},
                                    {"completion_l1", l_rec}});
  }
  // Capturable: one batch, the pieces drawn and cut on the device, the schedule redone by before_replay.
  bool cuda_graph_capable() const override { return true; }

  // The completions ŷ of c.images [n, C, S, S] from c.pieces (0: --patches) pieces
  // of each, cut at positions drawn from g.
  Tensor sample(int64_t n, const Condition& c, Generator& g) override { return complete(n, c, g).image; }
  Conditions conditions() const override {
    return {.labels = false, .prompt = false, .images = true, .interpolate = false, .codes = 0, .directions = false,
            .sampler = false, .domains = {}, .pieces = pieces_, .piece_side = side_};
  }
  // A row per input image: its K pieces (each in the middle of a grey cell), the
  // completion ŷ, the mask M̂ (black 0 to white 1) and the image.
  GridLayout grid_layout(int64_t n, const Condition& c) const override {
    const int64_t columns = pieces_of(c) + 3;
    return {columns * n, columns};
  }
  SampleGrid sample_grid(int64_t n, const Condition& c, Generator& g) override {
    const Completion done = complete(n, c, g);
    const int64_t k = done.puzzle.pieces.size(1), before = (size_ - side_) / 2, after = size_ - side_ - before;
    const Tensor cells = reshape(pad(reshape(done.puzzle.pieces, {n * k, channels_, side_, side_}),
                                     {before, after, before, after}, (spec_.lo + spec_.hi) / 2),
                                 {n, k, channels_, size_, size_});
    const Tensor mask = expand(done.mask * (spec_.hi - spec_.lo) + spec_.lo, {n, channels_, size_, size_});
    const Tensor x = c.images.to(device_);
    const Tensor rows = concat({cells, unsqueeze(done.image, 1), unsqueeze(mask, 1), unsqueeze(x, 1)}, 1);
    return {reshape(rows, {n * (k + 3), channels_, size_, size_}), k + 3};
  }

  // On held-out images y, K pieces of each cut at positions drawn from a fixed
  // Generator(0): "completion_l1", mean |ŷ − y|; "pieces_l1", the same on the
  // pieces' squares (M = 1); "mean_image_l1", mean |ȳ ⊙ (1 − M) + y ⊙ M − y| of the
  // pieces pasted where they belong on the batch's mean image ȳ (what completing
  // must beat); L1 errors in [0, 1] pixel units. "mask_bce", L_mask in nats per
  // pixel, and "mask_bce_constant", that of the best mask that ignores the pieces
  // (every pixel the fraction c of pixels covered: −c ln c − (1 − c) ln(1 − c)).
  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    const Tensor& y = batch.images;
    Generator g(0);
    const puzzlegan::Puzzle p = puzzlegan::cut_pieces(y, pieces_, side_, &g);
    const auto [generated, mask_logits] = g_->complete(p.pieces);
    const double range = spec_.hi - spec_.lo, c = mean(p.mask).item();
    const Tensor error = abs(generated - y), m = expand(p.mask, y.shape());
    const Tensor pasted = mean(y, {0}, true) * (1.0 - p.mask) + y * p.mask;
    return {{"completion_l1", mean(error).item() / range},
            {"pieces_l1", (sum(error * m) / sum(m)).item() / range},
            {"mask_bce", puzzlegan::mask_loss(mask_logits, p.mask).item()},
            {"mask_bce_constant", c > 0 && c < 1 ? -c * std::log(c) - (1 - c) * std::log1p(-c) : 0.0},
            {"mean_image_l1", mean(abs(pasted - y)).item() / range}};
  }

 private:
  struct Completion {
    puzzlegan::Puzzle puzzle;
    Tensor image, mask;  // ŷ and M̂
  };
  int64_t pieces_of(const Condition& c) const { return c.pieces > 0 ? c.pieces : pieces_; }
  Completion complete(int64_t n, const Condition& c, Generator& g) {
    LOOM_CHECK(c.images.defined(), "puzzlegan completes images from pieces of them: give them with --input PATH|DIR");
    LOOM_CHECK(c.images.size(0) == n, "puzzlegan: asked for ", n, " completions of ", c.images.size(0), " images");
    LOOM_CHECK(c.images.dim() == 4 && c.images.size(1) == channels_ && c.images.size(2) == size_ &&
                   c.images.size(3) == size_,
               "puzzlegan: expected images [n, ", channels_, ", ", size_, ", ", size_, "], got ", c.images.shape());
    LOOM_CHECK(c.pieces >= 0, "puzzlegan: --patches must be at least 1, got ", c.pieces);
    NoGrad ng;
    Completion out{puzzlegan::cut_pieces(c.images.to(device_), pieces_of(c), side_, &g), {}, {}};
    Tensor logits;
    std::tie(out.image, logits) = g_->complete(out.puzzle.pieces);
    out.mask = sigmoid(logits);
    return out;
  }

  int64_t size_, channels_, pieces_, side_;
  double lambda_mask_, lambda_appr_, lambda_rec_;
  DataSpec spec_;
  std::shared_ptr<PuzzleGenerator> g_;
  std::shared_ptr<nn::Sequential> d_;
};

}  // namespace

std::unique_ptr<Model> make_puzzlegan(const Config& c) { return std::make_unique<PuzzleGan>(c); }
std::vector<OptionSpec> options_puzzlegan() {
  std::vector<OptionSpec> o = adam_options(2e-4, 0.5, 0.999);
  o.push_back(gan::lr_schedule_option());
  o.push_back(integer_option("patches", 3, Range::closed(1, 16), "pieces K cut from each image (the paper's 3)"));
  o.push_back(integer_option("patch_size", 0, Range::closed(0, 128),
                             "side P of the square pieces in pixels; 0: 2/7 of the image side (8 at 28 px)"));
  o.push_back(integer_option("features", 16, Range::closed(1, 1024),
                             "base width f of both networks: the decoders' last maps and the discriminator's "
                             "first have f channels"));
  o.push_back(
      integer_option("code_dim", 128, Range::closed(1, 4096), "width h of a piece's code (summed over the pieces)"));
  o.push_back(choice_option("image_size", "28", {"28", "32", "64"},
                            "side of the square images (Fashion-MNIST's 28 is resized to 32 and up)"));
  o.push_back(switch_option("rgb", "RGB images (image folders of photos); grey otherwise"));
  o.push_back(real_option("lambda_mask", 10, Range::at_least(0), "weight of the spatial (mask) loss"));
  o.push_back(real_option("lambda_appr", 10, Range::at_least(0), "weight of the appearance loss on the pieces"));
  o.push_back(real_option("lambda_rec", 0, Range::at_least(0),
                          "weight of an L1 reconstruction of the whole image (not in the paper: 0)"));
  return o;
}

}  // namespace loom::models
