// The training driver: bit-exact resume, checkpoints, and its error messages.
#include <signal.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>

#include "autograd/io/json.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"
#include "tests/train_fixture.h"
#include "tools/train.h"

using namespace loom;
using namespace loom::testing;
namespace fs = std::filesystem;

namespace {
data::LabeledImages synthetic(data::Split split) { return synthetic_images(split, 128); }
tools::TrainOptions tiny(const std::string& model, const std::string& out, int64_t steps) {
  return tiny_run(model, out, steps, 128, 5);
}

std::map<std::string, std::vector<float>> weights(const std::string& checkpoint) {
  std::map<std::string, std::vector<float>> out;
  for (auto& [n, t] : load_safetensors(checkpoint).tensors)
    if (n.rfind("model.", 0) == 0) out[n] = t.to_vector<float>();
  return out;
}
}  // namespace

TEST(Train, ResumeIsBitExact) {
  // N steps straight vs N/2, checkpoint, resume, N/2: identical parameters.
  TempDir dir;
  tools::TrainResult straight = tools::train(tiny("vae", dir.path() + "/a", 6));
  EXPECT_EQ(straight.steps, 6);
  tools::train(tiny("vae", dir.path() + "/b", 3));
  tools::TrainOptions rest = tiny("vae", dir.path() + "/b", 6);
  rest.resume = dir.path() + "/b/checkpoint.safetensors";
  tools::TrainResult resumed = tools::train(rest);
  EXPECT_EQ(resumed.steps, 6);
  auto a = weights(straight.checkpoint), b = weights(resumed.checkpoint);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  EXPECT_TRUE(fs::exists(straight.samples));
  EXPECT_TRUE(fs::exists(dir.path() + "/a/metrics.jsonl"));
  EXPECT_TRUE(resumed.eval.count("elbo"));
}

// kill -9 during training left checkpoint temporaries piling up, and each resume logged
// again the steps after its checkpoint: metrics.jsonl held duplicated steps.
TEST(Train, ResumeAfterAKillLogsEveryStepOnceAndClearsStaleTemporaries) {
  TempDir dir;
  const std::string out = dir / "run";
  tools::train(tiny("vae", out, 2));
  fs::copy_file(out + "/checkpoint.safetensors", dir / "step2.safetensors");
  // The run went on to step 4 and was killed while writing a checkpoint...
  tools::TrainOptions rest = tiny("vae", out, 4);
  rest.resume = dir / "step2.safetensors";
  tools::train(rest);
  // A live writer's temporary: our parent's pid (ours names the files this run writes itself).
  const std::string stale = str("checkpoint.safetensors.tmp.", dead_pid()), live = str("samples.png.tmp.", getppid());
  write_bytes(out + "/" + stale, "partial");
  write_bytes(out + "/" + live, "another writer's, still running");
  // ... and is resumed from its last checkpoint, at step 2.
  tools::train(rest);
  std::vector<int64_t> steps;
  std::istringstream log(read_bytes(out + "/metrics.jsonl"));
  for (std::string line; std::getline(log, line);) steps.push_back(parse_json(line, "metrics").find("step")->integer);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_FALSE(fs::exists(out + "/" + stale));
  EXPECT_TRUE(fs::exists(out + "/" + live));
}

TEST(Train, CheckpointRoundTripsThroughSampleAndEvalErrors) {
  TempDir dir;
  tools::TrainResult r = tools::train(tiny("vae", dir.path(), 2));
  auto m = tools::load_model("vae", r.checkpoint, Device::cpu());
  ASSERT_TRUE(m != nullptr);
  expect_error([&] { tools::load_model("classifier", r.checkpoint, Device::cpu()); },
               {"checkpoint of 'vae'", "not of 'classifier'"});
  tools::TrainOptions wrong = tiny("classifier", dir.path() + "/c", 2);
  wrong.resume = r.checkpoint;
  expect_error([&] { tools::train(wrong); }, {"--resume", "'vae'", "'classifier'"});
  write_bytes(dir.path() + "/bad.safetensors", std::string("\x10\0\0\0\0\0\0\0{garbage", 17));
  expect_error([&] { tools::load_model("vae", dir.path() + "/bad.safetensors", Device::cpu()); }, {"bad.safetensors"});
}

