// Denoising diffusion probabilistic model (Ho, Jain & Abbeel 2020) on
// Fashion-MNIST, with DDIM sampling (Song et al. 2021) and classifier-free
// guidance (Ho & Salimans 2022). The mathematics is in models/diffusion/diffusion.h,
// the network in models/diffusion/unet.h.
//
// Training (DDPM Algorithm 1): x_0 from the data in [−1, 1], t ~ U{1..T},
// ε ~ N(0, I), and a gradient step on the "simple" loss ‖ε − ε_θ(√ᾱ_t x_0 +
// √(1 − ᾱ_t) ε, t)‖² (eq. 14; here the mean over pixels, as the DDPM code takes
// it), Adam 2e-4 with a linear warm-up (--lr-warmup steps; the paper's 5000 of its
// 800k), gradients clipped to norm --grad-clip (1, the paper's code). Samples and
// evaluation use an exponential moving average of the weights (--ema-decay; the
// paper's 0.9999 over 800k steps is 0.999 here, for runs of thousands), its decay
// at step n min(decay, (1 + n)/(10 + n)) (TensorFlow's num_updates warm-up), saved
// in the checkpoint as the module "denoiser_ema".
//
// --condition label | text: the condition's embedding is added to the time
// embedding: a learned row per class (and one for ∅), or for text the caption
// encoder φ of the text-to-image GAN (captions::TextEncoder: word embeddings and a
// GRU, --word-dim, --embed-dim) projected to the embedding's width, trained jointly
// with the denoiser by its loss (as GLIDE trains its text transformer), ∅ being a
// learned vector. Training texts are the generated Fashion-MNIST captions
// (models/gan/captions.h: "a dark ankle boot"), one wording drawn per image as the
// batch is drawn (prepare_batch). The
// condition is replaced by ∅ with probability --p-uncond (Ho & Salimans Algorithm 1),
// so that one network gives ε_θ(x, c) and ε_θ(x, ∅); sampling mixes them with
// guidance weight w = --guidance (eq. 6; w = 0 is the plain conditional model). The
// bound of a conditional model is on log p(x | c) with the test image's label or
// its caption (wording 0).
//
// Sampling: ancestral (Algorithm 2, all T steps, σ_t² = β̃_t or β_t by
// --variance) or DDIM with --sample-steps S of the T steps and --eta η; both clip
// x̂_0 to [−1, 1] (the DDPM code's clip_denoised). `loom sample|eval` may change
// --sampler, --sample-steps, --eta and --guidance of a trained model.
//
// Evaluation: the variational bound L = L_T + Σ_{t≥2} L_{t−1} + L_0 (DDPM eq. 5,
// §3.3) in nats per image and bits per dimension, with L_T and L_0 computed
// exactly and the sum over t = 2..T estimated without bias from K time steps per
// image drawn uniformly ((T − 1) times their mean; K = --bound-timesteps of
// `loom eval`, 4 by default; K ≥ T − 1 sums every t exactly).
#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>

#include "models/diffusion/diffusion.h"
#include "models/diffusion/unet.h"
#include "models/gan/captions.h"
#include "models/model.h"

