#include "models/derive_training.h"

#include <cmath>

namespace loom::derive::training {

std::shared_ptr<nn::Sequential> mlp(const std::vector<int64_t>& sizes,
                                    const std::function<Tensor(const Tensor&)>& activation, Generator& g) {
  LOOM_CHECK(sizes.size() >= 2, "mlp: needs at least an input and an output size");
  auto net = std::make_shared<nn::Sequential>();
  for (size_t l = 0; l + 1 < sizes.size(); ++l) {
    auto lin = std::make_shared<nn::Linear>(sizes[l], sizes[l + 1], true, f64());
    nn::init::normal_(lin->weight, 0, 1 / std::sqrt(static_cast<double>(sizes[l])), &g);
    nn::init::zeros_(lin->bias);
    net->push_back(lin);
    if (l + 2 < sizes.size()) net->push_back(std::make_shared<nn::Lambda>("activation", activation));
  }
  return net;
}

}  // namespace loom::derive::training
