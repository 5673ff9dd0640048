// StarGAN (Choi, Choi, Kim, Ha, Kim & Choo 2018, "StarGAN: Unified Generative
// Adversarial Networks for Multi-Domain Image-to-Image Translation"): one generator
// G(x, c) translates an image x into any of K domains c, given as the one-hot label
// tiled into K extra input planes; one discriminator has two heads on a shared conv
// trunk, D_src (real or fake, one score per patch) and D_cls (the domain, K logits).
// The objectives (eq. 5-6, with the WGAN-GP adversarial loss of eq. 8):
//   L_D = −L_adv + λ_cls L_cls^r,            L_cls^r = −log D_cls(c' | x) on real images;
//   L_G =  L_adv + λ_cls L_cls^f + λ_rec L_rec, L_cls^f = −log D_cls(c | G(x, c)),
//   L_rec = ‖x − G(G(x, c), c')‖₁ (the cycle back to the source domain c', eq. 4),
//   L_adv = mean D_src(x) − mean D_src(G(x, c)) − λ_gp (‖∇_x̂ D_src(x̂)‖₂ − 1)².
// As §4 and the authors' code (yunjey/stargan) train it:
//   - λ_cls = 1 (--lambda-cls), λ_rec = 10 (--lambda-rec), λ_gp = 10 (--gp-weight);
//   - n_critic = 5 discriminator updates per generator update (--d-steps), each on its
//     own batch; the generator's update on the last of them, with its target domains;
//   - target domains drawn uniformly over the K domains (the code permutes the batch's
//     labels: the same law when the domains are balanced);
//   - Adam lr 1e-4, β₁ 0.5, β₂ 0.999 (the paper decays the lr linearly over its second
//     half: --lr-schedule linear);
//   - the layers' default initialization (the code keeps PyTorch's).
//
// The generator (Table 4; f = --features, the paper's 64; n = --blocks, its 6):
//   7×7 conv (C + K) → f, IN, ReLU; two 4×4 stride-2 convs f → 2f → 4f, each IN, ReLU;
//   n residual blocks x + [3×3 conv, IN, ReLU, 3×3 conv, IN](x);
//   two 4×4 stride-2 transposed convs 4f → 2f → f, each IN, ReLU; 7×7 conv f → C, tanh.
//   IN: instance normalization with affine parameters; convs without biases.
// The discriminator (Table 5; L = --d-layers, the paper's 6 at 128 px):
//   L 4×4 stride-2 convs C → f → 2f → … → 2^(L−1) f, each LeakyReLU(0.01), no normalization;
//   D_src: a 3×3 conv to 1 channel (one score per patch);
//   D_cls: a conv whose kernel covers the remaining s × s map, to K logits.
//
// Data: Fashion-MNIST classes as domains (--domains, the footwear classes by
// default; each image's domain is its class), or an image folder with one
// sub-folder per domain (--data DIR; its train/ and test/ when it has both), or
// images with binary attributes (--attr-file FILE --attrs A,B,.. with --data DIR:
// CelebA's list_attr_celeba.txt format, data::Dataset::Attributes), folder images
// flipped left-right in training as the paper does. With attributes, the label c is
// the attribute vector itself (several may be 1), D_cls has a logit per attribute
// trained with binary cross-entropy, and targets are the attribute vectors of the
// batch's images in a random order (as the authors' code draws them); a
// translation "into attribute k" flips attribute k of the image's attributes
// (those of the data set in training and evaluation; at sampling, where an input
// has none, those D_cls sees in it).
#include "models/gan/stargan.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "models/gan/adversarial.h"
#include "models/gan/cyclegan.h"

