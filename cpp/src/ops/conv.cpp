// Conv and ConvTranspose (SPEC 5.15): NCHW cross-correlation with zero padding, any pads (t, l, b, r).
#include "conv_pool_args.h"
#include "errors.h"
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

const std::set<std::string> kIgnored{"float16_compute", "cudnn_exhaustive_search", "training_mode", "is_test"};

ArgSpec group_arg() { return Int("group", 1).where(at_least(1), "an int >= 1"); }

// Returns the number of spatial dims after checking ranks: X (N, C, *S), filter of X's rank, bias 1-D.
int64_t check_inputs(const std::string& op, const Tensors& in) {
  check_rank(op, "X", in[0], {3, 4, 5});
  check_rank(op, "filter", in[1], {in[0].dim()});
  if (in.size() > 2) check_rank(op, "bias", in[2], {1});
  return in[0].dim() - 2;
}

void check_kernel(const std::string& op, const Geometry& geo, const at::Tensor& w) {
  if (geo.kernel && w.sizes().slice(2).vec() != *geo.kernel) {
    throw OperatorInputError(op + ": filter shape=" + shape_of(w) + ", expected spatial dims " + ints_str(*geo.kernel) +
                             " (kernels)");
  }
}

void check_bias(const std::string& op, const Tensors& in, int64_t n_out) {
  if (in.size() > 2 && in[2].size(0) != n_out) {
    throw OperatorInputError(op + ": bias shape=" + shape_of(in[2]) + ", expected (" + std::to_string(n_out) + ",)");
  }
}

at::Tensor convolve(int64_t nd, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                    const std::vector<int64_t>& stride, const std::vector<int64_t>& pad,
                    const std::vector<int64_t>& dilation, int64_t group) {
  if (nd == 1) return at::conv1d(x, w, b, stride, pad, dilation, group);
  if (nd == 2) return at::conv2d(x, w, b, stride, pad, dilation, group);
  return at::conv3d(x, w, b, stride, pad, dilation, group);
}

Tensors conv(const Tensors& in, const BoundArgs& args) {
  const int64_t nd = check_inputs("Conv", in);
  const Geometry geo = resolve_geometry("Conv", nd, args);
  const at::Tensor& x = in[0];
  const at::Tensor& w = in[1];
  const int64_t group = args.i("group");
  check_kernel("Conv", geo, w);
  if (x.size(1) != w.size(1) * group || w.size(0) % group) {
    throw OperatorInputError("Conv: X shape=" + shape_of(x) + ", filter shape=" + shape_of(w) +
                             ", group=" + std::to_string(group) +
                             ": expected X channels = filter dim 1 * group and filter dim 0 divisible by group");
  }
  check_bias("Conv", in, w.size(0));
  const at::Tensor b = in.size() > 2 ? in[2] : at::Tensor();
  if (geo.symmetric_pads()) return {convolve(nd, x, w, b, geo.stride, geo.pad_begin, geo.dilation, group)};
  const std::vector<int64_t> no_pad(nd, 0);
  return {convolve(nd, at::constant_pad_nd(x, geo.torch_pad()), w, b, geo.stride, no_pad, geo.dilation, group)};
}

// Y (N, M, *S'), S' = (S - 1) * stride - pad_begin - pad_end + K + adj.
Tensors conv_transpose(const Tensors& in, const BoundArgs& args) {
  const int64_t nd = check_inputs("ConvTranspose", in);
  const Geometry geo = resolve_geometry("ConvTranspose", nd, args);
  const at::Tensor& x = in[0];
  const at::Tensor& w = in[1];
  const int64_t group = args.i("group");
  check_kernel("ConvTranspose", geo, w);
  if (x.size(1) != w.size(0) || w.size(0) % group) {
    throw OperatorInputError("ConvTranspose: X shape=" + shape_of(x) + ", filter shape=" + shape_of(w) +
                             ", group=" + std::to_string(group) +
                             ": expected X channels = filter dim 0, divisible by group");
  }
  check_bias("ConvTranspose", in, w.size(1) * group);
  for (int64_t d = 0; d < nd; ++d) {
    if (geo.adj[d] >= geo.stride[d]) {
      throw OperatorInputError("ConvTranspose: adjs=" + ints_str(geo.adj) + ", expected each < its stride " +
                               ints_str(geo.stride));
    }
  }
  const std::vector<int64_t> zeros(nd, 0), ones(nd, 1);
  at::Tensor full;
  if (nd == 1) full = at::conv_transpose1d(x, w, {}, geo.stride, zeros, zeros, group, ones);
  else if (nd == 2) full = at::conv_transpose2d(x, w, {}, geo.stride, zeros, zeros, group, ones);
  else full = at::conv_transpose3d(x, w, {}, geo.stride, zeros, zeros, group, ones);
  // Crop pad_begin / pad_end and append adj zero rows at the end of each spatial dim.
  std::vector<int64_t> crop;
  for (int64_t d = nd; d-- > 0;) {
    crop.push_back(-geo.pad_begin[d]);
    crop.push_back(geo.adj[d] - geo.pad_end[d]);
  }
  at::Tensor y = at::constant_pad_nd(full, crop);
  for (int64_t d = 2; d < y.dim(); ++d) {
    if (y.size(d) <= 0) {
      throw OperatorInputError("ConvTranspose: output spatial shape=" + shape_str(y.sizes().slice(2).vec()) +
                               ", expected positive sizes (pads too large)");
    }
  }
  if (in.size() > 2) {
    std::vector<int64_t> bias_shape(y.dim(), 1);
    bias_shape[1] = -1;
    y = y + in[2].reshape(bias_shape);
  }
  return {y};
}

std::vector<ArgSpec> with_group(std::vector<ArgSpec> args) {
  args.push_back(group_arg());
  return args;
}

}  // namespace

void register_conv_ops() {
  register_op({"Conv", conv, with_group(geometry_args({"kernel", "stride", "pad", "dilation"})), {2, 3}, {1, 1}, kIgnored});
  register_op({"ConvTranspose", conv_transpose, with_group(geometry_args({"kernel", "stride", "pad", "adj"})), {2, 3},
               {1, 1}, kIgnored});
}

}  // namespace c2rt
