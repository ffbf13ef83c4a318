// The inputs of an exported detectron2 model from an image: detectron2's test-time
// ResizeShortestEdge, size-divisibility padding, data (1, 3, H, W) and im_info (1, 3).
#pragma once

#include <ATen/ATen.h>
#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace c2rt::tools {

// An image file as an 8-bit BGR image. Caffe2Error naming `path` when it cannot be read or decoded,
// or is a JPEG whose marker structure ends before its end-of-image marker (truncated or corrupt:
// OpenCV would only warn and return a partly grey image).
cv::Mat read_image(const std::string& path);

// (h, w) after resizing the shortest edge to `short_edge` with the longest edge at most `max_size`,
// rounded half up (detectron2's ResizeShortestEdge.get_output_shape); Caffe2Error when the sizes are
// not positive or the result would exceed max_tensor_elements() pixels.
std::pair<int, int> resize_shortest_edge_size(int h, int w, int short_edge, int max_size);

struct ModelInput {
  at::Tensor data;     // (1, 3, H, W) float BGR pixels, padded to the size divisibility with pad_value
  at::Tensor im_info;  // (1, 3) = (resized height, resized width, 1.0)
  int height = 0;      // resized (unpadded) size
  int width = 0;
};

// `bgr`: an 8-bit 3-channel image. Resized bilinearly (when the size changes), padded at the bottom
// and right to multiples of `size_divisibility` (when > 1, at most kMaxSizeDivisibility) with the
// per-channel `pad_value` (empty: zeros, as upstream files expect); no normalisation (the graph does
// it). The padded size is computed in int64 and bounded by max_tensor_elements().
ModelInput prepare_input(const cv::Mat& bgr, int min_size, int max_size, int64_t size_divisibility,
                         const std::vector<float>& pad_value = {});

}  // namespace c2rt::tools
