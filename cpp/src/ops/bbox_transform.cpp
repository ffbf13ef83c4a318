// BBoxTransform (SPEC 5.2): per-class box decoding of the box head's regression.
#include "errors.h"
#include "op_args.h"
#include "ops/box_utils.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

using at::indexing::Slice;

void check_inputs(const at::Tensor& rois, const at::Tensor& deltas, const at::Tensor& im_info, int64_t box_dim) {
  if (rois.dim() != 2 || (rois.size(1) != box_dim && rois.size(1) != box_dim + 1)) {
    throw OperatorInputError("BBoxTransform: rois shape=" + shape_of(rois) + ", expected (R, " +
                             std::to_string(box_dim) + ") or (R, " + std::to_string(box_dim + 1) + ")");
  }
  if (deltas.dim() != 2 || deltas.size(0) != rois.size(0) || deltas.size(1) % box_dim != 0) {
    throw OperatorInputError("BBoxTransform: deltas shape=" + shape_of(deltas) + ", expected (" +
                             std::to_string(rois.size(0)) + ", " + std::to_string(box_dim) + " * K)");
  }
  if (im_info.dim() != 2 || im_info.size(1) != 3) {
    throw OperatorInputError("BBoxTransform: im_info shape=" + shape_of(im_info) + ", expected (N, 3)");
  }
}

// (box_out (R, B*K), roi_batch_splits (N,)): each roi's class boxes decoded in its image's
// unscaled frame, clipped to it, and scaled back when apply_scale.
Tensors bbox_transform(const Tensors& in, const BoundArgs& args) {
  const at::Tensor &rois = in[0], &deltas = in[1], &im_info = in[2];
  const bool rotated = args.b("rotated");
  const int64_t box_dim = rotated ? 5 : 4;
  check_inputs(rois, deltas, im_info, box_dim);
  box::DecodeOptions decode;
  const std::vector<double> weights = args.numbers("weights");
  std::copy(weights.begin(), weights.end(), decode.weights.begin());
  decode.legacy_plus_one = args.b("legacy_plus_one");
  decode.angle_bound_on = args.b("angle_bound_on");
  decode.angle_bound_lo = args.i("angle_bound_lo");
  decode.angle_bound_hi = args.i("angle_bound_hi");
  if (rotated && decode.angle_bound_on) {
    box::check_angle_bounds("BBoxTransform", decode.angle_bound_lo, decode.angle_bound_hi);
  }
  const int64_t num_rois = rois.size(0), batch_size = im_info.size(0);
  const auto long_options = rois.options().dtype(at::kLong);
  at::Tensor counts;
  if (rois.size(1) == box_dim) {
    if (batch_size != 1) {
      throw OperatorInputError("BBoxTransform: im_info rows=" + std::to_string(batch_size) + " with rois of " +
                               std::to_string(box_dim) + " columns (no batch index), expected 1");
    }
    counts = at::tensor({num_rois}, long_options);
  } else {
    check_indices("BBoxTransform", "rois batch index", rois.select(1, 0), batch_size,
                  "the rows of im_info shape=" + shape_of(im_info));
    const at::Tensor batch_ids = rois.select(1, 0).to(at::kLong);
    counts = at::bincount(batch_ids, {}, batch_size);
  }
  // Caffe2 walks the rois image by image in contiguous blocks of `counts` rows.
  const at::Tensor image = at::repeat_interleave(at::arange(batch_size, long_options), counts);
  const at::Tensor info = im_info.index({image});
  const at::Tensor scale_before = info.select(1, 2);
  const at::Tensor scale_after = args.b("apply_scale") ? scale_before : at::ones_like(scale_before);
  const at::Tensor img_h = ((info.select(1, 0) / scale_before).to(at::kDouble) + 0.5).trunc().to(at::kLong);
  const at::Tensor img_w = ((info.select(1, 1) / scale_before).to(at::kDouble) + 0.5).trunc().to(at::kLong);

  at::Tensor boxes = rois.index({Slice(), Slice(-box_dim, at::indexing::None)}).clone();
  boxes.index_put_({Slice(), Slice(0, 4)}, boxes.index({Slice(), Slice(0, 4)}) / scale_before.unsqueeze(1));
  const int64_t num_classes = deltas.size(1) / box_dim;
  const at::Tensor decoded =
      box::bbox_transform(boxes.unsqueeze(1), deltas.reshape({num_rois, num_classes, box_dim}), decode);
  at::Tensor clipped = box::clip_boxes(decoded, img_h.unsqueeze(1), img_w.unsqueeze(1), args.f("clip_angle_thresh"),
                                       decode.legacy_plus_one);
  // angles are never scaled
  clipped.index_put_({"...", Slice(0, 4)}, clipped.index({"...", Slice(0, 4)}) * scale_after.view({-1, 1, 1}));
  return {clipped.reshape({num_rois, num_classes * box_dim}), counts.to(rois.scalar_type())};
}

}  // namespace

void register_bbox_transform_ops() {
  register_op({"BBoxTransform", bbox_transform,
               {NumberList("weights", {1.0f, 1.0f, 1.0f, 1.0f}).where(list_of_size(4), "a list of 4 floats"),
                Bool("apply_scale", true), Bool("rotated", false), Bool("angle_bound_on", true),
                Int("angle_bound_lo", -90), Int("angle_bound_hi", 90), Float("clip_angle_thresh", 1.0),
                Bool("legacy_plus_one", true)},
               {3, 3},
               {1, 2},
               {"correct_transform_coords"}});
}

}  // namespace c2rt
