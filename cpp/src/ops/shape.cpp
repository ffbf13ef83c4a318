// Shape and indexing ops (SPEC 5.15): Reshape, Flatten, Concat, Split, Transpose, Squeeze, ExpandDims,
// Shape, Slice, Gather, BatchGather, ScatterAssign, Cast, NumpyTile, Expand.
#include <algorithm>
#include <numeric>
#include <set>

#include "errors.h"
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

// Caffe2's Reshape rule: 0 copies the input dim at that position, one -1 is inferred.
std::vector<int64_t> inferred_shape(const std::vector<int64_t>& in_shape, const std::vector<int64_t>& shape) {
  std::vector<int64_t> out;
  for (size_t k = 0; k < shape.size(); ++k) {
    int64_t d = shape[k];
    if (d == 0) {
      if (k >= in_shape.size()) {
        throw OperatorArgumentError("Reshape: shape=" + ints_str(shape) + " has 0 at position " + std::to_string(k) +
                                    ", expected a position < input rank " + std::to_string(in_shape.size()));
      }
      d = in_shape[k];
    } else if (d < -1) {
      throw OperatorArgumentError("Reshape: shape=" + ints_str(shape) + ", expected dims >= -1");
    }
    out.push_back(d);
  }
  if (std::count(out.begin(), out.end(), -1) > 1) {
    throw OperatorArgumentError("Reshape: shape=" + ints_str(shape) + ", expected at most one -1");
  }
  const int64_t total = prod(in_shape, 0, in_shape.size());
  auto unknown = std::find(out.begin(), out.end(), -1);
  if (unknown != out.end()) {
    int64_t known = 1;
    for (int64_t d : out) known *= d == -1 ? 1 : d;
    if (known == 0 || total % known) {
      throw OperatorInputError("Reshape: cannot infer -1 in shape=" + ints_str(shape) + " for input shape " +
                               ints_str(in_shape));
    }
    *unknown = total / known;
  }
  if (prod(out, 0, out.size()) != total) {
    throw OperatorInputError("Reshape: shape=" + ints_str(out) + " has " + std::to_string(prod(out, 0, out.size())) +
                             " elements, input shape " + ints_str(in_shape) + " has " + std::to_string(total));
  }
  return out;
}

at::Tensor int64_tensor(const std::vector<int64_t>& values) {
  return at::tensor(values, at::TensorOptions().dtype(at::kLong));
}

// Y = X reshaped to `shape` (argument or second input); old_shape = X's dims as int64.
Tensors reshape(const Tensors& in, const BoundArgs& args) {
  const bool has_input = in.size() > 1;
  if (has_input == args.has("shape")) {
    throw OperatorArgumentError("Reshape: expected exactly one of the shape argument and the new_shape input");
  }
  const std::vector<int64_t> target = has_input ? int_values("Reshape", "new_shape", in[1]) : args.ints("shape");
  const std::vector<int64_t> old_shape = dims_of(in[0]);
  return {in[0].reshape(inferred_shape(old_shape, target)), int64_tensor(old_shape)};
}

Tensors flatten(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  const int64_t a = normalize_axis("Flatten", args.i("axis"), x.dim(), true);
  const std::vector<int64_t> dims = dims_of(x);
  return {x.reshape({prod(dims, 0, a), prod(dims, a, dims.size())})};
}

int64_t concat_axis(const std::string& op, const BoundArgs& args) {
  if (args.has("axis") && args.has("order")) {
    throw OperatorArgumentError(op + ": both axis=" + std::to_string(args.i("axis")) + " and order='" +
                                args.s("order") + "' given, expected one");
  }
  if (args.has("order")) return args.s("order") == "NCHW" ? 1 : 3;
  return args.has("axis") ? args.i("axis") : 1;
}

ArgSpec layout_order_arg() { return StrOrNone("order").where(one_of({"NCHW", "NHWC"}), "'NCHW' or 'NHWC'"); }

