// Spatial resizing ops: ResizeNearest, UpsampleNearest and UpsampleBilinear (SPEC 5.11).
//
// Scales are Caffe2 floats (float32); output sizes are int(size * scale) and source indices
// int(dst / scale). ResizeNearest and UpsampleBilinear accept an optional second input
// scales = [height_scale, width_scale] that overrides the arguments (the ONNX Upsample form).
// UpsampleBilinear is Caffe2's: source coordinate dst * (in - 1) / (out - 1) (align_corners=True).
#include <limits>

#include "errors.h"
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

struct Scales {
  double width, height;
};

void check_scales(const std::string& op, const Scales& s) {
  if (!(s.height > 0 && s.width > 0)) {
    throw OperatorInputError(op + ": (height_scale, width_scale)=(" + std::to_string(s.height) + ", " +
                             std::to_string(s.width) + "), expected positive floats");
  }
}

int64_t output_size(int64_t size, double scale) {
  const float scaled = static_cast<float>(size) * static_cast<float>(scale);
  // beyond this the cast is undefined; the size ceiling (checked_numel) refuses such outputs anyway
  return scaled < 9.0e18f ? static_cast<int64_t>(scaled) : std::numeric_limits<int64_t>::max();
}

// The output dims of X with its two spatial dims (h_axis, h_axis + 1) replaced, within the size ceiling.
void check_output(const std::string& op, const at::Tensor& x, int64_t h_axis, int64_t out_h, int64_t out_w) {
  std::vector<int64_t> dims = dims_of(x);
  dims[h_axis] = out_h;
  dims[h_axis + 1] = out_w;
  checked_numel(op, "output", dims);
}

at::Tensor nearest_index(int64_t in_size, int64_t out_size, double scale, const at::Device& device) {
  const at::Tensor src = at::arange(out_size, at::TensorOptions().dtype(at::kFloat).device(device)) /
                         static_cast<double>(static_cast<float>(scale));
  return at::clamp_max(src.to(at::kLong), in_size - 1);
}

// `scale` is 2**k (k >= 0) and out_size == in_size * scale exactly: then the source index dst / scale
// equals ATen's nearest index dst * (in / out), with the ratio exact in float.
bool power_of_two_upscale(int64_t in_size, int64_t out_size, double scale) {
  const auto k = static_cast<int64_t>(scale);
  return static_cast<double>(k) == scale && k >= 1 && (k & (k - 1)) == 0 && out_size == in_size * k;
}

Scales scales_of(const std::string& op, const Tensors& in, const BoundArgs& args) {
  if (in.size() < 2) return {args.f("width_scale"), args.f("height_scale")};
  const at::Tensor& values = in[1];
  if (values.dim() != 1 || values.numel() != 2) {
    throw OperatorInputError(op + ": scales shape=" + shape_of(values) + ", expected (2,) = [height_scale, width_scale]");
  }
  const at::Tensor v = values.to(at::kCPU, at::kFloat).to(at::kDouble);
  return {v[1].item<double>(), v[0].item<double>()};
}

Tensors resize_nearest(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  const std::string& order = args.s("order");
  const Scales s = scales_of("ResizeNearest", in, args);
  if (x.dim() != 4) throw OperatorInputError("ResizeNearest: X shape=" + shape_of(x) + ", expected 4-D (" + order + ")");
  check_scales("ResizeNearest", s);
  const int64_t h_axis = order == "NCHW" ? 2 : 1, w_axis = order == "NCHW" ? 3 : 2;
  const int64_t in_h = x.size(h_axis), in_w = x.size(w_axis);
  const int64_t out_h = output_size(in_h, s.height), out_w = output_size(in_w, s.width);
  check_output("ResizeNearest", x, h_axis, out_h, out_w);
  if (order == "NCHW" && x.is_floating_point() && power_of_two_upscale(in_h, out_h, s.height) &&
      power_of_two_upscale(in_w, out_w, s.width)) {
    // The same source indices in one kernel (FPN's top-down 2x upsampling), in any memory layout.
    return {at::upsample_nearest2d(x, {out_h, out_w})};
  }
  const at::Tensor rows = nearest_index(in_h, out_h, s.height, x.device());
  const at::Tensor cols = nearest_index(in_w, out_w, s.width, x.device());
  return {x.index_select(h_axis, rows).index_select(w_axis, cols)};
}