namespace loom::models {
namespace stargan {

Tensor critic_loss(const Tensor& real_scores, const Tensor& fake_scores) {
  return mean(fake_scores) - mean(real_scores);
}

Tensor domain_classification_loss(const Tensor& logits, const Tensor& domains) {
  LOOM_CHECK(logits.dim() == 2 && domains.dim() == 1 && domains.size(0) == logits.size(0),
             "domain_classification_loss: expected logits [B, K] and domains [B], got ", logits.shape(), " and ",
             domains.shape());
  return cross_entropy(logits, domains);
}

Tensor attribute_classification_loss(const Tensor& logits, const Tensor& attributes) {
  LOOM_CHECK(logits.dim() == 2 && logits.shape() == attributes.shape(),
             "attribute_classification_loss: expected logits and attributes [B, A] of one shape, got ", logits.shape(),
             " and ", attributes.shape());
  return binary_cross_entropy_with_logits(logits, attributes, Reduction::Sum) * (1.0 / static_cast<double>(logits.size(0)));
}

Tensor sort_order(const Tensor& u) {
  LOOM_CHECK(u.dim() == 1 && is_floating(u.dtype()), "sort_order: expected float values [n], got ", u.dtype(), " ",
             u.shape());
  // Row i's rank r_i = #{j : u_j < u_i, or u_j = u_i and j < i}; then order[r_i] = i, as order[k] = Σ_i i·[r_i = k].
  NoGrad ng;
  const int64_t n = u.size(0);
  const TensorOptions f64{DType::Float64, u.device()};
  const Tensor index = arange(0, static_cast<double>(n), 1, f64), ui = reshape(u, {n, 1}), uj = reshape(u, {1, n});
  const Tensor before = lt(reshape(index, {1, n}), reshape(index, {n, 1})).to(DType::Float64);  // [i, j]: j < i
  const Tensor rank = sum(lt(uj, ui).to(DType::Float64) + eq(uj, ui).to(DType::Float64) * before, {1});
  return sum(eq(reshape(rank, {1, n}), reshape(index, {n, 1})).to(DType::Float64) * reshape(index, {1, n}), {1})
      .to(DType::Int64);
}

}  // namespace stargan

namespace {

using nn::ConvOptions;

nn::ModulePtr instance_norm(int64_t c) { return std::make_shared<nn::InstanceNorm2d>(c, /*affine=*/true); }

// x + [3×3 conv, IN, ReLU, 3×3 conv, IN](x): the generator's residual block.
class ResidualBlock : public nn::Module {
 public:
  explicit ResidualBlock(int64_t width) {
    const ConvOptions same{.params = {.padding = {1, 1}}, .bias = false, .tensors = {}};
    body_ = register_module("body", std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
                                        std::make_shared<nn::Conv2d>(width, width, 3, same), instance_norm(width),
                                        std::make_shared<nn::ReLU>(), std::make_shared<nn::Conv2d>(width, width, 3, same),
                                        instance_norm(width)}));
  }
  Tensor forward(const Tensor& x) override { return x + (*body_)(x); }
  std::string name() const override { return "ResidualBlock"; }

 private:
  std::shared_ptr<nn::Sequential> body_;
};

std::shared_ptr<nn::Sequential> make_generator(int64_t channels, int64_t domains, int64_t f, int64_t blocks) {
  using namespace nn;
  auto g = std::make_shared<Sequential>();
  auto normed = [&](ModulePtr layer, int64_t width) {
    g->push_back(std::move(layer));
    g->push_back(instance_norm(width));
    g->push_back(std::make_shared<ReLU>());
  };
  const ConvOptions wide{.params = {.padding = {3, 3}}, .bias = false, .tensors = {}};
  const ConvOptions halve{.params = {.stride = {2, 2}, .padding = {1, 1}}, .bias = false, .tensors = {}};
  normed(std::make_shared<Conv2d>(channels + domains, f, 7, wide), f);
  normed(std::make_shared<Conv2d>(f, 2 * f, 4, halve), 2 * f);
  normed(std::make_shared<Conv2d>(2 * f, 4 * f, 4, halve), 4 * f);
  for (int64_t i = 0; i < blocks; ++i) g->push_back(std::make_shared<ResidualBlock>(4 * f));
  normed(std::make_shared<ConvTranspose2d>(4 * f, 2 * f, 4, halve), 2 * f);
  normed(std::make_shared<ConvTranspose2d>(2 * f, f, 4, halve), f);
  g->push_back(std::make_shared<Conv2d>(f, channels, 7, wide));
  g->push_back(std::make_shared<Tanh>());
  return g;
}