namespace loom::models {
namespace {

namespace dm = diffusion;

constexpr int64_t kClasses = 10;            // Fashion-MNIST
constexpr int64_t kDefaultBoundSteps = 4;   // evaluate()'s K
constexpr int64_t kTrajectoryMaxColumns = 64;
constexpr double kMaxAlphaBarT = 0.01;      // √ᾱ_T ≤ 0.1: what is left of x_0 in x_T

// "1,2,2" → {1, 2, 2}; "none" or "" → {} (attention levels). An Error naming the flag.
std::vector<int64_t> integer_list(const std::string& text, const char* flag) {
  std::vector<int64_t> out;
  if (text.empty() || text == "none") return out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    LOOM_CHECK(used == item.size() && !item.empty() && v >= 0 && v <= 64, "ddpm: ", flag,
               " must be a comma-separated list of integers in [0, 64], got '", text, "'");
    out.push_back(v);
  }
  return out;
}

enum class Conditioning { None, Label, Text };

// What a batch is conditioned on: labels int64 [B] (kClasses: ∅) or texts as tokens
// with keep float32 [B, 1] (0: ∅); nothing for an unconditional model.
struct Cond {
  Tensor labels;
  captions::Tokens tokens;
  Tensor keep;
};

// ε_θ(x_t, t, c): the U-Net with the condition's embedding (Cond) added to its time
// embedding.
class Denoiser : public nn::Module {
 public:
  Denoiser(const dm::UNetOptions& o, Conditioning kind, int64_t word_dim, int64_t embed_dim) : kind_(kind) {
    unet_ = register_module("unet", std::make_shared<dm::UNet>(o));
    const int64_t width = unet_->embedding_dim();
    if (kind == Conditioning::Label)
      labels_ = register_module("label_embedding", std::make_shared<nn::Embedding>(kClasses + 1, width));
    if (kind == Conditioning::Text) {
      text_ = register_module("text_encoder", std::make_shared<captions::TextEncoder>(
                                                  captions::caption_vocabulary().size(), word_dim, embed_dim, false));
      text_proj_ = register_module("text_projection", std::make_shared<nn::Linear>(embed_dim, width));
      register_parameter("null_text", &null_text_, zeros({1, width}));
    }
  }
  // x [B, C, H, W], t int64 [B] (any device), c for B images.
  using nn::Module::forward;
  Tensor forward(const Tensor& x, const Tensor& t, const Cond& c) { return unet_->forward(x, t, embed(c, x.device())); }

 private:
  Tensor embed(const Cond& c, Device d) {
    if (kind_ == Conditioning::Label) return labels_->forward(c.labels.to(d));
    if (kind_ != Conditioning::Text) return {};
    captions::Tokens tokens{c.tokens.ids.to(d), c.tokens.lengths.to(d)};
    const Tensor keep = c.keep.to(d);
    return keep * text_proj_->forward(text_->encode(tokens)) + (1.0 - keep) * null_text_;
  }

