// Kernel / stride / pad / dilation / adj arguments shared by Conv, ConvTranspose, the pools and
// PadImage (mirrors detectron2_export/caffe2/conv_pool_args.py).
//
// Caffe2 accepts each quantity in three spellings: one value for every spatial dim (`kernel`), one
// per 2-D dim (`kernel_h`, `kernel_w`; pads `pad_t`, `pad_l`, `pad_b`, `pad_r`), or repeated
// (`kernels`; `pads` = all begins then all ends, i.e. t, l, b, r). Two spellings of one quantity
// is an error.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "arguments.h"

namespace c2rt {

struct Geometry {
  std::optional<std::vector<int64_t>> kernel;  // nullopt when not given
  std::vector<int64_t> stride;
  std::vector<int64_t> pad_begin;
  std::vector<int64_t> pad_end;
  std::vector<int64_t> dilation;
  std::vector<int64_t> adj;

  bool symmetric_pads() const { return pad_begin == pad_end; }
  // at::constant_pad_nd order: last dim first, (begin, end) per dim.
  std::vector<int64_t> torch_pad() const;
};

// The ArgSpecs of the given quantities ("kernel", "stride", "pad", "dilation", "adj"), plus `order`
// (NCHW only) and `legacy_pad` (0 only).
std::vector<ArgSpec> geometry_args(const std::vector<std::string>& quantities);

// Bound arguments -> one value per spatial dim; quantities the op does not declare take defaults.
Geometry resolve_geometry(const std::string& op, int64_t nd, const BoundArgs& args);

}  // namespace c2rt
