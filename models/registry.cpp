#include <algorithm>

#include "models/model.h"

namespace loom::models {

void Model::train(bool on) {
  for (auto& [name, m] : modules()) m->train(on);
}

const std::vector<Registration>& registry() {
  static const std::vector<Registration> all{
#define X(name, summary) Registration{#name, summary, &make_##name},
#include "models/models.def"
#undef X
  };
  return all;
}

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

const Registration& find_model(const std::string& name) {
  const Registration* closest = nullptr;
  size_t best = SIZE_MAX;
  std::string names;
  for (const Registration& r : registry()) {
    if (name == r.name) return r;
    names += str(names.empty() ? "" : ", ", r.name);
    size_t d = edit_distance(name, r.name);
    if (d < best) best = d, closest = &r;
  }
  throw Error(str("unknown model '", name, "'", closest && best <= 3 ? str(" (did you mean '", closest->name, "'?)") : "",
                  "; models: ", names));
}

}  // namespace loom::models
