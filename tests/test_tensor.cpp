// Tensor basics: creation, conversion, views, printing, the Philox generator.
#include <cmath>

#include "kernels/philox.h"
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

TEST(Tensor, CreationAndReadBack) {
  Tensor z = zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.dtype(), DType::Float32);
  expect_values(z, {0, 0, 0, 0, 0, 0});
  expect_values(ones({2}, TensorOptions{DType::Float64}), {1, 1});
  expect_values(full({3}, 2.5), {2.5, 2.5, 2.5});
  expect_values(arange(0, 5), {0, 1, 2, 3, 4});
  expect_values(arange(1, 2, 0.25, TensorOptions{DType::Float64}), {1, 1.25, 1.5, 1.75});
  expect_values(arange(5, 0, -2, TensorOptions{DType::Int64}), {5, 3, 1});
  Tensor v = from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(v.dtype(), DType::Float32);
  expect_values(v, {1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(scalar(3.5).item(), 3.5);
  EXPECT_EQ(scalar(1).dim(), 0);
}

TEST(Tensor, DtypeConversionRoundTrips) {
  Tensor x = from_vector(std::vector<double>{-1.5, 0.25, 7}, {3}, TensorOptions{DType::Float64});
  expect_values(x.to(DType::Float32).to(DType::Float64), {-1.5, 0.25, 7});
  expect_values(x.to(DType::Int64), {-1, 0, 7});  // truncation toward zero, as C++ casts
  EXPECT_EQ(x.to(DType::Int32).dtype(), DType::Int32);
  EXPECT_EQ(x.to_vector<int64_t>(), (std::vector<int64_t>{-1, 0, 7}));
}

TEST(Tensor, ReshapeSharesStorageAndCloneDoesNot) {
  Tensor x = arange(0, 6);
  Tensor r = reshape(x, {2, -1});
  EXPECT_EQ(r.shape(), (Shape{2, 3}));
  EXPECT_EQ(r.data_ptr(), x.data_ptr());
  Tensor c = x.clone();
  EXPECT_NE(c.data_ptr(), x.data_ptr());
  x.fill_(1);
  expect_values(r, {1, 1, 1, 1, 1, 1});
  expect_values(c, {0, 1, 2, 3, 4, 5});
}

TEST(Tensor, InPlaceOpsBumpVersion) {
  Tensor x = zeros({3});
  uint64_t v0 = x.impl().storage->version;
  x.fill_(2);
  x.add_(ones({3}), 3);
  x.mul_(2);
  expect_values(x, {10, 10, 10});
  EXPECT_EQ(x.impl().storage->version, v0 + 3);
}

TEST(Tensor, PrintingIsReadable) {
  Tensor x = from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2});
  std::string s = x.to_string();
  EXPECT_NE(s.find("[[1, 2], [3, 4]]"), std::string::npos) << s;
  EXPECT_NE(s.find("shape=[2, 2]"), std::string::npos) << s;
  EXPECT_NE(s.find("float32"), std::string::npos) << s;
  std::string big = arange(0, 100).to_string();
  EXPECT_NE(big.find("..."), std::string::npos) << big;
}

TEST(Tensor, ErrorsNameTheProblem) {
  expect_error([] { scalar(1).size(3); }, {"size", "out of range"});
  expect_error([] { zeros({2, 2}).item(); }, {"item", "[2, 2]", "4 elements"});
  expect_error([] { zeros({2}).data<double>(); }, {"float64", "float32"});
  expect_error([] { from_vector(std::vector<double>{1, 2, 3}, {2, 2}); }, {"from_vector", "3 values", "[2, 2]"});
  expect_error([] { zeros({2}).copy_(zeros({3})); }, {"copy_", "[3]", "[2]"});
  expect_error([] { empty({2, -1}); }, {"negative", "[2, -1]"});
  expect_error([] { Device::parse("gpu"); }, {"gpu", "cpu, cuda"});
  expect_error([] { zeros({2}, TensorOptions{DType::Int64}).requires_grad_(); }, {"int64", "cannot require grad"});
  EXPECT_EQ(Device::parse("cuda:1"), Device::cuda(1));
}

TEST(Tensor, CudaUnavailableIsAClearError) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present; this test covers CPU-only machines";
  expect_error([] { zeros({2}).to(Device::cuda()); }, {"CUDA"});
}

