// BoxWithNMSLimit (SPEC 5.3): per-class score threshold and NMS, then a per-image top-k.
#include "errors.h"
#include "op_args.h"
#include "ops/box_utils.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

using at::indexing::Slice;

at::Tensor squeeze_trailing(const at::Tensor& x, const std::string& name) {
  if (x.dim() == 4 && x.size(2) == 1 && x.size(3) == 1) return x.reshape({x.size(0), x.size(1)});
  if (x.dim() != 2) {
    throw OperatorInputError("BoxWithNMSLimit: " + name + " shape=" + shape_of(x) +
                             ", expected 2-D or 4-D with trailing 1x1");
  }
  return x;
}

// Where class j (0 = background) finds its score column and its box block.
struct Layout {
  int64_t box_dim;
  bool cls_agnostic;
  bool include_bg;

  int64_t score_index(int64_t j) const { return include_bg ? j : j - 1; }
  int64_t box_index(int64_t j) const { return cls_agnostic ? 0 : (include_bg ? j : j - 1); }
  at::Tensor class_boxes(const at::Tensor& boxes, int64_t j) const {
    const int64_t start = box_index(j) * box_dim;
    return boxes.index({Slice(), Slice(start, start + box_dim)});
  }
};

struct NmsOptions {
  double score_thresh;
  double nms_thresh;
  int64_t detections_per_im;
  bool soft;
  std::string soft_method;
  double soft_sigma;
  double soft_min_score;
  bool legacy_plus_one;
};

struct ImageResult {
  at::Tensor scores, boxes, classes, rows;
};

at::Tensor cat_or(const std::vector<at::Tensor>& parts, const at::Tensor& empty) {
  return parts.empty() ? empty : at::cat(parts);
}

// Scores, boxes, class ids and kept rows of one image, in output order (class by class).
ImageResult one_image(const Layout& layout, at::Tensor scores, const at::Tensor& boxes, const NmsOptions& o) {
  const int64_t num_classes = scores.size(1);
  const auto long_options = scores.options().dtype(at::kLong);
  const at::Tensor above = scores > o.score_thresh;
  const at::Tensor present = above.sum(0).cpu();
  std::vector<at::Tensor> kept_rows, kept_classes;
  for (int64_t j = 1; j < num_classes; ++j) {
    const int64_t col = layout.score_index(j);
    if (present[col].item<int64_t>() == 0) continue;
    at::Tensor candidates = at::nonzero(above.select(1, col)).squeeze(1);
    const at::Tensor cls_boxes = layout.class_boxes(boxes, j);
    at::Tensor keep;
    if (o.soft) {
      auto [picked, new_scores] = box::soft_nms(cls_boxes, scores.select(1, col), candidates, o.soft_sigma,
                                                o.nms_thresh, o.soft_min_score, o.soft_method, o.legacy_plus_one);
      keep = picked;
      scores = scores.clone();
      scores.select(1, col).copy_(new_scores);
    } else {
      candidates = candidates.index({scores.index({candidates, col}).argsort(true, 0, true)});
      const int64_t top_n = o.detections_per_im > 0 ? o.detections_per_im : -1;
      keep = candidates.index({box::nms(cls_boxes.index({candidates}), o.nms_thresh, top_n, o.legacy_plus_one)});
    }
    kept_rows.push_back(keep);
    kept_classes.push_back(at::full_like(keep, j));
  }
  at::Tensor rows = cat_or(kept_rows, at::zeros({0}, long_options));
  at::Tensor classes = cat_or(kept_classes, at::zeros({0}, long_options));
  const at::Tensor cols = layout.include_bg ? classes : classes - 1;
  at::Tensor kept_scores = scores.index({rows, cols});
  if (o.detections_per_im > 0 && o.detections_per_im < rows.numel()) {
    at::Tensor best = kept_scores.argsort(true, 0, true).index({Slice(0, o.detections_per_im)});
    // regroup class by class, each class keeping its rows in score order
    best = best.index({classes.index({best}).argsort(true, 0, false)});
    rows = rows.index({best});
    classes = classes.index({best});
    kept_scores = kept_scores.index({best});
  }
  const at::Tensor box_cols = at::arange(layout.box_dim, long_options);
  const at::Tensor block = layout.cls_agnostic ? at::zeros_like(classes) : (layout.include_bg ? classes : classes - 1);
  const at::Tensor kept_boxes = boxes.index({rows.unsqueeze(1), (block * layout.box_dim).unsqueeze(1) + box_cols});
  return {kept_scores, kept_boxes, classes, rows.to(at::kInt)};
}

