// PadImage (SPEC 5.15): spatial padding of an NCHW image, pads given as t, l, b, r.
#include "conv_pool_args.h"
#include "errors.h"
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

// X (N, C, H, W) -> (N, C, H + t + b, W + l + r); `reflect` mirrors without the edge, `edge` repeats it.
Tensors pad_image(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  check_rank("PadImage", "X", x, {4});
  const Geometry geo = resolve_geometry("PadImage", 2, args);
  if ((geo.kernel && *geo.kernel != std::vector<int64_t>{1, 1}) || geo.stride != std::vector<int64_t>{1, 1}) {
    throw OperatorArgumentError("PadImage: kernel=" + (geo.kernel ? ints_str(*geo.kernel) : std::string("None")) +
                                ", stride=" + ints_str(geo.stride) + ", expected 1 (padding only)");
  }
  const std::string& mode = args.s("mode");
  std::vector<int64_t> pads = geo.pad_begin;
  pads.insert(pads.end(), geo.pad_end.begin(), geo.pad_end.end());
  checked_numel("PadImage", "output", {x.size(0), x.size(1), x.size(2) + pads[0] + pads[2], x.size(3) + pads[1] + pads[3]});
  if (mode == "reflect") {
    const std::vector<int64_t> sizes{x.size(2), x.size(3), x.size(2), x.size(3)};
    for (size_t k = 0; k < 4; ++k) {
      if (pads[k] >= sizes[k]) {
        throw OperatorInputError("PadImage: pads " + ints_str(pads) +
                                 " with mode 'reflect', expected each < the padded dim of X shape=" + shape_of(x));
      }
    }
    return {at::reflection_pad2d(x, geo.torch_pad())};
  }
  if (mode == "edge") return {at::replication_pad2d(x, geo.torch_pad())};
  return {at::constant_pad_nd(x, geo.torch_pad(), args.f("value"))};
}

}  // namespace

void register_pad_ops() {
  std::vector<ArgSpec> args = geometry_args({"kernel", "stride", "pad"});
  args.push_back(Str("mode", "constant").where(one_of({"constant", "edge", "reflect"}),
                                               "one of ['constant', 'edge', 'reflect']"));
  args.push_back(Float("value", 0.0));
  register_op({"PadImage", pad_image, args});
}

}  // namespace c2rt
