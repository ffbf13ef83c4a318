#include "ops/box_utils.h"

#include <algorithm>
#include <vector>

#include "errors.h"

namespace c2rt::box {
namespace {

at::Tensor col(const at::Tensor& boxes, int64_t k) { return boxes.select(-1, k); }

struct Deltas {
  at::Tensor dx, dy, dw, dh;
};

Deltas scaled_deltas(const at::Tensor& deltas, const DecodeOptions& o) {
  return {col(deltas, 0) / o.weights[0], col(deltas, 1) / o.weights[1],
          at::clamp(col(deltas, 2) / o.weights[2], std::nullopt, o.clip),
          at::clamp(col(deltas, 3) / o.weights[3], std::nullopt, o.clip)};
}

at::Tensor transform_upright(const at::Tensor& boxes, const at::Tensor& deltas, const DecodeOptions& o) {
  const double plus = o.legacy_plus_one ? 1.0 : 0.0;
  const at::Tensor widths = col(boxes, 2) - col(boxes, 0) + plus;
  const at::Tensor heights = col(boxes, 3) - col(boxes, 1) + plus;
  const at::Tensor ctr_x = col(boxes, 0) + widths * 0.5;
  const at::Tensor ctr_y = col(boxes, 1) + heights * 0.5;
  const Deltas d = scaled_deltas(deltas, o);
  const at::Tensor pred_ctr_x = d.dx * widths + ctr_x;
  const at::Tensor pred_ctr_y = d.dy * heights + ctr_y;
  const at::Tensor pred_w = at::exp(d.dw) * widths;
  const at::Tensor pred_h = at::exp(d.dh) * heights;
  return at::stack({pred_ctr_x - pred_w * 0.5, pred_ctr_y - pred_h * 0.5, pred_ctr_x + pred_w * 0.5 - plus,
                    pred_ctr_y + pred_h * 0.5 - plus},
                   -1);
}

at::Tensor transform_rotated(const at::Tensor& boxes, const at::Tensor& deltas, const DecodeOptions& o) {
  const Deltas d = scaled_deltas(deltas, o);
  at::Tensor angle = col(deltas, 4) * 180.0 / M_PI + col(boxes, 4);
  if (o.angle_bound_on) {
    const double period = static_cast<double>(o.angle_bound_hi - o.angle_bound_lo);
    angle = at::where(angle < o.angle_bound_lo, angle + period,
                      at::where(angle > o.angle_bound_hi, angle - period, angle));
  }
  return at::stack({d.dx * col(boxes, 2) + col(boxes, 0), d.dy * col(boxes, 3) + col(boxes, 1),
                    at::exp(d.dw) * col(boxes, 2), at::exp(d.dh) * col(boxes, 3), angle},
                   -1);
}

// Caffe2 applies min(., size - L) first, then max(., 0).
at::Tensor clip_upright(const at::Tensor& boxes, const at::Tensor& limits) {
  return at::clamp_min(at::minimum(boxes, limits), 0);
}

at::Tensor clip_with_limits(const at::Tensor& boxes, double clip_angle_thresh, int64_t plus,
                            const std::function<at::Tensor(const at::Tensor&)>& clip) {
  if (boxes.size(-1) == 4) return clip(boxes);
  const at::Tensor half_w = (col(boxes, 2) - plus) / 2.0;
  const at::Tensor half_h = (col(boxes, 3) - plus) / 2.0;
  const at::Tensor corners = at::stack(
      {col(boxes, 0) - half_w, col(boxes, 1) - half_h, col(boxes, 0) + half_w, col(boxes, 1) + half_h}, -1);
  const at::Tensor c = clip(corners);
  const at::Tensor upright = at::stack({(col(c, 0) + col(c, 2)) / 2.0, (col(c, 1) + col(c, 3)) / 2.0,
                                        col(c, 2) - col(c, 0) + plus, col(c, 3) - col(c, 1) + plus, col(boxes, 4)},
                                       -1);
  const at::Tensor near_upright = (at::abs(col(boxes, 4)) <= clip_angle_thresh).unsqueeze(-1);
  return at::where(near_upright, upright, boxes);
}

using Point = std::array<double, 2>;

// Corners of a rotated box, in Caffe2's order and angle convention.
std::array<Point, 4> rotated_vertices(const float* box) {
  const double theta = -static_cast<double>(box[4]) * (M_PI / 180.0);
  const double b = std::cos(theta) * 0.5;
  const double a = std::sin(theta) * 0.5;
  const double cx = box[0], cy = box[1], w = box[2], h = box[3];
  const Point p0{cx - a * h - b * w, cy + b * h - a * w};
  const Point p1{cx + a * h - b * w, cy - b * h - a * w};
  return {p0, p1, Point{2 * cx - p0[0], 2 * cy - p0[1]}, Point{2 * cx - p1[0], 2 * cy - p1[1]}};
}

double cross(const Point& o, const Point& a, const Point& b) {
  return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

double signed_area(const std::vector<Point>& poly) {
  double area = 0;
  for (size_t k = 0; k < poly.size(); ++k) {
    const Point& p = poly[k];
    const Point& q = poly[(k + 1) % poly.size()];
    area += p[0] * q[1] - p[1] * q[0];
  }
  return area / 2;
}

// Area of the intersection of two convex quadrilaterals (Sutherland-Hodgman clipping).
double convex_intersection_area(std::vector<Point> subject, std::vector<Point> clip) {
  if (signed_area(subject) < 0) std::reverse(subject.begin(), subject.end());
  if (signed_area(clip) < 0) std::reverse(clip.begin(), clip.end());
  for (size_t e = 0; e < clip.size() && !subject.empty(); ++e) {
    const Point& a = clip[e];
    const Point& b = clip[(e + 1) % clip.size()];
    std::vector<Point> kept;
    for (size_t k = 0; k < subject.size(); ++k) {
      const Point& p = subject[k];
      const Point& q = subject[(k + 1) % subject.size()];
      const double sp = cross(a, b, p), sq = cross(a, b, q);
      if (sp >= 0) kept.push_back(p);
      if ((sp >= 0) != (sq >= 0) && sp != sq) {
        const double t = sp / (sp - sq);
        kept.push_back({p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])});
      }
    }
    subject = std::move(kept);
  }
  return subject.size() > 2 ? std::abs(signed_area(subject)) : 0.0;
}

using IouFn = float (*)(const float*, const float*, float);

float rotated_iou_plus(const float* a, const float* b, float) { return rotated_iou(a, b); }

}  // namespace