  Conditioning kind_;
  std::shared_ptr<dm::UNet> unet_;
  std::shared_ptr<nn::Embedding> labels_;
  std::shared_ptr<captions::TextEncoder> text_;
  std::shared_ptr<nn::Linear> text_proj_;
  Tensor null_text_;
};

class Ddpm : public Model {
 public:
  explicit Ddpm(const Config& c)
      : device_(c.device),
        schedule_(dm::make_schedule(dm::beta_schedule(c.text("schedule")), c.integer("timesteps"), c.real("beta_start"),
                                    c.real("beta_end"))),
        marginal_(dm::marginal_tables(schedule_, TensorOptions{DType::Float32, c.device})),
        variance_(dm::reverse_variance(c.text("variance"))),
        kind_(c.text("condition") == "label"  ? Conditioning::Label
              : c.text("condition") == "text" ? Conditioning::Text
                                              : Conditioning::None),
        p_uncond_(c.real("p_uncond")),
        ema_decay_(c.real("ema_decay")),
        grad_clip_(c.real("grad_clip")),
        warmup_(c.integer("lr_warmup")) {
    // Sampling starts from x_T ~ N(0, I): the schedule must have destroyed the data by T
    // (DDPM's ᾱ_T ≈ 4e-5; the same β range over T = 100 steps would leave ᾱ_T ≈ 0.37).
    const double kept = schedule_.alpha_bar[static_cast<size_t>(schedule_.steps)];
    LOOM_CHECK(kept <= kMaxAlphaBarT, "ddpm: this schedule keeps alpha_bar_T = ", kept, " of the data at t = T = ",
               schedule_.steps, " (at most ", kMaxAlphaBarT, " for x_T to be N(0, I)); raise --beta-end or --timesteps, "
               "or use --schedule cosine");
    for (std::string option : {"p_uncond", "guidance", "word_dim", "embed_dim"}) {
      const bool text_only = option == "word_dim" || option == "embed_dim";
      const bool applies = text_only ? kind_ == Conditioning::Text : kind_ != Conditioning::None;
      std::string flag = option;
      std::replace(flag.begin(), flag.end(), '_', '-');
      LOOM_CHECK(applies || !c.given.count(option), "ddpm: --", flag, " applies to a model with --condition ",
                 text_only ? "text" : "label or text");
    }
    LOOM_CHECK(c.text("sampler") == "ddim" || (!c.given.count("sample_steps") && !c.given.count("eta")),
               "ddpm: --sample-steps and --eta apply to --sampler ddim (ancestral sampling takes all T steps)");
    settings_.sampler = c.text("sampler");
    // The default S = 50 is capped at a shorter schedule's T; an S given is checked against it.
    settings_.steps = c.given.count("sample_steps") ? c.integer("sample_steps")
                                                    : std::min(c.integer("sample_steps"), schedule_.steps);
    settings_.eta = c.real("eta");
    settings_.guidance = c.real("guidance");
    set_sampler({});
    dm::UNetOptions o;
    o.base = c.integer("base");
    o.mult = integer_list(c.text("mult"), "--mult");
    LOOM_CHECK(!o.mult.empty() && o.mult.size() <= 3, "ddpm: --mult needs one to three levels (28 = 7 · 2 · 2), got '",
               c.text("mult"), "'");
    o.blocks = c.integer("blocks");
    o.attention_levels = integer_list(c.text("attention"), "--attention");
    o.heads = c.integer("heads");
    o.groups = c.integer("groups");
    o.dropout = c.real("dropout");
    auto make = [&] { return std::make_shared<Denoiser>(o, kind_, c.integer("word_dim"), c.integer("embed_dim")); };
    net_ = make();
    net_->to(device_);
    if (ema_decay_ > 0) {
      ema_net_ = make();
      ema_net_->to(device_);
      ema_net_->load_state_dict(net_->state_dict());
      // The average lives in ema_net_'s own weights (a resumed run loads them in place).
      ema_.emplace(optim::EMA::into(*ema_net_, ema_decay_));
    }
    opt_ = std::make_unique<optim::Adam>(net_->parameters(), adam_from(c));
  }

  ModelKind kind() const override { return ModelKind::LatentVariable; }
  DataSpec data_spec() const override { return {}; }  // Fashion-MNIST 28×28 in [−1, 1]: the 256 levels k/127.5 − 1
  Conditions conditions() const override {
    Conditions c;
    c.labels = kind_ == Conditioning::Label;
    c.prompt = kind_ == Conditioning::Text;
    c.sampler = true;
    return c;
  }

  // --condition text: each image's caption, in a wording drawn from the default generator,
  // as token ids padded to the longest caption there can be (Batch::tokens).
  void prepare_batch(Batch& batch) override {
    if (kind_ != Conditioning::Text) return;
    batch.tokens = caption_ids(batch, randint(captions::kVariants, {batch.images.size(0)}).to_vector<int64_t>());
  }

  // Capturable as a CUDA graph (--cuda-graph): time steps, noise and the ∅ draws come from the
  // device, captions with the batch (prepare_batch), the gradient's norm stays on the device,
  // and before_replay redoes the warm-up's learning rate and the EMA's decay.
  bool cuda_graph_capable() const override { return true; }

