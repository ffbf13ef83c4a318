// FPN proposal ops: CollectRpnProposals, DistributeFpnProposals and their fusion
// CollectAndDistributeFpnRpnProposals (SPEC 5.5-5.7), for any number of levels.
#include <cmath>

#include "errors.h"
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

using at::indexing::Slice;

// More FPN levels than any model has: a file's level range beyond this would make the ops loop and
// allocate per level without bound.
constexpr double kMaxLevels = 64;

// max_level - min_level + 1, OperatorArgumentError naming the arguments unless in [1, kMaxLevels].
int64_t level_count(const std::string& op, const std::string& prefix, const BoundArgs& args) {
  const int64_t lo = args.i(prefix + "_min_level"), hi = args.i(prefix + "_max_level");
  const double n = static_cast<double>(hi) - static_cast<double>(lo) + 1;
  if (!(n >= 1 && n <= kMaxLevels)) {
    throw OperatorArgumentError(op + ": " + prefix + "_min_level=" + std::to_string(lo) + ", " + prefix +
                                "_max_level=" + std::to_string(hi) + ", expected max >= min and at most " +
                                std::to_string(static_cast<int64_t>(kMaxLevels)) + " levels");
  }
  return hi - lo + 1;
}

// The top rois of all levels by score; ties go to the earlier position in the concatenation, and the
// limit applies to all images together.
at::Tensor collect_rpn_proposals(const Tensors& in, const BoundArgs& args) {
  const int64_t num_levels = level_count("CollectRpnProposals", "rpn", args);
  if (static_cast<int64_t>(in.size()) != 2 * num_levels) {
    throw OperatorInputError("CollectRpnProposals: " + std::to_string(in.size()) +
                             " inputs, expected 2 * (rpn_max_level - rpn_min_level + 1) = " +
                             std::to_string(2 * num_levels) + " (rois of each level, then their scores)");
  }
  std::vector<at::Tensor> rois_parts, score_parts;
  for (int64_t l = 0; l < num_levels; ++l) {
    const at::Tensor& level_rois = in[l];
    if (level_rois.dim() != 2 || level_rois.size(1) != 5) {
      throw OperatorInputError("CollectRpnProposals: rois shape=" + shape_of(level_rois) +
                               ", expected (n, 5) = (batch, x1, y1, x2, y2)");
    }
    rois_parts.push_back(level_rois);
    score_parts.push_back(in[num_levels + l].reshape(-1));
  }
  const at::Tensor rois = at::cat(rois_parts);
  const at::Tensor scores = at::cat(score_parts);
  if (scores.numel() != rois.size(0)) {
    throw OperatorInputError("CollectRpnProposals: " + std::to_string(scores.numel()) + " scores for " +
                             std::to_string(rois.size(0)) + " rois, expected one score per roi");
  }
  at::Tensor order = scores.argsort(true, 0, true);
  const int64_t top_n = args.i("rpn_post_nms_topN");
  if (top_n > 0 && top_n < order.numel()) order = order.index({Slice(0, top_n)});
  return rois.index({order});
}

// FPN level of each XYXY box: floor(lvl0 + log2(sqrt(area) / s0 + 1e-6)) clipped to the range.
at::Tensor map_rois_to_fpn_levels(const at::Tensor& boxes, int64_t min_level, int64_t max_level,
                                  int64_t canonical_scale, int64_t canonical_level, bool legacy_plus_one) {
  const double plus = legacy_plus_one ? 1.0 : 0.0;
  const at::Tensor areas =
      (boxes.select(1, 2) - boxes.select(1, 0) + plus) * (boxes.select(1, 3) - boxes.select(1, 1) + plus);
  if ((areas < 0).any().item<bool>()) {
    throw OperatorInputError("DistributeFpnProposals: Negative areas founds, expected boxes with x2 >= x1, y2 >= y1");
  }
  // float32 steps as Caffe2: log(.) / log(2) rather than log2
  const at::Tensor levels =
      at::floor(at::log(at::sqrt(areas) / canonical_scale + 1e-6) / std::log(2.0) + canonical_level);
  return at::clamp_min(at::clamp_max(levels, max_level), min_level);
}

// [rois_fpn{min}, ..., rois_fpn{max}, rois_idx_restore_int32].
Tensors distribute_fpn_proposals(at::Tensor rois, const BoundArgs& args) {
  level_count("DistributeFpnProposals", "roi", args);
  const int64_t min_level = args.i("roi_min_level"), max_level = args.i("roi_max_level");
  if (rois.dim() != 2 || (rois.size(1) != 4 && rois.size(1) != 5)) {
    throw OperatorInputError("DistributeFpnProposals: rois shape=" + shape_of(rois) + ", expected (R, 4) or (R, 5)");
  }
  if (rois.size(1) == 4) rois = at::cat({at::zeros({rois.size(0), 1}, rois.options()), rois}, 1);
  const at::Tensor levels =
      map_rois_to_fpn_levels(rois.index({Slice(), Slice(1, at::indexing::None)}), min_level, max_level,
                             args.i("roi_canonical_scale"), args.i("roi_canonical_level"), args.b("legacy_plus_one"));
  Tensors outputs;
  std::vector<at::Tensor> order;
  for (int64_t level = min_level; level <= max_level; ++level) {
    const at::Tensor index = at::nonzero(levels == level).squeeze(1);
    outputs.push_back(rois.index({index}));
    order.push_back(index);
  }
  outputs.push_back(at::cat(order).argsort().to(at::kInt));
  return outputs;
}

Tensors collect_rpn_proposals_op(const Tensors& in, const BoundArgs& args) {
  return {collect_rpn_proposals(in, args)};
}

Tensors distribute_fpn_proposals_op(const Tensors& in, const BoundArgs& args) {
  return distribute_fpn_proposals(in[0], args);
}

// Collected rois, level rois, then the restore index.
Tensors collect_and_distribute_op(const Tensors& in, const BoundArgs& args) {
  const at::Tensor rois = collect_rpn_proposals(in, args);
  Tensors outputs{rois};
  for (at::Tensor& t : distribute_fpn_proposals(rois, args)) outputs.push_back(std::move(t));
  return outputs;
}

std::vector<ArgSpec> rpn_args() {
  return {Int("rpn_max_level", 6), Int("rpn_min_level", 2), Int("rpn_post_nms_topN", 2000)};
}

std::vector<ArgSpec> roi_args() {
  return {Int("roi_canonical_scale", 224).where(at_least(1), "a positive int"), Int("roi_canonical_level", 4),
          Int("roi_max_level", 5), Int("roi_min_level", 2), Bool("legacy_plus_one", true)};
}

}  // namespace

void register_fpn_proposals_ops() {
  register_op({"CollectRpnProposals", collect_rpn_proposals_op, rpn_args(), {2, kUnbounded}});
  register_op({"DistributeFpnProposals", distribute_fpn_proposals_op, roi_args(), {1, 1}, {2, kUnbounded}});
  std::vector<ArgSpec> both = roi_args();
  for (ArgSpec& a : rpn_args()) both.push_back(a);
  register_op({"CollectAndDistributeFpnRpnProposals", collect_and_distribute_op, both, {2, kUnbounded}, {3, kUnbounded}});
}

}  // namespace c2rt
