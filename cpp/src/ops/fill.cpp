// Fill ops (SPEC 5.13): the parameters of init nets and the constants of predict nets.
//
// Every filler takes its output shape from `shape` or, with one input, from that input (its values
// when input_as_shape=1, else its dims), followed by `extra_shape`.
#include <set>

#include "errors.h"
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

std::vector<ArgSpec> shape_args() {
  return {IntList("shape", std::vector<int64_t>{}, 0), IntList("extra_shape", std::vector<int64_t>{}, 0),
          Bool("input_as_shape", false)};
}

std::vector<int64_t> output_shape(const std::string& op, const Tensors& in, const BoundArgs& args) {
  const std::vector<int64_t> shape = args.ints("shape");
  const std::vector<int64_t> extra = args.ints("extra_shape");
  const bool input_as_shape = args.b("input_as_shape");
  if (in.empty()) {
    if (input_as_shape || !extra.empty()) {
      throw OperatorArgumentError(op + ": input_as_shape/extra_shape given, expected a shape input with them");
    }
    return shape;
  }
  if (!shape.empty()) {
    throw OperatorArgumentError(op + ": shape=" + ints_str(shape) +
                                " given with a shape input, expected only one of them");
  }
  const at::Tensor& x = in[0];
  std::vector<int64_t> dims;
  if (!input_as_shape) {
    dims = dims_of(x);
  } else {
    if (x.dim() != 1 || x.is_floating_point() || x.scalar_type() == at::kBool) {
      throw OperatorInputError(op + ": shape input dtype=" + std::string(c10::toString(x.scalar_type())) +
                               " shape=" + shape_of(x) + ", expected a 1-D integer tensor");
    }
    dims = int_values(op, "shape", x);
    for (int64_t d : dims) {
      if (d < 0) throw OperatorInputError(op + ": shape input=" + ints_str(dims) + ", expected non-negative dims");
    }
  }
  dims.insert(dims.end(), extra.begin(), extra.end());
  return dims;
}

// Fills with a shape input create their output where that input lives; the others on the CPU (the
// executor moves the outputs of input-less ops to the net's device).
at::Device output_device(const Tensors& in) { return in.empty() ? at::Device(at::kCPU) : in[0].device(); }

// Before anything is allocated: the claimed shape within the size ceiling, and as many values as it has.
void check_count(const std::string& op, size_t n_values, const std::vector<int64_t>& shape) {
  const int64_t expected = checked_numel(op, "output", shape);
  if (static_cast<int64_t>(n_values) != expected) {
    throw OperatorArgumentError(op + ": values has " + std::to_string(n_values) + " elements, expected " +
                                std::to_string(expected) + " (shape " + ints_str(shape) + ")");
  }
}

// `values` (row-major, stored as floats or ints) as a `dtype` tensor of the output shape.
void register_given_tensor_fill(const std::string& type, at::ScalarType dtype) {
  OpFn op = [type, dtype](const Tensors& in, const BoundArgs& args) -> Tensors {
    const std::vector<int64_t> shape = output_shape(type, in, args);
    const Value& values = args.value("values");
    check_count(type, values.list_size(), shape);
    const int64_t n = static_cast<int64_t>(values.list_size());
    at::Tensor flat;
    if (values.kind == Value::Kind::Floats) {
      flat = at::from_blob(const_cast<float*>(values.floats->data()), {n}, at::kFloat);
    } else if (values.kind == Value::Kind::Ints) {
      flat = at::from_blob(const_cast<int64_t*>(values.ints->data()), {n}, at::kLong);
    } else {
      throw OperatorArgumentError(type + ": values=" + values.repr() + ", expected a list of numbers");
    }
    // copy=true: the tensor must not alias the argument's storage.
    return {flat.to(output_device(in), dtype, /*non_blocking=*/false, /*copy=*/true).reshape(shape)};
  };
  register_op({type, op, [] {
                 std::vector<ArgSpec> args{RequiredList("values")};
                 for (ArgSpec& a : shape_args()) args.push_back(a);
                 return args;
               }(),
               {0, 1}});
}

// One string (how detectron2 stores a uint8 parameter, shape [1]) becomes a 1-D uint8 tensor of its
// bytes. Several strings (a string tensor) have no ATen representation.
Tensors given_tensor_string_fill(const Tensors& in, const BoundArgs& args) {
  const std::vector<int64_t> shape = output_shape("GivenTensorStringFill", in, args);
  const Value& values = args.value("values");
  check_count("GivenTensorStringFill", values.list_size(), shape);
  if (values.list_size() != 1) {
    throw OperatorInputError("GivenTensorStringFill: " + std::to_string(values.list_size()) +
                             " strings, expected 1 (string tensors are not supported by the C++ runtime)");
  }
  const std::string& bytes = (*values.strings)[0];
  at::Tensor out = at::empty({static_cast<int64_t>(bytes.size())}, at::TensorOptions().dtype(at::kByte));
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(out.data_ptr<uint8_t>()));
  return {out};
}

// A tensor full of `value`; without `dtype`, an int value gives INT64 and a float FLOAT (as Caffe2).
Tensors constant_fill(const Tensors& in, const BoundArgs& args) {
  const std::vector<int64_t> shape = output_shape("ConstantFill", in, args);
  checked_numel("ConstantFill", "output", shape);
  const Value& value = args.value("value");
  const bool is_int = value.kind == Value::Kind::Int;
  const int64_t dtype = args.has("dtype") ? args.i("dtype") : (is_int ? 10 : 1);
  const at::Scalar fill = is_int ? at::Scalar(value.i) : at::Scalar(value.f);
  return {at::full(shape, fill,
                   at::TensorOptions().dtype(caffe2_scalar_type(dtype, "ConstantFill")).device(output_device(in)))};
}

bool fillable(const Value& v) {
  static const std::set<int64_t> types{1, 2, 3, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15};
  return v.is_none() || (v.kind == Value::Kind::Int && types.count(v.i) > 0);
}

}  // namespace

void register_fill_ops() {
  register_given_tensor_fill("GivenTensorFill", at::kFloat);
  register_given_tensor_fill("GivenTensorDoubleFill", at::kDouble);
  register_given_tensor_fill("GivenTensorIntFill", at::kInt);
  register_given_tensor_fill("GivenTensorInt64Fill", at::kLong);
  register_given_tensor_fill("GivenTensorBoolFill", at::kBool);

  std::vector<ArgSpec> string_args{RequiredList("values").where(
      [](const Value& v) { return v.kind == Value::Kind::Strings || v.list_size() == 0; }, "a list of strings")};
  for (ArgSpec& a : shape_args()) string_args.push_back(a);
  register_op({"GivenTensorStringFill", given_tensor_string_fill, string_args, {0, 1}});

  std::vector<ArgSpec> constant_args{Number("value", Value::of_float(0.0)),
                                     AnyValue("dtype", Value::none()).where(fillable, "a Caffe2 DataType number")};
  for (ArgSpec& a : shape_args()) constant_args.push_back(a);
  register_op({"ConstantFill", constant_fill, constant_args, {0, 1}});
}

}  // namespace c2rt