// (scores (D,), boxes (D, B), classes (D,) float, batch_splits (N,) float, keeps (D,) int32,
// keeps_size (N, C) int32); detections image by image and, within an image, by increasing class.
Tensors box_with_nms_limit(const Tensors& in, const BoundArgs& args) {
  Layout layout{args.b("rotated") ? 5 : 4, args.b("cls_agnostic_bbox_reg"), args.b("input_boxes_include_bg_cls")};
  const at::Tensor scores = squeeze_trailing(in[0], "scores");
  const at::Tensor boxes = squeeze_trailing(in[1], "boxes");
  const int64_t num_rows = scores.size(0), num_classes = scores.size(1);
  if (boxes.size(0) != num_rows) {
    throw OperatorInputError("BoxWithNMSLimit: boxes rows=" + std::to_string(boxes.size(0)) + ", expected " +
                             std::to_string(num_rows) + " (rows of scores)");
  }
  const int64_t expected_cols = (layout.box_index(num_classes - 1) + 1) * layout.box_dim;
  if (boxes.size(1) != expected_cols) {
    throw OperatorInputError("BoxWithNMSLimit: boxes columns=" + std::to_string(boxes.size(1)) + ", expected " +
                             std::to_string(expected_cols) + " for " + std::to_string(num_classes) +
                             " score columns (cls_agnostic_bbox_reg=" + (layout.cls_agnostic ? "True" : "False") +
                             ", input_boxes_include_bg_cls=" + (layout.include_bg ? "True" : "False") + ")");
  }
  std::vector<int64_t> counts{num_rows};
  if (in.size() > 2) {
    const at::Tensor splits = in[2].reshape(-1).to(at::kCPU, at::kDouble).contiguous();
    counts.clear();
    const double* values = splits.data_ptr<double>();
    for (int64_t k = 0; k < splits.numel(); ++k) {
      // narrow() below takes these (truncated) as row counts: each must lie within the rows
      if (!(values[k] >= 0 && values[k] < static_cast<double>(num_rows) + 1)) {
        throw OperatorInputError("BoxWithNMSLimit: batch_splits[" + std::to_string(k) + "]=" +
                                 std::to_string(values[k]) + ", expected a count in [0, " +
                                 std::to_string(num_rows) + "] (rows of scores)");
      }
      counts.push_back(static_cast<int64_t>(values[k]));
    }
  }
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  if (total != num_rows) {
    throw OperatorInputError("BoxWithNMSLimit: sum(batch_splits)=" + std::to_string(total) + ", expected " +
                             std::to_string(num_rows) + " (rows of scores)");
  }
  const NmsOptions o{args.f("score_thresh"),      args.f("nms"),
                     args.i("detections_per_im"), args.b("soft_nms_enabled"),
                     args.s("soft_nms_method"),   args.f("soft_nms_sigma"),
                     args.f("soft_nms_min_score_thres"), args.b("legacy_plus_one")};
  const int64_t class_offset = args.b("output_classes_include_bg_cls") ? 0 : 1;
  std::vector<at::Tensor> out_scores, out_boxes, out_classes, out_keeps;
  at::Tensor keeps_size = at::zeros({static_cast<int64_t>(counts.size()), num_classes}, scores.options().dtype(at::kInt));
  int64_t offset = 0;
  for (size_t b = 0; b < counts.size(); ++b) {
    const ImageResult r = one_image(layout, scores.narrow(0, offset, counts[b]), boxes.narrow(0, offset, counts[b]), o);
    offset += counts[b];
    out_scores.push_back(r.scores);
    out_boxes.push_back(r.boxes);
    out_classes.push_back((r.classes - class_offset).to(scores.scalar_type()));
    out_keeps.push_back(r.rows);
    keeps_size[b].copy_(at::bincount(r.classes, {}, num_classes).to(at::kInt));
  }
  return {cat_or(out_scores, at::zeros({0}, scores.options())),
          cat_or(out_boxes, at::zeros({0, layout.box_dim}, boxes.options())),
          cat_or(out_classes, at::zeros({0}, scores.options())),
          keeps_size.sum(1).to(scores.scalar_type()),
          cat_or(out_keeps, at::zeros({0}, scores.options().dtype(at::kInt))),
          keeps_size};
}

}  // namespace

void register_box_with_nms_limit_ops() {
  register_op({"BoxWithNMSLimit", box_with_nms_limit,
               {Float("score_thresh", 0.05), Float("nms", 0.3), Int("detections_per_im", 100),
                Bool("soft_nms_enabled", false),
                Str("soft_nms_method", "linear").where(one_of({"linear", "gaussian"}), "'linear' or 'gaussian'"),
                Float("soft_nms_sigma", 0.5), Float("soft_nms_min_score_thres", 0.001), Bool("rotated", false),
                Bool("cls_agnostic_bbox_reg", false), Bool("input_boxes_include_bg_cls", true),
                Bool("output_classes_include_bg_cls", true), Bool("legacy_plus_one", true)},
               {2, 3},
               {3, 6}});
}

}  // namespace c2rt