TEST(Train, BadRequestsAreClearErrors) {
  TempDir dir;
  expect_error([&] { tools::train(tiny("vea", dir.path(), 1)); }, {"unknown model 'vea'", "did you mean 'vae'"});
  expect_error([&] { tools::train(tiny("vae", dir.path(), 0)); }, {"--steps", "--epochs"});
  tools::TrainOptions missing = tiny("vae", dir.path(), 1);
  missing.load_data = nullptr;
  missing.data_dir = dir.path() + "/nowhere";
  expect_error([&] { tools::train(missing); }, {"nowhere", "dataset-fashion-mnist"});
  if (cuda_device_count() == 0) {
    tools::TrainOptions cuda = tiny("vae", dir.path(), 1);
    cuda.config.device = Device::cuda();
    expect_error([&] { tools::train(cuda); }, {"--device cuda:0", "no CUDA device"});
  }
}

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}


// A copy of the checkpoint at from, written to to after edit() changes it.
std::string doctor(const std::string& from, const std::string& to, const std::function<void(Safetensors&)>& edit) {
  Safetensors s = load_safetensors(from);
  edit(s);
  save_safetensors(to, s.tensors, s.metadata);
  return to;
}

void replace_tensor(Safetensors& s, const std::string& name, const Tensor& t) {
  for (auto& [n, v] : s.tensors)
    if (n == name) v = t;
}
}  // namespace

TEST(Train, FlagsTakeEffectOrAreRefused) {
  TempDir dir;
  auto run = [&](const std::string& name, const std::function<void(tools::TrainOptions&)>& set) {
    tools::TrainOptions o = tiny("vae", dir.path() + "/" + name, 2);
    o.eval_size = 0;
    set(o);
    return weights(tools::train(o).checkpoint);
  };
  const auto base = run("base", [](auto&) {});
  // The model's defaults (Adam's 0.9 / 0.999 / 1e-3) given explicitly change nothing ...
  EXPECT_EQ(run("same", [](auto& o) { o.config.set("b1", 0.9), o.config.set("b2", 0.999), o.config.set("lr", 1e-3); }), base);
  // ... and every other value changes the run: each flag reaches the optimizer.
  EXPECT_NE(run("b1", [](auto& o) { o.config.set("b1", 0.5); }), base);
  EXPECT_NE(run("b2", [](auto& o) { o.config.set("b2", 0.9); }), base);
  EXPECT_NE(run("lr", [](auto& o) { o.config.set("lr", 2e-3); }), base);
  const SafetensorsMetadata m = load_safetensors(dir.path() + "/b1/checkpoint.safetensors").metadata;
  EXPECT_EQ(m.at("b1"), "0.5");
  EXPECT_EQ(m.at("b2"), "0.999");
  EXPECT_EQ(m.at("lr"), "0.001");
  EXPECT_EQ(m.at("latent_dim"), "20");
  EXPECT_EQ(load_safetensors(dir.path() + "/base/checkpoint.safetensors").metadata.at("b1"), "0.9");

  auto refused = [&](const std::string& model, const std::function<void(tools::TrainOptions&)>& set) {
    tools::TrainOptions o = tiny(model, dir.path() + "/refused", 1);
    set(o);
    return error_of([&] { tools::train(o); });
  };
  EXPECT_EQ(refused("vae", [](auto& o) { o.config.set("lr", -1); }), "train: --lr must be > 0, got -1");
  EXPECT_EQ(refused("vae", [](auto& o) { o.config.set("lr", 0); }), "train: --lr must be > 0, got 0");
  EXPECT_EQ(refused("vae", [](auto& o) { o.config.set("b1", 1); }), "train: --b1 must lie in [0, 1), got 1");
  EXPECT_EQ(refused("classifier", [](auto& o) { o.config.set("b2", -0.5); }), "train: --b2 must lie in [0, 1), got -0.5");
  EXPECT_EQ(refused("vae", [](auto& o) { o.config.batch_size = 0; }), "train: --batch-size must be >= 1, got 0");
  EXPECT_EQ(refused("vae", [](auto& o) { o.config.set("latent_dim", 0); }), "train: --latent-dim must lie in [1, 65536], got 0");
  EXPECT_EQ(refused("vae", [](auto& o) { o.config.set("latent_dim", 65537); }),
            "train: --latent-dim must lie in [1, 65536], got 65537");
  EXPECT_EQ(refused("classifier", [](auto& o) { o.config.set("latent_dim", 8); }),
            "train: --latent-dim does not apply to model 'classifier' (it takes --lr, --b1, --b2)");
  EXPECT_EQ(refused("vae", [](auto& o) { o.limit_train = 0; }), "train: --limit must be >= 1, got 0");
  EXPECT_FALSE(fs::exists(dir.path() + "/refused")) << "a refused run writes nothing";
}

