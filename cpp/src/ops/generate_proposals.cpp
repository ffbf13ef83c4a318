// GenerateProposals (SPEC 5.1): RPN proposals from objectness scores, deltas and anchors.
#include "errors.h"
#include "op_args.h"
#include "ops/box_utils.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

using at::indexing::Slice;

struct ProposalOptions {
  at::Tensor stride;  // 0-dim float32, float(1.0 / double(float(spatial_scale))) as Caffe2 stores it
  int64_t pre_nms_top_n;
  int64_t post_nms_top_n;
  double nms_thresh;
  double min_size;
  box::DecodeOptions decode;
  double clip_angle_thresh;
};

void check_inputs(const at::Tensor& scores, const at::Tensor& deltas, const at::Tensor& im_info,
                  const at::Tensor& anchors) {
  if (scores.dim() != 4) {
    throw OperatorInputError("GenerateProposals: scores shape=" + shape_of(scores) + ", expected (N, A, H, W)");
  }
  const int64_t n = scores.size(0), a = scores.size(1), h = scores.size(2), w = scores.size(3);
  if (anchors.dim() != 2 || (anchors.size(1) != 4 && anchors.size(1) != 5) || anchors.size(0) != a) {
    throw OperatorInputError("GenerateProposals: anchors shape=" + shape_of(anchors) + ", expected (" +
                             std::to_string(a) + ", 4) or (" + std::to_string(a) + ", 5)");
  }
  const std::vector<int64_t> expected{n, a * anchors.size(1), h, w};
  if (dims_of(deltas) != expected) {
    throw OperatorInputError("GenerateProposals: bbox_deltas shape=" + shape_of(deltas) + ", expected " +
                             shape_str(expected));
  }
  if (dims_of(im_info) != std::vector<int64_t>{n, 3}) {
    throw OperatorInputError("GenerateProposals: im_info shape=" + shape_of(im_info) + ", expected (" +
                             std::to_string(n) + ", 3)");
  }
  // the image size is cast to an integer for clipping
  if (!at::isfinite(im_info).all().item<bool>() || (im_info.abs() > 1e9).any().item<bool>()) {
    throw OperatorInputError("GenerateProposals: im_info has NaN, infinite or values beyond 1e9, expected "
                             "(height, width, scale) of each image");
  }
}

// (boxes (n, B), probs (n,)) of one image: top scores, decoded anchors, clipped, filtered, NMS.
std::pair<at::Tensor, at::Tensor> proposals_for_one_image(const at::Tensor& scores, const at::Tensor& deltas,
                                                          const at::Tensor& im_info, const at::Tensor& anchors,
                                                          const ProposalOptions& o) {
  const int64_t num_anchors = scores.size(0), height = scores.size(1), width = scores.size(2);
  const int64_t box_dim = anchors.size(1);
  const at::Tensor flat = scores.reshape(-1);  // (a, y, x) order
  at::Tensor sorted_scores, order;
  if (o.pre_nms_top_n > 0 && o.pre_nms_top_n < flat.numel()) {
    std::tie(sorted_scores, order) = flat.topk(o.pre_nms_top_n, -1, true, true);
  } else {
    std::tie(sorted_scores, order) = flat.sort(true, -1, true);
  }
  const at::Tensor cell = at::floor_divide(order, height * width);
  const at::Tensor pos = at::remainder(order, height * width);
  const at::Tensor shift_x = at::remainder(pos, width).to(scores.scalar_type()) * o.stride;
  const at::Tensor shift_y = at::floor_divide(pos, width).to(scores.scalar_type()) * o.stride;
  at::Tensor shifts;
  if (box_dim == 4) {
    shifts = at::stack({shift_x, shift_y, shift_x, shift_y}, 1);
  } else {
    const at::Tensor zeros = at::zeros_like(shift_x);
    shifts = at::stack({shift_x, shift_y, zeros, zeros, zeros}, 1);
  }
  const at::Tensor shifted_anchors = anchors.index({cell}) + shifts;
  const at::Tensor picked_deltas = deltas.reshape({num_anchors, box_dim, height * width}).index({cell, Slice(), pos});
  at::Tensor proposals = box::bbox_transform(shifted_anchors, picked_deltas, o.decode);
  const at::Tensor info = im_info.to(at::kCPU, at::kDouble);
  const std::array<double, 3> info3{info[0].item<double>(), info[1].item<double>(), info[2].item<double>()};
  proposals = box::clip_boxes(proposals, static_cast<int64_t>(info3[0]), static_cast<int64_t>(info3[1]),
                              o.clip_angle_thresh, o.decode.legacy_plus_one);
  const at::Tensor candidates =
      at::nonzero(box::filter_boxes(proposals, o.min_size, info3, o.decode.legacy_plus_one)).squeeze(1);
  const int64_t top_n =
      o.post_nms_top_n > 0 && o.post_nms_top_n < candidates.numel() ? o.post_nms_top_n : int64_t{-1};
  const at::Tensor keep = candidates.index(
      {box::nms(proposals.index({candidates}), o.nms_thresh, top_n, o.decode.legacy_plus_one)});
  return {proposals.index({keep}), sorted_scores.index({keep})};
}

