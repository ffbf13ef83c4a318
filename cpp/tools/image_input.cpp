#include "image_input.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>

#include "errors.h"

namespace c2rt::tools {

std::pair<int, int> resize_shortest_edge_size(int h, int w, int short_edge, int max_size) {
  const double size = short_edge;
  double scale = size / std::min(h, w);
  double new_h, new_w;
  if (h < w) {
    new_h = size;
    new_w = scale * w;
  } else {
    new_h = scale * h;
    new_w = size;
  }
  if (std::max(new_h, new_w) > max_size) {
    scale = max_size / std::max(new_h, new_w);
    new_h *= scale;
    new_w *= scale;
  }
  return {static_cast<int>(new_h + 0.5), static_cast<int>(new_w + 0.5)};
}

ModelInput prepare_input(const cv::Mat& bgr, int min_size, int max_size, int size_divisibility,
                         const std::vector<float>& pad_value) {
  if (!pad_value.empty() && pad_value.size() != 3) {
    throw Caffe2Error("predict net argument pad_value has " + std::to_string(pad_value.size()) +
                      " values, expected 3 (one per BGR channel)");
  }
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    throw Caffe2Error("input image: expected an 8-bit 3-channel (BGR) image");
  }
  const auto [h, w] = resize_shortest_edge_size(bgr.rows, bgr.cols, min_size, max_size);
  cv::Mat resized = bgr;
  if (h != bgr.rows || w != bgr.cols) cv::resize(bgr, resized, cv::Size(w, h), 0, 0, cv::INTER_LINEAR);
  int padded_h = h, padded_w = w;
  if (size_divisibility > 1) {
    padded_h = (h + size_divisibility - 1) / size_divisibility * size_divisibility;
    padded_w = (w + size_divisibility - 1) / size_divisibility * size_divisibility;
  }
  const at::Tensor hwc = at::from_blob(resized.data, {h, w, 3}, {static_cast<int64_t>(resized.step[0]), 3, 1}, at::kByte);
  at::Tensor data = at::zeros({1, 3, padded_h, padded_w}, at::kFloat);
  if (!pad_value.empty()) data += at::tensor(pad_value).reshape({1, 3, 1, 1});
  data[0].narrow(1, 0, h).narrow(2, 0, w).copy_(hwc.permute({2, 0, 1}));
  ModelInput input;
  input.data = data;
  input.im_info = at::tensor({static_cast<float>(h), static_cast<float>(w), 1.0f}).reshape({1, 3});
  input.height = h;
  input.width = w;
  return input;
}

}  // namespace c2rt::tools