// Each of the last two dims' entries repeated `scale` times.
Tensors upsample_nearest(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  if (x.dim() != 3 && x.dim() != 4) {
    throw OperatorInputError("UpsampleNearest: X shape=" + shape_of(x) + ", expected 3-D or 4-D");
  }
  const int64_t scale = args.i("scale");
  check_output("UpsampleNearest", x, x.dim() - 2, output_size(x.size(-2), static_cast<double>(scale)),
               output_size(x.size(-1), static_cast<double>(scale)));
  return {x.repeat_interleave(scale, -2).repeat_interleave(scale, -1)};
}

struct BilinearAxis {
  at::Tensor low, high, low_weight, high_weight;
};

// Per output index: low and high source indices and their weights.
BilinearAxis bilinear_axis(int64_t in_size, int64_t out_size, const at::Device& device) {
  const auto float_options = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor ratio = out_size > 1 ? at::scalar_tensor(static_cast<double>(in_size - 1), float_options) / (out_size - 1)
                                        : at::scalar_tensor(0.0, float_options);
  const at::Tensor src = ratio.to(device) * at::arange(out_size, float_options.device(device));
  const at::Tensor low = src.to(at::kLong);
  const at::Tensor high = low + (low < in_size - 1).to(at::kLong);
  const at::Tensor high_weight = src - low;
  return {low, high, 1.0 - high_weight, high_weight};
}

Tensors upsample_bilinear(const Tensors& in, const BoundArgs& args) {
  const at::Tensor& x = in[0];
  const Scales s = scales_of("UpsampleBilinear", in, args);
  if (x.dim() != 4) throw OperatorInputError("UpsampleBilinear: X shape=" + shape_of(x) + ", expected 4-D (NCHW)");
  check_scales("UpsampleBilinear", s);
  const int64_t in_h = x.size(2), in_w = x.size(3);
  const int64_t out_h = output_size(in_h, s.height), out_w = output_size(in_w, s.width);
  check_output("UpsampleBilinear", x, 2, out_h, out_w);
  const BilinearAxis h = bilinear_axis(in_h, out_h, x.device());
  const BilinearAxis w = bilinear_axis(in_w, out_w, x.device());
  const at::Tensor top = x.index_select(2, h.low), bottom = x.index_select(2, h.high);
  const at::Tensor h0 = h.low_weight.to(x.scalar_type()).view({-1, 1}), h1 = h.high_weight.to(x.scalar_type()).view({-1, 1});
  const at::Tensor w0 = w.low_weight.to(x.scalar_type()), w1 = w.high_weight.to(x.scalar_type());
  return {h0 * (w0 * top.index_select(3, w.low) + w1 * top.index_select(3, w.high)) +
          h1 * (w0 * bottom.index_select(3, w.low) + w1 * bottom.index_select(3, w.high))};
}

std::vector<ArgSpec> scale_args() {
  return {Float("width_scale", 1.0).where(positive(), "a positive float"),
          Float("height_scale", 1.0).where(positive(), "a positive float")};
}

}  // namespace

void register_resize_ops() {
  std::vector<ArgSpec> nearest_args = scale_args();
  nearest_args.push_back(Str("order", "NCHW").where(one_of({"NCHW", "NHWC"}), "'NCHW' or 'NHWC'"));
  register_op({"ResizeNearest", resize_nearest, nearest_args, {1, 2}});
  register_op({"UpsampleNearest", upsample_nearest, {Int("scale", 2).where(at_least(1), "an int >= 1")}});
  register_op({"UpsampleBilinear", upsample_bilinear, scale_args(), {1, 2}});
}

}  // namespace c2rt