// (rois (n, B+1) = (image_index, box...), rois_probs (n,)), images in order.
Tensors generate_proposals(const Tensors& in, const BoundArgs& args) {
  const at::Tensor &scores = in[0], &deltas = in[1], &im_info = in[2], &anchors = in[3];
  check_inputs(scores, deltas, im_info, anchors);
  ProposalOptions o;
  o.pre_nms_top_n = args.i("pre_nms_topN");
  o.post_nms_top_n = args.i("post_nms_topN");
  o.nms_thresh = args.f("nms_thresh");
  o.min_size = args.f("min_size");
  o.clip_angle_thresh = args.f("clip_angle_thresh");
  o.decode.legacy_plus_one = args.b("legacy_plus_one");
  o.decode.angle_bound_on = args.b("angle_bound_on");
  o.decode.angle_bound_lo = args.i("angle_bound_lo");
  o.decode.angle_bound_hi = args.i("angle_bound_hi");
  if (anchors.size(1) == 5 && o.decode.angle_bound_on) {
    box::check_angle_bounds("GenerateProposals", o.decode.angle_bound_lo, o.decode.angle_bound_hi);
  }
  const float scale32 = static_cast<float>(args.f("spatial_scale"));
  o.stride = at::scalar_tensor(static_cast<float>(1.0 / static_cast<double>(scale32)), scores.options());
  const int64_t box_dim = anchors.size(1);
  std::vector<at::Tensor> rois, probs;
  for (int64_t i = 0; i < scores.size(0); ++i) {
    auto [boxes, image_probs] = proposals_for_one_image(scores[i], deltas[i], im_info[i], anchors, o);
    rois.push_back(at::cat({at::full({boxes.size(0), 1}, static_cast<double>(i), boxes.options()), boxes}, 1));
    probs.push_back(image_probs);
  }
  if (rois.empty()) return {at::zeros({0, box_dim + 1}, scores.options()), at::zeros({0}, scores.options())};
  return {at::cat(rois), at::cat(probs)};
}

}  // namespace

void register_generate_proposals_ops() {
  register_op({"GenerateProposals", generate_proposals,
               {Float("spatial_scale", 1.0 / 16).where(positive(), "a positive float"), Int("pre_nms_topN", 6000),
                Int("post_nms_topN", 300), Float("nms_thresh", 0.7), Float("min_size", 16.0),
                Bool("angle_bound_on", true), Int("angle_bound_lo", -90), Int("angle_bound_hi", 90),
                Float("clip_angle_thresh", 1.0), Bool("legacy_plus_one", true)},
               {4, 4},
               {2, 2},
               {"correct_transform_coords"}});
}

}  // namespace c2rt