TEST(Train, ResumeRestoresTheStoredOptions) {
  TempDir dir;
  tools::TrainOptions first = tiny("vae", dir.path() + "/r", 2);
  first.config.set("latent_dim", 8);
  first.config.set("lr", 2e-3);
  first.limit_train = 64;
  first.eval_size = 0;
  tools::train(first);
  const std::string ck = dir.path() + "/r/checkpoint.safetensors";
  auto resume = [&](int64_t steps, const std::function<void(tools::TrainOptions&)>& set) {
    tools::TrainOptions o = tiny("vae", dir.path() + "/r", steps);
    o.config.batch_size.reset();  // as on the command line: nothing given
    o.config.seed.reset();
    o.eval_size = 0;
    o.resume = ck;
    set(o);
    return tools::train(o);
  };
  // Without flags: the stored latent size, lr, batch size, seed and limit.
  EXPECT_EQ(resume(3, [](auto&) {}).steps, 3);
  SafetensorsMetadata m = load_safetensors(ck).metadata;
  EXPECT_EQ(m.at("latent_dim"), "8");
  EXPECT_EQ(m.at("lr"), "0.002");
  EXPECT_EQ(m.at("batch_size"), "16");
  EXPECT_EQ(m.at("seed"), "5");
  EXPECT_EQ(m.at("limit_train"), "64");
  // Repeating a stored value is fine; contradicting one is an error naming the flag and both values.
  EXPECT_EQ(resume(4, [](auto& o) { o.config.set("latent_dim", 8); }).steps, 4);
  EXPECT_EQ(error_of([&] { resume(5, [](auto& o) { o.config.set("latent_dim", 16); }); }),
            "train --resume: --latent-dim 16 contradicts the checkpoint, which stores latent_dim = 8 (leave the "
            "flag out to continue with the stored value)");
  EXPECT_EQ(error_of([&] { resume(5, [](auto& o) { o.config.set("lr", 1e-3); }); }),
            "train --resume: --lr 0.001 contradicts the checkpoint, which stores lr = 0.002 (leave the flag out to "
            "continue with the stored value)");
  EXPECT_NE(error_of([&] { resume(5, [](auto& o) { o.config.batch_size = 8; }); })
                .find("--batch-size 8 contradicts the checkpoint, which stores batch_size = 16"),
            std::string::npos);
  EXPECT_NE(error_of([&] { resume(5, [](auto& o) { o.limit_train = 32; }); })
                .find("--limit 32 contradicts the checkpoint, which stores limit_train = 64"),
            std::string::npos);
  // sample/eval rebuild the stored model too.
  EXPECT_TRUE(tools::load_model("vae", ck, Device::cpu()) != nullptr);
}

TEST(Train, ResumeFastForwardsAcrossEpochsBitExactly) {
  // 48 images, batch 16: 3 batches an epoch, so step 4 resumes in epoch 1 at batch 1.
  TempDir dir;
  auto run = [&](const std::string& out, int64_t steps, const std::string& resume) {
    tools::TrainOptions o = tiny("vae", dir.path() + "/" + out, steps);
    o.limit_train = 48;
    o.eval_size = 0;
    o.resume = resume;
    return tools::train(o);
  };
  const tools::TrainResult straight = run("a", 8, "");
  run("b", 4, "");
  const tools::TrainResult resumed = run("b", 8, dir.path() + "/b/checkpoint.safetensors");
  EXPECT_EQ(weights(straight.checkpoint), weights(resumed.checkpoint));
}

TEST(Train, StepsAtOrBelowTheCheckpointAreAnErrorThatWritesNothing) {
  TempDir dir;
  tools::TrainResult r = tools::train(tiny("vae", dir.path(), 3));
  const std::string before = slurp(r.checkpoint), metrics = slurp(dir.path() + "/metrics.jsonl");
  for (int64_t steps : {3, 2}) {
    tools::TrainOptions o = tiny("vae", dir.path(), steps);
    o.resume = r.checkpoint;
    EXPECT_EQ(error_of([&] { tools::train(o); }),
              str("train --resume: ", r.checkpoint, " is already at step 3; --steps ", steps,
                  " would train nothing (the total must exceed 3; nothing was written)"));
  }
  EXPECT_EQ(slurp(r.checkpoint), before);
  EXPECT_EQ(slurp(dir.path() + "/metrics.jsonl"), metrics);
}