void check_angle_bounds(const std::string& where, int64_t angle_bound_lo, int64_t angle_bound_hi) {
  const int64_t period = angle_bound_hi - angle_bound_lo;
  if (period <= 0 || period % 180 != 0) {
    throw OperatorArgumentError(where + ": angle_bound_hi - angle_bound_lo=" + std::to_string(period) +
                                ", expected a positive multiple of 180");
  }
}

at::Tensor bbox_transform(const at::Tensor& boxes, const at::Tensor& deltas, const DecodeOptions& options) {
  if (boxes.size(-1) == 4) return transform_upright(boxes, deltas, options);
  return transform_rotated(boxes, deltas, options);
}

at::Tensor clip_boxes(const at::Tensor& boxes, int64_t height, int64_t width, double clip_angle_thresh,
                      bool legacy_plus_one) {
  const int64_t plus = legacy_plus_one ? 1 : 0;
  return clip_with_limits(boxes, clip_angle_thresh, plus, [&](const at::Tensor& b) {
    const double w = static_cast<double>(width - plus), h = static_cast<double>(height - plus);
    return clip_upright(b, at::tensor({w, h, w, h}, b.options()));
  });
}

at::Tensor clip_boxes(const at::Tensor& boxes, const at::Tensor& height, const at::Tensor& width,
                      double clip_angle_thresh, bool legacy_plus_one) {
  const int64_t plus = legacy_plus_one ? 1 : 0;
  return clip_with_limits(boxes, clip_angle_thresh, plus, [&](const at::Tensor& b) {
    const at::Tensor x_max = (width - plus).to(b.scalar_type()).unsqueeze(-1);
    const at::Tensor y_max = (height - plus).to(b.scalar_type()).unsqueeze(-1);
    return clip_upright(b, at::cat({x_max, y_max, x_max, y_max}, -1));
  });
}

at::Tensor filter_boxes(const at::Tensor& boxes, double min_size, const std::array<double, 3>& im_info,
                        bool legacy_plus_one) {
  const double scaled_min = min_size * im_info[2];
  at::Tensor ws, hs, x_ctr, y_ctr;
  if (boxes.size(-1) == 4) {
    const double plus = legacy_plus_one ? 1.0 : 0.0;
    ws = col(boxes, 2) - col(boxes, 0) + plus;
    hs = col(boxes, 3) - col(boxes, 1) + plus;
    x_ctr = col(boxes, 0) + ws / 2;
    y_ctr = col(boxes, 1) + hs / 2;
  } else {
    x_ctr = col(boxes, 0);
    y_ctr = col(boxes, 1);
    ws = col(boxes, 2);
    hs = col(boxes, 3);
  }
  return (ws.to(at::kDouble) >= scaled_min) & (hs.to(at::kDouble) >= scaled_min) & (x_ctr < im_info[1]) &
         (y_ctr < im_info[0]);
}

