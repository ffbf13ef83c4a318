// Box utilities shared by the Caffe2 detection ops (SPEC 5.0; mirrors caffe2/ops/box_utils.py).
//
// They follow caffe2/operators/generate_proposals_op_util_{boxes,nms}.h: float32 arithmetic in the
// same order as the Python kernels (so both runtimes agree to the bit on the same libtorch), the
// legacy_plus_one convention (L = int(legacy_plus_one): widths are x2 - x1 + L), rotated boxes
// (ctr_x, ctr_y, w, h, angle_degrees), and Caffe2's greedy NMS, which keeps a box only when
// IoU <= thresh (so a NaN IoU suppresses).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cmath>
#include <string>
#include <utility>

namespace c2rt::box {

// Upper clamp of the log-space width/height deltas (Caffe2's BBOX_XFORM_CLIP_DEFAULT).
inline const double kXformClip = std::log(1000.0 / 16.0);

using Weights = std::array<double, 4>;

struct DecodeOptions {
  Weights weights{1.0, 1.0, 1.0, 1.0};
  bool legacy_plus_one = false;
  bool angle_bound_on = true;
  int64_t angle_bound_lo = -90;
  int64_t angle_bound_hi = 90;
  double clip = kXformClip;
};

// OperatorArgumentError unless hi - lo is a positive multiple of 180.
void check_angle_bounds(const std::string& where, int64_t angle_bound_lo, int64_t angle_bound_hi);

// Apply regression `deltas` (..., B) to `boxes` (..., B), broadcasting; B = 4 or 5.
at::Tensor bbox_transform(const at::Tensor& boxes, const at::Tensor& deltas, const DecodeOptions& options);

// Clip boxes (..., 4|5) to an image of integer size. Rotated boxes are clipped only when
// |angle| <= clip_angle_thresh (nearly upright).
at::Tensor clip_boxes(const at::Tensor& boxes, int64_t height, int64_t width, double clip_angle_thresh,
                      bool legacy_plus_one);
// The same with per-box sizes: `height`, `width` int64 tensors broadcasting like boxes[..., 0].
at::Tensor clip_boxes(const at::Tensor& boxes, const at::Tensor& height, const at::Tensor& width,
                      double clip_angle_thresh, bool legacy_plus_one);

// Mask of boxes (M, 4|5) with both sides >= min_size * scale and centre inside the image;
// `im_info` = (height, width, scale) of one image.
at::Tensor filter_boxes(const at::Tensor& boxes, double min_size, const std::array<double, 3>& im_info,
                        bool legacy_plus_one);

// Caffe2's greedy NMS over boxes (M, 4|5) given in priority order: the kept positions (ascending,
// int64). Stops after top_n kept boxes when top_n >= 0.
at::Tensor nms(const at::Tensor& boxes, double thresh, int64_t top_n, bool legacy_plus_one);

// Caffe2's Soft-NMS over `candidates` (indices into boxes/scores, in index order): (kept indices in
// pick order, updated scores for every row). `method` is "linear" or "gaussian".
std::pair<at::Tensor, at::Tensor> soft_nms(const at::Tensor& boxes, const at::Tensor& scores,
                                           const at::Tensor& candidates, double sigma, double overlap_thresh,
                                           double score_thresh, const std::string& method, bool legacy_plus_one);

// Caffe2's IoU of two upright boxes (x1, y1, x2, y2), in float.
float upright_iou(const float* a, const float* b, float plus);
// Caffe2's rotated IoU (areas w * h) of two boxes (cx, cy, w, h, angle_degrees): the exact
// intersection area in double, the ratio in float.
float rotated_iou(const float* a, const float* b);

}  // namespace c2rt::box