// The discriminator: a shared trunk, D_src and D_cls (see the top of the file).
class Discriminator : public nn::Module {
 public:
  Discriminator(int64_t channels, int64_t domains, int64_t f, int64_t layers, int64_t size) : domains_(domains) {
    using namespace nn;
    trunk_ = register_module("trunk", std::make_shared<Sequential>());
    const ConvOptions halve{.params = {.stride = {2, 2}, .padding = {1, 1}}, .bias = true, .tensors = {}};
    int64_t width = channels, side = size;
    for (int64_t k = 0; k < layers; ++k) {
      const int64_t next = k == 0 ? f : 2 * width;
      trunk_->push_back(std::make_shared<Conv2d>(width, next, 4, halve));
      trunk_->push_back(std::make_shared<LeakyReLU>(0.01));
      width = next;
      side /= 2;  // (side + 2 − 4) / 2 + 1
    }
    LOOM_CHECK(side >= 1, "stargan: --d-layers ", layers, " halves a ", size, "-pixel image to nothing (at most ",
               static_cast<int64_t>(std::floor(std::log2(static_cast<double>(size)))), ")");
    src_ = register_module("src", std::make_shared<Conv2d>(
                                      width, 1, 3, ConvOptions{.params = {.padding = {1, 1}}, .bias = false, .tensors = {}}));
    cls_ = register_module("cls", std::make_shared<Conv2d>(width, domains, side,
                                                           ConvOptions{.params = {}, .bias = false, .tensors = {}}));
  }
  // D_src's scores float [B, 1, s, s] and D_cls's logits float [B, K] of images x.
  std::pair<Tensor, Tensor> judge(const Tensor& x) {
    const Tensor h = (*trunk_)(x);
    return {(*src_)(h), reshape((*cls_)(h), {x.size(0), domains_})};
  }
  Tensor forward(const Tensor& x) override { return judge(x).first; }
  std::string name() const override { return "StarGanDiscriminator"; }

 private:
  int64_t domains_;
  std::shared_ptr<nn::Sequential> trunk_;
  std::shared_ptr<nn::Conv2d> src_, cls_;
};

// --domains: Fashion-MNIST classes by name or index, "sandal,sneaker,ankle_boot".
std::vector<int64_t> parse_domains(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  for (std::string name; std::getline(in, name, ',');) {
    const int64_t k = data::fashion_mnist_class(name);
    LOOM_CHECK(k >= 0, "--domains: '", name, "' is not a Fashion-MNIST class (names such as sandal, sneaker, ",
               "ankle_boot, t-shirt, or indices 0-9)");
    LOOM_CHECK(std::find(out.begin(), out.end(), k) == out.end(), "--domains: class ", k, " is given twice");
    out.push_back(k);
  }
  LOOM_CHECK(out.size() >= 2 && text.back() != ',', "--domains must name at least two Fashion-MNIST classes as ",
             "A,B[,..] (e.g. sandal,sneaker,ankle_boot), got '", text, "'");
  return out;
}

// --attrs: attribute names, "Black_Hair,Blond_Hair,Male".
std::vector<std::string> parse_attrs(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string name; std::getline(in, name, ',');) {
    LOOM_CHECK(!name.empty(), "--attrs: an empty attribute name in '", text, "'");
    LOOM_CHECK(std::find(out.begin(), out.end(), name) == out.end(), "--attrs: '", name, "' is given twice");
    out.push_back(name);
  }
  LOOM_CHECK(!out.empty() && text.back() != ',', "--attrs must name attributes of --attr-file as A,B,.., got '", text, "'");
  return out;
}