TEST(Train, EveryCheckpointNumberIsValidated) {
  TempDir dir;
  tools::TrainResult r = tools::train(tiny("vae", dir.path() + "/run", 2));
  int n = 0;
  auto with_meta = [&](const std::string& key, const std::string& value) {
    return doctor(r.checkpoint, str(dir.path(), "/m", n++, ".safetensors"),
                  [&](Safetensors& s) { s.metadata[key] = value; });
  };
  auto resume_error = [&](const std::string& ck, int64_t steps) {
    tools::TrainOptions o = tiny("vae", dir.path() + "/resumed", steps);
    o.resume = ck;
    return error_of([&] { tools::train(o); });
  };
  std::string p = with_meta("step", "9000000000000000000");
  EXPECT_EQ(resume_error(p, 4), str("checkpoint ", p, ": metadata 'step' = '9000000000000000000' is out of range [0, 2]"));
  p = with_meta("step", "-5");
  EXPECT_EQ(resume_error(p, 4), str("checkpoint ", p, ": metadata 'step' = '-5' is out of range [0, 2]"));
  p = with_meta("step", "12abc");
  EXPECT_EQ(resume_error(p, 4), str("checkpoint ", p, ": metadata 'step' = '12abc' is not an integer"));
  p = with_meta("total_steps", "0");
  EXPECT_EQ(resume_error(p, 4),
            str("checkpoint ", p, ": metadata 'total_steps' = '0' is out of range [1, 9223372036854775807]"));
  p = with_meta("b1", "1.5");
  EXPECT_EQ(resume_error(p, 4), str("checkpoint ", p, ": metadata 'b1' = '1.5' is out of range (--b1 must lie in [0, 1), got 1.5)"));
  p = with_meta("lr", "nan");
  EXPECT_EQ(resume_error(p, 4), str("checkpoint ", p, ": metadata 'lr' = 'nan' is out of range (--lr must be a finite number, got 'nan')"));
  p = with_meta("latent_dim", "0");
  EXPECT_EQ(error_of([&] { tools::load_model("vae", p, Device::cpu()); }),
            str("checkpoint ", p, ": metadata 'latent_dim' = '0' is out of range (--latent-dim must lie in [1, 65536], got 0)"));
  p = with_meta("seed", "-1");
  EXPECT_EQ(resume_error(p, 4), str("checkpoint ", p, ": metadata 'seed' = '-1' is not an integer in [0, 2^64)"));

  // The batches drawn are at least the steps taken (each step draws one or more).
  p = with_meta("batches", "1");
  EXPECT_EQ(resume_error(p, 4),
            str("checkpoint ", p, ": metadata 'batches' = '1' is out of range [2, 9223372036854775807]"));

  // A huge step is refused at once, not replayed batch by batch.
  p = doctor(r.checkpoint, dir.path() + "/huge.safetensors", [](Safetensors& s) {
    s.metadata["step"] = s.metadata["total_steps"] = s.metadata["batches"] = "9000000000000000000";
  });
  EXPECT_EQ(resume_error(p, 4), str("train --resume: ", p, " is already at step 9000000000000000000; --steps 4 would "
                                    "train nothing (the total must exceed 9000000000000000000; nothing was written)"));

  // The optimizer's counts: a NaN stored as float is the wrong dtype; an int out of range is named.
  p = doctor(r.checkpoint, dir.path() + "/nan_step.safetensors", [](Safetensors& s) {
    replace_tensor(s, "optim.adam.step", full({}, std::nan("")));
  });
  EXPECT_EQ(error_of([&] { tools::load_model("vae", p, Device::cpu()); }),
            str("load_safetensors: ", p, " does not match the model (checkpoint from a different model?): tensor "
                "\"optim.adam.step\" is [] float32 in the file but the model expects [] int64"));
  p = doctor(r.checkpoint, dir.path() + "/neg_step.safetensors", [](Safetensors& s) {
    replace_tensor(s, "optim.adam.step", from_vector(std::vector<int64_t>{-5}, {}));
  });
  EXPECT_EQ(error_of([&] { tools::load_model("vae", p, Device::cpu()); }),
            str("checkpoint ", p, ": optimizer 'adam': optimizer load_state_dict: 'step' = -5 is out of range: a step "
                "count must be >= 0 and <= 9223372036854775807"));
  p = doctor(r.checkpoint, dir.path() + "/param_step.safetensors", [](Safetensors& s) {
    replace_tensor(s, "optim.adam.step.0", from_vector(std::vector<int64_t>{7}, {}));
  });
  EXPECT_EQ(error_of([&] { tools::load_model("vae", p, Device::cpu()); }),
            str("checkpoint ", p, ": optimizer 'adam': optimizer load_state_dict: 'step.0' = 7 is out of range: a "
                "step count must be >= 1 and <= 2"));
  p = doctor(r.checkpoint, dir.path() + "/nan_weight.safetensors", [](Safetensors& s) {
    replace_tensor(s, "model.decoder.0.bias", full({400}, std::nan("")));
  });
  EXPECT_EQ(error_of([&] { tools::load_model("vae", p, Device::cpu()); }),
            str("checkpoint ", p, ": tensor 'model.decoder.0.bias' holds non-finite values"));
}

