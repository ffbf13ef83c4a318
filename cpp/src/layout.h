// Channels-last convolution filters: the memory layout oneDNN computes in, chosen once at load time
// (mirrors detectron2_export/caffe2/layout.py).
//
// A CPU Conv on plain NCHW tensors makes oneDNN reorder its input and output to a blocked layout on
// every call; when the filter is channels-last (NHWC strides) ATen runs the convolution in that layout
// and returns a channels-last output, which the element-wise ops, pooling and the next convolution
// keep. Values are the same (only strides differ), so results agree to float rounding.
//
// Kernels that read raw memory as row-major declare those inputs (OpSchema::contiguous_inputs); the
// executor converts such a blob once and stores the copy back for later readers.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "executor.h"
#include "net_spec.h"

namespace c2rt {

// Re-stores as channels-last the 4-D floating-point CPU tensors in `blobs` that `net` reads only as
// the filter of Conv/ConvTranspose. Blobs the net writes, external inputs not (yet) in `blobs`, and
// blobs read in any other slot are left alone. Returns the converted blob names, sorted.
std::vector<std::string> channels_last_filters(const NetSpec& net, BlobMap& blobs);

// "row-major", "channels-last" (NHWC strides and not row-major) or "strided" (any other layout);
// "empty" for an undefined tensor. For logs and the tools' --show_layout.
std::string layout_name(const at::Tensor& tensor);

}  // namespace c2rt