// Inputs joined along `axis` (stacked on a new axis if add_axis); split_info = int32 sizes.
Tensors concat(const Tensors& in, const BoundArgs& args) {
  const bool add_axis = args.b("add_axis");
  const int64_t a = normalize_axis("Concat", concat_axis("Concat", args), in[0].dim(), add_axis);
  const auto int32 = at::TensorOptions().dtype(at::kInt);
  if (add_axis) return {at::stack(in, a), at::ones({static_cast<int64_t>(in.size())}, int32)};
  std::vector<int64_t> sizes;
  for (const at::Tensor& x : in) sizes.push_back(x.dim() > a ? x.size(a) : 0);
  return {at::cat(in, a), int64_tensor(sizes).to(at::kInt)};
}

// X cut along `axis` into pieces of `split` sizes (argument or input).
Tensors split(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  const int64_t a = normalize_axis("Split", concat_axis("Split", args), x.dim());
  if (in.size() > 1 && args.has("split")) {
    throw OperatorArgumentError("Split: both the split argument and the split input given, expected one");
  }
  if (in.size() == 1 && !args.has("split")) {
    throw OperatorArgumentError("Split: no split argument or input, expected the sizes of the pieces");
  }
  const std::vector<int64_t> parts = in.size() > 1 ? int_values("Split", "split", in[1]) : args.ints("split");
  const int64_t total = std::accumulate(parts.begin(), parts.end(), int64_t{0});
  if (total != x.size(a)) {
    throw OperatorInputError("Split: split=" + ints_str(parts) + " sums to " + std::to_string(total) +
                             ", expected X.shape[" + std::to_string(a) + "]=" + std::to_string(x.size(a)));
  }
  Tensors pieces = at::split_with_sizes(x, parts, a);
  if (args.b("add_axis")) {
    for (at::Tensor& p : pieces) p = p.squeeze(a);
  }
  return pieces;
}

// Dims permuted by `axes` (default: reversed).
Tensors transpose(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  std::vector<int64_t> perm(x.dim());
  std::iota(perm.rbegin(), perm.rend(), 0);
  if (args.has("axes")) perm = args.ints("axes");
  std::vector<int64_t> sorted = perm, expected(x.dim());
  std::sort(sorted.begin(), sorted.end());
  std::iota(expected.begin(), expected.end(), 0);
  if (sorted != expected) {
    throw OperatorArgumentError("Transpose: axes=" + ints_str(perm) + ", expected a permutation of " +
                                ints_str(expected));
  }
  return {x.permute(perm)};
}

// Removes the listed size-1 dims.
Tensors squeeze(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  const std::vector<int64_t> dims = args.ints("dims");
  const std::set<int64_t> drop(dims.begin(), dims.end());
  for (int64_t d : drop) {
    if (d >= x.dim() || x.size(d) != 1) {
      throw OperatorInputError("Squeeze: dims=" + ints_str(dims) + ", X shape=" + shape_of(x) + ": dim " +
                               std::to_string(d) + " is not of size 1");
    }
  }
  std::vector<int64_t> shape;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (!drop.count(d)) shape.push_back(x.size(d));
  }
  return {x.reshape(shape)};
}

// Inserts size-1 dims at the listed output positions (in increasing order).
Tensors expand_dims(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  const std::vector<int64_t> dims = args.ints("dims");
  std::vector<int64_t> shape = dims_of(x);
  for (int64_t d : std::set<int64_t>(dims.begin(), dims.end())) {
    if (d > static_cast<int64_t>(shape.size())) {
      throw OperatorInputError("ExpandDims: dims=" + ints_str(dims) + ", X shape=" + shape_of(x) +
                               ": cannot insert at " + std::to_string(d));
    }
    shape.insert(shape.begin() + d, 1);
  }
  return {x.reshape(shape)};
}

// X's dims as int64 (only those listed in `axes` if given).
Tensors shape(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  std::vector<int64_t> dims = dims_of(x);
  if (args.has("axes")) {
    std::vector<int64_t> picked;
    for (int64_t a : args.ints("axes")) picked.push_back(dims[normalize_axis("Shape", a, x.dim())]);
    dims = picked;
  }
  return {int64_tensor(dims)};
}