TEST(Train, ModelTensorsOfTheWrongDtypeOrShapeAreRefusedInOneLine) {
  TempDir dir;
  tools::TrainResult r = tools::train(tiny("vae", dir.path() + "/run", 1));
  // I32 bytes where F32 weights belong (the same byte count): once read as weights.
  std::string p = doctor(r.checkpoint, dir.path() + "/i32.safetensors", [](Safetensors& s) {
    replace_tensor(s, "model.encoder.1.weight", zeros({400, 784}, {DType::Int32}));
  });
  EXPECT_EQ(error_of([&] { tools::evaluate("vae", {.checkpoint = p, .data_dir = "/nonexistent", .images = 10}); }),
            str("load_safetensors: ", p, " does not match the model (checkpoint from a different model?): tensor "
                "\"model.encoder.1.weight\" is [400, 784] int32 in the file but the model expects [400, 784] float32"));
  p = doctor(r.checkpoint, dir.path() + "/shape.safetensors", [](Safetensors& s) {
    replace_tensor(s, "optim.adam.exp_avg.0", zeros({784, 400}));
  });
  EXPECT_EQ(error_of([&] { tools::load_model("vae", p, Device::cpu()); }),
            str("load_safetensors: ", p, " does not match the model (checkpoint from a different model?): tensor "
                "\"optim.adam.exp_avg.0\" is [784, 400] float32 in the file but the model expects [400, 784] float32"));
  // Resuming a --latent-dim 8 checkpoint needs no flag (the stored size is used).
  tools::TrainOptions small = tiny("vae", dir.path() + "/small", 1);
  small.config.set("latent_dim", 8);
  tools::TrainResult s = tools::train(small);
  tools::TrainOptions more = tiny("vae", dir.path() + "/small", 2);
  more.resume = s.checkpoint;
  EXPECT_EQ(tools::train(more).steps, 2);
}

TEST(Train, DivergenceStopsEveryModelAndNamesOnlyACheckpointThatExists) {
  TempDir dir;
  // Before any checkpoint: nothing is named, nothing is written, and the step is logged.
  tools::TrainOptions c = tiny("classifier", dir.path() + "/c", 5);
  c.config.set("lr", 10);
  const std::string m = error_of([&] { tools::train(c); });
  EXPECT_EQ(m.rfind("train: diverged at step 2: loss 'loss' exploded to ", 0), 0u) << m;
  EXPECT_NE(m.find("no checkpoint was written: the run diverged before its first one (--checkpoint-every N keeps one)"),
            std::string::npos) << m;
  EXPECT_FALSE(fs::exists(dir.path() + "/c/checkpoint.safetensors"));
  EXPECT_NE(slurp(dir.path() + "/c/metrics.jsonl").find("{\"step\":2,"), std::string::npos);

  // With --checkpoint-every 1 the last good one is step 1's, and it is on disk.
  c.checkpoint_every = 1;
  const std::string ck = dir.path() + "/c/checkpoint.safetensors";
  EXPECT_NE(error_of([&] { tools::train(c); }).find(str("the last good checkpoint is ", ck, " (step 1)")),
            std::string::npos);
  EXPECT_EQ(load_safetensors(ck).metadata.at("step"), "1");

  // A resumed run that diverges names the checkpoint it resumed from.
  tools::TrainResult ok = tools::train(tiny("classifier", dir.path() + "/v", 1));
  tools::TrainOptions v = tiny("classifier", dir.path() + "/v2", 3);
  v.resume = ok.checkpoint;
  v.load_data = [](data::Split split) {
    data::LabeledImages d = synthetic(split);
    d.images = full({128, 1, 28, 28}, std::nan(""));
    return d;
  };
  EXPECT_EQ(error_of([&] { tools::train(v); }),
            str("train: diverged at step 2: loss 'loss' became nan (lower --lr); the last good checkpoint is ",
                ok.checkpoint, " (step 1)"));
  EXPECT_FALSE(fs::exists(dir.path() + "/v2/checkpoint.safetensors"));
}