class StarGan : public gan::AdversarialModel {
 public:
  explicit StarGan(const Config& c)
      : AdversarialModel(c),
        size_(std::stoll(c.text("image_size"))),
        channels_(c.flag("rgb") ? 3 : 1),
        lambda_cls_(c.real("lambda_cls")),
        lambda_rec_(c.real("lambda_rec")),
        lambda_gp_(c.real("gp_weight")),
        d_steps_(c.integer("d_steps")),
        attributes_(!c.text("attr_file").empty()) {
    spec_.size = size_;
    spec_.channels = channels_;
    LOOM_CHECK(c.text("attr_file").empty() == c.text("attrs").empty(), "stargan: give both --attr-file FILE and ",
               "--attrs A,B,.. (the attributes of FILE to use)");
    if (attributes_) {
      LOOM_CHECK(!c.given.count("domains"), "stargan: --domains chooses Fashion-MNIST classes; with --attr-file ",
                 "the --attrs are the labels");
      spec_.dataset = data::Dataset::Attributes;
      spec_.attr_file = c.text("attr_file");
      spec_.attrs = parse_attrs(c.text("attrs"));
      spec_.flip = true;
      names_ = spec_.attrs;
    } else if (data::is_image_folder(c.data_dir)) {
      LOOM_CHECK(!c.given.count("domains"), "stargan: --domains chooses Fashion-MNIST classes; an image folder's ",
                 "domains are its sub-folders");
      spec_.dataset = data::Dataset::ImageFolder;
      spec_.flip = true;
      names_ = data::image_folder_classes(data::image_folder_split(c.data_dir, data::Split::Train));
      LOOM_CHECK(names_.size() >= 2, "stargan: ", c.data_dir, " has one sub-folder (", names_[0],
                 "); give one sub-folder of images per domain, at least two");
    } else {
      spec_.domains = parse_domains(c.text("domains"));
      for (int64_t k : spec_.domains) names_.emplace_back(data::fashion_mnist_classes()[static_cast<size_t>(k)]);
    }
    domains_ = static_cast<int64_t>(names_.size());
    g_ = make_generator(channels_, domains_, c.integer("features"), c.integer("blocks"));
    d_ = std::make_shared<Discriminator>(channels_, domains_, c.integer("features"), c.integer("d_layers"), size_);
    adopt(*g_, *d_, adam_from(c), adam_from(c));
  }

  DataSpec data_spec() const override { return spec_; }

