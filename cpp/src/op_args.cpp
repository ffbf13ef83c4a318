#include "op_args.h"

#include <cmath>
#include <cstdlib>

#include "errors.h"

namespace c2rt {

std::vector<int64_t> dims_of(const at::Tensor& x) { return x.sizes().vec(); }

std::string shape_of(const at::Tensor& x) { return shape_str(dims_of(x)); }

void check_rank(const std::string& op, const std::string& name, const at::Tensor& x, const std::vector<int64_t>& ranks) {
  for (int64_t r : ranks) {
    if (x.dim() == r) return;
  }
  std::string expected;
  for (size_t k = 0; k < ranks.size(); ++k) expected += (k ? " or " : "") + std::to_string(ranks[k]) + "-D";
  throw OperatorInputError(op + ": " + name + " shape=" + shape_of(x) + ", expected " + expected);
}

int64_t normalize_axis(const std::string& op, int64_t axis, int64_t ndim, bool allow_end) {
  const int64_t hi = allow_end ? ndim + 1 : ndim;
  const int64_t a = axis < 0 ? axis + hi : axis;
  if (a < 0 || a >= hi) {
    throw OperatorInputError(op + ": axis=" + std::to_string(axis) + ", expected in [" + std::to_string(-hi) + ", " +
                             std::to_string(hi - 1) + "] for a " + std::to_string(ndim) + "-D input");
  }
  return a;
}

std::vector<int64_t> int_values(const std::string& op, const std::string& name, const at::Tensor& t) {
  check_rank(op, name, t, {1});
  if (t.is_floating_point() || t.scalar_type() == at::kBool) {
    throw OperatorInputError(op + ": " + name + " dtype=" + std::string(c10::toString(t.scalar_type())) +
                             ", expected an integer tensor");
  }
  at::Tensor values = t.to(at::kCPU, at::kLong).contiguous();
  const int64_t* data = values.data_ptr<int64_t>();
  return std::vector<int64_t>(data, data + values.numel());
}

int64_t prod(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t k = begin; k < end && k < dims.size(); ++k) p *= dims[k];
  return p;
}

int64_t max_tensor_elements() {
  static const int64_t limit = [] {
    const char* text = std::getenv("DETECTRON2_EXPORT_MAX_TENSOR_ELEMENTS");
    if (text != nullptr) {
      char* end = nullptr;
      const long long value = std::strtoll(text, &end, 10);
      if (end != text && *end == '\0' && value > 0) return static_cast<int64_t>(value);
    }
    return int64_t{1} << 28;
  }();
  return limit;
}

int64_t checked_numel(const std::string& op, const std::string& what, const std::vector<int64_t>& dims) {
  const int64_t limit = max_tensor_elements();
  int64_t n = 1;
  bool too_large = false;
  for (int64_t d : dims) {
    if (d < 0) throw OperatorInputError(op + ": " + what + " shape=" + shape_str(dims) + ", expected dims >= 0");
    if (d == 0) return 0;
    too_large = too_large || d > limit / n;
    if (!too_large) n *= d;
  }
  if (too_large || n > limit) {
    throw OperatorInputError(op + ": " + what + " shape=" + shape_str(dims) + " would have more than " +
                             std::to_string(limit) +
                             " elements, expected at most that many (DETECTRON2_EXPORT_MAX_TENSOR_ELEMENTS)");
  }
  return n;
}

void check_indices(const std::string& op, const std::string& what, const at::Tensor& indices, int64_t size,
                   const std::string& size_of) {
  if (indices.numel() == 0) return;
  const at::Tensor values = indices.reshape(-1).to(at::kCPU, at::kDouble);
  const at::Tensor bad = at::logical_not(at::logical_and(values >= 0, values < static_cast<double>(size)));
  if (!bad.any().item<bool>()) return;
  const int64_t position = at::nonzero(bad)[0][0].item<int64_t>();
  const double value = values[position].item<double>();
  std::string shown = std::to_string(value);
  if (std::isfinite(value) && value == std::trunc(value) && std::abs(value) < 9e15) {
    shown = std::to_string(static_cast<int64_t>(value));
  }
  throw OperatorInputError(op + ": " + what + "=" + shown + " at position " + std::to_string(position) +
                           ", expected an index in [0, " + std::to_string(size) + ") (" + size_of + ")");
}

at::ScalarType caffe2_scalar_type(int64_t data_type, const std::string& where) {
  // FLOAT=1, INT32=2, BYTE=3, BOOL=5, UINT8=6, INT8=7, UINT16=8, INT16=9, INT64=10, FLOAT16=12, DOUBLE=13
  static const std::vector<std::pair<int64_t, at::ScalarType>> table{
      {1, at::kFloat}, {2, at::kInt},    {3, at::kByte},   {5, at::kBool},  {6, at::kByte},   {7, at::kChar},
      {8, at::kUInt16}, {9, at::kShort}, {10, at::kLong}, {12, at::kHalf}, {13, at::kDouble},
  };
  for (const auto& [number, type] : table) {
    if (number == data_type) return type;
  }
  throw OperatorArgumentError(where + ": data type=" + std::to_string(data_type) +
                              ", expected one of FLOAT=1, INT32=2, BYTE=3, BOOL=5, UINT8=6, INT8=7, UINT16=8, "
                              "INT16=9, INT64=10, FLOAT16=12, DOUBLE=13");
}

Tensors run_on_cpu(const Tensors& inputs, const std::function<Tensors(const Tensors&)>& kernel) {
  if (inputs.empty() || inputs[0].device().is_cpu()) return kernel(inputs);
  Tensors cpu_inputs;
  for (const at::Tensor& x : inputs) cpu_inputs.push_back(x.cpu());
  Tensors outputs = kernel(cpu_inputs);
  for (at::Tensor& y : outputs) y = y.to(inputs[0].device());
  return outputs;
}

}  // namespace c2rt
