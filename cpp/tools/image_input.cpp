#include "image_input.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

#include "errors.h"
#include "op_args.h"
#include "tool_common.h"

namespace c2rt::tools {
namespace {

bool is_rst_or_stuffing(unsigned char next) { return next == 0x00 || (next >= 0xD0 && next <= 0xD7); }

// "" when the JPEG stream `b` (starting with SOI) walks segment by segment to its EOI marker, else
// where it breaks off. libjpeg decodes a truncated file with a warning only, so this is the check.
std::string jpeg_structure_error(const std::vector<unsigned char>& b) {
  size_t pos = 2;
  const auto ends = [&](const std::string& where) {
    return "the data ends at byte " + std::to_string(b.size()) + " " + where + ", before the end-of-image marker";
  };
  while (true) {
    if (pos >= b.size()) return ends("between segments");
    if (b[pos] != 0xFF) return "no JPEG marker at byte " + std::to_string(pos);
    while (pos < b.size() && b[pos] == 0xFF) ++pos;
    if (pos >= b.size()) return ends("in a marker");
    const unsigned char marker = b[pos++];
    if (marker == 0xD9) return "";
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // markers without a length
    if (pos + 2 > b.size()) return ends("in a segment length");
    const size_t length = (static_cast<size_t>(b[pos]) << 8) | b[pos + 1];
    if (length < 2 || pos + length > b.size()) {
      return "segment 0xFF" + std::string(1, "0123456789ABCDEF"[marker >> 4]) + "0123456789ABCDEF"[marker & 15] +
             " at byte " + std::to_string(pos - 2) + " claims " + std::to_string(length) + " bytes, " +
             ends("inside it");
    }
    pos += length;
    if (marker != 0xDA) continue;
    // entropy-coded scan data: up to the next marker that is neither a restart nor a stuffed 0xFF00
    while (pos + 1 < b.size() && !(b[pos] == 0xFF && b[pos + 1] != 0xFF && !is_rst_or_stuffing(b[pos + 1]))) ++pos;
    if (pos + 1 >= b.size()) return ends("in the scan data");
  }
}

// "" when the PNG stream `b` (starting with its 8-byte signature) walks chunk by chunk to IEND, else
// where it breaks off (checked before libpng, which would print its own error line).
std::string png_structure_error(const std::vector<unsigned char>& b) {
  size_t pos = 8;
  while (pos + 8 <= b.size()) {
    const size_t length = (static_cast<size_t>(b[pos]) << 24) | (static_cast<size_t>(b[pos + 1]) << 16) |
                          (static_cast<size_t>(b[pos + 2]) << 8) | b[pos + 3];
    const std::string type(b.begin() + static_cast<std::ptrdiff_t>(pos + 4), b.begin() + static_cast<std::ptrdiff_t>(pos + 8));
    if (length > b.size() - pos - 8 || b.size() - pos - 8 - length < 4) {
      return "chunk " + quoted(type) + " at byte " + std::to_string(pos) + " claims " + std::to_string(length) +
             " bytes, the data ends at byte " + std::to_string(b.size());
    }
    if (type == "IEND") return "";
    pos += 12 + length;
  }
  return "the data ends at byte " + std::to_string(b.size()) + ", before the IEND chunk";
}

// Refuses sizes whose pixels (times 3 channels) exceed the tensor ceiling: a huge --min_size or
// size_divisibility would otherwise allocate without bound.
void check_pixels(const std::string& what, double h, double w) {
  if (!(h * w * 3 <= static_cast<double>(max_tensor_elements()))) {
    throw Caffe2Error(what + " " + std::to_string(static_cast<int64_t>(h)) + "x" +
                      std::to_string(static_cast<int64_t>(w)) + " would exceed " +
                      std::to_string(max_tensor_elements()) +
                      " elements (3 channels), expected a smaller image (DETECTRON2_EXPORT_MAX_TENSOR_ELEMENTS)");
  }
}

}  // namespace

cv::Mat read_image(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (!file.good() && !file.eof()) {
    throw Caffe2Error(path + ": cannot read the image (missing file or unknown format)");
  }
  static const unsigned char kPngSignature[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (bytes.size() >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8) {
    const std::string error = jpeg_structure_error(bytes);
    if (!error.empty()) throw Caffe2Error(path + ": truncated or corrupt JPEG: " + error);
  }
  if (bytes.size() >= 8 && std::equal(kPngSignature, kPngSignature + 8, bytes.begin())) {
    const std::string error = png_structure_error(bytes);
    if (!error.empty()) throw Caffe2Error(path + ": truncated or corrupt PNG: " + error);
  }
  const cv::Mat image = bytes.empty() ? cv::Mat() : cv::imdecode(bytes, cv::IMREAD_COLOR);
  if (image.empty()) throw Caffe2Error(path + ": cannot read the image (missing file or unknown format)");
  return image;
}

std::pair<int, int> resize_shortest_edge_size(int h, int w, int short_edge, int max_size) {
  if (h < 1 || w < 1 || short_edge < 1 || max_size < 1) {
    throw Caffe2Error("image " + std::to_string(h) + "x" + std::to_string(w) + " with min_size=" +
                      std::to_string(short_edge) + ", max_size=" + std::to_string(max_size) +
                      ": expected all >= 1 (--min_size, --max_size)");
  }
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
  check_pixels("the resized image", new_h + 0.5, new_w + 0.5);
  return {static_cast<int>(new_h + 0.5), static_cast<int>(new_w + 0.5)};
}

ModelInput prepare_input(const cv::Mat& bgr, int min_size, int max_size, int64_t size_divisibility,
                         const std::vector<float>& pad_value) {
  if (!pad_value.empty() && pad_value.size() != 3) {
    throw Caffe2Error("predict net argument pad_value has " + std::to_string(pad_value.size()) +
                      " values, expected 3 (one per BGR channel)");
  }
  if (size_divisibility < 0 || size_divisibility > kMaxSizeDivisibility) {
    throw Caffe2Error("predict net argument size_divisibility=" + std::to_string(size_divisibility) +
                      ", expected an int in [0, " + std::to_string(kMaxSizeDivisibility) + "]");
  }
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    throw Caffe2Error("input image: expected an 8-bit 3-channel (BGR) image");
  }
  const auto [h, w] = resize_shortest_edge_size(bgr.rows, bgr.cols, min_size, max_size);
  int64_t padded_h = h, padded_w = w;
  if (size_divisibility > 1) {
    padded_h = (padded_h + size_divisibility - 1) / size_divisibility * size_divisibility;
    padded_w = (padded_w + size_divisibility - 1) / size_divisibility * size_divisibility;
  }
  check_pixels("the padded image", static_cast<double>(padded_h), static_cast<double>(padded_w));
  cv::Mat resized = bgr;
  if (h != bgr.rows || w != bgr.cols) cv::resize(bgr, resized, cv::Size(w, h), 0, 0, cv::INTER_LINEAR);
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
