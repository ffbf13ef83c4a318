// Input checks shared by the op families (mirrors detectron2_export/caffe2/op_args.py).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "registry.h"

namespace c2rt {

std::vector<int64_t> dims_of(const at::Tensor& x);
// "(2, 3)" for messages.
std::string shape_of(const at::Tensor& x);

// OperatorInputError "<op>: <name> shape=(...), expected 2-D or 3-D" unless x.dim() is in `ranks`.
void check_rank(const std::string& op, const std::string& name, const at::Tensor& x, const std::vector<int64_t>& ranks);

// Python-style negative axis -> non-negative; `allow_end` admits ndim itself (an insertion point).
int64_t normalize_axis(const std::string& op, int64_t axis, int64_t ndim, bool allow_end = false);

// A 1-D integer tensor input (shape, starts, ...) as ints.
std::vector<int64_t> int_values(const std::string& op, const std::string& name, const at::Tensor& t);

// Product of dims[begin, end).
int64_t prod(const std::vector<int64_t>& dims, size_t begin, size_t end);

// The most elements a tensor whose size a model file decides (fills, resize, padding, RoI outputs)
// may have, so that a file cannot make the runtime allocate without bound: the environment variable
// DETECTRON2_EXPORT_MAX_TENSOR_ELEMENTS when set to a positive integer, else 2^28 (1 GiB of floats).
int64_t max_tensor_elements();

// The element count of a tensor of `dims` about to be allocated, computed without overflow;
// OperatorInputError "<op>: <what> shape=(...) ..." for a negative dim or more than max_tensor_elements().
int64_t checked_numel(const std::string& op, const std::string& what, const std::vector<int64_t>& dims);

// OperatorInputError unless every value of `indices` (any real dtype) lies in [0, size): names the op,
// `what` (e.g. "rois batch index"), the first offending value and position, and `size_of` (what
// `size` counts, e.g. "the batch size of features"). NaN is out of range.
void check_indices(const std::string& op, const std::string& what, const at::Tensor& indices, int64_t size,
                   const std::string& size_of);

// Caffe2 TensorProto.DataType number (also Cast's `to` and ConstantFill's `dtype`) -> ATen dtype;
// OperatorArgumentError naming `where` for STRING and the special types.
at::ScalarType caffe2_scalar_type(int64_t data_type, const std::string& where);

// Runs a CPU-only kernel: inputs are copied to the CPU and outputs back to the device of inputs[0].
Tensors run_on_cpu(const Tensors& inputs, const std::function<Tensors(const Tensors&)>& kernel);

}  // namespace c2rt
