#include "op_args.h"

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