  Losses train_step(const Batch& given, Step& step) override {
    const Batch batch = prepared(given);
    before_replay(step);
    const Tensor& x0 = batch.images;
    const int64_t b = x0.size(0);
    const Tensor t = draw_timesteps(b, 1, nullptr);
    const Tensor eps = randn(x0.shape(), x0.options());
    Cond cond;
    if (kind_ != Conditioning::None) {
      // ∅ with probability p_uncond (Ho & Salimans Algorithm 1, line 3): kept where 1 − u ≥ p_uncond, u ~ U(0, 1].
      const Tensor u = rand({b}, TensorOptions{DType::Float64, device_});
      cond = condition_of(batch, ge(1.0 - u, full({}, p_uncond_, u.options())));
    }
    const Tensor loss = mse_loss(net_->forward(dm::q_sample(marginal_, x0, t, eps), t, cond), eps);
    opt_->zero_grad();
    backward(loss);
    const Tensor norm = grad_clip_ > 0 ? optim::clip_grad_norm(net_->parameters(), grad_clip_) : Tensor();
    opt_->step();
    // Warmed up as TensorFlow's ExponentialMovingAverage(num_updates) is (before_replay): the
    // average follows the weights early on instead of holding the initialization for ~1/(1 − decay) steps.
    if (ema_) ema_->update(*net_);
    std::vector<std::pair<std::string, Tensor>> losses{{"loss", loss}};
    if (norm.defined()) losses.emplace_back("grad_norm", norm);
    return step_losses(losses);
  }

  // The host side of a step at step.index: the warm-up's learning rate and the EMA's decay
  // min(decay, (1 + n)/(10 + n)).
  void before_replay(const Step& step) override {
    if (warmup_ > 0) opt_->scale_lr(std::min(1.0, static_cast<double>(step.index + 1) / static_cast<double>(warmup_)));
    const auto n = static_cast<double>(step.index);
    if (ema_) ema_->set_decay(std::min(ema_decay_, (1 + n) / (10 + n)));
  }

  void set_sampler(const SamplerSettings& s) override {
    SamplerSettings next = settings_;
    if (!s.sampler.empty()) next.sampler = s.sampler;
    if (s.steps) next.steps = s.steps;
    if (s.eta) next.eta = s.eta;
    if (s.guidance) next.guidance = s.guidance;
    LOOM_CHECK(next.sampler == "ancestral" || next.sampler == "ddim", "ddpm: --sampler must be ancestral or ddim, got '",
               next.sampler, "'");
    LOOM_CHECK(*next.steps >= 1 && *next.steps <= schedule_.steps, "ddpm: --sample-steps must be in [1, T = ",
               schedule_.steps, "], got ", *next.steps);
    LOOM_CHECK(std::isfinite(*next.eta) && *next.eta >= 0, "ddpm: --eta must be >= 0, got ", *next.eta);
    LOOM_CHECK(std::isfinite(*next.guidance) && *next.guidance >= 0, "ddpm: --guidance must be >= 0, got ",
               *next.guidance);
    if (next.sampler == "ancestral")
      LOOM_CHECK(!s.steps && !s.eta, "ddpm: ancestral sampling takes all T = ", schedule_.steps,
                 " steps and no eta; --sample-steps and --eta apply to --sampler ddim");
    LOOM_CHECK(!s.guidance || kind_ != Conditioning::None,
               "ddpm: --guidance applies to a conditional model (--condition label or text)");
    settings_ = next;
  }

  // n samples [n, 1, 28, 28] in [−1, 1]: of the classes c.labels (int64 [n]) or for
  // the text c.prompt when given; a conditional model without them draws classes
  // uniformly from g (a text model: their plain prompts, "a sneaker").
  Tensor sample(int64_t n, const Condition& c, Generator& g) override {
    return reverse(n, condition_for(n, c, g), g, 0).back();
  }

  // Fashion-MNIST classes in words: what `loom eval` prompts a text model with.
  std::string class_prompt(int64_t k) const override {
    LOOM_CHECK(kind_ == Conditioning::Text, "class_prompt: this model takes no text prompt");
    return captions::class_prompt(k);
  }

