// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors),
// so Python's `safetensors` can open what loom writes and vice versa:
//
//   [8 bytes: N, little-endian u64][N bytes: JSON header][data section]
//   header = {"__metadata__": {"k": "v", ...},
//             "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
//
// data_offsets are relative to the data section; the tensors tile it exactly
// (no gaps, no overlaps); data is raw little-endian row-major. loom writes the
// tensors in the order given, pads the header with spaces to a multiple of 8
// (as Python does, so the data is aligned) and omits __metadata__ when empty.
// Supported dtypes: F32, F64, I32, I64.
//
// Saving is atomic (autograd/io/atomic_file.h): the file is written to
// "<path>.tmp.<pid>", fsynced, renamed over <path>, and the folder fsynced; on
// any failure (a loom::Error naming the file and the cause: ENOSPC, EROFS, ...)
// the temporary file is removed and an existing <path> is left untouched.
//
// Loading trusts nothing in the file: every inconsistency (truncation, a header
// length past the end, malformed JSON, an unknown dtype, offsets out of range,
// overlapping or leaving gaps, a shape that disagrees with its byte count) is a
// loom::Error naming the path and the problem.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace loom {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using SafetensorsMetadata = std::map<std::string, std::string>;

struct Safetensors {
  NamedTensors tensors;  // CPU tensors, in the order of their data in the file
  SafetensorsMetadata metadata;

  // The tensor called name; a loom::Error listing the available names if absent.
  const Tensor& at(const std::string& name) const;
};

// Tensors may live on any device (they are copied to the host to be written).
// Names must be unique, valid UTF-8 and not "__metadata__".
void save_safetensors(const std::string& path, const NamedTensors& tensors, const SafetensorsMetadata& metadata = {});
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const SafetensorsMetadata& metadata = {});

Safetensors load_safetensors(const std::string& path);

// What a model expects to find in its checkpoint.
struct TensorSpec {
  std::string name;
  Shape shape;
  DType dtype = DType::Float32;
  bool required = true;  // false: may be absent (e.g. optimizer state of a parameter never updated)
};

// Loads path and checks that it holds exactly the expected tensors; otherwise a
// loom::Error that lists every missing, unexpected and mis-shaped (or mis-typed)
// tensor ("checkpoint from a different model?"). The result's tensors follow
// the order of `expected`.
Safetensors load_safetensors_checked(const std::string& path, const std::vector<TensorSpec>& expected);
// The same check on a file already loaded from path (e.g. one whose metadata
// decides what it should hold). The error is one line: the path, then each
// problem with the tensor's name and its expected and found shape and dtype.
Safetensors check_safetensors(const Safetensors& file, const std::string& path, const std::vector<TensorSpec>& expected);

}  // namespace loom
