// RoIAlign and RoIAlignRotated (SPEC 5.4): bilinear RoI pooling, CPU kernels.
//
// The upright kernel is Caffe2's algorithm as torchvision implements it (the kernel of the Python
// runtime): per roi, the sampling points and their bilinear weights are computed once and shared by
// all channels, in the same float arithmetic. The rotated kernel samples the same grid in the roi's
// frame, rotated into the image.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>

#include "errors.h"
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

struct Pooling {
  std::string op;
  double spatial_scale;
  int64_t pooled_h, pooled_w, sampling_ratio;
  bool aligned;
};

// One bilinear sample: four pixel offsets and their weights (all zero outside the map).
template <typename T>
struct Sample {
  int64_t pos[4] = {0, 0, 0, 0};
  T w[4] = {0, 0, 0, 0};
};

template <typename T>
Sample<T> bilinear_sample(int64_t height, int64_t width, T y, T x) {
  Sample<T> s;
  if (!(y >= -1.0 && y <= height && x >= -1.0 && x <= width)) return s;
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  int64_t y_low = static_cast<int64_t>(y), x_low = static_cast<int64_t>(x), y_high, x_high;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    y = static_cast<T>(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    x = static_cast<T>(x_low);
  } else {
    x_high = x_low + 1;
  }
  const T ly = y - y_low, lx = x - x_low;
  const T hy = 1. - ly, hx = 1. - lx;
  s.w[0] = hy * hx;
  s.w[1] = hy * lx;
  s.w[2] = ly * hx;
  s.w[3] = ly * lx;
  s.pos[0] = y_low * width + x_low;
  s.pos[1] = y_low * width + x_high;
  s.pos[2] = y_high * width + x_low;
  s.pos[3] = y_high * width + x_high;
  return s;
}

// Averages the precomputed samples of every bin into output[roi] (C, pooled_h, pooled_w).
template <typename T>
void pool_samples(const std::vector<Sample<T>>& samples, int64_t grid, T count, const T* features, int64_t channels,
                  int64_t plane, int64_t bins, T* out) {
  for (int64_t c = 0; c < channels; ++c) {
    const T* channel = features + c * plane;
    size_t k = 0;
    for (int64_t bin = 0; bin < bins; ++bin) {
      T value = 0.;
      for (int64_t g = 0; g < grid; ++g, ++k) {
        const Sample<T>& s = samples[k];
        value += s.w[0] * channel[s.pos[0]] + s.w[1] * channel[s.pos[1]] + s.w[2] * channel[s.pos[2]] +
                 s.w[3] * channel[s.pos[3]];
      }
      out[c * bins + bin] = value / count;
    }
  }
}

// Bilinear samples one roi may take (bins x grid): a file's roi extent or sampling_ratio cannot make
// the kernel allocate without bound (a legitimate FPN roi takes about 10^5).
constexpr double kMaxSamplesPerRoi = 1 << 22;

// (grid_h, grid_w) of one roi: sampling_ratio when positive, else ceil(extent / pooled) per axis.
template <typename T>
std::pair<int64_t, int64_t> sampling_grid(const Pooling& p, T roi_h, T roi_w, int64_t roi) {
  const double grid_h = p.sampling_ratio > 0 ? p.sampling_ratio : std::ceil(static_cast<double>(roi_h / p.pooled_h));
  const double grid_w = p.sampling_ratio > 0 ? p.sampling_ratio : std::ceil(static_cast<double>(roi_w / p.pooled_w));
  const double samples = grid_h * grid_w * static_cast<double>(p.pooled_h * p.pooled_w);
  if (!(samples <= kMaxSamplesPerRoi)) {
    throw OperatorInputError(p.op + ": roi " + std::to_string(roi) + " needs a " + std::to_string(grid_h) + " x " +
                             std::to_string(grid_w) + " sampling grid per bin (" + std::to_string(samples) +
                             " samples), expected at most " + std::to_string(static_cast<int64_t>(kMaxSamplesPerRoi)) +
                             " samples per roi (roi extent / pooled size, or sampling_ratio, too large)");
  }
  return {static_cast<int64_t>(grid_h), static_cast<int64_t>(grid_w)};
}