float upright_iou(const float* a, const float* b, float plus) {
  const float w = std::max(0.0f, std::min(a[2], b[2]) - std::max(a[0], b[0]) + plus);
  const float h = std::max(0.0f, std::min(a[3], b[3]) - std::max(a[1], b[1]) + plus);
  const float inter = w * h;
  const float area_a = (a[2] - a[0] + plus) * (a[3] - a[1] + plus);
  const float area_b = (b[2] - b[0] + plus) * (b[3] - b[1] + plus);
  return inter / (area_a + area_b - inter);
}

float rotated_iou(const float* a, const float* b) {
  const auto va = rotated_vertices(a);
  const auto vb = rotated_vertices(b);
  const float inter = static_cast<float>(
      convex_intersection_area(std::vector<Point>(va.begin(), va.end()), std::vector<Point>(vb.begin(), vb.end())));
  return inter / (a[2] * a[3] + b[2] * b[3] - inter);
}

at::Tensor nms(const at::Tensor& boxes, double thresh, int64_t top_n, bool legacy_plus_one) {
  const at::Tensor b = boxes.to(at::kCPU, at::kFloat).contiguous();
  const int64_t n = b.size(0);
  const int64_t dim = b.size(1);
  const float* data = b.data_ptr<float>();
  const float plus = legacy_plus_one ? 1.0f : 0.0f;
  const float threshold = static_cast<float>(thresh);
  const IouFn iou = dim == 5 ? rotated_iou_plus : upright_iou;
  std::vector<char> suppressed(n, 0);
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i) {
    if (top_n >= 0 && static_cast<int64_t>(keep.size()) >= top_n) break;
    if (suppressed[i]) continue;
    keep.push_back(i);
    for (int64_t j = i + 1; j < n; ++j) {
      if (!suppressed[j] && !(iou(data + i * dim, data + j * dim, plus) <= threshold)) suppressed[j] = 1;
    }
  }
  return at::tensor(keep, at::TensorOptions().dtype(at::kLong)).to(boxes.device());
}

std::pair<at::Tensor, at::Tensor> soft_nms(const at::Tensor& boxes, const at::Tensor& scores,
                                           const at::Tensor& candidates, double sigma, double overlap_thresh,
                                           double score_thresh, const std::string& method, bool legacy_plus_one) {
  const at::Tensor b = boxes.to(at::kCPU, at::kFloat).contiguous();
  at::Tensor out_scores = scores.to(at::kCPU, at::kFloat).contiguous().clone();
  const at::Tensor cand = candidates.to(at::kCPU, at::kLong).contiguous();
  const int64_t dim = b.size(1);
  const float* data = b.data_ptr<float>();
  float* s = out_scores.data_ptr<float>();
  const float plus = legacy_plus_one ? 1.0f : 0.0f;
  const IouFn iou = dim == 5 ? rotated_iou_plus : upright_iou;
  std::vector<int64_t> pending(cand.data_ptr<int64_t>(), cand.data_ptr<int64_t>() + cand.numel());
  std::vector<int64_t> keep;
  while (!pending.empty()) {
    size_t max_pos = 0;
    for (size_t k = 1; k < pending.size(); ++k) {
      if (s[pending[k]] > s[pending[max_pos]]) max_pos = k;
    }
    const int64_t i = pending[max_pos];
    keep.push_back(i);
    std::swap(pending[0], pending[max_pos]);
    std::vector<int64_t> rest(pending.begin() + 1, pending.end());
    if (rest.empty()) break;
    pending.clear();
    for (int64_t j : rest) {
      const float overlap = iou(data + i * dim, data + j * dim, plus);
      float weight = 1.0f;
      if (method == "linear") {
        if (overlap > overlap_thresh) weight = 1.0f - overlap;
      } else {
        weight = std::exp(-overlap * overlap / static_cast<float>(sigma));
      }
      s[j] *= weight;
      if (s[j] >= score_thresh) pending.push_back(j);
    }
  }
  return {at::tensor(keep, at::TensorOptions().dtype(at::kLong)).to(boxes.device()), out_scores.to(scores.device())};
}

}  // namespace c2rt::box
