// Element-wise ops (SPEC 5.15): binary arithmetic and comparisons with Caffe2's broadcast arguments,
// unary math, Sum/Max/Min, LeakyRelu, Pow, Clip, Scale, Softmax and Dropout (inference).
//
// Binary ops: broadcast=0 is NumPy multidirectional broadcasting; broadcast=1 is Caffe2's legacy rule:
// B's shape (ignoring its leading and trailing 1s) must equal a contiguous block of A's dims starting
// at `axis` (default: B aligned to A's suffix), and the result has A's shape.
#include <cmath>
#include <limits>

#include "errors.h"
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

using Binary = at::Tensor (*)(const at::Tensor&, const at::Tensor&);
using Unary = at::Tensor (*)(const at::Tensor&);

std::vector<ArgSpec> broadcast_args() {
  return {
      Bool("broadcast", false),
      Int("axis", -1),
      Str("axis_str", "").where(one_of({""}), "'' (named axes are not supported)"),
      Str("order", "NCHW").where(one_of({"NCHW"}), "'NCHW'"),
  };
}

// B reshaped so that plain broadcasting against A implements Caffe2's broadcast=1 rule.
at::Tensor legacy_broadcast(const std::string& op, const at::Tensor& a, const at::Tensor& b, int64_t axis) {
  if (b.dim() > a.dim()) {
    throw OperatorInputError(op + ": B shape=" + shape_of(b) + " has more dims than A shape=" + shape_of(a) +
                             ", expected at most as many with broadcast=1");
  }
  if (axis == -1) axis = a.dim() - b.dim();
  if (axis < 0 || axis > a.dim() - b.dim()) {
    throw OperatorInputError(op + ": axis=" + std::to_string(axis) + ", expected in [0, " +
                             std::to_string(a.dim() - b.dim()) + "] for A shape=" + shape_of(a) +
                             ", B shape=" + shape_of(b));
  }
  const std::vector<int64_t> dims = dims_of(b);
  int64_t start = 0;
  while (start < static_cast<int64_t>(dims.size()) && dims[start] == 1) ++start;
  int64_t end = static_cast<int64_t>(dims.size()) - 1;
  while (end >= 0 && dims[end] == 1) --end;
  for (int64_t k = start; k <= end; ++k) {
    if (dims[k] != a.size(axis + k)) {
      throw OperatorInputError(op + ": B shape=" + shape_of(b) + " does not match A shape=" + shape_of(a) +
                               " at axis " + std::to_string(axis) + " (broadcast=1)");
    }
  }
  std::vector<int64_t> shape(axis, 1);
  shape.insert(shape.end(), dims.begin(), dims.end());
  shape.resize(a.dim(), 1);
  return b.reshape(shape);
}

at::Tensor divide(const at::Tensor& a, const at::Tensor& b) {
  if (a.is_floating_point() || b.is_floating_point()) return at::div(a, b);
  return at::div(a, b, "trunc");  // C++ integer division
}

at::Tensor add(const at::Tensor& a, const at::Tensor& b) { return at::add(a, b); }
at::Tensor sub(const at::Tensor& a, const at::Tensor& b) { return at::sub(a, b); }
at::Tensor mul(const at::Tensor& a, const at::Tensor& b) { return at::mul(a, b); }
at::Tensor eq(const at::Tensor& a, const at::Tensor& b) { return at::eq(a, b); }
at::Tensor ne(const at::Tensor& a, const at::Tensor& b) { return at::ne(a, b); }
at::Tensor lt(const at::Tensor& a, const at::Tensor& b) { return at::lt(a, b); }
at::Tensor le(const at::Tensor& a, const at::Tensor& b) { return at::le(a, b); }
at::Tensor gt(const at::Tensor& a, const at::Tensor& b) { return at::gt(a, b); }
at::Tensor ge(const at::Tensor& a, const at::Tensor& b) { return at::ge(a, b); }
at::Tensor logical_and(const at::Tensor& a, const at::Tensor& b) { return at::logical_and(a, b); }
at::Tensor logical_or(const at::Tensor& a, const at::Tensor& b) { return at::logical_or(a, b); }
at::Tensor logical_xor(const at::Tensor& a, const at::Tensor& b) { return at::logical_xor(a, b); }
at::Tensor maximum(const at::Tensor& a, const at::Tensor& b) { return at::maximum(a, b); }
at::Tensor minimum(const at::Tensor& a, const at::Tensor& b) { return at::minimum(a, b); }

void register_binary(const std::string& type, Binary fn) {
  OpFn op = [type, fn](const Tensors& in, const BoundArgs& args) -> Tensors {
    at::Tensor b = in[1];
    if (args.b("broadcast")) b = legacy_broadcast(type, in[0], b, args.i("axis"));
    return {fn(in[0], b)};
  };
  register_op({type, op, broadcast_args(), {2, 2}});
}

