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

const Registration& find_model(const std::string& name) {
  std::string names;
  for (const Registration& r : registry()) {
    if (name == r.name) return r;
    names += str(names.empty() ? "" : ", ", r.name);
  }
  throw Error(str("unknown model '", name, "'; models: ", names));
}

}  // namespace loom::models
