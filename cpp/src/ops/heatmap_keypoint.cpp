// HeatmapMaxKeypoint (SPEC 5.10): keypoint locations from heatmaps with a quadratic sub-pixel fit.
//
// Instead of the bicubic upscaling of eager Mask R-CNN, Caffe2 fits a second-order Taylor expansion
// around the heatmap's argmax (3x3 neighbourhood, mirrored at the border) and moves to its extremum.
#include "errors.h"
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

constexpr double kMaxDelta = 1.5;
constexpr double kSingularDet = 1e-4;

using at::indexing::Slice;

// f[:, r, c] of the (M, 3, 3) neighbourhoods.
at::Tensor at3(const at::Tensor& f, int64_t r, int64_t c) { return f.select(1, r).select(1, c); }

// (R, 4, K) with rows x, y, score, prob.
Tensors heatmap_max_keypoint(const Tensors& in, const BoundArgs& args) {
  const at::Tensor &heatmaps = in[0], &bboxes = in[1];
  if (heatmaps.dim() != 4 || heatmaps.size(2) != heatmaps.size(3) || heatmaps.size(2) < 2) {
    throw OperatorInputError("HeatmapMaxKeypoint: heatmaps shape=" + shape_of(heatmaps) +
                             ", expected (R, K, S, S) with S >= 2");
  }
  const int64_t num_rois = heatmaps.size(0), num_keypoints = heatmaps.size(1), size = heatmaps.size(2);
  if (bboxes.dim() != 2 || bboxes.size(0) != num_rois || bboxes.size(1) < 4) {
    throw OperatorInputError("HeatmapMaxKeypoint: bboxes_in shape=" + shape_of(bboxes) + ", expected (" +
                             std::to_string(num_rois) + ", >=4)");
  }
  const at::Tensor maps = heatmaps.reshape({num_rois * num_keypoints, size * size});
  const at::Tensor max_index = maps.argmax(1);  // first maximum in row-major order
  const at::Tensor max_score = maps.gather(1, max_index.unsqueeze(1)).squeeze(1);
  const at::Tensor max_y = at::floor_divide(max_index, size), max_x = at::remainder(max_index, size);

  const at::Tensor offsets = at::tensor({-1, 0, 1}, max_index.options());
  // out-of-map neighbours are mirrored around the maximum: -1 -> +1, S -> S - 2
  auto mirror = [&](const at::Tensor& v) { return at::where(v >= size, v - 2, at::where(v < 0, v + 2, v)); };
  const at::Tensor ny = mirror(max_y.unsqueeze(1) + offsets);
  const at::Tensor nx = mirror(max_x.unsqueeze(1) + offsets);
  const at::Tensor f = maps.gather(1, (ny.unsqueeze(2) * size + nx.unsqueeze(1)).reshape({-1, 9})).reshape({-1, 3, 3});

  const at::Tensor b0 = -(at3(f, 1, 2) - at3(f, 1, 0)) / 2;
  const at::Tensor b1 = -(at3(f, 2, 1) - at3(f, 0, 1)) / 2;
  const at::Tensor a00 = at3(f, 1, 0) - 2 * at3(f, 1, 1) + at3(f, 1, 2);
  const at::Tensor a01 = (at3(f, 2, 2) - at3(f, 2, 0) - at3(f, 0, 2) + at3(f, 0, 0)) / 4;
  const at::Tensor a11 = at3(f, 0, 1) - 2 * at3(f, 1, 1) + at3(f, 2, 1);
  const at::Tensor det = a00 * a11 - a01 * a01;
  const at::Tensor singular = at::abs(det) < kSingularDet;
  const at::Tensor safe_det = at::where(singular, at::ones_like(det), det);
  at::Tensor dx = (a11 * b0 - a01 * b1) / safe_det;
  at::Tensor dy = (a00 * b1 - a01 * b0) / safe_det;
  const at::Tensor larger = at::maximum(at::abs(dx), at::abs(dy));
  const at::Tensor clipped = larger > kMaxDelta;
  dx = at::where(clipped, dx / larger * kMaxDelta, dx);
  dy = at::where(clipped, dy / larger * kMaxDelta, dy);
  const at::Tensor fitted =
      at3(f, 1, 1) - (b0 * dx + b1 * dy) + 0.5 * (dx * (a00 * dx + a01 * dy) + dy * (a01 * dx + a11 * dy));
  const at::Tensor zero = at::zeros_like(dx);
  dx = at::where(singular, zero, dx);
  dy = at::where(singular, zero, dy);
  const at::Tensor score = at::where(singular, max_score, fitted);

  const at::Tensor boxes = bboxes.index({Slice(), Slice(0, 4)}).repeat_interleave(num_keypoints, 0);
  const at::Tensor x_len = at::clamp_min(boxes.select(1, 2) - boxes.select(1, 0), 1.0);
  const at::Tensor y_len = at::clamp_min(boxes.select(1, 3) - boxes.select(1, 1), 1.0);
  // Caffe2 evaluates these in double precision before storing floats
  const at::Tensor x = boxes.select(1, 0).to(at::kDouble) +
                       (0.5 + max_x.to(at::kDouble) + dx.to(at::kDouble)) * x_len.to(at::kDouble) / size;
  const at::Tensor y = boxes.select(1, 1).to(at::kDouble) +
                       (0.5 + max_y.to(at::kDouble) + dy.to(at::kDouble)) * y_len.to(at::kDouble) / size;
  const at::Tensor prob = args.b("should_output_softmax")
                              ? at::softmax(maps, 1).gather(1, max_index.unsqueeze(1)).squeeze(1)
                              : at::zeros_like(score);
  const at::Tensor keypoints = at::stack({x.to(maps.scalar_type()), y.to(maps.scalar_type()), score, prob}, 1);
  return {keypoints.reshape({num_rois, num_keypoints, 4}).transpose(1, 2).contiguous()};
}

}  // namespace

void register_heatmap_keypoint_ops() {
  register_op({"HeatmapMaxKeypoint", heatmap_max_keypoint, {Bool("should_output_softmax", false)}, {2, 2}});
}

}  // namespace c2rt