TEST(Train, MetricsRecordEveryOptimizersLearningRate) {
  TempDir dir;
  tools::TrainOptions o = tiny("vae", dir.path(), 2);
  o.config.set("lr", 2e-3);
  tools::train(o);
  const std::string log = slurp(dir.path() + "/metrics.jsonl");
  EXPECT_NE(log.find("{\"step\":1,\"losses\":{\"kl\":"), std::string::npos) << log;
  EXPECT_NE(log.find("\"lr\":{\"adam\":0.002}"), std::string::npos) << log;
}

// A checkpoint written before the framework recorded the batches drawn and before
// the VAE had --arch and --iwae-k (metadata without those keys) loads with their
// defaults (one batch per step; the MLP and the ELBO, what it was trained with)
// and resumes exactly as the checkpoint with the keys does.
TEST(Train, CheckpointsFromBeforeNewOptionsLoadWithTheDefaults) {
  TempDir dir;
  const tools::TrainResult r = tools::train(tiny("vae", dir.path() + "/a", 3));
  const std::string old = doctor(r.checkpoint, dir.path() + "/old.safetensors", [](Safetensors& s) {
    for (const char* key : {"batches", "arch", "iwae_k"}) s.metadata.erase(key);
  });
  auto m = tools::load_model("vae", old, Device::cpu());
  EXPECT_EQ(m->parameter_count(), tools::load_model("vae", r.checkpoint, Device::cpu())->parameter_count());
  auto resume = [&](const std::string& from, const std::string& out) {
    tools::TrainOptions o = tiny("vae", dir.path() + out, 5);
    o.resume = from;
    return weights(tools::train(o).checkpoint);
  };
  EXPECT_EQ(resume(old, "/from_old"), resume(r.checkpoint, "/from_new"));
}

// on_step sees every step once, in order, with its wall time; n_samples 0 writes no grid.
TEST(Train, OnStepReportsEveryStepAndNoGridWithoutSamples) {
  TempDir dir;
  tools::TrainOptions o = tiny("vae", dir.path() + "/a", 4);
  o.n_samples = 0;
  std::vector<int64_t> steps;
  o.on_step = [&](int64_t step, double seconds) {
    steps.push_back(step);
    EXPECT_GT(seconds, 0);
  };
  const tools::TrainResult r = tools::train(o);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(r.samples.empty());
  EXPECT_FALSE(fs::exists(dir.path() + "/a/samples.png"));
}

TEST(Train, AnInterruptCheckpointsTheStepAndStops) {
  // SIGINT during step 2 of 6: the run stops after that step with its checkpoint,
  // and resuming from it ends where an uninterrupted run does.
  TempDir dir;
  tools::TrainOptions o = tiny("vae", dir.path() + "/cut", 6);
  o.on_step = [](int64_t step, double) {
    if (step == 2) raise(SIGINT);
  };
  const std::string ckpt = dir.path() + "/cut/checkpoint.safetensors";
  expect_error([&] { tools::train(o); },
               {"train: interrupted at step 2 of 6; checkpoint " + ckpt + " (continue with --resume " + ckpt +
                " --steps 6 --out " + dir.path() + "/cut)"});
  EXPECT_EQ(load_safetensors(ckpt).metadata.at("step"), "2");
  // The handler is gone with the loop: the default disposition is back.
  struct sigaction now {};
  sigaction(SIGINT, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
  tools::TrainOptions rest = tiny("vae", dir.path() + "/cut", 6);
  rest.resume = ckpt;
  EXPECT_EQ(weights(tools::train(rest).checkpoint), weights(tools::train(tiny("vae", dir.path() + "/straight", 6)).checkpoint));
}
