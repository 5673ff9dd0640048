// The training driver: bit-exact resume, checkpoints, and its error messages.
#include <filesystem>

#include "tests/gradcheck.h"
#include "tests/temp_dir.h"
#include "tools/train.h"

using namespace loom;
using namespace loom::testing;
namespace fs = std::filesystem;

namespace {
// 128 random "images" with labels: the driver needs no files.
data::LabeledImages synthetic(data::Split split) {
  Generator g(split == data::Split::Train ? 1 : 2);
  data::LabeledImages d;
  d.images = rand({128, 1, 28, 28}, {}, &g);
  std::vector<int64_t> labels(128);
  for (int64_t i = 0; i < 128; ++i) labels[i] = i % 10;
  d.labels = from_vector(labels, {128});
  return d;
}

tools::TrainOptions tiny(const std::string& model, const std::string& out, int64_t steps) {
  tools::TrainOptions o;
  o.model = model;
  o.config.batch_size = 16;
  o.config.seed = 5;
  o.steps = steps;
  o.out_dir = out;
  o.n_samples = 4;
  o.eval_size = 32;
  o.progress = false;
  o.load_data = synthetic;
  return o;
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