  // A conditional model without a condition: one row per class, max(1, n / 10) columns.
  GridLayout grid_layout(int64_t n, const Condition& c) const override {
    if (kind_ == Conditioning::None || c.labels.defined() || !c.prompt.empty()) return {n, 0};
    const int64_t columns = std::max<int64_t>(1, n / kClasses);
    return {kClasses * columns, columns};
  }
  SampleGrid sample_grid(int64_t n, const Condition& c, Generator& g) override {
    const GridLayout layout = grid_layout(n, c);
    if (layout.columns == 0) return {sample(n, c, g), 0};
    Condition rows;
    rows.labels = cycling_labels(layout.count, layout.columns, kClasses);
    return {sample(layout.count, rows, g), layout.columns};
  }

  SampleGrid trajectory(int64_t n, int64_t columns, const Condition& c, Generator& g) override {
    LOOM_CHECK(n >= 1 && columns >= 2 && columns <= kTrajectoryMaxColumns, "ddpm: a trajectory needs n >= 1 rows and 2 to ",
               kTrajectoryMaxColumns, " columns, got ", n, " and ", columns);
    const std::vector<Tensor> frames = reverse(n, condition_for(n, c, g), g, columns);
    // frames[k] is [n, C, H, W]; the grid is row-major: sample i's frames side by side.
    std::vector<Tensor> expanded;
    for (const Tensor& f : frames) expanded.push_back(unsqueeze(f, 1));
    const Tensor all = concat(expanded, 1);  // [n, columns, C, H, W]
    return {reshape(all, {n * columns, all.size(2), all.size(3), all.size(4)}), columns};
  }

  Losses evaluate(const Batch& batch, const EvalOptions& o) override {
    const Tensor& x0 = batch.images;
    const int64_t b = x0.size(0), T = schedule_.steps;
    const int64_t k = o.bound_timesteps > 0 ? o.bound_timesteps : kDefaultBoundSteps;
    Batch worded = batch;  // a text model's captions in wording 0
    if (kind_ == Conditioning::Text) worded.tokens = caption_ids(batch, std::vector<int64_t>(static_cast<size_t>(b), 0));
    const Cond cond = kind_ == Conditioning::None ? Cond{} : condition_of(worded, Tensor());
    Denoiser& net = sampler_net();
    Generator g(0);  // the same noise and time steps at every evaluation
    const Tensor prior = dm::prior_kl(schedule_, x0);
    const Tensor one = full({b}, 1.0, TensorOptions{DType::Int64});
    const Tensor eps1 = randn(x0.shape(), x0.options(), &g), x1 = dm::q_sample(schedule_, x0, one, eps1);
    const Tensor decoder = dm::decoder_nll(schedule_, variance_, x0, x1, net.forward(x1, one, cond));
    // Σ_{t=2}^{T} L_{t−1}: exactly, or (T − 1) × the mean over k uniform draws per image.
    const bool exact = k >= T - 1;
    const int64_t passes = exact ? T - 1 : k;
    Tensor total = zeros({b}, TensorOptions{DType::Float64, device_}), total_sq = zeros_like(total);
    double mse = 0;
    for (int64_t i = 0; i < passes; ++i) {
      const Tensor t =
          exact ? full({b}, static_cast<double>(i + 2), TensorOptions{DType::Int64, device_}) : draw_timesteps(b, 2, &g);
      const Tensor eps = randn(x0.shape(), x0.options(), &g), xt = dm::q_sample(schedule_, x0, t, eps);
      const Tensor pred = net.forward(xt, t, cond);
      const Tensor kl = dm::step_kl(schedule_, variance_, x0, xt, t, pred);
      total = total + kl;
      total_sq = total_sq + square(kl);
      mse += mse_loss(pred, eps).item() / static_cast<double>(passes);
    }
    const double per_bit = static_cast<double>(x0.numel() / std::max<int64_t>(1, b)) * std::log(2.0);
    const Tensor middle = exact ? total : total * (static_cast<double>(T - 1) / static_cast<double>(k));
    const Tensor bound = prior + decoder + middle;
    Losses out{{"loss", mse},
               {"nll_bound", mean(bound).item()},
               {"bits_per_dim_bound", mean(bound).item() / per_bit},
               {"prior_kl", mean(prior).item()},
               {"decoder_nll", mean(decoder).item()}};
    if (!exact && k >= 2) {
      // The Monte-Carlo variance of each image's estimate, (T − 1)² s²/k with s² the sample
      // variance of its k terms, averaged over images, in (bits/dim)²: the standard error of
      // the reported mean over n images is √(bound_mc_var / n).
      const Tensor m = total / static_cast<double>(k);
      const Tensor s2 = (total_sq - static_cast<double>(k) * square(m)) / static_cast<double>(k - 1);
      const double scale = static_cast<double>(T - 1) / per_bit;
      out["bound_mc_var"] = mean(s2).item() * scale * scale / static_cast<double>(k);
    }
    return out;
  }