template <typename T>
void roi_align_kernel(const at::Tensor& x, const at::Tensor& rois, const Pooling& p, at::Tensor& y) {
  const int64_t channels = x.size(1), height = x.size(2), width = x.size(3);
  const T* features = x.data_ptr<T>();
  const T* roi_data = rois.data_ptr<T>();
  T* out = y.data_ptr<T>();
  const T spatial_scale = static_cast<T>(p.spatial_scale);
  const int64_t bins = p.pooled_h * p.pooled_w;
  at::parallel_for(0, rois.size(0), 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const T* r = roi_data + n * 5;
      const int64_t batch = static_cast<int64_t>(r[0]);
      const T offset = p.aligned ? (T)0.5 : (T)0.0;
      const T start_w = r[1] * spatial_scale - offset, start_h = r[2] * spatial_scale - offset;
      T roi_w = r[3] * spatial_scale - offset - start_w, roi_h = r[4] * spatial_scale - offset - start_h;
      if (!p.aligned) {
        roi_w = std::max(roi_w, (T)1.);
        roi_h = std::max(roi_h, (T)1.);
      }
      const T bin_h = roi_h / static_cast<T>(p.pooled_h), bin_w = roi_w / static_cast<T>(p.pooled_w);
      const auto [grid_h, grid_w] = sampling_grid<T>(p, roi_h, roi_w, n);
      const T count = std::max<int64_t>(grid_h * grid_w, 1);
      std::vector<Sample<T>> samples;
      samples.reserve(bins * grid_h * grid_w);
      for (int64_t ph = 0; ph < p.pooled_h; ++ph) {
        for (int64_t pw = 0; pw < p.pooled_w; ++pw) {
          for (int64_t iy = 0; iy < grid_h; ++iy) {
            const T yy = start_h + ph * bin_h + static_cast<T>(iy + .5f) * bin_h / static_cast<T>(grid_h);
            for (int64_t ix = 0; ix < grid_w; ++ix) {
              const T xx = start_w + pw * bin_w + static_cast<T>(ix + .5f) * bin_w / static_cast<T>(grid_w);
              samples.push_back(bilinear_sample<T>(height, width, yy, xx));
            }
          }
        }
      }
      pool_samples<T>(samples, grid_h * grid_w, count, features + batch * channels * height * width, channels,
                      height * width, bins, out + n * channels * bins);
    }
  });
}

template <typename T>
void roi_align_rotated_kernel(const at::Tensor& x, const at::Tensor& rois, const Pooling& p, at::Tensor& y) {
  const int64_t channels = x.size(1), height = x.size(2), width = x.size(3);
  const T* features = x.data_ptr<T>();
  const T* roi_data = rois.data_ptr<T>();
  T* out = y.data_ptr<T>();
  const T spatial_scale = static_cast<T>(p.spatial_scale);
  const int64_t bins = p.pooled_h * p.pooled_w;
  at::parallel_for(0, rois.size(0), 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const T* r = roi_data + n * 6;
      const int64_t batch = static_cast<int64_t>(r[0]);
      const T offset = p.aligned ? (T)0.5 : (T)0.0;
      const T cx = r[1] * spatial_scale - offset, cy = r[2] * spatial_scale - offset;
      T roi_w = r[3] * spatial_scale, roi_h = r[4] * spatial_scale;
      if (!p.aligned) {
        roi_w = std::max(roi_w, (T)1.);
        roi_h = std::max(roi_h, (T)1.);
      }
      const T theta = r[5] * static_cast<T>(M_PI) / static_cast<T>(180.0);
      const T cos_t = std::cos(theta), sin_t = std::sin(theta);
      const T bin_h = roi_h / p.pooled_h, bin_w = roi_w / p.pooled_w;
      const auto [grid_h, grid_w] = sampling_grid<T>(p, roi_h, roi_w, n);
      T* roi_out = out + n * channels * bins;
      if (grid_h == 0 || grid_w == 0) continue;  // no sample: the bins stay 0
      std::vector<Sample<T>> samples;
      samples.reserve(bins * grid_h * grid_w);
      for (int64_t ph = 0; ph < p.pooled_h; ++ph) {
        for (int64_t pw = 0; pw < p.pooled_w; ++pw) {
          for (int64_t iy = 0; iy < grid_h; ++iy) {
            const T yy = -roi_h / 2 + ph * bin_h + (iy + (T)0.5) * bin_h / grid_h;
            for (int64_t ix = 0; ix < grid_w; ++ix) {
              const T xx = -roi_w / 2 + pw * bin_w + (ix + (T)0.5) * bin_w / grid_w;
              const T sx = xx * cos_t + yy * sin_t + cx;
              const T sy = yy * cos_t - xx * sin_t + cy;
              samples.push_back(bilinear_sample<T>(height, width, sy, sx));
            }
          }
        }
      }
      pool_samples<T>(samples, grid_h * grid_w, static_cast<T>(grid_h * grid_w),
                      features + batch * channels * height * width, channels, height * width, bins, roi_out);
    }
  });
}

