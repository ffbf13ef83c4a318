// Matrix products (SPEC 5.15): FC, FCTransposed, MatMul, BatchMatMul.
#include "errors.h"
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

const std::set<std::string> kFcIgnored{"float16_compute", "enable_tensor_core", "use_cudnn"};

// x viewed as (prod(dims[:axis]), prod(dims[axis:])).
at::Tensor as_matrix(const std::string& op, const at::Tensor& x, int64_t axis) {
  const int64_t a = normalize_axis(op, axis, x.dim(), true);
  const std::vector<int64_t> dims = dims_of(x);
  return x.reshape({prod(dims, 0, a), prod(dims, a, dims.size())});
}

at::Tensor fully_connected(const std::string& op, const Tensors& in, const BoundArgs& args, bool transposed) {
  const at::Tensor& x = in[0];
  const at::Tensor& w = in[1];
  const at::Tensor& b = in[2];
  const int64_t axis = args.i("axis");
  const at::Tensor x2 = as_matrix(op, x, axis);
  at::Tensor w2 = as_matrix(op, w, args.i("axis_w"));
  if (transposed) w2 = w2.t();
  const int64_t n_out = w2.size(0);
  const int64_t k = w2.size(1);
  if (x2.size(1) != k) {
    throw OperatorInputError(op + ": X shape=" + shape_of(x) + " gives K=" + std::to_string(x2.size(1)) + " at axis " +
                             std::to_string(axis) + ", W shape=" + shape_of(w) + " expects K=" + std::to_string(k));
  }
  check_rank(op, "b", b, {1});
  if (b.size(0) != n_out) {
    throw OperatorInputError(op + ": b shape=" + shape_of(b) + ", expected (" + std::to_string(n_out) + ",)");
  }
  std::vector<int64_t> out_shape = dims_of(x);
  out_shape.resize(normalize_axis(op, axis, x.dim(), true));
  out_shape.push_back(n_out);
  return at::addmm(b, x2, w2.t()).reshape(out_shape);
}

Tensors fc(const Tensors& in, const BoundArgs& args) { return {fully_connected("FC", in, args, false)}; }

Tensors fc_transposed(const Tensors& in, const BoundArgs& args) {
  return {fully_connected("FCTransposed", in, args, true)};
}

Tensors matmul(const Tensors& in, const BoundArgs& args) {
  at::Tensor a2 = as_matrix("MatMul", in[0], args.i("axis_a"));
  at::Tensor b2 = as_matrix("MatMul", in[1], args.i("axis_b"));
  if (args.b("trans_a")) a2 = a2.t();
  if (args.b("trans_b")) b2 = b2.t();
  if (a2.size(1) != b2.size(0)) {
    throw OperatorInputError("MatMul: A shape=" + shape_of(in[0]) + ", B shape=" + shape_of(in[1]) + ": inner dims " +
                             std::to_string(a2.size(1)) + " != " + std::to_string(b2.size(0)));
  }
  return {at::matmul(a2, b2)};
}

// Matrix product over the last two dims; broadcast=1 follows numpy.matmul.
Tensors batch_matmul(const Tensors& in, const BoundArgs& args) {
  at::Tensor a = in[0];
  at::Tensor b = in[1];
  const bool batch_dims_equal =
      a.dim() >= 2 && a.dim() == b.dim() && a.sizes().slice(0, a.dim() - 2) == b.sizes().slice(0, b.dim() - 2);
  if (!args.b("broadcast") && !batch_dims_equal) {
    throw OperatorInputError("BatchMatMul: A shape=" + shape_of(a) + ", B shape=" + shape_of(b) +
                             ", expected equal batch dims (or broadcast=1)");
  }
  if (args.b("trans_a") && a.dim() >= 2) a = a.transpose(-1, -2);
  if (args.b("trans_b") && b.dim() >= 2) b = b.transpose(-1, -2);
  return {at::matmul(a, b)};
}

}  // namespace

void register_linear_ops() {
  const std::vector<ArgSpec> fc_args{Int("axis", 1), Int("axis_w", 1)};
  register_op({"FC", fc, fc_args, {3, 3}, {1, 1}, kFcIgnored});
  register_op({"FCTransposed", fc_transposed, fc_args, {3, 3}, {1, 1}, kFcIgnored});
  register_op({"MatMul", matmul,
               {Int("axis_a", 1), Int("axis_b", 1), Bool("trans_a", false), Bool("trans_b", false)},
               {2, 2}});
  register_op({"BatchMatMul", batch_matmul,
               {Bool("trans_a", false), Bool("trans_b", false), Bool("broadcast", false), Bool("use_scratch", false)},
               {2, 2}});
}

}  // namespace c2rt