  // The network alone: the average of its weights is no free parameter.
  int64_t parameter_count() override { return net_->parameter_count(); }

  std::vector<std::pair<std::string, nn::Module*>> modules() override {
    std::vector<std::pair<std::string, nn::Module*>> m{{"denoiser", net_.get()}};
    if (ema_net_) m.emplace_back("denoiser_ema", ema_net_.get());
    return m;
  }
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() override { return {{"adam", opt_.get()}}; }

 private:
  // int64 [b] on the model's device, uniform on {lowest, …, T}, from g (nullptr: the default generator).
  Tensor draw_timesteps(int64_t b, int64_t lowest, Generator* g) const {
    return randint(schedule_.steps - lowest + 1, {b}, TensorOptions{DType::Int64, device_}, g) +
           static_cast<double>(lowest);
  }

  // The captions of a batch's images in the given wordings (captions::caption's variants), as
  // token ids int64 [B, captions::longest_caption()] on the device.
  Tensor caption_ids(const Batch& batch, const std::vector<int64_t>& variants) const {
    return captions::encode(captions::describe_batch(batch.images, batch.labels, -1, 1, variants),
                            captions::caption_vocabulary(), captions::longest_caption())
        .ids.to(device_);
  }

  // The condition of a batch's images: their labels, or their captions (Batch::tokens); the
  // images where keep (float64 [B], undefined: all kept) is 0 get ∅. All on the device.
  Cond condition_of(const Batch& batch, const Tensor& keep) const {
    const int64_t b = batch.images.size(0);
    Cond c;
    if (kind_ == Conditioning::Label) {
      c.labels = batch.labels;
      if (keep.defined())
        c.labels = where(keep.to(DType::Int64), c.labels, full({}, static_cast<double>(kClasses), c.labels.options()));
    } else if (kind_ == Conditioning::Text) {
      c.tokens = captions::from_ids(batch.tokens);
      c.keep = keep.defined() ? reshape(keep.to(DType::Float32), {b, 1}) : ones({b, 1}, TensorOptions{DType::Float32, device_});
    }
    return c;
  }

  // The condition of n samples: c's labels or prompt, else classes drawn from g.
  Cond condition_for(int64_t n, const Condition& c, Generator& g) const {
    Cond out;
    if (kind_ == Conditioning::None) return out;
    Tensor labels = c.labels;
    if (labels.defined()) {
      LOOM_CHECK(labels.dim() == 1 && labels.size(0) == n, "ddpm: expected labels [", n, "], got ", labels.shape());
      labels = labels.to(Device::cpu());
    } else if (c.prompt.empty()) {
      labels = randint(kClasses, {n}, {}, &g);
    }
    if (kind_ == Conditioning::Label) {
      out.labels = labels;
      return out;
    }
    std::vector<std::string> texts;
    if (!c.prompt.empty()) {
      captions::encode_prompt(c.prompt);  // an Error for a prompt with no word the model knows
      texts.assign(static_cast<size_t>(n), c.prompt);
    } else {
      for (int64_t k : labels.to_vector<int64_t>()) texts.push_back(captions::class_prompt(k));
    }
    out.tokens = captions::encode(texts);
    out.keep = ones({n, 1});
    return out;
  }