// X[starts:ends] per leading dim, step 1; a negative index i means dim + 1 + i (so -1 = the end).
Tensors slice(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  if (in.size() == 2) {
    throw OperatorInputError("Slice: 2 inputs, expected 1 (starts/ends arguments) or 3 (starts and ends inputs)");
  }
  std::vector<int64_t> starts, ends;
  if (in.size() == 3) {
    if (args.has("starts") || args.has("ends")) {
      throw OperatorArgumentError("Slice: starts/ends given both as inputs and as arguments, expected one");
    }
    starts = int_values("Slice", "starts", in[1]);
    ends = int_values("Slice", "ends", in[2]);
  } else {
    if (!args.has("starts") || !args.has("ends")) {
      throw OperatorArgumentError("Slice: starts and ends missing, expected them as arguments or inputs");
    }
    starts = args.ints("starts");
    ends = args.ints("ends");
  }
  if (starts.size() != ends.size() || static_cast<int64_t>(starts.size()) > x.dim()) {
    throw OperatorInputError("Slice: starts=" + ints_str(starts) + ", ends=" + ints_str(ends) +
                             ", expected equal lengths <= X rank " + std::to_string(x.dim()));
  }
  at::Tensor y = x;
  for (size_t d = 0; d < starts.size(); ++d) {
    const int64_t size = x.size(d);
    const int64_t s = std::min(starts[d] < 0 ? size + 1 + starts[d] : starts[d], size);
    const int64_t e = std::min(ends[d] < 0 ? size + 1 + ends[d] : ends[d], size);
    if (s < 0 || e < s) {
      throw OperatorInputError("Slice: dim " + std::to_string(d) + " of size " + std::to_string(size) +
                               ": start=" + std::to_string(starts[d]) + ", end=" + std::to_string(ends[d]) + " give [" +
                               std::to_string(s) + ", " + std::to_string(e) + "), expected 0 <= start <= end");
    }
    y = y.slice(d, s, e);
  }
  return {y};
}

at::Tensor checked_indices(const std::string& op, const at::Tensor& idx, int64_t size, bool wrap) {
  if (idx.scalar_type() != at::kInt && idx.scalar_type() != at::kLong) {
    throw OperatorInputError(op + ": indices dtype=" + std::string(c10::toString(idx.scalar_type())) +
                             ", expected int32 or int64");
  }
  const int64_t lo = wrap ? -size : 0;
  if (idx.numel()) {
    const int64_t min = idx.min().item<int64_t>();
    const int64_t max = idx.max().item<int64_t>();
    if (min < lo || max >= size) {
      throw OperatorInputError(op + ": indices in [" + std::to_string(min) + ", " + std::to_string(max) +
                               "], expected in [" + std::to_string(lo) + ", " + std::to_string(size) + ")");
    }
  }
  at::Tensor long_idx = idx.to(at::kLong);
  return wrap ? at::where(long_idx < 0, long_idx + size, long_idx) : long_idx;
}

// data indexed along `axis`: shape dims[:axis] + indices.shape + dims[axis+1:].
Tensors gather(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& data = in[0];
  const at::Tensor& indices = in[1];
  const int64_t a = normalize_axis("Gather", args.i("axis"), data.dim());
  const at::Tensor idx = checked_indices("Gather", indices, data.size(a), args.b("wrap_indices"));
  std::vector<int64_t> shape(data.sizes().begin(), data.sizes().begin() + a);
  for (int64_t d : indices.sizes()) shape.push_back(d);
  shape.insert(shape.end(), data.sizes().begin() + a + 1, data.sizes().end());
  return {data.index_select(a, idx.reshape(-1)).reshape(shape)};
}

// data (B, N, ...) indexed along axis 1: (B, *indices.shape, ...).
Tensors batch_gather(const Tensors& in, const BoundArgs&) {
  const at::Tensor& data = in[0];
  const at::Tensor& indices = in[1];
  check_rank("BatchGather", "data", data, {2, 3, 4, 5, 6, 7, 8});
  const at::Tensor idx = checked_indices("BatchGather", indices, data.size(1), false);
  std::vector<int64_t> shape{data.size(0)};
  for (int64_t d : indices.sizes()) shape.push_back(d);
  shape.insert(shape.end(), data.sizes().begin() + 2, data.sizes().end());
  return {data.index_select(1, idx.reshape(-1)).reshape(shape)};
}