  // d_steps updates of D, the first on `batch` and each other on step.next_batch(),
  // then one of G on the last of them. Losses: d_loss (L_D, the mean over the D
  // updates), d_cls (L_cls^r, the same mean), gradient_penalty (the same mean,
  // without λ_gp), wasserstein (mean D_src(x) − mean D_src(G(x, c)) of the last D
  // update), g_loss (L_G), g_adv (−mean D_src(G(x, c))), g_cls (L_cls^f) and
  // g_rec (L_rec, without λ_rec).
  // Capturable: d_steps batches a step, every draw on the device (domains, the attributes' random order),
  // the schedule redone by before_replay.
  bool cuda_graph_capable() const override { return true; }
  int64_t batches_per_step() const override { return d_steps_; }
  Losses train_step(const Batch& batch, Step& step) override {
    schedule_lr(step);
    Tensor x, source, target, d_loss, d_cls, penalty, adv;
    for (int64_t k = 0; k < d_steps_; ++k) {
      const Batch b = k == 0 ? batch : step.next_batch();
      x = b.images;
      source = labels_of(b);
      target = attributes_ ? index_select(source, 0, random_order(x.size(0)))
                           : targets(source, random_domains(x.size(0), nullptr));
      Tensor fake;
      {
        NoGrad ng;  // D's update does not reach G
        fake = translate(x, target);
      }
      const auto [real_src, real_cls] = d_->judge(x);
      const Tensor cls = classification_loss(real_cls, source);
      adv = stargan::critic_loss(real_src, d_->forward(fake));
      const Tensor gp = gan::gradient_penalty([this](const Tensor& h) { return sum(d_->forward(h), {1, 2, 3}); },
                                              gan::penalty_points(x, fake, nullptr));
      const Tensor loss = adv + lambda_cls_ * cls + lambda_gp_ * gp;
      gan::descend(*d_opt_, loss);
      NoGrad ng;
      d_loss = k == 0 ? loss.detach() : d_loss + loss.detach();
      d_cls = k == 0 ? cls.detach() : d_cls + cls.detach();
      penalty = k == 0 ? gp.detach() : penalty + gp.detach();
    }
    const Tensor fake = translate(x, target);
    const auto [fake_src, fake_cls] = d_->judge(fake);
    const Tensor g_adv = -mean(fake_src);
    const Tensor g_cls = classification_loss(fake_cls, target);
    const Tensor g_rec = cyclegan::cycle_consistency_loss(x, translate(fake, source));
    const Tensor g_loss = g_adv + lambda_cls_ * g_cls + lambda_rec_ * g_rec;
    gan::descend(*g_opt_, g_loss);
    // The losses stay on the device until the step's end (step_losses), so a CUDA step waits for its
    // kernels once, and a captured one not at all.
    NoGrad ng;
    const auto steps = static_cast<double>(d_steps_);
    return step_losses({{"d_loss", d_loss / steps}, {"d_cls", d_cls / steps}, {"gradient_penalty", penalty / steps},
                        {"wasserstein", -adv.detach()}, {"g_loss", g_loss.detach()}, {"g_adv", g_adv.detach()},
                        {"g_cls", g_cls.detach()}, {"g_rec", g_rec.detach()}});
  }

  // The translations of c.images [n, C, H, W] into c.targets, or where none are given
  // into domains drawn uniformly from g (with attributes: each input's attributes as
  // D_cls sees them, with attribute c.targets flipped).
  Tensor sample(int64_t n, const Condition& c, Generator& g) override {
    LOOM_CHECK(c.images.defined(), "stargan translates images: give them with --input PATH|DIR (and --target DOMAIN)");
    LOOM_CHECK(c.images.size(0) == n, "stargan: asked for ", n, " translations of ", c.images.size(0), " images");
    LOOM_CHECK(c.images.dim() == 4 && c.images.size(1) == channels_ && c.images.size(2) == size_ &&
                   c.images.size(3) == size_,
               "stargan: expected images [n, ", channels_, ", ", size_, ", ", size_, "], got ", c.images.shape());
    const Tensor into = c.targets.defined() ? checked_domains(c.targets, c.images) : random_domains(n, &g);
    NoGrad ng;
    const Tensor x = c.images.to(device_);
    // An input's own attributes, as D_cls sees them (1 where its logit is positive).
    const Tensor source = attributes_ ? gt(d_->judge(x).second, zeros({1}, TensorOptions{DType::Float32, device_}))
                                            .to(DType::Float32)
                                      : Tensor();
    return translate(x, targets(source, into.to(device_)));
  }
  Conditions conditions() const override {
    return {.labels = false, .prompt = false, .images = true, .interpolate = false, .codes = 0, .directions = false,
            .domains = names_};
  }
  // A row per input image: the input, then its translation into c.targets, or
  // (none given) into each domain in turn.
  GridLayout grid_layout(int64_t n, const Condition& c) const override {
    const int64_t columns = c.targets.defined() ? 2 : 1 + domains_;
    return {columns * n, columns};
  }
  SampleGrid sample_grid(int64_t n, const Condition& c, Generator& g) override {
    std::vector<Tensor> columns{c.images.to(device_)};
    if (c.targets.defined()) {
      columns.push_back(sample(n, c, g));
    } else {
      for (int64_t k = 0; k < domains_; ++k) {
        Condition into = c;
        into.targets = full({n}, static_cast<double>(k), TensorOptions{DType::Int64});
        columns.push_back(sample(n, into, g));
      }
    }
    const auto width = static_cast<int64_t>(columns.size());
    return {reshape(stack(columns, 1), {width * n, channels_, size_, size_}), width};
  }

