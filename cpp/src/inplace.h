// In-place execution of element-wise ops whose first input is a dead temporary
// (mirrors detectron2_export/caffe2/inplace.py).
//
// Out-of-place Relu/Add/Sum allocate a fresh activation-sized tensor per op; on the CPU much of their
// time is page faults on that new memory. When the first input blob is a tensor the net itself just
// allocated (its producer returns fresh storage), no other op reads that version of the blob and it is
// not a net output, the op can write into it instead: same kernel, same values (bitwise).
//
// Never applied to parameters or fed inputs (the net does not produce them), nor to the outputs of ops
// that may return an input's storage (AliasWithName, Copy, Reshape, Sum of one input, ...), and only
// enabled by callers that fetch nothing but the net's external outputs (ProtobufModel): an overwritten
// intermediate blob then holds the op's result instead of its own.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "net_spec.h"
#include "registry.h"

namespace c2rt {

// Writes the op's result into inputs[0] and returns it; nullopt when these inputs need the regular op
// (other shapes or dtypes, broadcasting), which then runs instead and does its own checks.
using InplaceFn = std::optional<Tensors> (*)(const Tensors& inputs, const BoundArgs& args);

// The in-place kernel of `type` (Relu, Add, Sum), or nullptr.
InplaceFn inplace_kernel(const std::string& type);

// Indices of the ops (in net order) that may overwrite their input 0.
//
// A blob *version* is (name, index of the op that wrote it); op i qualifies when its type has an
// in-place kernel, its input 0 version was written as output 0 of an earlier fresh-output op (Conv,
// ConvTranspose, SpatialBN, AffineChannel, FC, Add, Relu, Sum of two or more inputs) that does not
// also read that name, the version has exactly one reader (op i, once) and the name is not in
// `protected_names`.
std::set<int> plan_inplace(const std::vector<OperatorSpec>& ops, const std::set<std::string>& protected_names);

}  // namespace c2rt