void check(const std::string& op, const at::Tensor& features, const at::Tensor& rois, int64_t box_cols) {
  if (features.dim() != 4) throw OperatorInputError(op + ": features shape=" + shape_of(features) + ", expected 4-D");
  if (rois.dim() != 2 || (rois.size(1) != box_cols && rois.size(1) != box_cols + 1)) {
    throw OperatorInputError(op + ": rois shape=" + shape_of(rois) + ", expected (R, " + std::to_string(box_cols) +
                             ") or (R, " + std::to_string(box_cols + 1) + ")");
  }
}

at::Tensor with_batch_index(const at::Tensor& rois, int64_t box_cols, at::ScalarType dtype) {
  at::Tensor r = rois.to(dtype);
  if (r.size(1) == box_cols) r = at::cat({at::zeros({r.size(0), 1}, r.options()), r}, 1);
  return r.contiguous();
}

Pooling pooling_of(const std::string& op, const BoundArgs& args) {
  return {op, args.f("spatial_scale"), args.i("pooled_h"), args.i("pooled_w"), args.i("sampling_ratio"),
          args.b("aligned")};
}

// (R, C, pooled_h, pooled_w), or (R, pooled_h, pooled_w, C) for NHWC; the kernel runs on NCHW
// row-major memory (.contiguous() copies only features in another layout, e.g. when run directly).
Tensors pooled(const std::string& op, const Tensors& in, const BoundArgs& args, int64_t box_cols) {
  const at::Tensor &features = in[0], &rois = in[1];
  check(op, features, rois, box_cols);
  const bool nhwc = args.s("order") == "NHWC";
  const Pooling p = pooling_of(op, args);
  const at::Tensor x = (nhwc ? features.permute({0, 3, 1, 2}) : features).contiguous();
  const std::vector<int64_t> out_shape{rois.size(0), x.size(1), p.pooled_h, p.pooled_w};
  checked_numel(op, "output", out_shape);
  at::Tensor y = at::zeros(out_shape, x.options());
  if (rois.size(0) > 0) {
    const at::Tensor r = with_batch_index(rois, box_cols, x.scalar_type());
    // the kernels index the features by these: an index past the batch would read out of bounds
    check_indices(op, "rois batch index", r.select(1, 0), x.size(0), "the batch size of features shape=" + shape_of(x));
    if (!at::isfinite(r).all().item<bool>()) {
      throw OperatorInputError(op + ": rois contain NaN or infinite coordinates, expected finite boxes");
    }
    if (box_cols == 4 && p.aligned) {
      const at::Tensor scaled = r.index({at::indexing::Slice(), at::indexing::Slice(1, 5)}) * p.spatial_scale - 0.5;
      if (((scaled.select(1, 2) - scaled.select(1, 0)) < 0).any().item<bool>() ||
          ((scaled.select(1, 3) - scaled.select(1, 1)) < 0).any().item<bool>()) {
        throw OperatorInputError(op + ": rois with x2 < x1 or y2 < y1, expected non-negative sizes when aligned");
      }
    }
    if (box_cols == 5 && p.aligned &&
        ((r.select(1, 3) < 0).any().item<bool>() || (r.select(1, 4) < 0).any().item<bool>())) {
      throw OperatorInputError(op + ": rois with negative width or height, expected >= 0 when aligned");
    }
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "RoIAlign", [&] {
      if (box_cols == 4) roi_align_kernel<scalar_t>(x, r, p, y);
      else roi_align_rotated_kernel<scalar_t>(x, r, p, y);
    });
  }
  return {nhwc ? y.permute({0, 2, 3, 1}).contiguous() : y};
}

Tensors roi_align(const Tensors& in, const BoundArgs& args) {
  return run_on_cpu(in, [&](const Tensors& cpu) { return pooled("RoIAlign", cpu, args, 4); });
}

Tensors roi_align_rotated(const Tensors& in, const BoundArgs& args) {
  return run_on_cpu(in, [&](const Tensors& cpu) { return pooled("RoIAlignRotated", cpu, args, 5); });
}

std::vector<ArgSpec> roi_align_args() {
  return {Str("order", "NCHW").where(one_of({"NCHW", "NHWC"}), "'NCHW' or 'NHWC'"),
          Float("spatial_scale", 1.0).where(positive(), "a positive float"),
          Int("pooled_h", 1).where(at_least(1), "an int >= 1"), Int("pooled_w", 1).where(at_least(1), "an int >= 1"),
          Int("sampling_ratio", -1), Bool("aligned", false)};
}

}  // namespace

// Both kernels read the features as row-major memory: a channels-last blob (a convolution output) is
// converted once by the executor and the copy shared by every RoIAlign reading it (box and mask heads).
void register_roi_align_ops() {
  register_op({"RoIAlign", roi_align, roi_align_args(), {2, 2}, {1, 1}, {}, {0}});
  register_op({"RoIAlignRotated", roi_align_rotated, roi_align_args(), {2, 2}, {1, 1}, {}, {0}});
}

}  // namespace c2rt