  // The unconditional twin of c for n samples: ∅ throughout.
  Cond null_condition(const Cond& c, int64_t n) const {
    Cond out = c;
    if (kind_ == Conditioning::Label) out.labels = full({n}, static_cast<double>(kClasses), TensorOptions{DType::Int64});
    if (kind_ == Conditioning::Text) out.keep = zeros({n, 1});
    return out;
  }

  Denoiser& sampler_net() { return ema_net_ ? *ema_net_ : *net_; }

  // ε̃ at (x, t) for every sample: ε_θ(x, t, c) mixed with ε_θ(x, t, ∅) by the
  // guidance weight when w > 0.
  Tensor predict(Denoiser& net, const Tensor& x, int64_t t, const Cond& c) {
    const int64_t n = x.size(0);
    const double w = *settings_.guidance;
    const Tensor steps = full({n}, static_cast<double>(t), TensorOptions{DType::Int64, device_});
    if (kind_ == Conditioning::None || w == 0) return net.forward(x, steps, c);
    // Two passes (a doubled batch would need the texts' tokens padded alike).
    return dm::guided_eps(net.forward(x, steps, c), net.forward(x, steps, null_condition(c, n)), w);
  }

  // The reverse process from x_T ~ N(0, I) (drawn from g) under the current
  // settings. Returns the final samples, clamped to [−1, 1], or with frames ≥ 2
  // that many snapshots evenly spaced from x_T to the end.
  std::vector<Tensor> reverse(int64_t n, const Cond& cond, Generator& g, int64_t frames) {
    NoGrad ng;
    Denoiser& net = sampler_net();
    const bool ddim = settings_.sampler == "ddim";
    const std::vector<int64_t> steps =
        ddim ? dm::sampling_steps(schedule_.steps, *settings_.steps) : dm::sampling_steps(schedule_.steps, schedule_.steps);
    const int64_t total = static_cast<int64_t>(steps.size());
    const TensorOptions f32{DType::Float32, device_};
    Tensor x = randn({n, 1, 28, 28}, f32, &g);
    std::vector<Tensor> out;
    auto keep = [&](int64_t done) {  // frame j at step round(j · total / (frames − 1))
      if (frames < 2) return;
      for (int64_t j = static_cast<int64_t>(out.size()); j < frames; ++j) {
        if (std::llround(static_cast<double>(j * total) / static_cast<double>(frames - 1)) != done) break;
        out.push_back(clamp(x, -1.0, 1.0));
      }
    };
    keep(0);
    for (int64_t i = 0; i < total; ++i) {
      const int64_t t = steps[static_cast<size_t>(i)];
      const Tensor eps = predict(net, x, t, cond);
      if (ddim) {
        const int64_t prev = i + 1 < total ? steps[static_cast<size_t>(i + 1)] : 0;
        const Tensor z = *settings_.eta > 0 ? randn(x.shape(), f32, &g) : Tensor();
        x = dm::ddim_step(schedule_, x, t, prev, eps, z, *settings_.eta, true);
      } else {
        const Tensor z = t > 1 ? randn(x.shape(), f32, &g) : zeros(x.shape(), f32);
        x = dm::ancestral_step(schedule_, variance_, x, full({n}, static_cast<double>(t), TensorOptions{DType::Int64}),
                               eps, z, true);
      }
      keep(i + 1);
      if (sample_progress_) sample_progress_(i + 1, total);
    }
    if (frames < 2) out.push_back(clamp(x, -1.0, 1.0));
    return out;
  }

  Device device_;
  dm::Schedule schedule_;
  dm::MarginalTables marginal_;  // √ᾱ_t, √(1 − ᾱ_t) on device_: what a training step reads
  dm::ReverseVariance variance_;
  Conditioning kind_;
  double p_uncond_, ema_decay_, grad_clip_;
  int64_t warmup_;
  SamplerSettings settings_;
  std::shared_ptr<Denoiser> net_, ema_net_;  // ema_net_: the average, when --ema-decay > 0
  std::optional<optim::EMA> ema_;
  std::unique_ptr<optim::Adam> opt_;
};

}  // namespace