// A copy of data with data[indices[i]] = slices[i].
Tensors scatter_assign(const Tensors& in, const BoundArgs&) {
  const at::Tensor& data = in[0];
  const at::Tensor& slices = in[2];
  const at::Tensor idx = checked_indices("ScatterAssign", in[1], data.dim() ? data.size(0) : 0, false);
  check_rank("ScatterAssign", "indices", idx, {1});
  std::vector<int64_t> expected{idx.size(0)};
  expected.insert(expected.end(), data.sizes().begin() + 1, data.sizes().end());
  if (dims_of(slices) != expected || slices.scalar_type() != data.scalar_type()) {
    throw OperatorInputError("ScatterAssign: slices shape=" + shape_of(slices) + " dtype=" +
                             std::string(c10::toString(slices.scalar_type())) + ", expected " + shape_str(expected) +
                             " " + std::string(c10::toString(data.scalar_type())));
  }
  at::Tensor out = data.clone();
  out.index_put_({idx}, slices);
  return {out};
}

// X converted to Caffe2 DataType `to` (floats to ints truncate toward zero, as C++).
Tensors cast(const Tensors& in, const BoundArgs& args) {
  return {in[0].to(caffe2_scalar_type(args.i("to"), "Cast"))};
}

// numpy.tile(X, repeats) with one repeat count per dim of X.
Tensors numpy_tile(const Tensors& in, const BoundArgs&) {
  const std::vector<int64_t> reps = int_values("NumpyTile", "repeats", in[1]);
  if (static_cast<int64_t>(reps.size()) != in[0].dim() ||
      std::any_of(reps.begin(), reps.end(), [](int64_t r) { return r < 0; })) {
    throw OperatorInputError("NumpyTile: repeats=" + ints_str(reps) + ", expected " + std::to_string(in[0].dim()) +
                             " non-negative counts (one per dim of X)");
  }
  // the output has prod(X dims) * prod(repeats) elements
  std::vector<int64_t> factors = dims_of(in[0]);
  factors.insert(factors.end(), reps.begin(), reps.end());
  checked_numel("NumpyTile", "(X dims, repeats)", factors);
  return {in[0].repeat(reps)};
}

// X broadcast (numpy rules) with `shape`; the output has the broadcast shape.
Tensors expand(const Tensors& in, const BoundArgs&) {
  const std::vector<int64_t> target = int_values("Expand", "shape", in[1]);
  return {in[0].expand(at::infer_size(in[0].sizes(), target))};
}

}  // namespace

void register_shape_ops() {
  register_op({"Reshape", reshape, {IntListOrNone("shape")}, {1, 2}, {1, 2}});
  register_op({"Flatten", flatten, {Int("axis", 1)}});
  register_op({"Concat", concat, {IntOrNone("axis"), layout_order_arg(), Bool("add_axis", false)}, {1, kUnbounded}, {1, 2}});
  register_op({"Split", split,
               {IntOrNone("axis"), layout_order_arg(), IntListOrNone("split", 0), Bool("add_axis", false)},
               {1, 2},
               {1, kUnbounded}});
  register_op({"Transpose", transpose, {IntListOrNone("axes", 0)}});
  register_op({"Squeeze", squeeze, {RequiredIntList("dims", 0)}});
  register_op({"ExpandDims", expand_dims, {RequiredIntList("dims", 0)}});
  register_op({"Shape", shape, {IntListOrNone("axes")}});
  register_op({"Slice", slice, {IntListOrNone("starts"), IntListOrNone("ends")}, {1, 3}});
  register_op({"Gather", gather,
               {Int("axis", 0), Bool("match_outer", false).where([](const Value& v) { return !v.b; }, "0"),
                Bool("wrap_indices", false)},
               {2, 2}});
  register_op({"BatchGather", batch_gather, {}, {2, 2}});
  register_op({"ScatterAssign", scatter_assign, {}, {3, 3}});
  register_op({"Cast", cast, {RequiredInt("to")}});
  register_op({"NumpyTile", numpy_tile, {}, {2, 2}});
  register_op({"Expand", expand, {}, {2, 2}});
}

}  // namespace c2rt