  // On held-out images (batch.labels their domains, or batch.attributes), each
  // translated into the domain (source + 1 + i mod (K − 1)) mod K, i its place in the
  // batch (every other domain in turn, without a draw), or with attribute i mod A
  // flipped, and back: "cycle_l1", the mean |G(G(x, c), c') − x| in [0, 1] pixel
  // units; "d_cls_accuracy", the fraction of the images D_cls assigns to their own
  // domain (of the image-attribute pairs it gets right).
  Losses evaluate(const Batch& batch, const EvalOptions&) override {
    const Tensor& x = batch.images;
    const Tensor source = labels_of(batch);
    std::vector<int64_t> into(static_cast<size_t>(x.size(0)));
    const std::vector<int64_t> own =
        attributes_ ? into : argmax(source, 1).to(Device::cpu()).to_vector<int64_t>();
    for (size_t i = 0; i < into.size(); ++i)
      into[i] = attributes_ ? static_cast<int64_t>(i) % domains_
                            : (own[i] + 1 + static_cast<int64_t>(i) % (domains_ - 1)) % domains_;
    const Tensor back = translate(
        translate(x, targets(source, from_vector(into, {x.size(0)}, TensorOptions{DType::Int64, device_}))), source);
    const Tensor logits = d_->judge(x).second;
    const Tensor hits =
        attributes_ ? eq(gt(logits, zeros({1}, TensorOptions{DType::Float32, device_})).to(DType::Float32), source)
                    : eq(argmax(logits, 1), argmax(source, 1));
    return {{"cycle_l1", cyclegan::cycle_consistency_loss(x, back).item() / (spec_.hi - spec_.lo)},
            {"d_cls_accuracy", mean(hits.to(DType::Float64)).item()}};
  }

 private:
  // G(x, c): images x [B, C, H, W] into labels c float [B, K] (one-hot domains or attributes).
  Tensor translate(const Tensor& x, const Tensor& labels) {
    return (*g_)(concat({x, gan::tile_labels(labels, x.size(2), x.size(3))}, 1));
  }
  // The labels float [B, K] of a batch: its domains as one-hots, or its attributes.
  Tensor labels_of(const Batch& b) const {
    if (!attributes_) return one_hot(checked_domains(b.labels, b.images), domains_);
    LOOM_CHECK(b.attributes.defined() && b.attributes.dim() == 2 && b.attributes.size(0) == b.images.size(0) &&
                   b.attributes.size(1) == domains_,
               "stargan: expected the ", domains_, " attributes of each of ", b.images.size(0), " images (float [",
               b.images.size(0), ", ", domains_, "])");
    return b.attributes;
  }
  // The target labels float [B, K] "into k" of images with labels `source`, k int64 [B]
  // on the device: domain k as a one-hot, or source with attribute k flipped.
  Tensor targets(const Tensor& source, const Tensor& k) const {
    const Tensor picked = one_hot(k, domains_);
    return attributes_ ? source + picked - 2.0 * source * picked : picked;
  }
  // L_cls: cross-entropy over one-hot domains, binary cross-entropy over attributes.
  Tensor classification_loss(const Tensor& logits, const Tensor& labels) const {
    return attributes_ ? stargan::attribute_classification_loss(logits, labels)
                       : stargan::domain_classification_loss(logits, argmax(labels, 1));
  }
  // A uniformly random order of n rows, int64 [n] on the model's device: the rows sorted by u ~ U(0, 1] drawn
  // from the default generator on the device (the same Philox numbers on every device), so that a step can be
  // captured as a CUDA graph.
  Tensor random_order(int64_t n) const {
    return stargan::sort_order(rand({n}, TensorOptions{DType::Float64, device_}));
  }
  // Domains int64 [B] drawn uniformly from g (nullptr: the default generator) on the model's
  // device: ⌊u · K⌋ of u ~ U(0, 1] in float64 (u = 1 taken as K − 1; the cast truncates). The
  // Philox numbers are the same on every device, so every device draws alike.
  Tensor random_domains(int64_t n, Generator* g) const {
    const Tensor u = rand({n}, TensorOptions{DType::Float64, device_}, g);
    return clamp(u * static_cast<double>(domains_), 0.0, static_cast<double>(domains_ - 1)).to(DType::Int64);
  }
  // domains, checked to be int64 [B] in [0, K) for images [B, ...] (the values on their device,
  // so a step captured as a CUDA graph is checked at each replay).
  Tensor checked_domains(const Tensor& domains, const Tensor& images) const {
    LOOM_CHECK(domains.defined() && domains.dtype() == DType::Int64 && domains.dim() == 1 &&
                   domains.size(0) == images.size(0),
               "stargan: expected the domain of each of ", images.size(0), " images (int64 [", images.size(0), "])");
    check_indices("stargan", domains, domains_, str("the ", domains_, " domains [0, ", domains_, ")"), "domain");
    return domains;
  }