TEST(Random, PhiloxIsDeterministicAndSeeded) {
  Generator a(42), b(42), c(43);
  Tensor x = rand({1000}, {}, &a), y = rand({1000}, {}, &b), z = rand({1000}, {}, &c);
  EXPECT_EQ(x.to_vector<float>(), y.to_vector<float>());
  EXPECT_NE(x.to_vector<float>(), z.to_vector<float>());
  // Consecutive draws advance the stream: no repeated numbers.
  Tensor x2 = rand({1000}, {}, &a);
  EXPECT_NE(x.to_vector<float>(), x2.to_vector<float>());
  // A single draw of 2000 equals two draws of 1000 (counter-based stream).
  Generator d(42);
  std::vector<float> both = rand({2000}, {}, &d).to_vector<float>();
  std::vector<float> first(both.begin(), both.begin() + 1000);
  EXPECT_EQ(first, x.to_vector<float>());
}

// The CPU kernels compute each Philox block once for all the values it holds; the streams are still
// the ones kernels/philox.h defines element by element (as the CUDA kernels compute them): uniform,
// normal (Box-Muller pairs) and bernoulli, float and double, at sizes that end inside a block and one
// past the size where the loops go parallel, from a generator already advanced.
template <class T>
void expect_philox_streams(int64_t n) {
  SCOPED_TRACE(::testing::Message() << n << (sizeof(T) == 4 ? " float" : " double"));
  const TensorOptions o{sizeof(T) == 4 ? DType::Float32 : DType::Float64};
  Generator g(1234);
  g.advance(3);
  const uint64_t seed = g.seed();
  uint64_t offset = g.offset();
  const std::vector<T> u = uniform({n}, -2.0, 3.0, o, &g).template to_vector<T>();
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(u[i], T(-2.0) + T(5.0) * philox::uniform<T>(seed, offset, static_cast<uint64_t>(i))) << i;
  offset = g.offset();
  const std::vector<T> z = normal({n}, 1.0, 2.0, o, &g).template to_vector<T>();
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(z[i], T(1.0) + T(2.0) * philox::normal<T>(seed, offset, static_cast<uint64_t>(i))) << i;
  const Tensor p = rand({n}, o, &g);
  const std::vector<T> pv = p.template to_vector<T>();
  offset = g.offset();
  const std::vector<T> b = bernoulli(p, &g).template to_vector<T>();
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(b[i], philox::uniform<T>(seed, offset, static_cast<uint64_t>(i)) <= pv[i] ? T(1) : T(0)) << i;
}

TEST(Random, StreamsAreThePhiloxDefinitionElementByElement) {
  for (int64_t n : {1, 2, 3, 5, 7, 1001, 65537}) {
    expect_philox_streams<float>(n);
    expect_philox_streams<double>(n);
  }
}

TEST(Random, MomentsMatchTheDistributions) {
  Generator g(5);
  const int64_t n = 200000;
  std::vector<double> u = rand({n}, TensorOptions{DType::Float64}, &g).to_vector<double>();
  std::vector<double> z = randn({n}, TensorOptions{DType::Float64}, &g).to_vector<double>();
  double mu = 0, mz = 0, vz = 0, umin = 1, umax = 0;
  for (int64_t i = 0; i < n; ++i) {
    mu += u[i] / n;
    mz += z[i] / n;
    umin = std::min(umin, u[i]);
    umax = std::max(umax, u[i]);
  }
  for (double v : z) vz += (v - mz) * (v - mz) / n;
  // Standard errors: uniform mean sd = sqrt(1/12/n) ≈ 6.5e-4; normal mean ≈ 2.2e-3.
  EXPECT_NEAR(mu, 0.5, 4e-3);
  EXPECT_GT(umin, 0.0);
  EXPECT_LE(umax, 1.0);
  EXPECT_NEAR(mz, 0.0, 1e-2);
  EXPECT_NEAR(vz, 1.0, 1.5e-2);
  Tensor p = full({n}, 0.3, TensorOptions{DType::Float64});
  std::vector<double> b = bernoulli(p, &g).to_vector<double>();
  double mb = 0;
  for (double v : b) {
    EXPECT_TRUE(v == 0 || v == 1);
    mb += v / n;
  }
  EXPECT_NEAR(mb, 0.3, 5e-3);
}

TEST(Random, RandintIsUniformOverItsValues) {
  Generator g(7);
  const std::vector<int64_t> c = randint(10, {20000}, {}, &g).to_vector<int64_t>();
  std::vector<int64_t> count(10, 0);
  for (int64_t v : c) {
    ASSERT_TRUE(v >= 0 && v < 10) << v;
    ++count[static_cast<size_t>(v)];
  }
  for (int64_t n : count) EXPECT_NEAR(static_cast<double>(n), 2000, 5 * std::sqrt(2000 * 0.9));  // 5 binomial σ
  EXPECT_EQ(randint(3, {2, 5}).shape(), (Shape{2, 5}));
  EXPECT_EQ(randint(3, {4}).dtype(), DType::Int64);
  expect_error([] { randint(0, {4}); }, {"randint", "high must be in [1, 2^24], got 0"});
}