std::unique_ptr<Model> make_ddpm(const Config& c) { return std::make_unique<Ddpm>(c); }
std::vector<OptionSpec> options_ddpm() {
  std::vector<OptionSpec> o = adam_options(2e-4, 0.9, 0.999);
  o.push_back(integer_option("timesteps", 1000, Range::closed(2, 100000), "diffusion steps T (Ho et al. 1000)"));
  o.push_back(choice_option("schedule", "linear", {"linear", "cosine"},
                            "beta schedule: linear from --beta-start to --beta-end (Ho et al.) or cosine (Nichol & "
                            "Dhariwal eq. 17)"));
  o.push_back(real_option("beta_start", 1e-4, Range::right_open(0, 1), "beta_1 of the linear schedule"));
  o.push_back(real_option("beta_end", 0.02, Range::right_open(0, 1), "beta_T of the linear schedule"));
  o.push_back(choice_option("variance", "posterior", {"posterior", "beta"},
                            "reverse-step variance sigma_t^2: the posterior's beta~_t or beta_t (Ho et al. 3.2)"));
  o.push_back(integer_option("base", 32, Range::closed(4, 1024), "U-Net feature maps at full resolution (Ho et al. 128)"));
  o.push_back(text_option("mult", "1,2,2", "U-Net width multipliers per level, 28, 14 and 7 pixels (Ho et al. 1,2,2,2)"));
  o.push_back(integer_option("blocks", 1, Range::closed(1, 8), "residual blocks per level (Ho et al. 2)"));
  o.push_back(text_option("attention", "2", "levels with self-attention (0 = 28x28; 'none'); Ho et al.: 16x16"));
  o.push_back(integer_option("heads", 1, Range::closed(1, 64), "attention heads"));
  o.push_back(integer_option("groups", 8, Range::closed(1, 1024), "GroupNorm groups (Ho et al. 32)"));
  o.push_back(real_option("dropout", 0, Range::right_open(0, 1),
                          "dropout in the residual blocks (Ho et al. 0.1 on CIFAR10, 0 on CelebA-HQ and LSUN)"));
  o.push_back(real_option("ema_decay", 0.999, Range::right_open(0, 1),
                          "samples and evaluation use an EMA of the weights with this decay (Ho et al. 0.9999); 0: none"));
  o.push_back(real_option("grad_clip", 1, Range::at_least(0), "clip the gradient's norm to this (0: off)"));
  o.push_back(integer_option("lr_warmup", 100, Range::closed(0, 1e9), "linear learning-rate warm-up steps (Ho et al. 5000)"));
  o.push_back(choice_option("condition", "none", {"none", "label", "text"},
                            "none, the class label or a caption, with classifier-free guidance (Ho & Salimans 2022)"));
  o.push_back(integer_option("word_dim", 32, Range::closed(1, 4096), "--condition text: size of the word embeddings"));
  o.push_back(integer_option("embed_dim", 64, Range::closed(1, 4096), "--condition text: size of the text encoding phi(t)"));
  o.push_back(real_option("p_uncond", 0.1, Range::closed(0, 1), "probability of training on the null label"));
  o.push_back(real_option("guidance", 1, Range::at_least(0), "classifier-free guidance weight w at sampling (eq. 6)"));
  o.push_back(choice_option("sampler", "ddim", {"ancestral", "ddim"},
                            "ancestral (Ho et al. Algorithm 2, all T steps) or DDIM (Song et al.)"));
  o.push_back(integer_option("sample_steps", 50, Range::closed(1, 100000), "DDIM's sampling steps S"));
  o.push_back(real_option("eta", 0, Range::at_least(0), "DDIM's eta: 0 deterministic, 1 ancestral-like"));
  return o;
}

}  // namespace loom::models