at::Tensor relu(const at::Tensor& x) { return at::relu(x); }
at::Tensor sigmoid(const at::Tensor& x) { return at::sigmoid(x); }
at::Tensor tanh(const at::Tensor& x) { return at::tanh(x); }
at::Tensor exp(const at::Tensor& x) { return at::exp(x); }
at::Tensor log(const at::Tensor& x) { return at::log(x); }
at::Tensor sqrt(const at::Tensor& x) { return at::sqrt(x); }
at::Tensor square(const at::Tensor& x) { return at::square(x); }
at::Tensor negative(const at::Tensor& x) { return at::neg(x); }
at::Tensor abs(const at::Tensor& x) { return at::abs(x); }
at::Tensor logical_not(const at::Tensor& x) { return at::logical_not(x); }
at::Tensor reciprocal(const at::Tensor& x) { return at::reciprocal(x); }
at::Tensor floor(const at::Tensor& x) { return at::floor(x); }
at::Tensor ceil(const at::Tensor& x) { return at::ceil(x); }
at::Tensor sign(const at::Tensor& x) { return at::sign(x); }

void register_unary(const std::string& type, Unary fn) {
  register_op({type, [fn](const Tensors& in, const BoundArgs&) -> Tensors { return {fn(in[0])}; }});
}

// Element-wise fold of inputs of one shape.
void register_variadic(const std::string& type, Binary fn) {
  OpFn op = [type, fn](const Tensors& in, const BoundArgs&) -> Tensors {
    at::Tensor out = in[0];
    for (size_t k = 1; k < in.size(); ++k) {
      if (in[k].sizes() != in[0].sizes()) {
        throw OperatorInputError(type + ": input " + std::to_string(k) + " shape=" + shape_of(in[k]) + ", expected " +
                                 shape_of(in[0]) + " like input 0");
      }
      out = fn(out, in[k]);
    }
    return {out};
  };
  register_op({type, op, {}, {1, kUnbounded}});
}

at::Scalar scalar_of(const Value& v) {
  return v.kind == Value::Kind::Int ? at::Scalar(v.i) : at::Scalar(v.f);
}

Tensors leaky_relu(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  return {at::where(x >= 0, x, x * args.f("alpha"))};
}

// X ** exponent (argument) or X ** E (second input, with the binary broadcast rules).
Tensors pow(const Tensors& in, const BoundArgs& args) {
  const bool has_input = in.size() > 1;
  if (has_input == args.has("exponent")) {
    throw OperatorInputError(std::string("Pow: ") + (has_input ? "both" : "neither") +
                             " exponent argument and exponent input given, expected exactly one");
  }
  if (!has_input) return {at::pow(in[0], scalar_of(args.value("exponent")))};
  at::Tensor e = in[1];
  if (args.b("broadcast")) e = legacy_broadcast("Pow", in[0], e, args.i("axis"));
  return {at::pow(in[0], e)};
}

Tensors clip(const Tensors& in, const BoundArgs& args) {
  return {at::clamp(in[0], scalar_of(args.value("min")), scalar_of(args.value("max")))};
}

Tensors scale(const Tensors& in, const BoundArgs& args) { return {in[0] * args.f("scale")}; }

// X viewed as (prod(dims[:axis]), prod(dims[axis:])), softmax of each row.
Tensors softmax(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  const int64_t axis = normalize_axis("Softmax", args.i("axis"), std::max<int64_t>(x.dim(), 1));
  const int64_t rows = prod(dims_of(x), 0, static_cast<size_t>(axis));
  return {at::softmax(x.reshape({rows, -1}), 1).reshape(x.sizes())};
}

// Identity at test time; the optional mask output is all true.
Tensors dropout(const Tensors& in, const BoundArgs&) {
  return {in[0], at::ones_like(in[0], at::TensorOptions().dtype(at::kBool))};
}

}  // namespace

void register_elementwise_ops() {
  register_binary("Add", add);
  register_binary("Sub", sub);
  register_binary("Mul", mul);
  register_binary("Div", divide);
  register_binary("EQ", eq);
  register_binary("NE", ne);
  register_binary("LT", lt);
  register_binary("LE", le);
  register_binary("GT", gt);
  register_binary("GE", ge);
  register_binary("And", logical_and);
  register_binary("Or", logical_or);
  register_binary("Xor", logical_xor);

  register_unary("Relu", relu);
  register_unary("Sigmoid", sigmoid);
  register_unary("Tanh", tanh);
  register_unary("Exp", exp);
  register_unary("Log", log);
  register_unary("Sqrt", sqrt);
  register_unary("Sqr", square);
  register_unary("Negative", negative);
  register_unary("Abs", abs);
  register_unary("Not", logical_not);
  register_unary("Reciprocal", reciprocal);
  register_unary("Floor", floor);
  register_unary("Ceil", ceil);
  register_unary("Sign", sign);

  register_variadic("Sum", add);
  register_variadic("Max", maximum);
  register_variadic("Min", minimum);

  register_op({"LeakyRelu", leaky_relu, {Float("alpha", 0.01)}});
  std::vector<ArgSpec> pow_args{Number("exponent", Value::none())};
  for (ArgSpec& a : broadcast_args()) pow_args.push_back(a);
  register_op({"Pow", pow, pow_args, {1, 2}});
  const double inf = std::numeric_limits<double>::infinity();
  register_op({"Clip", clip, {Number("min", Value::of_float(-inf)), Number("max", Value::of_float(inf))}});
  register_op({"Scale", scale, {Float("scale", 1.0)}});
  register_op({"Softmax", softmax, {Int("axis", 1)}});
  register_op({"Dropout", dropout,
               {Float("ratio", 0.5).where([](const Value& v) { return v.f >= 0 && v.f < 1; }, "in [0, 1)"),
                Bool("is_test", false).where(is_true(), "1 (inference only)")},
               {1, 1},
               {1, 2}});
}

}  // namespace c2rt
