// The operator registry: one function per Caffe2 op type, with the arguments it accepts and how many
// inputs and outputs it takes (mirrors detectron2_export/caffe2/registry.py).
//
// An op function receives its input tensors (an optional input that the OperatorDef leaves out is
// simply absent) and the bound arguments, and returns every output it can compute; the executor keeps
// as many as the OperatorDef names. Each ops/<family>.cpp defines register_<family>_ops(), called
// once from registry.cpp.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "arguments.h"

namespace c2rt {

using Tensors = std::vector<at::Tensor>;
using OpFn = std::function<Tensors(const Tensors& inputs, const BoundArgs& args)>;

inline constexpr int kUnbounded = -1;

struct OpSchema {
  std::string type;
  OpFn fn;
  std::vector<ArgSpec> args;
  std::pair<int, int> n_inputs{1, 1};   // inclusive (min, max); max kUnbounded for any number
  std::pair<int, int> n_outputs{1, 1};
  std::set<std::string> ignored_args;  // accepted but without effect here
  // Inputs the kernel reads as row-major memory (see layout.h): the executor converts a blob in any
  // other layout once and stores the copy back, so later readers of the blob share it.
  std::vector<size_t> contiguous_inputs;
};

// Registers `schema`; a type registered twice is a programming error (std::logic_error).
void register_op(OpSchema schema);

// The schema of `type`; UnknownOperatorError lists the known types.
const OpSchema& get_op(const std::string& type);

std::vector<std::string> registered_ops();

}  // namespace c2rt
