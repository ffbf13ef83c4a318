// The inputs of an exported detectron2 model from an image: detectron2's test-time
// ResizeShortestEdge, size-divisibility padding, data (1, 3, H, W) and im_info (1, 3).
#pragma once

#include <ATen/ATen.h>
#include <opencv2/core.hpp>

#include <utility>
#include <vector>

namespace c2rt::tools {

// (h, w) after resizing the shortest edge to `short_edge` with the longest edge at most `max_size`,
// rounded half up (detectron2's ResizeShortestEdge.get_output_shape).
std::pair<int, int> resize_shortest_edge_size(int h, int w, int short_edge, int max_size);

struct ModelInput {
  at::Tensor data;     // (1, 3, H, W) float BGR pixels, padded to the size divisibility with pad_value
  at::Tensor im_info;  // (1, 3) = (resized height, resized width, 1.0)
  int height = 0;      // resized (unpadded) size
  int width = 0;
};

// `bgr`: an 8-bit 3-channel image. Resized bilinearly (when the size changes), padded at the bottom
// and right to multiples of `size_divisibility` (when > 1) with the per-channel `pad_value` (empty:
// zeros, as upstream files expect); no normalisation (the graph does it).
ModelInput prepare_input(const cv::Mat& bgr, int min_size, int max_size, int size_divisibility,
                         const std::vector<float>& pad_value = {});

}  // namespace c2rt::tools
