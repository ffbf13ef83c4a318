// MaxPool and AveragePool (SPEC 5.15), NCHW, floor-mode output size.
//
// Padding never wins a max and, unless count_include_pad=1, is not counted in an average (Caffe2's
// defaults); global_pooling=1 pools all spatial positions.
#include <limits>

#include "conv_pool_args.h"
#include "errors.h"
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

const std::set<std::string> kIgnored{"cudnn_exhaustive_search", "deterministic"};

std::vector<ArgSpec> pool_args() {
  std::vector<ArgSpec> args = geometry_args({"kernel", "stride", "pad", "dilation"});
  args.push_back(Bool("global_pooling", false));
  return args;
}

std::vector<int64_t> spatial_dims(const at::Tensor& x) {
  std::vector<int64_t> dims;
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

// nullopt for global pooling.
std::optional<Geometry> pool_geometry(const std::string& op, const at::Tensor& x, const BoundArgs& args) {
  check_rank(op, "X", x, {3, 4, 5});
  Geometry geo = resolve_geometry(op, x.dim() - 2, args);
  if (args.b("global_pooling")) return std::nullopt;
  if (!geo.kernel) {
    throw OperatorArgumentError(op + ": no kernel/kernels argument, expected one unless global_pooling=1");
  }
  if (geo.dilation != std::vector<int64_t>(geo.kernel->size(), 1)) {
    throw OperatorArgumentError(op + ": dilations=" + ints_str(geo.dilation) + ", expected all 1");
  }
  for (size_t d = 0; d < geo.kernel->size(); ++d) {
    if (x.size(d + 2) + geo.pad_begin[d] + geo.pad_end[d] < (*geo.kernel)[d]) {
      std::vector<int64_t> pads = geo.pad_begin;
      pads.insert(pads.end(), geo.pad_end.begin(), geo.pad_end.end());
      throw OperatorInputError(op + ": X shape=" + shape_of(x) + " with pads " + ints_str(pads) +
                               " is smaller than kernel " + ints_str(*geo.kernel));
    }
  }
  return geo;
}

bool torch_can_pad(const Geometry& geo) {
  if (!geo.symmetric_pads()) return false;
  for (size_t d = 0; d < geo.pad_begin.size(); ++d) {
    if (geo.pad_begin[d] > (*geo.kernel)[d] / 2) return false;
  }
  return true;
}

at::Tensor max_pool(const at::Tensor& x, const std::vector<int64_t>& k, const std::vector<int64_t>& s,
                    const std::vector<int64_t>& p) {
  const std::vector<int64_t> dilation(k.size(), 1);
  if (x.dim() == 3) return at::max_pool1d(x, k, s, p, dilation, false);
  if (x.dim() == 4) return at::max_pool2d(x, k, s, p, dilation, false);
  return at::max_pool3d(x, k, s, p, dilation, false);
}

at::Tensor avg_pool(const at::Tensor& x, const std::vector<int64_t>& k, const std::vector<int64_t>& s,
                    const std::vector<int64_t>& p, bool count_include_pad) {
  if (x.dim() == 3) return at::avg_pool1d(x, k, s, p, false, count_include_pad);
  if (x.dim() == 4) return at::avg_pool2d(x, k, s, p, false, count_include_pad);
  return at::avg_pool3d(x, k, s, p, false, count_include_pad);
}

Tensors max_pool_op(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  const std::optional<Geometry> geo = pool_geometry("MaxPool", x, args);
  if (!geo) return {at::amax(x, spatial_dims(x), true)};
  if (torch_can_pad(*geo)) return {max_pool(x, *geo->kernel, geo->stride, geo->pad_begin)};
  const at::Tensor padded = at::constant_pad_nd(x, geo->torch_pad(), -std::numeric_limits<double>::infinity());
  return {max_pool(padded, *geo->kernel, geo->stride, std::vector<int64_t>(geo->kernel->size(), 0))};
}

Tensors average_pool_op(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  const bool count_include_pad = args.b("count_include_pad");
  const std::optional<Geometry> geo = pool_geometry("AveragePool", x, args);
  if (!geo) return {at::mean(x, spatial_dims(x), true)};
  if (torch_can_pad(*geo)) return {avg_pool(x, *geo->kernel, geo->stride, geo->pad_begin, count_include_pad)};
  const std::vector<int64_t> no_pad(geo->kernel->size(), 0);
  const at::Tensor padded = avg_pool(at::constant_pad_nd(x, geo->torch_pad()), *geo->kernel, geo->stride, no_pad, true);
  if (count_include_pad) return {padded};
  const at::Tensor valid = at::constant_pad_nd(at::ones_like(x.narrow(0, 0, 1).narrow(1, 0, 1)), geo->torch_pad());
  return {padded / avg_pool(valid, *geo->kernel, geo->stride, no_pad, true)};
}

}  // namespace

void register_pool_ops() {
  register_op({"MaxPool", max_pool_op, pool_args(), {1, 1}, {1, 1}, kIgnored});
  std::vector<ArgSpec> avg_args = pool_args();
  avg_args.push_back(Bool("count_include_pad", false));
  register_op({"AveragePool", average_pool_op, avg_args, {1, 1}, {1, 1}, kIgnored});
}

}  // namespace c2rt