  int64_t size_, channels_;
  double lambda_cls_, lambda_rec_, lambda_gp_;
  int64_t d_steps_;
  bool attributes_;  // binary attributes (--attr-file) rather than one-hot domains
  int64_t domains_ = 0;
  std::vector<std::string> names_;
  DataSpec spec_;
  std::shared_ptr<nn::Sequential> g_;
  std::shared_ptr<Discriminator> d_;
};

}  // namespace

std::unique_ptr<Model> make_stargan(const Config& c) { return std::make_unique<StarGan>(c); }
std::vector<OptionSpec> options_stargan() {
  std::vector<OptionSpec> o = adam_options(1e-4, 0.5, 0.999);
  o.push_back(gan::lr_schedule_option());
  o.push_back(integer_option("features", 16, Range::closed(1, 1024),
                             "base width f of both networks (the paper's 64): the generator's first and last feature "
                             "maps and the discriminator's first have f channels"));
  o.push_back(integer_option("blocks", 2, Range::closed(0, 64), "residual blocks of the generator (the paper's 6)"));
  o.push_back(integer_option("d_layers", 3, Range::closed(1, 8),
                             "stride-2 layers of the discriminator (the paper's 6 at 128 px): its patch scores cover "
                             "2^L-pixel cells"));
  o.push_back(choice_option("image_size", "28", {"28", "32", "64", "128"},
                            "side of the square images (the paper's 128; Fashion-MNIST's 28 is resized to 32 and up)"));
  o.push_back(switch_option("rgb", "RGB images (image folders of photos); grey otherwise"));
  o.push_back(real_option("lambda_cls", 1, Range::at_least(0), "weight of the domain classification losses"));
  o.push_back(real_option("lambda_rec", 10, Range::at_least(0), "weight of the reconstruction (cycle) loss"));
  o.push_back(real_option("gp_weight", 10, Range::at_least(0), "WGAN-GP penalty weight lambda_gp (Gulrajani et al. eq. 3)"));
  o.push_back(integer_option("d_steps", 5, Range::closed(1, 100),
                             "discriminator updates per generator update (n_critic), each on its own batch"));
  o.push_back(text_option("domains", "sandal,sneaker,ankle_boot",
                          "the Fashion-MNIST classes translated between, at least two (names or indices 0-9)"));
  o.push_back(text_option("attr_file", "", "an attribute file in CelebA's list_attr_celeba.txt format, its images "
                                           "in --data DIR: binary attributes instead of domains (with --attrs)"));
  o.push_back(text_option("attrs", "", "the attributes of --attr-file used as labels, A,B,.. (e.g. "
                                       "Black_Hair,Blond_Hair,Male)"));
  return o;
}

}  // namespace loom::models
